"""Stride-1 NHWC/HWIO convolutions through oneDNN, as XLA FFI custom calls.

On this project's 2-core CPU, XLA:CPU's convolutions of the seed's layers
take about twice oneDNN's time forward and 1.3-2.9x its time for the two
gradients (B=16, each layer against PyTorch, which calls oneDNN). `convs`
computes the same function as `layers.lax_convs` with oneDNN's forward,
backward-data and backward-weights primitives (csrc/onednn_conv.cc), joined
by a `jax.custom_vjp`; tests/onednn_conv_test.py compares outputs and
gradients. float32 only: other dtypes go to XLA's convolutions.

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
def load() -> None:
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


def _call(target: str, shape, a: Array, b: Array, padding) -> Array:
  (top, bottom), (left, right) = padding
  # Under jax.vmap the extra axis is looped over: the kernels take rank 4.
  return jax.ffi.ffi_call(
      f'mel_ae_conv_{target}', jax.ShapeDtypeStruct(shape, jnp.float32),
      vmap_method='sequential')(
          a, b, top=np.int64(top), bottom=np.int64(bottom),
          left=np.int64(left), right=np.int64(right))


def _forward(x: Array, kernel: Array, padding) -> Array:
  load()
  n, h, w, _ = x.shape
  kh, kw, _, out = kernel.shape
  (top, bottom), (left, right) = padding
  return _call('Forward', (n, h + top + bottom - kh + 1,
                           w + left + right - kw + 1, out), x, kernel, padding)


def convs(x: Array, kernels: Sequence[Array], paddings) -> List[Array]:
  """`layers.lax_convs`, computed by oneDNN where all are float32."""
  if any(a.dtype != jnp.float32 for a in [x, *kernels]):
    return layers.lax_convs(x, kernels, paddings)
  return _float32_convs(x, kernels, paddings)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _float32_convs(x: Array, kernels: Sequence[Array],
                   paddings) -> List[Array]:
  return [_forward(x, k, p) for k, p in zip(kernels, paddings)]


def _convs_fwd(x, kernels, paddings):
  return _float32_convs(x, kernels, paddings), (x, kernels)


def _convs_bwd(paddings, residuals, gs):
  x, kernels = residuals
  input_grad = sum(_call('BackwardData', x.shape, g, k, p)
                   for g, k, p in zip(gs, kernels, paddings))
  return input_grad, [_call('BackwardWeights', k.shape, x, g, p)
                      for g, k, p in zip(gs, kernels, paddings)]


_float32_convs.defvjp(_convs_fwd, _convs_bwd)
