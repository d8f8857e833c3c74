"""Nearest upsampling then a SAME convolution, computed at low resolution.

A nearest `factor`x upsample repeats each pixel, so every output pixel of the
following conv only sees a few distinct low-res pixels: output phase (a, b) at
low-res pixel (i, j) is a small conv of the low-res input, tap d of the kernel
landing on low-res offset floor((a + d) / factor). Summing the taps that land
on the same offset gives factor**2 small kernels (3x3 for 2x and 5x5: 2.8x
fewer FLOPs); their low-res outputs are interleaved (depth-to-space). Exact.

Why factor**2 separate convs, not one conv with factor**2 * out channels: on
the 2-core CPU, XLA's kernel gradient of that wide conv alone took longer than
the whole separate version (the wide one's fwd+bwd was ~2.8x slower, see
experiments/conv_microbench.py); and separate convs skip the zero taps of odd
kernels (2x2 per phase instead of 3x3, for 2x and 3x3).

The parameters are exactly `nn.Conv(features, (k, k))`'s (`kernel` (k, k, in,
out), `bias` (out,)), so `phase` can be flipped without touching checkpoints.
"""
from typing import Any, Callable, List, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mel_ae import conv_matmul

Array = jax.Array
# (x, kernels, paddings) -> one output per kernel: conv_matmul's convs.
Convs = Callable[[Array, Sequence[Array], Any], List[Array]]


def same_padding(kernel_size: int) -> tuple[int, int]:
  """Flax/XLA SAME padding for stride 1: the extra pad goes high for even k."""
  return (kernel_size - 1) // 2, kernel_size // 2


def phase_taps(kernel_size: int, factor: int, a: int) -> tuple[np.ndarray, int]:
  """1-D map from kernel taps to low-res offsets for output phase `a`.

  Returns:
    taps: (n, kernel_size) 0/1, taps[s, t] = 1 when tap t reads offset lo + s.
    lo: the first offset read (<= 0); n - 1 + lo is the last (>= 0).
  """
  d = np.arange(kernel_size) - same_padding(kernel_size)[0]
  offsets = (a + d) // factor
  lo = int(offsets.min())
  taps = offsets[None, :] == np.arange(lo, offsets.max() + 1)[:, None]
  return taps.astype(np.float32), lo


def upsample_conv_plain(x: Array, kernel: Array, factor: int,
                        convs: Convs = conv_matmul.lax_convs) -> Array:
  """Reference: nearest upsample, then a SAME conv at full resolution."""
  x = jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)
  pad = same_padding(kernel.shape[0])
  return convs(x, [kernel], ((pad, pad),))[0]


def upsample_conv_phase(x: Array, kernel: Array, factor: int,
                        convs: Convs = conv_matmul.lax_convs) -> Array:
  """Same result as `upsample_conv_plain`, from factor**2 low-res convs."""
  phases = [phase_taps(kernel.shape[0], factor, a) for a in range(factor)]
  kernels, pads = [], []
  for ta, lo_a in phases:
    for tb, lo_b in phases:
      # Sum the taps that land on the same offset; einsum keeps the gradient
      # flowing to the original (k, k, in, out) kernel.
      k_ab = jnp.einsum('sy,tx,yxio->stio', ta, tb, kernel)
      kernels.append(k_ab.astype(kernel.dtype))
      pads.append(((-lo_a, len(ta) - 1 + lo_a), (-lo_b, len(tb) - 1 + lo_b)))
  outs = convs(x, kernels, tuple(pads))  # phase (a, b) at a * factor + b
  rows = [jnp.stack(outs[a * factor:(a + 1) * factor], axis=3)
          for a in range(factor)]  # (B, H, W, f_b, C) each
  y = jnp.stack(rows, axis=2)  # (B, H, f_a, W, f_b, C): a free interleave
  b, h, _, w, _, c = y.shape
  return y.reshape(b, h * factor, w * factor, c)


class UpsampleConv(nn.Module):
  """Nearest `factor`x upsample then SAME `kernel_size` conv, NHWC.

  Attributes:
    features: output channels.
    kernel_size: square kernel width (any k >= 1, odd or even).
    factor: nearest upsample factor (1 = plain conv).
    phase: compute at low resolution (exact, faster) instead of upsampling.
    convs: `conv_matmul.lax_convs` or `conv_matmul.convs` (same function,
      faster kernel gradient on CPU).
    kernel_init: Keras' glorot uniform by default, as in the seed model.
    bias_init: zeros.
    dtype: computation dtype (None: inferred from inputs and params).
  """
  features: int
  kernel_size: int
  factor: int
  phase: bool = True
  convs: Convs = conv_matmul.lax_convs
  kernel_init: Any = nn.initializers.xavier_uniform()
  bias_init: Any = nn.initializers.zeros_init()
  dtype: Optional[Any] = None

  @nn.compact
  def __call__(self, x: Array) -> Array:
    if self.factor < 1 or self.kernel_size < 1:
      raise ValueError(f'need factor, kernel_size >= 1, got {self.factor}, '
                       f'{self.kernel_size}')
    k = self.kernel_size
    kernel = self.param('kernel', self.kernel_init,
                        (k, k, x.shape[-1], self.features), jnp.float32)
    bias = self.param('bias', self.bias_init, (self.features,), jnp.float32)
    x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias,
                                              dtype=self.dtype)
    fn = upsample_conv_phase if self.phase else upsample_conv_plain
    return fn(x, kernel, self.factor, self.convs) + bias
