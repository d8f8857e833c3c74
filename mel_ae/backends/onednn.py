"""Stride-1 NHWC/HWIO convolutions through oneDNN, as XLA FFI custom calls.

On this project's 2-core CPU, XLA:CPU's convolutions of the seed's layers
take about twice oneDNN's time forward and 1.3-2.9x its time for the two
gradients (B=16, each layer against PyTorch, which calls oneDNN). `convs`
computes the same function as `layers.lax_convs` with oneDNN's forward,
backward-data and backward-weights primitives (csrc/onednn_conv.cc), joined
by a `jax.custom_vjp`; tests/onednn_test.py compares outputs and
gradients. float32, and bfloat16 where this CPU has native bf16 kernels
(AVX512_BF16 or AMX: `bf16_unavailable_reason`); other dtypes go to XLA's
convolutions. In bfloat16 the outputs are bfloat16 (oneDNN accumulates in
float32), the kernel gradients are accumulated in float32 and the input
gradient of several convs of one input is summed in float32.

The C++ source is compiled on first use with the system C++ compiler against
JAX's FFI headers and the oneDNN wheels (`pip install 'mel_ae[onednn]'`), and
cached under $MEL_AE_CACHE (default ~/.cache/mel_ae) keyed by a hash of
everything that goes into it. CPU only. MEL_AE_REQUIRE_ONEDNN=1 turns "not
available here" into an error, so a broken build cannot pass unnoticed.
"""
import ctypes
import functools
import hashlib
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
from typing import List, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from mel_ae import layers

Array = jax.Array
_SOURCE = pathlib.Path(__file__).parent / 'csrc' / 'onednn_conv.cc'
_TARGETS = ('Forward', 'BackwardData', 'BackwardWeights')


class OneDnnUnavailable(RuntimeError):
  """The oneDNN convolutions cannot be built or loaded here; says why."""


def _onednn_prefix() -> pathlib.Path:
  """Where the oneDNN wheel put include/ and lib/ (the environment's prefix)."""
  for prefix in dict.fromkeys((sys.prefix, sys.base_prefix, '/usr/local',
                               '/usr')):
    root = pathlib.Path(prefix)
    if ((root / 'include/oneapi/dnnl/dnnl.hpp').exists()
        and (root / 'lib/libdnnl.so').exists()):
      return root
  raise OneDnnUnavailable(
      "oneDNN headers or library not found under the environment's prefix; "
      "pip install -e '.[onednn]' (Linux x86-64)")


def _compiler() -> str:
  cxx = shutil.which(os.environ.get('CXX', 'c++')) or shutil.which('g++')
  if not cxx:
    raise OneDnnUnavailable('no C++ compiler (c++ / g++ / $CXX) on PATH to '
                            'build mel_ae/backends/csrc/onednn_conv.cc')
  return cxx


def _build() -> pathlib.Path:
  """The compiled library, from the cache or built now (atomically)."""
  prefix, cxx = _onednn_prefix(), _compiler()
  command = [cxx, '-O2', '-std=c++17', '-shared', '-fPIC', '-w',
             f'-I{jax.ffi.include_dir()}', f'-I{prefix / "include"}',
             str(_SOURCE), f'-L{prefix / "lib"}', '-ldnnl',
             f'-Wl,-rpath,{prefix / "lib"}']
  key = hashlib.sha256(_SOURCE.read_bytes() + ' '.join(
      command + [jax.__version__]).encode()).hexdigest()[:16]
  cache = pathlib.Path(os.environ.get(
      'MEL_AE_CACHE', pathlib.Path.home() / '.cache' / 'mel_ae'))
  library = cache / f'onednn_conv-{key}.so'
  if library.exists():
    return library
  cache.mkdir(parents=True, exist_ok=True)
  with tempfile.TemporaryDirectory(dir=cache) as tmp:
    built = pathlib.Path(tmp) / library.name
    result = subprocess.run(command + ['-o', str(built)], capture_output=True,
                            text=True, check=False)
    if result.returncode:
      raise OneDnnUnavailable(
          f'building {_SOURCE.name} failed:\n{result.stderr[-2000:]}')
    os.replace(built, library)
  return library


@functools.cache
def load() -> ctypes.CDLL:
  """Builds if needed, loads and registers the FFI targets (once)."""
  if jax.default_backend() != 'cpu':
    raise OneDnnUnavailable(
        f'oneDNN convolutions are CPU only; JAX runs on {jax.default_backend()}')
  try:
    library = ctypes.cdll.LoadLibrary(str(_build()))
  except OSError as e:  # an unwritable cache, a missing libgomp, ...
    raise OneDnnUnavailable(
        f'building or loading the oneDNN convolutions failed: {e}') from e
  for target in _TARGETS:
    jax.ffi.register_ffi_target(
        f'mel_ae_conv_{target}',
        jax.ffi.pycapsule(getattr(library, f'MelAeConv{target}')),
        platform='cpu')
  return library


