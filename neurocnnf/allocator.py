"""The C allocator's settings for long PyTorch jobs on a CPU.

PyTorch frees every activation of a training step and allocates it again at the next one. With
glibc's defaults the tensors above its mmap threshold, and freed memory at the top of the heap
beyond 128 KiB, go back to the operating system, which zero-fills each page again when the next
step touches it. :func:`keep_freed_memory` keeps that memory in the process instead (tensors up
to 32 MiB come from the heap, and up to 2 GiB of freed heap stays mapped): the same numbers,
fewer page faults (``benchmarks/README.md``, "Allocator"). It is what PyTorch's CPU tuning
guide gets from jemalloc or tcmalloc, without a preloaded library.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
MMAP_THRESHOLD = 32 * 2**20  # bytes; the largest glibc accepts on 64-bit systems
TRIM_THRESHOLD = 2**31 - 1  # bytes of free heap kept mapped (mallopt takes a C int)
SWITCH = "NEUROCNNF_KEEP_FREED_MEMORY"  # "0" leaves the allocator as it is


def keep_freed_memory() -> bool:
    """Keep freed memory in this process for reuse (glibc on Linux; elsewhere, or with
    ``NEUROCNNF_KEEP_FREED_MEMORY=0``, nothing changes). Returns whether the settings apply.

    Process-wide and one-way: call it in a process that runs a long job (``neurocnnf train``
    and the training loop do), not in one that must give memory back between jobs.
    """
    if os.environ.get(SWITCH, "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl): its own defaults stay
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
