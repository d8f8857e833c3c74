"""Execution back-ends: how the models' layers are computed here.

Chosen at run time from `config.runtime` and never stored as the model's
identity: every back-end computes the same function with the same parameter
tree, so a checkpoint trained with one loads, denoises and resumes with any
other (tests/portability_test.py).

  'xla':         XLA's own convolutions, any platform;
  'matmul_grad': XLA's, with the kernel gradients of wide convs as patch
                 matmuls (conv_matmul.py; faster than 'xla' on CPU);
  'onednn':      oneDNN primitives in XLA FFI custom calls (onednn.py; the
                 fastest on CPU; one device; `pip install '.[onednn]'` and a
                 C++ compiler);
  'auto':        'onednn' on a one-device CPU where it works, else
                 'matmul_grad' on CPU and 'xla' elsewhere.

`runtime.phase_upsample` computes each nearest-upsample + conv at low
resolution (phase.py), an exact reformulation with fewer FLOPs. On CPU the
BatchNorm and max-pool gradients are taken in closed form and as a mask
(mel_ae/layers.py), the same values and gradients to rounding.

The compute dtype (config.train.compute_dtype) is a run-time choice too:
'bfloat16' runs the convolutions, BatchNorm and activations in bfloat16
(flax's `dtype`), while parameters, their gradients' accumulation in the
optimizer and BatchNorm statistics stay float32 (`param_dtype`), so the
checkpoint is the same as a float32 run's. 'xla' and 'matmul_grad' run bf16
anywhere; 'onednn' where the CPU has native bf16 kernels, and float32
elsewhere (said once in the log).
"""
import functools
from typing import Any, Dict, List, Tuple

from absl import logging
import flax.linen as nn
import jax
import jax.numpy as jnp

from mel_ae import layers
from mel_ae.backends import conv_matmul
from mel_ae.backends import onednn
from mel_ae.backends import phase

CONV_IMPLS = ('auto', 'xla', 'matmul_grad', 'onednn')
COMPUTE_DTYPES = ('float32', 'bfloat16')
_CONVS = {'xla': layers.lax_convs, 'matmul_grad': conv_matmul.where_wide,
          'onednn': onednn.convs}


def resolve(conv_impl: str) -> str:
  """'auto' -> the fastest implementation that works here; others as given."""
  if conv_impl != 'auto':
    return conv_impl
  if jax.default_backend() != 'cpu':
    return 'xla'
  if jax.device_count() == 1:
    reason = onednn.unavailable_reason()
    if not reason:
      return 'onednn'
    logging.log_first_n(logging.WARNING, "conv_impl='auto': no oneDNN "
                        "convolutions (%s); using 'matmul_grad'", 1, reason)
  # XLA's partitioner cannot split the oneDNN custom calls over devices.
  return 'matmul_grad'


def resolve_dtype(conv_impl: str, compute_dtype: str) -> str:
  """The compute dtype that `conv_impl` (resolved) runs here: bfloat16 where
  it can, float32 (said once) where its convolutions have no bf16 kernels."""
  if compute_dtype == 'bfloat16' and conv_impl == 'onednn':
    reason = onednn.bf16_unavailable_reason()
    if reason:
      logging.log_first_n(logging.WARNING, "compute_dtype='bfloat16' with "
                          "conv_impl='onednn': %s; running float32", 1, reason)
      return 'float32'
  return compute_dtype


def check_config(runtime) -> List[Tuple[bool, str]]:
  """(ok, message) pairs for config.runtime; 'onednn' by name must work."""
  checks = [(runtime.conv_impl in CONV_IMPLS,
             f'runtime.conv_impl must be one of {CONV_IMPLS}')]
  if runtime.conv_impl == 'onednn':
    reason = onednn.unavailable_reason()
    checks.append((not reason,
                   f"runtime.conv_impl='onednn' cannot run here: {reason}"))
  return checks


def _with(module, **fields):
  return functools.partial(module, **fields) if fields else module


@functools.cache
def _layers(conv_impl: str, phase_upsample: bool,
            compute_dtype: str) -> Dict[str, Any]:
  convs = _CONVS[conv_impl]
  # float32: flax's defaults (dtype None: the inputs' and params' float32).
  dtype = {} if compute_dtype == 'float32' else {
      'dtype': jnp.dtype(compute_dtype)}
  compute = phase.upsample_conv_phase if phase_upsample else (
      layers.upsample_then_conv)
  # Drop-ins for flax's BatchNorm and XLA's max pool whose gradients are
  # faster on CPU, where the 'onednn' and 'matmul_grad' back-ends run; 'xla'
  # (any platform, a CPU too where asked for) keeps flax's and XLA's own.
  on_cpu = conv_impl != 'xla'
  norm_and_pool = {
      'norm': _with(layers.BatchNorm if on_cpu else nn.BatchNorm, **dtype),
      'max_pool': (layers.max_pool_masked_grad if on_cpu
                   else layers.max_pool)}
  if conv_impl == 'onednn' and dtype:
    # The biases in oneDNN's primitives too: XLA sums bf16 output gradients
    # slowly (onednn.Conv). Not in float32, where it measured no faster
    # (513 vs 452 ms a B=32 step in one A/B at load ~6).
    return {'conv': _with(onednn.Conv, **dtype),
            'upsample_conv': _with(onednn.UpsampleConv, compute=compute,
                                   **dtype),
            **norm_and_pool}
  conv = _with(nn.Conv, **dtype) if convs is layers.lax_convs else _with(
      nn.Conv, conv_general_dilated=conv_matmul.drop_in(convs), **dtype)
  return {'conv': conv,
          'upsample_conv': _with(
              layers.UpsampleConv,
              compute=functools.partial(compute, convs=convs), **dtype),
          **norm_and_pool}


def layers_for(runtime, compute_dtype: str = 'float32') -> Dict[str, Any]:
  """The `conv`, `upsample_conv`, `norm` and `max_pool` layers for
  `models.build_model`, computing in `compute_dtype` ('float32' or
  'bfloat16', see `resolve_dtype`); parameters are float32 either way.

  Cached: the same runtime gives the same (hashable) modules, so jitted
  functions that take the model as a static argument compile once.
  """
  conv_impl = resolve(runtime.conv_impl)
  return _layers(conv_impl, bool(runtime.phase_upsample),
                 resolve_dtype(conv_impl, compute_dtype))
