"""Convolutions whose kernel gradient is a patch matmul, chunked over the batch.

On the 2-core CPU, XLA computes a conv's kernel gradient as one convolution
with an H x W window; for the seed's 16->32 5x5 layer that alone took 400 ms
of a 2.5 s batch-32 step (profile), 3.5x its forward. The same gradient is a
sum over the batch of patches^T @ output-gradient, the patches being the k*k
shifted slices of the padded input, stacked channels-first (t, c, b, h, w) so
XLA's dot takes them without another copy. Built for a few examples at a time
inside a `lax.scan`, they stay in cache: that layer's kernel gradient fell
from 214 to 84 ms in the step's profile. `convs` does this for several convs
of one input (the phase convs of `phase`) with ONE patch matmul over
the union of their windows. Outputs and input gradients stay XLA's own
convolutions, so the function is unchanged (tests/conv_matmul_test.py).
`drop_in(convs)` plugs any such function into
`nn.Conv(conv_general_dilated=...)`. Not a win for few channels (8->16 5x5,
16->8 5x5 at 128x128: 1.8x slower), hence `where_wide` uses it only where
both channel counts are >= 16. `lax.conv_general_dilated_patches` is no
substitute: its backward made training 80x slower.
"""
import functools
from typing import List, Sequence

import jax
import jax.numpy as jnp

from mel_ae import layers

Array = jax.Array
# Patch bytes per scan step: a chunk this size stayed in cache (16->32 5x5:
# 2 examples (13 MB) beat 8 (52 MB) by 1.3x).
_CHUNK_BYTES = 16 << 20


def _chunk(batch: int, bytes_per_example: int) -> int:
  """The largest divisor of `batch` whose patches fit in _CHUNK_BYTES."""
  fits = [d for d in range(1, batch + 1)
          if batch % d == 0 and d * bytes_per_example <= _CHUNK_BYTES]
  return max(fits, default=1)


def _union_window(kernel_shapes, paddings):
  """Input padding and each kernel's tap offset in the union of windows."""
  lo = [max(p[d][0] for p in paddings) for d in (0, 1)]
  hi = [max(k[d] - 1 - p[d][0] for k, p in zip(kernel_shapes, paddings))
        for d in (0, 1)]
  starts = [tuple(lo[d] - p[d][0] for d in (0, 1)) for p in paddings]
  return tuple(zip(lo, hi)), starts


def kernel_grads(x: Array, gs: Sequence[Array], kernel_shapes,
                 paddings) -> List[Array]:
  """d<conv(x, k_i), g_i>/d k_i for convs of one input, from one matmul of
  its patches (over the union of the windows) with the concatenated g_i."""
  ((lo_h, hi_h), (lo_w, hi_w)), starts = _union_window(kernel_shapes,
                                                       paddings)
  xp = jnp.pad(x, ((0, 0), (lo_h, hi_h), (lo_w, hi_w), (0, 0)))
  g = jnp.concatenate(gs, axis=-1)
  b, h, w, _ = g.shape
  kh, kw = lo_h + hi_h + 1, lo_w + hi_w + 1
  chunk = _chunk(b, h * w * kh * kw * x.shape[-1] * x.dtype.itemsize)

  def add_chunk(acc, xg):
    # Channels-first patches (t, c, b, h, w): the matmul's operand as built,
    # where (t, b, h, w, c) cost XLA one more transposing copy.
    xc, gc = xg
    xc = jnp.transpose(xc, (3, 0, 1, 2))
    patches = jnp.stack([xc[:, :, i:i + h, j:j + w]
                         for i in range(kh) for j in range(kw)])
    return acc + jnp.einsum('tcbhw,bhwo->tco', patches, gc,
                            preferred_element_type=jnp.float32), None

  split = lambda a: a.reshape((b // chunk, chunk) + a.shape[1:])
  acc = jnp.zeros((kh * kw, x.shape[-1], g.shape[-1]), jnp.float32)
  acc, _ = jax.lax.scan(add_chunk, acc, (split(xp), split(g)))
  acc = acc.reshape(kh, kw, x.shape[-1], g.shape[-1])
  grads, first = [], 0
  for shape, (i, j) in zip(kernel_shapes, starts):
    grads.append(acc[i:i + shape[0], j:j + shape[1], :,
                     first:first + shape[3]])
    first += shape[3]
  return grads


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def convs(x: Array, kernels: Sequence[Array], paddings) -> List[Array]:
  """`layers.lax_convs` with the kernel gradients from one patch matmul."""
  return layers.lax_convs(x, kernels, paddings)


def _convs_fwd(x, kernels, paddings):
  return convs(x, kernels, paddings), (x, kernels)


def _convs_bwd(paddings, residuals, gs):
  x, kernels = residuals
  _, input_grad = jax.vjp(lambda x: layers.lax_convs(x, kernels, paddings),
                          x)
  grads = kernel_grads(x, gs, [k.shape for k in kernels], paddings)
  return input_grad(list(gs))[0], [
      g.astype(k.dtype) for g, k in zip(grads, kernels)]


convs.defvjp(_convs_fwd, _convs_bwd)


def where_wide(x: Array, kernels: Sequence[Array], paddings) -> List[Array]:
  """`convs` where every conv has >= 16 input and output channels (there
  XLA's kernel gradient is the slow part on CPU, measured), XLA's elsewhere."""
  wide = min([x.shape[-1]] + [k.shape[-1] for k in kernels]) >= 16
  return (convs if wide else layers.lax_convs)(x, kernels, paddings)


def _explicit_padding(padding, kernel_shape: Sequence[int]) -> layers.Padding:
  """lax's 'SAME' / 'VALID' / pairs, for stride 1, as explicit pairs."""
  if padding == 'VALID':
    return ((0, 0), (0, 0))
  if padding == 'SAME':
    return tuple(((k - 1) // 2, k // 2) for k in kernel_shape[:2])
  return tuple(tuple(p) for p in padding)


@functools.cache
def drop_in(convs_fn: layers.Convs):
  """`lax.conv_general_dilated` as `nn.Conv` calls it, computed by
  `convs_fn` where it can be (stride 1, undilated, ungrouped, NHWC/HWIO);
  anything else goes to XLA's own convolution unchanged."""
  def conv_general_dilated(lhs, rhs, window_strides, padding,
                           lhs_dilation=None, rhs_dilation=None,
                           dimension_numbers=None, feature_group_count=1,
                           precision=None, **kwargs):
    dims = jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape,
                                          layers.CONV_DIMS)
    given = jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape,
                                           dimension_numbers)
    plain = all(s == 1 for s in tuple(window_strides) + tuple(
        lhs_dilation or ()) + tuple(rhs_dilation or ()))
    if plain and given == dims and feature_group_count == 1 and not (
        precision or kwargs):
      return convs_fn(lhs, [rhs], (_explicit_padding(padding, rhs.shape),))[0]
    return jax.lax.conv_general_dilated(
        lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
        dimension_numbers, feature_group_count, precision=precision, **kwargs)
  return conv_general_dilated
