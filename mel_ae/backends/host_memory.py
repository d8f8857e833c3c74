"""Host memory that a process keeps and reuses instead of giving it back.

XLA's CPU client allocates each step's temporary buffer afresh (~460 MB for
configs/denoise.py's U-Net at batch 16) and frees it after the step. glibc
serves a block that big with mmap from a thread's own arena and unmaps it
on free, so every step faults ~10^5 new pages in: a third of the training
step's CPU time went to the kernel (42 -> 62 examples/s with this; see
experiments/benchmarks/README.md). With one arena, no mmap and no trimming,
the freed pages are handed back on the next step.

It must run before JAX starts its threads (an arena, once a thread has one,
is kept): first thing in a process, e.g. the first cell of a notebook.
"""
import ctypes
import sys

# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
_SETTINGS = ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0),
             (_M_TRIM_THRESHOLD, 2**31 - 1))


def reuse_freed_memory() -> bool:
  """Tells glibc's malloc to keep freed memory for reuse; True if it did
  (False off glibc, e.g. macOS or musl, where nothing changes)."""
  if not sys.platform.startswith('linux'):
    return False
  try:
    mallopt = ctypes.CDLL(None).mallopt
  except (OSError, AttributeError):
    return False
  mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
  # A list, not a generator: every setting is made even if one fails.
  return all([mallopt(param, value) == 1 for param, value in _SETTINGS])
