"""Freed host memory is reused: a big block allocated, written and freed
twice faults its pages in only once (XLA's per-step temporary buffer)."""
import json
import subprocess
import sys

import pytest

from conftest import ROOT

_MB = 1 << 20
# Runs in a fresh process (mallopt must come before any other thread):
# allocates, writes and frees a block on a worker thread, as XLA does, twice;
# prints the minor page faults of the second round.
_PROBE = """
import ctypes, json, resource, sys, threading
from mel_ae.backends import host_memory
applied = host_memory.reuse_freed_memory() if sys.argv[1] == '1' else None
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = (ctypes.c_void_p,)
size = int(sys.argv[2])
def touch():
  block = libc.malloc(size)
  ctypes.memset(block, 1, size)
  libc.free(block)
def on_thread():
  thread = threading.Thread(target=touch)
  thread.start()
  thread.join()
faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
on_thread()
before = faults()
on_thread()
print(json.dumps({'applied': applied, 'faults': faults() - before}))
"""


def _second_round_faults(apply: bool, size: int) -> dict:
  out = subprocess.run([sys.executable, '-c', _PROBE, str(int(apply)),
                        str(size)], cwd=ROOT, check=True, capture_output=True,
                       text=True).stdout
  return json.loads(out.splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith('linux'),
                    reason='glibc malloc')
def test_a_freed_block_is_reused_instead_of_faulted_in_again():
  size = 256 * _MB
  pages = size // 4096
  plain = _second_round_faults(False, size)
  reused = _second_round_faults(True, size)
  assert reused['applied'] is True
  # Without it, every page of the block is faulted in again (or, where the
  # kernel backs it with huge pages, at least one per 2 MB).
  assert plain['faults'] >= size // (2 * _MB)
  assert reused['faults'] < min(plain['faults'], pages) / 10
