"""Keep freed memory in the process during training (glibc's malloc; a no-op elsewhere).

A train step allocates and frees the same few ``[t, n, h]`` tensors (tens of MB each) every
step. glibc serves blocks above its mmap threshold (at most 32 MB) with fresh ``mmap`` pages and
returns them on ``free``, so every step pays the kernel's page faults and zeroing again: on the
2-core dev box that was 40-50 % of a 3,000-stock GRU / RNN-LIN step (``sys`` time in
``benchmarks/bench_models.py``). ``retain_freed_memory()`` tells malloc to serve every block from
its heap and not to trim it, so the second step reuses the first step's pages. Peak memory is
unchanged (the same blocks are live at the peak); the process just does not hand pages back
between steps. Applied by the training entry points (``deepalpha.train.trainer.fit``) and the
benchmarks; set ``DEEPALPHA_KEEP_MEMORY=0`` to leave malloc alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # glibc's mallopt parameters (malloc.h)


def enabled() -> bool:
    """False when ``DEEPALPHA_KEEP_MEMORY=0``."""
    return os.environ.get("DEEPALPHA_KEEP_MEMORY", "1").strip() != "0"


@functools.lru_cache(maxsize=1)
def _apply() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others: no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok_mmap = mallopt(M_MMAP_MAX, 0) == 1  # never mmap: serve large blocks from the heap
    ok_trim = mallopt(M_TRIM_THRESHOLD, 2**31 - 1) == 1  # never give the heap top back
    return ok_mmap and ok_trim


def retain_freed_memory() -> bool:
    """Apply the setting once per process (idempotent); True when malloc accepted it."""
    return enabled() and _apply()
