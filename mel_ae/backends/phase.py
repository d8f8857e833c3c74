"""Nearest upsampling then a SAME convolution, computed at low resolution.

A nearest `factor`x upsample repeats each pixel, so every output pixel of the
following conv only sees a few distinct low-res pixels: output phase (a, b) at
low-res pixel (i, j) is a small conv of the low-res input, tap d of the kernel
landing on low-res offset floor((a + d) / factor). Summing the taps that land
on the same offset gives factor**2 small kernels (3x3 for 2x and 5x5: 2.8x
fewer FLOPs); their low-res outputs are interleaved (depth-to-space). Exact:
the same function as `layers.upsample_then_conv`, the same parameters.

Why factor**2 separate convs, not one conv with factor**2 * out channels: on
the 2-core CPU, XLA's kernel gradient of that wide conv alone took longer than
the whole separate version (the wide one's fwd+bwd was ~2.8x slower, see
experiments/benchmarks/conv_microbench.py); and separate convs skip the zero
taps of odd kernels (2x2 per phase instead of 3x3, for 2x and 3x3).
"""
import jax
import jax.numpy as jnp
import numpy as np

from mel_ae import layers


def phase_taps(kernel_size: int, factor: int, a: int) -> tuple[np.ndarray, int]:
  """1-D map from kernel taps to low-res offsets for output phase `a`.

  Returns:
    taps: (n, kernel_size) 0/1, taps[s, t] = 1 when tap t reads offset lo + s.
    lo: the first offset read (<= 0); n - 1 + lo is the last (>= 0).
  """
  d = np.arange(kernel_size) - layers.same_padding(kernel_size)[0]
  offsets = (a + d) // factor
  lo = int(offsets.min())
  taps = offsets[None, :] == np.arange(lo, offsets.max() + 1)[:, None]
  return taps.astype(np.float32), lo


def upsample_conv_phase(x: jax.Array, kernel: jax.Array, factor: int,
                        convs: layers.Convs = layers.lax_convs) -> jax.Array:
  """`layers.upsample_then_conv`, from factor**2 low-res convs."""
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
