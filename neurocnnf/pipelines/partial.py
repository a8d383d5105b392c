"""Finished parts of a long runner kept on disk, so that a rerun after a kill resumes where it
stopped: ``neurocnnf evaluate`` keeps one table per evaluated model in ``OUT/.partial/``.

A part is found again only by the same request (a JSON-able description of the work: inputs'
checksums, settings, device); the folder is removed once the runner has written its outputs.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from neurocnnf.extras import require
from neurocnnf.io import atomic_write

if TYPE_CHECKING:
    import pandas as pd

PARTIAL = ".partial"


def part_path(out: Path, request: dict) -> Path:
    """Where the table of ``request`` is kept: ``out/.partial/<sha256 of the request>.csv``."""
    text = json.dumps(request, sort_keys=True, default=str)
    return Path(out) / PARTIAL / f"{hashlib.sha256(text.encode()).hexdigest()[:20]}.csv"


def load_part(out: Path, request: dict) -> pd.DataFrame | None:
    """The table a previous run kept for ``request``, or None (none kept, or unreadable)."""
    pd = require("pandas", "analysis", "resuming a runner")
    path = part_path(out, request)
    if not path.exists():
        return None
    try:
        return pd.read_csv(path)
    except (OSError, ValueError):  # not written by us (our writes are atomic): redo the part
        return None


def save_part(out: Path, request: dict, table: pd.DataFrame) -> None:
    """Keep ``table`` for ``request`` (atomic: a kill leaves the old state or the new)."""
    atomic_write(part_path(out, request), lambda tmp: table.to_csv(tmp, index=False))


def clear_parts(out: Path) -> None:
    """Remove the kept parts (after the runner's outputs are written)."""
    shutil.rmtree(Path(out) / PARTIAL, ignore_errors=True)
