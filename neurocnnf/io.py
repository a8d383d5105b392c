"""Writing results safely: atomic file writes.

Every file the package writes goes through :func:`atomic_write` (a temporary file renamed onto
the target, so a kill never leaves half a file); figures through
:func:`neurocnnf.viz.style.save_figure`, which uses it.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

from neurocnnf.errors import NeurocnnfError


class WriteError(NeurocnnfError, OSError):
    """A file that could not be written (full disk, size limit, read-only): one line naming
    it; ``path`` itself is as it was."""


def atomic_write(path: str | os.PathLike, write: Callable[[str], object]) -> None:
    """Call ``write(tmp_path)`` then rename onto ``path``: no half-written file after a kill.

    The file gets the mode a plain ``open`` would give it (0666 less the umask). A failed
    write (OSError, or the error a serializer makes of one) raises WriteError naming ``path``.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise WriteError(f"cannot write {path}: {error.strerror or error}") from None
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as error:  # torch.save: RuntimeError
        raise WriteError(f"cannot write {path}: {_reason(error)}") from None
    except Exception as error:
        if type(error).__name__ != "SafetensorError":
            raise
        raise WriteError(f"cannot write {path}: {_reason(error)}") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _reason(error: Exception) -> str:
    """The cause of a failed write in a few words: the OS's message where one is given."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    text = str(error).strip()
    code = re.search(r"(?:os error|errno =) (\d+)", text)  # safetensors' and HDF5's wording
    if code:
        return os.strerror(int(code.group(1)))
    return f"the write failed ({text.splitlines()[0][:120] if text else type(error).__name__}); " \
        "is the disk full?"


def current_umask() -> int:
    """The process's umask (set and restored at once: there is no way to only read it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
