"""CIFAR-10H (Peterson et al. 2019): about 50 people's labels for each CIFAR-10 test image,
and the map from the original test-set order onto the CIFAR-10 JPEG tree.

In ``cifar10-jpeg.tar.gz`` the test images are numbered within each class in the original
order: test image i is ``test/<class of i>/<k>.jpg`` with k the number of earlier test images
of its class (../shared/data/README.md). ``neurocnnf.data.cifar10("test")`` applies that map,
so row i of its images is CIFAR-10H's row i.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from neurocnnf.data.datasets import (
    CIFAR10_TEST_LABELS,
    ImageDataset,
    cifar10,
    jpeg_positions,
    published_file,
)
from neurocnnf.data.roots import DataIntegrityError

CIFAR10H_URL = ("https://raw.githubusercontent.com/jcpeterson/cifar-10h/"
                "48da312b193b82e6939ec20f23d1f09cbdd849c8/data/")
FILES = {
    "counts": ("cifar10h/cifar10h-counts.npy", CIFAR10H_URL + "cifar10h-counts.npy",
               "sha256:9b36b4550349af56c79083356312eb4af856cc5fd3caf1f669d40b9d0bbb69ff"),
    "probs": ("cifar10h/cifar10h-probs.npy", CIFAR10H_URL + "cifar10h-probs.npy",
              "sha256:436ae98620e00073f9d08585ac870573b588853e7af9f54eb1647408114af77d"),
    "labels": CIFAR10_TEST_LABELS,
}
N_TEST = 10_000


@dataclass
class Cifar10H:
    """counts: int64 (10000, 10) annotators choosing each class; probs: float64 (10000, 10)
    their normalised distribution; labels: int64 (10000,) CIFAR-10 test labels; all in the
    original test-set order."""

    counts: np.ndarray
    probs: np.ndarray
    labels: np.ndarray

    def entropy(self) -> np.ndarray:
        """(10000,) entropy of the human label distribution, nats."""
        p = np.clip(self.probs, 1e-12, 1)
        return -(self.probs * np.log(p)).sum(1)

    def plurality(self) -> np.ndarray:
        """(10000,) the class most people chose."""
        return self.counts.argmax(1)


def cifar10h(root: str | os.PathLike | None = None) -> Cifar10H:
    """Load CIFAR-10H and the CIFAR-10 test labels (checksums checked)."""
    arrays = {}
    for key, (relative, url, checksum) in FILES.items():
        path = published_file(relative, url, checksum, root)
        try:
            arrays[key] = np.load(path, allow_pickle=False)
        except ValueError as error:
            raise DataIntegrityError(f"{path}: not a numpy array file ({error})") from None
    counts, probs, labels = arrays["counts"], arrays["probs"], arrays["labels"]
    if counts.shape != (N_TEST, 10) or probs.shape != (N_TEST, 10) or labels.shape != (N_TEST,):
        raise DataIntegrityError(f"CIFAR-10H: unexpected shapes {counts.shape}, {probs.shape}, "
                                 f"{labels.shape}")
    return Cifar10H(counts.astype(np.int64), probs.astype(np.float64), labels.astype(np.int64))


def cifar10_test_in_original_order(root: str | os.PathLike | None = None) -> ImageDataset:
    """The CIFAR-10 test images in the original test-set order (``cifar10("test")``'s order
    from either source), checked against CIFAR-10H's labels: row i is CIFAR-10H's row i."""
    data = cifar10("test", root)
    if not np.array_equal(data.labels.numpy(), cifar10h(root).labels):
        raise DataIntegrityError("CIFAR-10 test labels differ from CIFAR-10H's original order")
    return data


__all__ = ["Cifar10H", "cifar10_test_in_original_order", "cifar10h", "jpeg_positions"]
