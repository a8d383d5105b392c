"""Brain-Score benchmarks from the real Algonauts 2019 fMRI RDMs (92 and 78 images; EVC and IT;
15 subjects): what an exported benchmark plugin runs (``benchmark_export`` carries a generated
copy of this module and of the loaders it uses).

``load_benchmark('Algonauts2019.92-IT-rdm')`` reads the subjects' RDMs and the images in RDM
order with the package's loaders (``neurocnnf.data.brain``: the data roots, else a verified
download from the publisher) and returns Brain-Score's own ``RSABenchmark`` on them: the
candidate looks at the images with the region committed (IT; V1 for EVC), its RDM
(1 - Pearson r) is compared with every subject's RDM (Spearman on the upper triangles), and the
Score is the mean over subjects divided by the ceiling (each subject against the mean RDM of
all, Nili et al. 2014), with ``raw`` (its ``subject_scores``) and ``ceiling`` (its
``lower_bound_loo``) attached: Brain-Score's convention for RDM benchmarks (``raw / ceiling``,
not squared).

The subjects' RDMs are held in an assembly as "neuroids": subject s's RDM row i is presentation
i's values over the neuroids (s, j); ``StoredRDM`` hands those rows back as the subject's RDM
where Brain-Score's ``RDM`` would correlate voxel patterns.
"""

from __future__ import annotations

import functools
import os

import numpy as np

from neurocnnf.data.brain import BrainRDMs, algonauts_files, load_brain_rdms

# identifier -> (data set, its region, the region a BrainModel commits: EVC is V1)
BENCHMARKS: dict[str, tuple[str, str, str]] = {
    f"Algonauts2019.{n}-{region}-rdm": (f"algonauts{n}", region, "V1" if region == "EVC" else "IT")
    for n in (92, 78) for region in ("EVC", "IT")}
# The images were shown at 2.9 degrees for 500 ms (Cichy et al. 2014; the 78-image set is
# taken to follow the same protocol). fMRI sums the response over the whole presentation.
VISUAL_DEGREES = 2.9
TIME_BIN = (0, 500)
COLUMN = "rdm_column"  # the neuroid coord that marks an assembly of stored RDM rows
BIBTEX = """@article{cichy2019algonauts,
  title={The Algonauts Project: A Platform for Communication between the Sciences of
         Biological and Artificial Intelligence},
  author={Cichy, Radoslaw Martin and Roig, Gemma and Andonian, Alex and Dwivedi, Kshitij and
          Lahner, Benjamin and Lascelles, Alex and Mohsenzadeh, Yalda and Ramakrishnan, Kandan
          and Oliva, Aude},
  journal={arXiv preprint arXiv:1905.05675},
  year={2019},
  url={https://arxiv.org/abs/1905.05675}
}"""


def load_benchmark(identifier: str, root: str | os.PathLike | None = None):
    """Brain-Score's RSABenchmark on the real RDMs of ``identifier`` (see ``BENCHMARKS``)."""
    if identifier not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {identifier!r}; known: {', '.join(BENCHMARKS)}")
    dataset, region, committed = BENCHMARKS[identifier]
    rdms = load_brain_rdms(dataset, region, root)
    return rdm_benchmark(identifier, rdms, [str(p) for p in algonauts_files(dataset, root)],
                         committed)


def rdm_benchmark(identifier: str, rdms: BrainRDMs, paths: list[str], region: str):
    """``RSABenchmark`` comparing a model's ``region`` with each subject's RDM of ``rdms``;
    ``paths``: the image files in RDM order."""
    from brainscore_vision import load_metric
    from brainscore_vision.benchmark_helpers.neural_common import RSABenchmark

    rdm = _stored_rdm_class()()
    return RSABenchmark(identifier=identifier, version=1, assembly=rdm_assembly(rdms, paths,
                                                                                region),
                        region=region, visual_degrees=VISUAL_DEGREES, number_of_trials=1,
                        bibtex=BIBTEX, ceiler=load_metric("rsa_ceiling", rdm=rdm), rdm=rdm)


def rdm_assembly(rdms: BrainRDMs, paths: list[str], region: str):
    """NeuroidAssembly (presentation: stimuli, neuroid: subjects x stimuli) of the subjects'
    RDM rows, with a ``subject`` coord, Brain-Score's single fMRI time bin and the stimulus set
    (ids and files in RDM order)."""
    from brainscore_core.supported_data_standards.brainio.assemblies import NeuroidAssembly
    from brainscore_core.supported_data_standards.brainio.stimuli import StimulusSet

    n, subjects = len(rdms.stimulus_ids), list(rdms.subjects)
    values = np.concatenate(list(rdms.rdms), axis=1)  # subject s in columns s*n .. (s+1)*n
    assembly = NeuroidAssembly(values[..., None], coords={
        "stimulus_id": ("presentation", list(rdms.stimulus_ids)),
        "filename": ("presentation", [os.path.basename(p) for p in paths]),
        "neuroid_id": ("neuroid", [f"{s}.{i}" for s in subjects for i in rdms.stimulus_ids]),
        "subject": ("neuroid", np.repeat(subjects, n)),
        COLUMN: ("neuroid", list(rdms.stimulus_ids) * len(subjects)),
        "region": ("neuroid", [region] * (n * len(subjects))),
        "time_bin_start": ("time_bin", [TIME_BIN[0]]),
        "time_bin_end": ("time_bin", [TIME_BIN[1]])},
        dims=["presentation", "neuroid", "time_bin"]).isel(time_bin=0)
    stimuli = StimulusSet({"stimulus_id": list(rdms.stimulus_ids),
                           "filename": [os.path.basename(p) for p in paths]})
    stimuli.stimulus_paths = dict(zip(rdms.stimulus_ids, paths, strict=True))
    stimuli.identifier = f"{rdms.dataset}-images"
    assembly.attrs["stimulus_set"] = stimuli
    return assembly


@functools.cache
def _stored_rdm_class():
    from brainscore_vision.metrics.rdm.metric import RDM

    class StoredRDM(RDM):
        """Brain-Score's RDM of a presentation x neuroid assembly, except that an assembly of
        stored RDM rows (neuroid coord ``rdm_column``) is that RDM, its columns put in the
        rows' stimulus order."""

        def __call__(self, assembly):
            computed = super().__call__(assembly)
            neuroid_levels = getattr(assembly.indexes.get("neuroid"), "names", [])
            if COLUMN not in assembly.coords and COLUMN not in neuroid_levels:
                return computed
            assembly = assembly.transpose("presentation", "neuroid")
            columns = list(assembly[COLUMN].values)
            order = [columns.index(s) for s in assembly["stimulus_id"].values]
            computed.values = assembly.values[:, order]
            return computed

    return StoredRDM