REQUIRE_ENV = 'MEL_AE_REQUIRE_ONEDNN'


@functools.cache
def unavailable_reason() -> str:
  """'' when the oneDNN convolutions work here, else why not (asked once:
  a failed build is not retried on every model build).

  Raises:
    OneDnnUnavailable: when they do not work and $MEL_AE_REQUIRE_ONEDNN=1.
  """
  try:
    load()
  except OneDnnUnavailable as e:
    if os.environ.get(REQUIRE_ENV) == '1':
      raise OneDnnUnavailable(f'{REQUIRE_ENV}=1, but: {e}') from e
    return str(e)
  return ''


def implementations(dtype: str) -> str:
  """What oneDNN runs for a typical conv with every buffer of `dtype`
  ('float32' or 'bfloat16'): 'forward;backward data;backward weights'
  implementation names (e.g. 'brgconv:avx512_core_bf16'), or 'error: ...'."""
  probe = load().MelAeConvImplementation
  probe.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int64]
  out = ctypes.create_string_buffer(1024)
  probe({'float32': 0, 'bfloat16': 1}[dtype], out, len(out))
  return out.value.decode()


# oneDNN ISAs with bf16 dot-product instructions; elsewhere (avx512_core
# without AVX512_BF16) it emulates bf16, which is slower than float32.
_NATIVE_BF16 = ('bf16', 'amx', 'avx2_vnni_2')


@functools.cache
def bf16_unavailable_reason() -> str:
  """'' when oneDNN has native bfloat16 convolutions (forward and both
  gradients) on this CPU, else why not. Never raises for a CPU that lacks
  them: MEL_AE_REQUIRE_ONEDNN is about the build, not about the CPU."""
  reason = unavailable_reason()
  if reason:
    return reason
  impls = implementations('bfloat16')
  if impls.startswith('error'):
    return f'oneDNN has no bfloat16 convolution on this CPU ({impls})'
  isas = [name.split(':')[-1] for impl in impls.split(';')
          for name in impl.split('+')]
  if not all(any(n in isa for n in _NATIVE_BF16) for isa in isas):
    return (f'this CPU has no native bfloat16 convolutions in oneDNN (it '
            f'would run {impls}: emulated or reference code, slower than '
            'float32; they need AVX512_BF16 or AMX)')
  return ''


def _call(target: str, shape, dtype, a: Array, b: Array, padding) -> Array:
  (top, bottom), (left, right) = padding
  # Under jax.vmap the extra axis is looped over: the kernels take rank 4.
  return jax.ffi.ffi_call(
      f'mel_ae_conv_{target}', jax.ShapeDtypeStruct(shape, dtype),
      vmap_method='sequential')(
          a, b, top=np.int64(top), bottom=np.int64(bottom),
          left=np.int64(left), right=np.int64(right))


def _forward(x: Array, kernel: Array, padding) -> Array:
  load()
  n, h, w, _ = x.shape
  kh, kw, _, out = kernel.shape
  (top, bottom), (left, right) = padding
  return _call('Forward', (n, h + top + bottom - kh + 1,
                           w + left + right - kw + 1, out), x.dtype, x,
               kernel, padding)


def convs(x: Array, kernels: Sequence[Array], paddings) -> List[Array]:
  """`layers.lax_convs`, computed by oneDNN where all are float32, or all
  bfloat16 on a CPU with native bf16 kernels."""
  dtypes = {a.dtype for a in [x, *kernels]}
  if dtypes == {jnp.dtype(jnp.float32)} or (
      dtypes == {jnp.dtype(jnp.bfloat16)} and not bf16_unavailable_reason()):
    return _onednn_convs(x, kernels, paddings)
  return layers.lax_convs(x, kernels, paddings)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _onednn_convs(x: Array, kernels: Sequence[Array],
                  paddings) -> List[Array]:
  return [_forward(x, k, p) for k, p in zip(kernels, paddings)]


def _convs_fwd(x, kernels, paddings):
  return _onednn_convs(x, kernels, paddings), (x, kernels)


def _convs_bwd(paddings, residuals, gs):
  x, kernels = residuals
  # One input gradient in x's dtype; a sum of several in float32.
  summed = jnp.float32 if len(gs) > 1 else x.dtype
  input_grad = sum(_call('BackwardData', x.shape, summed, g, k, p)
                   for g, k, p in zip(gs, kernels, paddings))
  return input_grad.astype(x.dtype), [
      _call('BackwardWeights', k.shape, jnp.float32, x, g, p).astype(k.dtype)
      for g, k, p in zip(gs, kernels, paddings)]


_onednn_convs.defvjp(_convs_fwd, _convs_bwd)
