"""Downloads of the publishers' original files, checksum-verified and written atomically."""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from neurocnnf.data.roots import DataIntegrityError, DataNotFoundError


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: Path, checksum: str) -> None:
    """Check ``path`` against ``"algorithm:hexdigest"``; raise DataIntegrityError if it differs."""
    algorithm, expected = checksum.split(":", 1)
    actual = file_digest(path, algorithm)
    if actual != expected:
        raise DataIntegrityError(
            f"{path}: {algorithm} checksum {actual} does not match the expected {expected}; "
            "the file is corrupt or not the published one: delete it and try again"
        )


def download(url: str, target: Path, checksum: str | None, looked_in: list[Path]) -> Path:
    """Download ``url`` to ``target`` (atomic rename after verification).

    ``checksum``: ``"algorithm:hexdigest"`` of the file, or None when the caller verifies the
    content itself. ``looked_in`` lists the places already searched, for the offline error.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=30) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=target.name) as bar:
                for chunk in iter(lambda: response.read(1 << 20), b""):
                    out.write(chunk)
                    bar.update(len(chunk))
        if checksum is not None:
            verify(Path(partial), checksum)
        os.replace(partial, target)
    except (urllib.error.URLError, OSError, TimeoutError) as error:
        places = "\n  ".join(str(p) for p in looked_in)
        raise DataNotFoundError(
            f"{target.name} was not found in the data roots:\n  {places}\n"
            f"and downloading it from {url} failed ({error}). Put the file in one of these "
            "places or set NEUROCNNF_DATA to a folder that has it."
        ) from None
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return target
