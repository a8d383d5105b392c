"""Real brain and behavioural RDMs of the 92- and 78-image sets, in one form.

Every set loads as ``BrainRDMs``: float64 (subjects, stimuli, stimuli) dissimilarities of one
region, with subject ids and stimulus ids that equal the ids of the same images in
``neurocnnf.stimuli.brain_stimuli(dataset)`` (the 92 images carry the ids of
``kriegeskorte92_set`` in every 92-image set, so RDMs of different sets line up by id; the
stimulus sets live in ``neurocnnf.stimuli``, which reads this module: data never imports
stimuli).

- ``algonauts92`` / ``algonauts78``: Algonauts 2019 fMRI RDMs (Cichy et al.), EVC and IT,
  15 subjects each, with the publisher's JPEGs in RDM order;
- ``kriegeskorte92``: human IT fMRI, 4 subjects (two sessions averaged; Kriegeskorte et al.
  2008) and macaque IT (one RDM pooled over Kiani et al.'s 2007 recordings);
- ``judgements92``: similarity-judgement RDMs of 16 subjects (Mur et al. 2013).

Files are found in the data roots (``roots.find``), or downloaded from their publishers and
checked against sha256 digests; the JPEGs are checked as one ordered set (the digest of their
bytes concatenated in RDM order), so a renamed or reordered image is an error.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from neurocnnf.data import roots
from neurocnnf.data.datasets import (
    KRIEGESKORTE_URL,
    _download_or_explain,
    kriegeskorte92,
    published_file,
)
from neurocnnf.data.roots import DataIntegrityError

if TYPE_CHECKING:
    import rsatoolbox

REGIONS: dict[str, tuple[str, ...]] = {
    "algonauts92": ("EVC", "IT"),
    "algonauts78": ("EVC", "IT"),
    "kriegeskorte92": ("human_IT", "macaque_IT"),
    "judgements92": ("judgements",),
}
N_STIMULI = {"algonauts92": 92, "algonauts78": 78, "kriegeskorte92": 92, "judgements92": 92}
ALGONAUTS_URL = ("https://raw.githubusercontent.com/m7cw5l/Net2Brain-App/"
                 "959aba890710773a404bc507f24e6d66e778ec6d/Net2Brain/data_rdm/")
ALGONAUTS_RDMS = {
    ("algonauts92", "EVC"): (
        "92images/92images_fmri_EVC_RDMs.gzip",
        "sha256:b55a1b50ecc72754644520119aa89f6db67eb2578f175d7eeb056394a4c03bee"),
    ("algonauts92", "IT"): (
        "92images/92images_fmri_IT_RDMs.gzip",
        "sha256:f70846e64b763499640ed9c35e5a2b3ed7a8682ded9993d9ca6679aedee5106d"),
    ("algonauts78", "EVC"): (
        "78images/78images_fmri_EVC_RDMs.gzip",
        "sha256:04f2107691cee164ccfa7019b64e3b173a42d7fdd5c417f6b0eb6e7da0e4c5cd"),
    ("algonauts78", "IT"): (
        "78images/78images_fmri_IT_RDMs.gzip",
        "sha256:f023f486cca6b6f990b22b1188354fa42dac40f13307aec2b35bbf5548775d59"),
}
# sha256 of the set's JPEG files' bytes concatenated in RDM order (NNimages_00001.jpg, ...)
ALGONAUTS_IMAGES = {
    "algonauts92": "sha256:d0d76962cb70941f934147d4bd0439d89aac1019b2bcd30c0bcd98a1f5fabf56",
    "algonauts78": "sha256:7bef8f204a16d4393b423cf300ce9b868c6ecb34b3b77d5658cf71d5b595b5bc",
}
JUDGEMENTS_FILE = ("92_behavRDMs.mat",
                   "sha256:7a8e118c144c3840adeeeef6ea0706a0be2b3e80df719af15fbb56fc62562f5f")
SYMMETRY_TOLERANCE = 1e-8  # published RDMs are symmetric to rounding (2e-16 in Algonauts')


@dataclass
class BrainRDMs:
    """RDMs of one region of one data set.

    rdms: float64 (subjects, stimuli, stimuli), symmetric with a zero diagonal;
    subjects: one id per RDM; stimulus_ids: the ids of the images in RDM order, as in
    ``neurocnnf.stimuli.brain_stimuli(dataset)``.
    """

    dataset: str
    region: str
    rdms: np.ndarray
    subjects: list[str]
    stimulus_ids: list[str]

    def to_rsatoolbox(self) -> rsatoolbox.rdm.RDMs:
        """The same RDMs as ``rsatoolbox.rdm.RDMs`` (upper triangles; subjects as the 'subject'
        rdm descriptor, ids as the 'stimulus_id' pattern descriptor). Needs rsatoolbox."""
        from neurocnnf.extras import require

        rdm = require("rsatoolbox.rdm", "dev", "BrainRDMs.to_rsatoolbox")
        return rdm.RDMs(self.rdms, dissimilarity_measure="dissimilarity",
                        descriptors={"dataset": self.dataset, "region": self.region},
                        rdm_descriptors={"subject": list(self.subjects)},
                        pattern_descriptors={"stimulus_id": list(self.stimulus_ids)})


def brain_datasets() -> dict[str, tuple[str, ...]]:
    """Data set name -> the regions it has RDMs of."""
    return dict(REGIONS)


def stimulus_ids(dataset: str) -> list[str]:
    """The ids of a set's images in RDM order (the 92 images share kriegeskorte92's ids)."""
    _check(dataset)
    n = N_STIMULI[dataset]
    prefix = "algonauts78" if n == 78 else "kriegeskorte92"
    return [f"{prefix}-{i:02d}" for i in range(n)]


def load_brain_rdms(dataset: str, region: str, root: str | os.PathLike | None = None
                    ) -> BrainRDMs:
    """The subjects' RDMs of ``region`` in ``dataset`` (see ``brain_datasets``)."""
    _check(dataset, region)
    if dataset.startswith("algonauts"):
        rdms = _algonauts_rdms(dataset, region, root)
        subjects = [f"subject{i + 1:02d}" for i in range(len(rdms))]
    elif dataset == "judgements92":
        rdms, subjects = _judgement_rdms(root)
    else:
        rdms, subjects = _kriegeskorte_rdms(region, root)
    return BrainRDMs(dataset, region, _clean(rdms, N_STIMULI[dataset], f"{dataset} {region}"),
                     subjects, stimulus_ids(dataset))


