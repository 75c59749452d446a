"""The host allocator CPU measurements run under: glibc's malloc held steady, freed memory kept for reuse.

By default glibc's malloc gives freed memory back to the kernel: blocks at or above ``M_MMAP_THRESHOLD``
are mmapped and unmapped on free, and the heap is trimmed when its free top exceeds ``M_TRIM_THRESHOLD``;
both thresholds move with the block sizes the process has freed before. Memory given back and taken again
comes as fresh pages that the kernel zeroes on first touch (minor page faults, system time). Which step pays
depends on the heap's history, not on the step: in one process measuring ``parallel:tasks=8`` and
``parallel:tasks=8,n=5`` on bert-base at batch 1, the first ran with no page faults per step while the
second took tens of thousands in the feed-forward blocks of its forked layers (``adapterdrop profile``
counts them per phase), so the comparison charged one variant for the other's allocation history.

:func:`hold_host_allocator` sets ``M_MMAP_MAX = 0`` (no mmapped blocks: every block comes from the heap)
and ``M_TRIM_THRESHOLD = 2^31 - 1`` (the heap is not trimmed): after the first steps every step reuses
memory the process already holds, as PyTorch's caching allocator does on a GPU. The process keeps its
high-water mark of memory, a few blocks more than a step needs where small allocations split freed
blocks (the memory fields are read from malloc's bytes in use, which this does not change).
``ADAPTERDROP_HOST_ALLOCATOR=default`` leaves glibc's behaviour as it is (to compare); elsewhere than
glibc nothing is changed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os

#: set to ``default`` to leave glibc's malloc as it is
VARIABLE = "ADAPTERDROP_HOST_ALLOCATOR"
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
_NEVER_TRIM = 2**31 - 1


@functools.cache
def hold_host_allocator() -> str:
    """Hold glibc's malloc steady for this process (once); returns what the allocator is, for a record."""
    if os.environ.get(VARIABLE, "").strip().lower() == "default":
        return f"default (glibc malloc untouched: {VARIABLE}=default)"
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
