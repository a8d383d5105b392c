"""Up-front checks of output paths, so that a command fails before any work, not after."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from neurocnnf.errors import NeurocnnfError


class OutputError(NeurocnnfError, ValueError):
    """An output path that cannot be written (a file in the way, no permission, ...)."""


def check_output_folder(folder: str | os.PathLike) -> Path:
    """Raise OutputError unless ``folder`` is (or can be made) a writable folder.

    Nothing is created: the check writes and removes a probe file in ``folder`` or in its
    nearest existing ancestor.
    """
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        if existing.is_symlink():
            raise OutputError(f"output {folder}: {existing} is a broken link")
        existing = existing.parent
    if not existing.is_dir():
        where = "is a file" if existing == folder else f"lies under {existing}, which is a file"
        raise OutputError(f"output folder {folder} {where}; give a folder path")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".neurocnnf-probe-")
        os.close(fd)
        os.remove(probe)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise OutputError(f"output folder {folder} is not writable ({existing}: {reason})") \
            from None
    return folder


def check_output_file(path: str | os.PathLike) -> Path:
    """Raise OutputError unless the file ``path`` can be written (its folder is checked)."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"output file {path} is a folder; give a file path")
    check_output_folder(path.parent)
    return path
