"""Keep the C heap's freed memory for reuse while metric tables are computed.

A metric table makes many large temporary tensors (gathered minors, rotated Jacobians,
bootstrap replicates), most of them above glibc's mmap threshold (at most 32 MiB). glibc maps
each such block fresh from the kernel and unmaps it on free, so every use of a temporary is paid
again in page faults and in the kernel zeroing its pages. Measured on one width-512 table at the
`quick` profile's sizes, spatial analyses included (`python benchmarks/table_allocator.py --width 512
--spatial`, 2-core AMD EPYC, one thread): 79.1 s user + 24.4 s kernel CPU time and 6.9 million page
faults with glibc's defaults; 68.0 s + 2.2 s and 0.7 million with this module's settings (ratio 1.47,
wall time 104 s -> 71 s). The tables are equal, value for value; the peak memory rose from 3.2 to 3.6 GB.

:func:`keep_freed_memory` sets glibc's ``M_MMAP_MAX`` to 0 (no block is mapped on its own; a block
larger than a thread arena's heap is still mapped, glibc's own fallback) and ``M_TRIM_THRESHOLD``
to 2 GiB, the largest it takes (freed memory at the top of the heap stays for the next table). It
is a no-op on a C library other than glibc. Freed memory is then not handed back to the operating
system until the process ends: right for the pipeline's worker processes, which compute table
after table, and why the library's :func:`kag.measure` does not call it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_MAX = -4
TRIM_THRESHOLD_BYTES = 2**31 - 1  # mallopt takes an int

# The same settings for a process not yet started (glibc reads them from its environment), with every
# thread on the main heap: a thread's own arena grows in heaps of at most 64 MiB, and glibc maps a larger
# block on its own whatever M_MMAP_MAX says. Dask runs its tasks in a thread: kag sweep's workers start so.
ENVIRONMENT = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(TRIM_THRESHOLD_BYTES), "MALLOC_ARENA_MAX": "1"}

_done: bool | None = None


def keep_freed_memory() -> bool:
    """Serve large blocks from the heap and keep freed memory (glibc only; once per process).
    Returns whether the C library took the settings."""
    global _done
    if _done is None:
        _done = _apply()
    return _done


def _apply() -> bool:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
