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
gradient of several convs of one input is summed in float32. `Conv` and
`UpsampleConv` are drop-ins for the models' layers that also add the bias
inside the primitives (and sum its gradient in the kernel gradient's), which
bfloat16 runs use (mel_ae/backends).

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
from typing import Any, List, Optional, Sequence, Union

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mel_ae import layers

Array = jax.Array
_SOURCE = pathlib.Path(__file__).parent / 'csrc' / 'onednn_conv.cc'
_TARGETS = ('Forward', 'BackwardData', 'BackwardWeights', 'ForwardBias',
            'BackwardWeightsBias')


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


def _call(target: str, result, padding, *operands):
  """The FFI target on `operands`; `result` a ShapeDtypeStruct or a tuple."""
  (top, bottom), (left, right) = padding
  # Under jax.vmap the extra axis is looped over: the kernels take rank 4.
  return jax.ffi.ffi_call(f'mel_ae_conv_{target}', result,
                          vmap_method='sequential')(
                              *operands, top=np.int64(top),
                              bottom=np.int64(bottom), left=np.int64(left),
                              right=np.int64(right))


def _forward(x: Array, kernel: Array, padding, bias=None) -> Array:
  load()
  n, h, w, _ = x.shape
  kh, kw, _, out = kernel.shape
  (top, bottom), (left, right) = padding
  y = jax.ShapeDtypeStruct((n, h + top + bottom - kh + 1,
                            w + left + right - kw + 1, out), x.dtype)
  if bias is None:
    return _call('Forward', y, padding, x, kernel)
  return _call('ForwardBias', y, padding, x, kernel, bias)


def convs(x: Array, kernels: Sequence[Array], paddings,
          bias: Optional[Array] = None) -> List[Array]:
  """`layers.lax_convs` (plus `bias` on every output, when given),
  computed by oneDNN where x and the kernels are all float32, or all
  bfloat16 on a CPU with native bf16 kernels; the bias stays float32
  (added to the float32 accumulator, its gradient summed by the kernel
  gradient's primitive)."""
  dtypes = {a.dtype for a in [x, *kernels]}
  if dtypes == {jnp.dtype(jnp.float32)} or (
      dtypes == {jnp.dtype(jnp.bfloat16)} and not bf16_unavailable_reason()):
    if bias is None:
      return _onednn_convs(x, kernels, paddings)
    return _onednn_convs_bias(x, kernels, bias, paddings)
  outs = layers.lax_convs(x, kernels, paddings)
  return outs if bias is None else [
      o + bias.astype(o.dtype) for o in outs]


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _onednn_convs(x: Array, kernels: Sequence[Array],
                  paddings) -> List[Array]:
  return [_forward(x, k, p) for k, p in zip(kernels, paddings)]


def _convs_fwd(x, kernels, paddings):
  return _onednn_convs(x, kernels, paddings), (x, kernels)


def _input_grad(x, kernels, gs, paddings) -> Array:
  # One input gradient in x's dtype; a sum of several in float32.
  summed = jax.ShapeDtypeStruct(x.shape, jnp.float32 if len(gs) > 1
                                else x.dtype)
  return sum(_call('BackwardData', summed, p, g, k)
             for g, k, p in zip(gs, kernels, paddings)).astype(x.dtype)


def _convs_bwd(paddings, residuals, gs):
  x, kernels = residuals
  return _input_grad(x, kernels, gs, paddings), [
      _call('BackwardWeights', jax.ShapeDtypeStruct(k.shape, jnp.float32), p,
            x, g).astype(k.dtype)
      for g, k, p in zip(gs, kernels, paddings)]


_onednn_convs.defvjp(_convs_fwd, _convs_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _onednn_convs_bias(x: Array, kernels: Sequence[Array], bias: Array,
                       paddings) -> List[Array]:
  return [_forward(x, k, p, bias) for k, p in zip(kernels, paddings)]


def _convs_bias_fwd(x, kernels, bias, paddings):
  return _onednn_convs_bias(x, kernels, bias, paddings), (x, kernels, bias)


def _convs_bias_bwd(paddings, residuals, gs):
  x, kernels, bias = residuals
  kernel_grads, bias_grad = [], 0
  for g, k, p in zip(gs, kernels, paddings):
    dk, db = _call('BackwardWeightsBias',
                   (jax.ShapeDtypeStruct(k.shape, jnp.float32),
                    jax.ShapeDtypeStruct(bias.shape, jnp.float32)), p, x, g)
    kernel_grads.append(dk.astype(k.dtype))
    bias_grad = bias_grad + db
  return (_input_grad(x, kernels, gs, paddings), kernel_grads,
          bias_grad.astype(bias.dtype))


_onednn_convs_bias.defvjp(_convs_bias_fwd, _convs_bias_bwd)


class Conv(nn.Module):
  """`nn.Conv` (stride 1, undilated, NHWC; 'SAME', 'VALID' or explicit
  padding) with its bias added inside oneDNN's convolution and its bias
  gradient summed by the kernel gradient's primitive. The same parameters
  and initial values as `nn.Conv`. In bfloat16 this matters: XLA's sums of
  the bf16 output gradients for the biases took ~17% of the seed's training
  step (profile, B=32), about what the bf16 convs saved; fused, the bf16
  step went from float32's speed to 1.46x it
  (experiments/benchmarks/benchmark.py)."""
  features: int
  kernel_size: Union[int, Sequence[int]]
  padding: Any = 'SAME'
  use_bias: bool = True
  dtype: Optional[Any] = None
  param_dtype: Any = jnp.float32
  kernel_init: Any = nn.linear.default_kernel_init
  bias_init: Any = nn.initializers.zeros_init()

  @nn.compact
  def __call__(self, inputs: Array) -> Array:
    size = ((self.kernel_size,) * 2 if isinstance(self.kernel_size, int)
            else tuple(self.kernel_size))
    if not (self.padding in ('SAME', 'VALID') or not isinstance(
        self.padding, str)):
      raise ValueError(f'padding {self.padding!r}: use nn.Conv')
    kernel = self.param('kernel', self.kernel_init,
                        size + (inputs.shape[-1], self.features),
                        self.param_dtype)
    bias = (self.param('bias', self.bias_init, (self.features,),
                       self.param_dtype) if self.use_bias else None)
    x, kernel = nn.dtypes.promote_dtype(inputs, kernel, dtype=self.dtype)
    if self.padding == 'SAME':
      padding = tuple(layers.same_padding(k) for k in size)
    elif self.padding == 'VALID':
      padding = ((0, 0), (0, 0))
    else:
      padding = tuple(tuple(p) for p in self.padding)
    return convs(x, [kernel], (padding,), bias)[0]


class UpsampleConv(layers.UpsampleConv):
  """`layers.UpsampleConv` with its bias added inside oneDNN's convolutions
  (as `Conv`): `compute` is called with `convs=` oneDNN's, bias included."""

  @nn.compact
  def __call__(self, x: Array) -> Array:
    kernel, bias = self.declare_params(x)
    x, kernel = nn.dtypes.promote_dtype(x, kernel, dtype=self.dtype)
    return self.compute(x, kernel, self.factor,
                        convs=functools.partial(convs, bias=bias))