def algonauts_files(dataset: str, root: str | os.PathLike | None = None) -> list[Path]:
    """The JPEG files of an Algonauts set in RDM order, verified.

    The files' bytes, concatenated in order, must match the published digest: a missing,
    changed or reordered image is a DataIntegrityError."""
    _check(dataset)
    n = N_STIMULI[dataset]
    names = [f"{n}images_{i + 1:05d}.jpg" for i in range(n)]
    folder_rel = f"algonauts2019/{n}images/images"
    folder = roots.find([folder_rel], root)
    if folder is None:
        folder = roots.download_target(root) / folder_rel
        for name in names:
            _download_or_explain(f"{ALGONAUTS_URL}{n}images/images/{name}", folder / name, None,
                                 [f"{folder_rel}/{name}"], root)
    missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        raise DataIntegrityError(f"{folder}: {len(missing)} of the {n} images are missing "
                                 f"({', '.join(missing[:3])}): delete the folder to download it "
                                 "again")
    digest = hashlib.sha256()
    for name in names:
        digest.update((folder / name).read_bytes())
    if "sha256:" + digest.hexdigest() != ALGONAUTS_IMAGES[dataset]:
        raise DataIntegrityError(
            f"{folder}: the {n} images are not the published ones in the RDMs' order (sha256 of "
            f"{names[0]}..{names[-1]} concatenated differs): an image is changed, renamed or "
            "out of order; delete the folder to download it again")
    return [folder / name for name in names]


def check_order(images: np.ndarray, reference: np.ndarray, background: int | None = None,
                tolerance: float = 0.06) -> None:
    """Raise DataIntegrityError unless image k of ``images`` is image k of ``reference``.

    images, reference: uint8 (N, C, H, W) of the same shape, compared by mean absolute pixel
    difference (scale [0, 1]), which tolerates JPEG loss: each image must be nearer to its own
    reference than to any other, and nearer than ``tolerance``. ``background``: the grey value
    of the reference's background when the images have another one (the Kriegeskorte ``.mat``
    images lie on grey 128, the Algonauts JPEGs on white): only the reference's foreground
    counts (pixels off the background by more than 12/255, eroded by 3 pixels). Every 4th
    pixel (stride 2 in each direction) is compared, which is plenty to tell images apart."""
    from scipy import ndimage

    if images.shape != reference.shape:
        raise DataIntegrityError(f"image sets of different shapes: {images.shape} and "
                                 f"{reference.shape}")
    a = images.astype(np.float32) / 255.0
    b = reference.astype(np.float32) / 255.0
    mask = np.ones((len(b), 1, *b.shape[2:]), dtype=bool)
    if background is not None:
        foreground = np.abs(b - background / 255.0).max(1) > 12 / 255.0
        mask = np.stack([ndimage.binary_erosion(f, iterations=3) for f in foreground])[:, None]
    a, b, mask = a[..., ::2, ::2], b[..., ::2, ::2], mask[..., ::2, ::2]  # every 4th pixel
    weight = mask.sum((1, 2, 3)) * b.shape[1]
    distance = np.stack([(np.abs(image - b) * mask).sum((1, 2, 3)) / weight
                         for image in a])  # (N images, N references)
    nearest = distance.argmin(1)
    wrong = np.flatnonzero((nearest != np.arange(len(a))) | (distance.diagonal() > tolerance))
    if len(wrong):
        pairs = ", ".join(f"{k}->{nearest[k]}" for k in wrong[:5])
        raise DataIntegrityError(f"{len(wrong)} image(s) are not in the reference order "
                                 f"(position -> nearest reference image: {pairs})")


