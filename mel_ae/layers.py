"""Layers the models are built from, beyond flax's own: what they compute.

How a layer is computed (which convolution kernels, which exact
reformulation) is chosen at run time by `mel_ae.backends`; a layer here takes
its computation as a field whose default is the plain XLA reference, as
`nn.Conv` takes `conv_general_dilated`. Every computation keeps the function
and the parameter tree, so checkpoints do not depend on it.
"""
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
  mask of each tile's maximum: on CPU XLA's select-and-scatter took ~30x
  PyTorch's max-pool gradient (experiments/benchmarks/README.md)."""
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
