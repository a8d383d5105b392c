"""Write the Algonauts 2019 benchmark plugin (benchmarks/<name>/ of brain-score/vision).

The folder, as a model plugin's: ``__init__.py`` (one ``benchmark_registry['<id>']`` literal
line per benchmark, what Brain-Score's loader and CI search for), ``benchmark.py``,
``test.py``, ``metadata.yml`` (the benchmark fields Brain-Score's metadata check allows),
``requirements.txt`` and ``cnnf_runtime/``: ``brainscore.rdm_benchmark`` and the data loaders
it uses, generated from the package (``vendor``). The data are not copied: the plugin finds
them in the data roots (``NEUROCNNF_DATA``, ...) or downloads them once from the publisher,
checked against their sha256 digests.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from neurocnnf.brainscore.export import staged_folder
from neurocnnf.brainscore.rdm_benchmark import BENCHMARKS, TIME_BIN
from neurocnnf.brainscore.vendor import vendor
from neurocnnf.data.brain import N_STIMULI

NAME = "algonauts2019_rdm"
ROOT_MODULE = "neurocnnf.brainscore.rdm_benchmark"

INIT = '''from brainscore_vision import benchmark_registry

from .benchmark import load

{lines}
'''

BENCHMARK = '''"""Algonauts 2019 fMRI RDM benchmarks, a Brain-Score plugin (neurocnnf {version}).

The subjects' RDMs and the images are read from the data roots (NEUROCNNF_DATA) or downloaded
once from the publisher and checked against their sha256 digests.
"""

from .cnnf_runtime.brainscore import rdm_benchmark


def load(identifier):
    """Brain-Score's RSABenchmark on the real RDMs of ``identifier``."""
    return rdm_benchmark.load_benchmark(identifier)
'''

TEST = '''import pytest

from brainscore_vision import load_benchmark


@pytest.mark.parametrize("identifier", {identifiers!r})
def test_ceiling_is_the_subjects_agreement(identifier):
    benchmark = load_benchmark(identifier)
    assert benchmark.identifier == identifier
    ceiling = benchmark.ceiling
    assert 0 < ceiling.attrs["lower_bound_loo"] < float(ceiling) <= 1
'''


def benchmark_metadata() -> dict:
    """metadata.yml: per benchmark the keys Brain-Score's metadata check allows
    (``handle_metadata.ALLOWED_KEYS_BY_TYPE['benchmarks']``)."""
    entries = {}
    for identifier, (dataset, region, committed) in BENCHMARKS.items():
        entries[identifier] = {
            "stimulus_set": {"num_stimuli": N_STIMULI[dataset], "datatype": "image",
                             "stimuli_subtype": "objects",
                             "extra_notes": "Algonauts 2019 images (Cichy et al.), in RDM order"},
            "data": {"benchmark_type": "neural", "task": "passive viewing",
                     "region": committed, "species": "homo sapiens", "datatype": "fMRI",
                     "num_subjects": 15, "duration_ms": TIME_BIN[1] - TIME_BIN[0],
                     "pre_processing": "subject RDMs as released by the Algonauts 2019 "
                                       "challenge",
                     "data_publicly_available": True,
                     "extra_notes": f"{region} RDMs, compared with the model's {committed}"},
            "metric": {"type": "RSA", "public": True,
                       "reference": "Kriegeskorte et al. 2008, Nili et al. 2014 (ceiling)",
                       "extra_notes": "Spearman of the upper triangles, mean over subjects, "
                                      "divided by the ceiling (raw / ceiling)"}}
    return {"benchmarks": entries}


def export_benchmarks(out: str | os.PathLike) -> Path:
    """Write ``out/<NAME>/`` (every benchmark of ``BENCHMARKS``) and return it."""
    from neurocnnf.version import __version__

    folder = Path(out) / NAME
    with staged_folder(folder) as staging:
        _, requirements = vendor(staging, ROOT_MODULE)
        lines = "\n".join(f"benchmark_registry['{identifier}'] = lambda: load('{identifier}')"
                          for identifier in BENCHMARKS)
        (staging / "__init__.py").write_text(INIT.format(lines=lines))
        (staging / "benchmark.py").write_text(BENCHMARK.format(version=__version__))
        (staging / "test.py").write_text(TEST.format(identifiers=list(BENCHMARKS)))
        (staging / "metadata.yml").write_text(yaml.safe_dump(benchmark_metadata(),
                                                             sort_keys=False))
        (staging / "requirements.txt").write_text("".join(f"{r}\n" for r in requirements))
    return folder
