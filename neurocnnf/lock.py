"""An exclusive, non-blocking lock on an output path: ``<path>.lock`` names its owner.

The lock is an ``flock`` on the lock file, so the kernel releases it when the owner exits in any
way (SIGKILL included): a lock file left behind by a dead process is taken over, and a second
writer while the owner lives fails at once with a message naming it (pid, host, start time).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from neurocnnf.errors import NeurocnnfError


class LockError(NeurocnnfError, RuntimeError):
    """The output is locked by another live process."""


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


@contextmanager
def output_lock(path: str | os.PathLike) -> Iterator[Path]:
    """Hold ``<path>.lock`` while the body runs (removed on exit); raise LockError if another
    live process holds it."""
    path = Path(path)
    lock = lock_path(path)
    fd = _acquire(path, lock)
    try:
        owner = {"pid": os.getpid(), "host": socket.gethostname(),
                 "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(owner).encode())
        yield lock
    finally:
        if _is_file_of(fd, lock):  # (unless someone removed it by hand)
            lock.unlink()  # still under the flock: no one else can hold this file
        os.close(fd)


def _acquire(path: Path, lock: Path) -> int:
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe(fd)
            os.close(fd)
            raise LockError(f"{path} is being written by {holder} (lock file {lock}); wait for "
                            "it to finish or stop it, then run again") from None
        if _is_file_of(fd, lock):
            return fd
        os.close(fd)  # its previous owner removed it between our open and flock: retry


def _is_file_of(fd: int, lock: Path) -> bool:
    """Whether ``lock`` is still the file open as ``fd``."""
    try:
        return os.stat(lock).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _describe(fd: int) -> str:
    """'pid P on host H (since T)' from a held lock file (it may be mid-write: then vaguer)."""
    try:
        owner = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"pid {owner['pid']} on host {owner['host']} (since {owner['since']})"
    except (ValueError, KeyError, TypeError):
        return "another process"