# ---------------------------------------------------------------- readers


def _check(dataset: str, region: str | None = None) -> None:
    if dataset not in REGIONS:
        raise ValueError(f"unknown brain data set {dataset!r}; known: {', '.join(REGIONS)}")
    if region is not None and region not in REGIONS[dataset]:
        raise ValueError(f"{dataset} has no region {region!r}; its regions: "
                         f"{', '.join(REGIONS[dataset])}")


def _algonauts_rdms(dataset: str, region: str, root) -> np.ndarray:
    name, checksum = ALGONAUTS_RDMS[(dataset, region)]
    path = published_file(f"algonauts2019/{name}", ALGONAUTS_URL + name, checksum, root)
    try:
        with gzip.open(path, "rt") as handle:
            content = json.load(handle)
        return np.asarray(content["data"], dtype=np.float64).reshape(content["shape"])
    except (OSError, EOFError, ValueError, KeyError, TypeError) as error:
        raise DataIntegrityError(f"{path}: not a gzip JSON file of RDMs ({error})") from None


def _judgement_rdms(root) -> tuple[np.ndarray, list[str]]:
    import scipy.io

    name, checksum = JUDGEMENTS_FILE
    path = published_file(f"kriegeskorte92/{name}", KRIEGESKORTE_URL + name, checksum, root)
    try:
        entries = scipy.io.loadmat(path)["rdms_behav_92"].ravel()
        rdms = np.stack([np.asarray(e["RDM"], dtype=np.float64) for e in entries])
        # 'simJudge | subject7' -> 'subject07'
        numbers = [int(str(e["name"][0]).split("subject")[-1]) for e in entries]
    except (KeyError, IndexError, ValueError) as error:
        raise DataIntegrityError(f"{path}: unexpected layout ({error})") from None
    return rdms, [f"subject{k:02d}" for k in numbers]


def _kriegeskorte_rdms(region: str, root) -> tuple[np.ndarray, list[str]]:
    k92 = kriegeskorte92(root)
    if region == "macaque_IT":
        return k92.rdms["macaque_IT"][None], ["kiani2007"]
    subjects = sorted({n.split("_")[2] for n in k92.rdms if n.startswith("human_IT_")})
    rdms = [np.mean([k92.rdms[n] for n in k92.rdms if n.startswith(f"human_IT_{s}_")], 0)
            for s in subjects]
    return np.stack(rdms), subjects


def _clean(rdms: np.ndarray, n: int, name: str) -> np.ndarray:
    """Check (subjects, n, n), finite, symmetric, zero diagonal; return exactly symmetric."""
    if rdms.ndim != 3 or rdms.shape[1:] != (n, n):
        raise DataIntegrityError(f"{name}: RDMs of shape {rdms.shape}, expected (subjects, {n}, "
                                 f"{n})")
    if not np.isfinite(rdms).all():
        raise DataIntegrityError(f"{name}: RDMs hold non-finite values")
    asymmetry = np.abs(rdms - rdms.transpose(0, 2, 1)).max()
    diagonal = np.abs(np.diagonal(rdms, axis1=1, axis2=2)).max()
    if asymmetry > SYMMETRY_TOLERANCE or diagonal > SYMMETRY_TOLERANCE:
        raise DataIntegrityError(f"{name}: not RDMs (asymmetry {asymmetry:.2g}, largest "
                                 f"diagonal {diagonal:.2g})")
    clean = (rdms + rdms.transpose(0, 2, 1)) / 2
    clean[:, np.arange(n), np.arange(n)] = 0.0
    return clean
