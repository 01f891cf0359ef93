"""Keep freed CPU memory for reuse during a long scoring call (glibc only; elsewhere a no-op).

glibc serves every block over 32 MB with a fresh ``mmap`` and unmaps it on ``free``. A deep metric that pushes
chunk after chunk of patches through a network allocates the same 30–300 MB activations again and again, and the
kernel zero-fills every page of each on first touch: on PieAPP at 512×384 those page faults were 28 % of the CPU
time, and a 2×2 max-pool over a 268 MB map took 4.7× longer than over reused memory (bench/README.md, PieAPP).

:func:`reuse_freed_memory` asks glibc (``mallopt``) to serve large blocks from its heap and keep freed memory
for the duration of the ``with`` block, so each chunk reuses the previous chunk's pages. On exit it restores the
settings and hands the retained memory back to the system (``malloc_trim``), so the process' resident size after
the call is what it would have been. Any ``mallopt`` call switches off glibc's sliding mmap threshold for good, so
the exit settings are the ones that threshold settles at in a process that frees large tensors: blocks up to 32 MB
from the heap, trimmed above 64 MB. The setting is process-wide while it lasts (other threads allocating large
blocks meanwhile also reuse memory); nested and concurrent uses keep it on until the last one exits.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import threading

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -3, -4  # glibc's mallopt parameters (malloc.h)
# where glibc's sliding threshold ends up (DEFAULT_MMAP_THRESHOLD_MAX on 64-bit, trim at twice it), its mmap count
SETTLED_MMAP_THRESHOLD, SETTLED_TRIM_THRESHOLD, DEFAULT_MMAP_MAX = 32 * 2**20, 64 * 2**20, 65536
KEEP_FREED = 2**31 - 1  # trim threshold while reusing: never give the heap's top back mid-call

_lock = threading.Lock()
_depth = 0


def _load_glibc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt.argtypes, libc.mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = (ctypes.c_size_t,), ctypes.c_int
        libc.gnu_get_libc_version  # noqa: B018 - only glibc has it (musl, macOS: no-op below)
        return libc
    except (OSError, AttributeError):
        return None


_glibc = _load_glibc()


def available() -> bool:
    """Whether :func:`reuse_freed_memory` does anything here (a glibc process)."""
    return _glibc is not None


@contextlib.contextmanager
def reuse_freed_memory(enabled: bool = True):
    """Serve large CPU allocations from glibc's heap and keep freed ones until the block exits (module docstring)."""
    global _depth
    if not enabled or _glibc is None:
        yield
        return
    with _lock:
        _depth += 1
        if _depth == 1:
            _glibc.mallopt(M_MMAP_MAX, 0)
            _glibc.mallopt(M_TRIM_THRESHOLD, KEEP_FREED)
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _glibc.mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
                _glibc.mallopt(M_MMAP_THRESHOLD, SETTLED_MMAP_THRESHOLD)
                _glibc.mallopt(M_TRIM_THRESHOLD, SETTLED_TRIM_THRESHOLD)
                _glibc.malloc_trim(0)
