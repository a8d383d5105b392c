"""Where datasets are looked for, in one documented order.

1. an explicit ``root`` argument;
2. the ``NEUROCNNF_DATA`` environment variable;
3. ``../shared/data`` beside the checkout (the development layout);
4. Debian's ``/usr/share/datasets`` (e.g. package ``dataset-fashion-mnist``);
5. the download cache, ``NEUROCNNF_CACHE`` or ``~/.cache/neurocnnf``, into which a missing
   dataset is downloaded from its publisher and checksum-verified.
"""

from __future__ import annotations

import os
from pathlib import Path

from neurocnnf.errors import NeurocnnfError

DEBIAN_DATASETS = Path("/usr/share/datasets")
_CHECKOUT = Path(__file__).resolve().parents[2]


class DataNotFoundError(NeurocnnfError, FileNotFoundError):
    """A dataset is neither on disk in any data root nor downloadable."""


class DataIntegrityError(NeurocnnfError, ValueError):
    """A dataset file is truncated, corrupt or has the wrong checksum."""


def cache_dir() -> Path:
    """The download cache: ``NEUROCNNF_CACHE`` or ``~/.cache/neurocnnf``."""
    return Path(os.environ.get("NEUROCNNF_CACHE", Path.home() / ".cache" / "neurocnnf"))


def data_roots(root: str | os.PathLike | None = None) -> list[Path]:
    """The data roots searched, in order (explicit root, env, shared, Debian, cache)."""
    candidates = [
        Path(root) if root is not None else None,
        Path(os.environ["NEUROCNNF_DATA"]) if os.environ.get("NEUROCNNF_DATA") else None,
        _CHECKOUT.parent / "shared" / "data",
        DEBIAN_DATASETS,
        cache_dir() / "data",
    ]
    return [c for c in candidates if c is not None]


def find(relative_paths: list[str], root: str | os.PathLike | None = None) -> Path | None:
    """First existing ``data_root / relative_path`` over roots (outer) and paths (inner)."""
    for base in data_roots(root):
        for rel in relative_paths:
            path = base / rel
            if path.exists():
                return path
    return None


def download_target(root: str | os.PathLike | None = None) -> Path:
    """Where a download goes: the explicit root, else ``NEUROCNNF_DATA``, else the cache."""
    if root is not None:
        return Path(root)
    if os.environ.get("NEUROCNNF_DATA"):
        return Path(os.environ["NEUROCNNF_DATA"])
    return cache_dir() / "data"
