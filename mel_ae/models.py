"""Convolutional autoencoders for mel spectrograms (flax linen, NHWC).

Inputs are model-domain mels shaped (batch, n_mels, frames, 1). With the
default config this is exactly the 2020 seed: MaxPool 2x2 -> Conv 8, 16, 32
(5x5, BatchNorm, ReLU) -> nearest upsample 2x -> Conv 16, 8 (5x5, BatchNorm,
ReLU) -> Conv 1 (3x3) -> sigmoid; 32,513 trainable parameters.
"""
import dataclasses
import functools
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from mel_ae import conv_matmul
from mel_ae import upsample_conv

# Keras' Conv2D default, which the seed used.
_KERNEL_INIT = nn.initializers.xavier_uniform()

OUTPUT_MODES = ('image', 'mask', 'residual')
CONV_IMPLS = ('xla', 'matmul_grad')
OUTPUT_ACTIVATIONS = {
    'sigmoid': nn.sigmoid,
    'relu': nn.relu,
    'linear': lambda x: x,
}


class AutoEncoder(nn.Module):
  """Pool -> encoder convs -> upsample -> decoder convs -> 1-channel output.

  output_mode 'image' returns the activation of the last conv (the seed);
  'mask' multiplies the input by a sigmoid mask raised to `mask_exponent`
  (1/16 under the root-16 transform makes it a gain on power, where loud bins
  stay nearly untouched); 'residual' adds a correction
  to the input (then ReLU, as power is >= 0). skip_channels > 0 adds a
  full-resolution conv of the input, concatenated after the upsampling: a
  one-level U-Net, so detail need not pass through the pooling.
  """
  encoder_channels: Sequence[int] = (8, 16, 32)
  decoder_channels: Sequence[int] = (16, 8)
  kernel_size: int = 5
  output_kernel_size: int = 3
  pool: int = 2
  batch_norm: bool = True
  bn_momentum: float = 0.99
  bn_epsilon: float = 1e-3
  output_activation: str = 'sigmoid'
  output_mode: str = 'image'
  mask_exponent: float = 1.0
  skip_channels: int = 0
  phase_upsample: bool = True
  conv_impl: str = 'xla'

  def _matmul_grad(self, in_features: int, features: int) -> bool:
    """conv_impl='matmul_grad' where XLA's kernel gradient is the slow one on
    CPU: both channel counts >= 16 (measured); the function is the same."""
    return self.conv_impl == 'matmul_grad' and min(in_features, features) >= 16

  def _conv(self, features: int, kernel_size: int, x: jax.Array) -> jax.Array:
    fast = self._matmul_grad(x.shape[-1], features)
    return nn.Conv(features, (kernel_size, kernel_size),
                   kernel_init=_KERNEL_INIT,
                   conv_general_dilated=(conv_matmul.conv_general_dilated
                                         if fast else None))(x)

  def _block(self, conv, x: jax.Array, train: bool) -> jax.Array:
    x = conv(x)
    if self.batch_norm:
      x = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum,
                       epsilon=self.bn_epsilon)(x)
    return nn.relu(x)

  @nn.compact
  def __call__(self, inputs: jax.Array, train: bool = False) -> jax.Array:
    conv = lambda features: functools.partial(self._conv, features,
                                              self.kernel_size)
    p = self.pool
    x = nn.max_pool(inputs, (p, p), strides=(p, p)) if p > 1 else inputs
    for channels in self.encoder_channels:
      x = self._block(conv(channels), x, train)
    # The first decoder conv also undoes the pooling: nearest upsample + conv,
    # computed at low resolution when phase_upsample is on (same function).
    features = self.decoder_channels[0]
    x = self._block(upsample_conv.UpsampleConv(
        features, self.kernel_size, p, phase=self.phase_upsample,
        convs=(conv_matmul.convs if self._matmul_grad(x.shape[-1], features)
               else conv_matmul.lax_convs),
        kernel_init=_KERNEL_INIT), x, train)
    if self.skip_channels:
      skip = self._block(conv(self.skip_channels), inputs, train)
      x = jnp.concatenate([x, skip], axis=-1)
    for channels in self.decoder_channels[1:]:
      x = self._block(conv(channels), x, train)
    x = self._conv(1, self.output_kernel_size, x)
    if self.output_mode == 'mask':
      return jnp.exp(self.mask_exponent * nn.log_sigmoid(x)) * inputs
    if self.output_mode == 'residual':
      return nn.relu(inputs + x)
    return OUTPUT_ACTIVATIONS[self.output_activation](x)


def build_model(model_config) -> AutoEncoder:
  """The model a config describes; `model_config` is config.model.

  Config fields carry the module's field names. A field missing from an
  older checkpoint's config takes the module default, which by convention
  keeps the behaviour the field had before it existed.
  """
  names = {f.name for f in dataclasses.fields(AutoEncoder)} - {'parent', 'name'}
  return AutoEncoder(**{
      k: tuple(v) if isinstance(v, (list, tuple)) else v
      for k, v in model_config.items() if k in names})


def count_params(params) -> int:
  return sum(int(jnp.size(p)) for p in jax.tree_util.tree_leaves(params))
