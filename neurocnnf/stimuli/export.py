"""Write a stimulus set as rendered images + ``stimuli.csv`` (Brain-Score's folder convention).

Every stimulus is rendered as the models see it (perturbation applied, ``channels x size``),
saved as an 8-bit PNG, and listed in ``stimuli.csv`` with its metadata and ``rendered=True``:
reading the folder back (``from_folder``) gives the same stimuli without perturbing them twice.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from neurocnnf.lock import output_lock
from neurocnnf.stimuli.perturb import render
from neurocnnf.stimuli.sets import StimulusError, StimulusSet


def write_folder(stimuli: StimulusSet, folder: str | os.PathLike, channels: int, size: int,
                 model=None, batch_size: int = 256, progress: bool = True) -> Path:
    """Render ``stimuli`` into ``folder`` (images/<row>.png + stimuli.csv); returns the CSV.

    The images are rendered into a hidden temporary folder first; only when every image is
    written do they replace ``images/``, then the CSV is written atomically. A failure (a
    full disk: WriteError) leaves ``folder`` as it was (no orphan images); the temporary
    folders a killed export left are removed by the next one. ``<folder>.lock`` keeps a second
    writer out (LockError). A CSV column naming the source files
    (``filename``, ``image_file_name``, ``path``) is kept as ``source_<name>``.
    ``model`` is needed only for adversarial perturbations.
    """
    if channels not in (1, 3):
        raise StimulusError(f"channels must be 1 or 3, got {channels}")
    if size < 1:
        raise StimulusError(f"size must be >= 1 pixel, got {size}")
    folder = Path(folder)
    rows = np.arange(len(stimuli))
    names = [f"images/{row:06d}.png" for row in rows]
    renamed = {c: f"source_{c}" for c in ("filename", "image_file_name", "path", "rendered")
               if c in stimuli.metadata}
    table = stimuli.metadata.drop(columns=["source_index", *(
        c for c in renamed.values() if c in stimuli.metadata)]).rename(columns=renamed)
    table.insert(1, "filename", names)
    table["rendered"] = True
    folder.mkdir(parents=True, exist_ok=True)
    with output_lock(folder):
        for stale in folder.glob(".images-*"):  # left by a killed export (we hold the lock)
            shutil.rmtree(stale, ignore_errors=True)
        return _write_images(stimuli, folder, table, names, channels, size, model, batch_size,
                             progress)


def _write_images(stimuli: StimulusSet, folder: Path, table, names: list[str], channels: int,
                  size: int, model, batch_size: int, progress: bool) -> Path:
    """The rendering and the swap of :func:`write_folder`, under its lock."""
    from PIL import Image

    from neurocnnf.io import WriteError, atomic_write, current_umask

    rows = np.arange(len(stimuli))
    staging = Path(tempfile.mkdtemp(dir=folder, prefix=".images-"))
    try:
        for start in tqdm(range(0, len(rows), batch_size), desc=f"render {folder.name}",
                          disable=not progress):
            batch = rows[start:start + batch_size]
            images = render(stimuli, batch, channels, size, model)
            pixels = (images * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
            for row, array in zip(batch, pixels.numpy(), strict=True):
                image = Image.fromarray(array[..., 0] if channels == 1 else array)
                image.save(staging / Path(names[row]).name)
        os.chmod(staging, 0o777 & ~current_umask())
        old = folder / "images"
        if old.exists():
            old.rename(staging.with_name(staging.name + ".old"))
        staging.rename(old)
        atomic_write(folder / "stimuli.csv", lambda tmp: table.to_csv(tmp, index=False))
    except OSError as error:
        if isinstance(error, WriteError):
            raise
        raise WriteError(f"cannot write {folder}: {error.strerror or error}; it is as it was")\
            from None
    finally:
        for leftover in (staging, staging.with_name(staging.name + ".old")):
            shutil.rmtree(leftover, ignore_errors=True)
    return folder / "stimuli.csv"
