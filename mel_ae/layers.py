"""Layers the models are built from, beyond flax's own: what they compute.

How a layer is computed (which convolution kernels, which exact
reformulation) is chosen at run time by `mel_ae.backends`: a layer here
takes its computation as a field whose default is the plain XLA reference,
as `nn.Conv` takes `conv_general_dilated`, or is a drop-in for flax's or
XLA's own (`max_pool_masked_grad`, `BatchNorm`). Every computation keeps
the function and the parameter tree, so checkpoints do not depend on it.
The drop-ins define reverse-mode gradients only (`jax.custom_vjp`):
`jax.jvp` through them is refused, which nothing here needs.
"""
import functools
from typing import Any, Callable, List, Optional, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

Array = jax.Array
Padding = Tuple[Tuple[int, int], Tuple[int, int]]
# (x, kernels, paddings) -> one output per kernel: stride-1 NHWC/HWIO convs
# of one input (several at once, so a back-end can share work between them).
Convs = Callable[[Array, Sequence[Array], Sequence[Padding]], List[Array]]
# (x, kernel, factor) -> nearest upsample of x by factor, then SAME conv.
UpsampleConvFn = Callable[[Array, Array, int], Array]
CONV_DIMS = ('NHWC', 'HWIO', 'NHWC')
# (x, window) -> x max-pooled over non-overlapping (window, window) tiles.
MaxPoolFn = Callable[[Array, int], Array]


def lax_convs(x: Array, kernels: Sequence[Array],
              paddings: Sequence[Padding]) -> List[Array]:
  """Stride-1 NHWC/HWIO convs of one input, XLA's way (the reference)."""
  return [jax.lax.conv_general_dilated(x, k, (1, 1), p,
                                       dimension_numbers=CONV_DIMS)
          for k, p in zip(kernels, paddings)]


def max_pool(x: Array, window: int) -> Array:
  """Max over non-overlapping `window` x `window` tiles of NHWC x (a ragged
  edge dropped), XLA's way: its gradient is a select-and-scatter."""
  return nn.max_pool(x, (window, window), strides=(window, window))


@jax.custom_vjp
def _tile_max(tiles: Array) -> Array:
  return jnp.max(tiles, axis=(2, 4))


def _tile_max_fwd(tiles):
  pooled = _tile_max(tiles)
  return pooled, (tiles, pooled)


def _tile_max_bwd(residuals, grad):
  """The gradient goes to the first maximum of each tile in row-major
  order, as XLA's select-and-scatter sends it; one elementwise pass."""
  tiles, pooled = residuals
  k = tiles.shape[2]
  taken = jnp.zeros(pooled.shape, bool)
  rows = []
  for i in range(k):
    row = []
    for j in range(k):
      first = (tiles[:, :, i, :, j] == pooled) & ~taken
      taken = taken | first
      row.append(jnp.where(first, grad, 0).astype(tiles.dtype))
    rows.append(jnp.stack(row, axis=3))
  return (jnp.stack(rows, axis=2),)


_tile_max.defvjp(_tile_max_fwd, _tile_max_bwd)


def max_pool_masked_grad(x: Array, window: int) -> Array:
  """`max_pool`, the same values and gradient, the gradient computed as a
  mask of each tile's maximum: on CPU XLA's select-and-scatter took 35x
  PyTorch's max-pool gradient; this makes the U-Net's step 10-37 % faster
  (experiments/benchmarks/README.md)."""
  n, h, w, c = x.shape
  h, w = h // window * window, w // window * window
  tiles = x[:, :h, :w].reshape(n, h // window, window, w // window, window, c)
  return _tile_max(tiles)


def same_padding(kernel_size: int) -> Tuple[int, int]:
  """Flax/XLA SAME padding for stride 1: the extra pad goes high for even k."""
  return (kernel_size - 1) // 2, kernel_size // 2


def upsample_then_conv(x: Array, kernel: Array, factor: int,
                       convs: Convs = lax_convs) -> Array:
  """Nearest upsample, then a SAME conv at full resolution (the reference)."""
  x = jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)
  pad = same_padding(kernel.shape[0])
  return convs(x, [kernel], ((pad, pad),))[0]


