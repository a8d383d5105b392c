"""Writing results safely: atomic file writes and figure files.

Every file the package writes goes through :func:`atomic_write` (a temporary file renamed onto
the target, so a kill never leaves half a file) or, for figures, :func:`save_figure`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def atomic_write(path: str | os.PathLike, write: Callable[[str], object]) -> None:
    """Call ``write(tmp_path)`` then rename onto ``path``: no half-written file after a kill.

    The file gets the mode a plain ``open`` would give it (0666 less the umask).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def current_umask() -> int:
    """The process's umask (set and restored at once: there is no way to only read it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 150) -> Path:
    """Save a figure (PNG unless the suffix says otherwise) atomically and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    suffix = path.suffix.lstrip(".") or "png"
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format=suffix))
    plt.close(fig)
    return path
