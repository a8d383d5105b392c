"""Find (or download) and verify datasets up front: a manifest of what a workflow will read."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from neurocnnf.data.datasets import SPLITS, dataset_digest, kriegeskorte92, load_dataset

DATASETS = ("fashion_mnist", "cifar10", "kriegeskorte92")


def prepare(names: Sequence[str], root: str | os.PathLike | None = None) -> dict[str, Any]:
    """Load each dataset once (downloading and checking it where needed).

    Returns name -> per split {n, classes, sha256 of images + labels, source}, or for
    kriegeskorte92 {n_images, categories, rdms}. Raises DataNotFoundError offline.
    """
    unknown = sorted(set(names) - set(DATASETS))
    if unknown:
        raise ValueError(f"unknown dataset(s) {unknown}; choose from {DATASETS}")
    manifest: dict[str, Any] = {}
    for name in names:
        if name == "kriegeskorte92":
            k92 = kriegeskorte92(root)
            manifest[name] = {"n_images": int(k92.images.shape[0]),
                              "categories": list(k92.category_names), "rdms": sorted(k92.rdms)}
            continue
        manifest[name] = {}
        for split in SPLITS:
            data = load_dataset(name, split, root)
            manifest[name][split] = {"n": len(data), "classes": list(data.classes),
                                     "sha256": dataset_digest(data), "source": data.source}
    return manifest