class UpsampleConv(nn.Module):
  """Nearest `factor`x upsample then a SAME `kernel_size` conv, NHWC.

  The parameters are exactly `nn.Conv(features, (k, k))`'s (`kernel`
  (k, k, in, out), `bias` (out,)), whatever `compute` is.

  Attributes:
    features: output channels.
    kernel_size: square kernel width (any k >= 1, odd or even).
    factor: nearest upsample factor (1 = plain conv).
    compute: how it is computed; any function equal to `upsample_then_conv`.
    kernel_init: Keras' glorot uniform by default, as in the seed model.
    bias_init: zeros.
    dtype: computation dtype (None: inferred from inputs and params).
  """
  features: int
  kernel_size: int
  factor: int
  compute: UpsampleConvFn = upsample_then_conv
  kernel_init: Any = nn.initializers.xavier_uniform()
  bias_init: Any = nn.initializers.zeros_init()
  dtype: Optional[Any] = None

  def declare_params(self, x: Array) -> Tuple[Array, Array]:
    """(kernel, bias), float32, for input `x`; from the compact __call__."""
    if self.factor < 1 or self.kernel_size < 1:
      raise ValueError(f'need factor, kernel_size >= 1, got {self.factor}, '
                       f'{self.kernel_size}')
    k = self.kernel_size
    kernel = self.param('kernel', self.kernel_init,
                        (k, k, x.shape[-1], self.features), jnp.float32)
    return kernel, self.param('bias', self.bias_init, (self.features,),
                              jnp.float32)

  @nn.compact
  def __call__(self, x: Array) -> Array:
    kernel, bias = self.declare_params(x)
    x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias,
                                              dtype=self.dtype)
    return self.compute(x, kernel, self.factor) + bias


def _batch_stats(x: Array) -> Tuple[Array, Array]:
  """Per-feature mean and variance over every other axis, in float32 (at
  least), as flax's BatchNorm takes them (its 'fast variance')."""
  axes = tuple(range(x.ndim - 1))
  x = x.astype(jnp.promote_types(x.dtype, jnp.float32))
  mean, mean2 = x.mean(axes), jnp.square(x).mean(axes)
  return mean, jnp.maximum(0.0, mean2 - jnp.square(mean))


def _normalize(x: Array, mean: Array, var: Array, scale: Array, bias: Array,
               epsilon: float, dtype) -> Array:
  """flax's BatchNorm output, operation for operation."""
  y = (x - mean) * (jax.lax.rsqrt(var + epsilon) * scale) + bias
  return y.astype(dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def _batch_norm_train(x, scale, bias, epsilon, dtype):
  mean, var = _batch_stats(x)
  return _normalize(x, mean, var, scale, bias, epsilon, dtype), mean, var


def _batch_norm_train_fwd(x, scale, bias, epsilon, dtype):
  mean, var = _batch_stats(x)
  y = _normalize(x, mean, var, scale, bias, epsilon, dtype)
  return (y, mean, var), (x, mean, jax.lax.rsqrt(var + epsilon), scale)


def _batch_norm_train_bwd(epsilon, dtype, residuals, grads):
  """The closed form of the gradient through the batch statistics. The
  statistics outputs feed only the running averages, which no loss sees:
  their cotangents are zero and dropped. A constant feature (variance 0,
  where flax clamps round-off) gets the unclamped form's gradient."""
  del epsilon, dtype
  x, mean, rstd, scale = residuals
  axes = tuple(range(x.ndim - 1))
  g = grads[0].astype(mean.dtype)
  x_hat = (x - mean) * rstd
  d_bias, d_scale = g.sum(axes), (g * x_hat).sum(axes)
  count = x.size // x.shape[-1]
  dx = (scale * rstd) * (g - (d_bias + x_hat * d_scale) / count)
  return dx.astype(x.dtype), d_scale.astype(scale.dtype), d_bias.astype(
      scale.dtype)


_batch_norm_train.defvjp(_batch_norm_train_fwd, _batch_norm_train_bwd)


class BatchNorm(nn.Module):
  """flax's `nn.BatchNorm` over the last (feature) axis: the same
  parameters, statistics and values, with the training gradient taken in
  closed form: XLA's derivative of flax's ops took ~3x PyTorch's on CPU;
  the U-Net's step a few % faster at best (experiments/benchmarks/
  README.md). Named as flax's, so the parameter tree is the same."""
  use_running_average: Optional[bool] = None
  momentum: float = 0.99
  epsilon: float = 1e-5
  dtype: Optional[Any] = None

  @nn.compact
  def __call__(self, x: Array,
               use_running_average: Optional[bool] = None) -> Array:
    use_running_average = nn.merge_param(
        'use_running_average', self.use_running_average, use_running_average)
    features = (x.shape[-1],)
    ra_mean = self.variable('batch_stats', 'mean', jnp.zeros, features,
                            jnp.float32)
    ra_var = self.variable('batch_stats', 'var', jnp.ones, features,
                           jnp.float32)
    scale = self.param('scale', nn.initializers.ones, features, jnp.float32)
    bias = self.param('bias', nn.initializers.zeros, features, jnp.float32)
    dtype = nn.dtypes.canonicalize_dtype(x, scale, bias, dtype=self.dtype)
    if use_running_average:
      return _normalize(x, ra_mean.value, ra_var.value, scale, bias,
                        self.epsilon, dtype)
    y, mean, var = _batch_norm_train(x, scale, bias, self.epsilon, dtype)
    if not self.is_initializing():
      mean, var = jax.lax.stop_gradient(mean), jax.lax.stop_gradient(var)
      ra_mean.value = self.momentum * ra_mean.value + (1 - self.momentum) * mean
      ra_var.value = self.momentum * ra_var.value + (1 - self.momentum) * var
    return y
