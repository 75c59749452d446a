"""Optionally hold glibc's malloc steady for CPU measurements: freed memory kept for reuse.

By default glibc's malloc gives freed memory back to the kernel: blocks at or above ``M_MMAP_THRESHOLD``
are mmapped and unmapped on free, and the heap is trimmed when its free top exceeds ``M_TRIM_THRESHOLD``;
both thresholds move with the block sizes the process has freed before. Memory given back and taken again
comes as fresh pages that the kernel zeroes on first touch (minor page faults, system time), and which
step pays depends on the heap's history: in one ``adapterdrop profile parallel:tasks=8,n=5 --vs
parallel:tasks=8`` process on bert-base at batch 1, the baseline's step took 57,382 minor page faults and
the variant's 1 (the profile's memory table counts them per phase). That is what a program using glibc's
malloc pays, so measurements leave it as it is by default.

``ADAPTERDROP_HOST_ALLOCATOR=steady`` makes :func:`hold_host_allocator` set ``M_MMAP_MAX = 0`` (no mmapped
blocks: every block comes from the heap) and ``M_TRIM_THRESHOLD = 2^31 - 1`` (the heap is not trimmed):
after the first steps every step reuses memory the process already holds, as PyTorch's caching allocator
does on a GPU, so no variant of a group pays for another's allocation history. The process keeps its
high-water mark of memory, a few blocks more than a step needs where small allocations split freed blocks
(the memory fields are read from malloc's bytes in use, which this does not change). Records say which
allocator ran (``timing.host_allocator``). Elsewhere than glibc nothing is changed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os

#: set to ``steady`` to hold glibc's malloc steady
VARIABLE = "ADAPTERDROP_HOST_ALLOCATOR"
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
_NEVER_TRIM = 2**31 - 1


@functools.cache
def hold_host_allocator() -> str:
    """With ``ADAPTERDROP_HOST_ALLOCATOR=steady``, hold glibc's malloc steady for this process (once);
    returns what the allocator is, for a record."""
    if os.environ.get(VARIABLE, "").strip().lower() != "steady":
        return "default (the C library's malloc as it is)"
    libc = _glibc()
    if libc is None:
        return "default (not glibc: nothing changed)"
    if not (libc.mallopt(_M_MMAP_MAX, 0) and libc.mallopt(_M_TRIM_THRESHOLD, _NEVER_TRIM)):
        return "default (glibc refused mallopt)"
    return f"steady (glibc: M_MMAP_MAX=0, M_TRIM_THRESHOLD={_NEVER_TRIM})"


def _glibc() -> ctypes.CDLL | None:
    """The C library if it is glibc, else None."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "gnu_get_libc_version") else None
