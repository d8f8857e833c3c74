"""Execution back-ends: how the models' convolutions are computed here.

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
resolution (phase.py), an exact reformulation with fewer FLOPs.
"""
import functools
from typing import Any, Dict, List, Tuple

from absl import logging
import flax.linen as nn
import jax

from mel_ae import layers
from mel_ae.backends import conv_matmul
from mel_ae.backends import onednn
from mel_ae.backends import phase

CONV_IMPLS = ('auto', 'xla', 'matmul_grad', 'onednn')
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


def check_config(runtime) -> List[Tuple[bool, str]]:
  """(ok, message) pairs for config.runtime; 'onednn' by name must work."""
  checks = [(runtime.conv_impl in CONV_IMPLS,
             f'runtime.conv_impl must be one of {CONV_IMPLS}')]
  if runtime.conv_impl == 'onednn':
    reason = onednn.unavailable_reason()
    checks.append((not reason,
                   f"runtime.conv_impl='onednn' cannot run here: {reason}"))
  return checks


@functools.cache
def _layers(conv_impl: str, phase_upsample: bool) -> Dict[str, Any]:
  convs = _CONVS[conv_impl]
  conv = (nn.Conv if convs is layers.lax_convs else functools.partial(
      nn.Conv, conv_general_dilated=conv_matmul.drop_in(convs)))
  compute = phase.upsample_conv_phase if phase_upsample else (
      layers.upsample_then_conv)
  return {'conv': conv, 'upsample_conv': functools.partial(
      layers.UpsampleConv, compute=functools.partial(compute, convs=convs))}


def layers_for(runtime) -> Dict[str, Any]:
  """The `conv` and `upsample_conv` modules for `models.build_model`.

  Cached: the same runtime gives the same (hashable) modules, so jitted
  functions that take the model as a static argument compile once.
  """
  return _layers(resolve(runtime.conv_impl), bool(runtime.phase_upsample))
