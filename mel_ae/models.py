"""Convolutional autoencoders for mel spectrograms (flax linen, NHWC).

Inputs are model-domain mels shaped (batch, n_mels, frames, 1). With the
default config this is exactly the 2020 seed: MaxPool 2x2 -> Conv 8, 16, 32
(5x5, BatchNorm, ReLU) -> nearest upsample 2x -> Conv 16, 8 (5x5, BatchNorm,
ReLU) -> Conv 1 (3x3) -> sigmoid; 32,513 trainable parameters.
"""
import functools
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from mel_ae import upsample_conv

# Keras' Conv2D default, which the seed used.
_KERNEL_INIT = nn.initializers.xavier_uniform()

OUTPUT_MODES = ('image', 'mask', 'residual')
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

  def _block(self, conv: nn.Module, x: jax.Array, train: bool) -> jax.Array:
    x = conv(x)
    if self.batch_norm:
      x = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum,
                       epsilon=self.bn_epsilon)(x)
    return nn.relu(x)

  @nn.compact
  def __call__(self, inputs: jax.Array, train: bool = False) -> jax.Array:
    kernel = (self.kernel_size, self.kernel_size)
    conv = functools.partial(nn.Conv, kernel_size=kernel,
                             kernel_init=_KERNEL_INIT)
    p = self.pool
    x = nn.max_pool(inputs, (p, p), strides=(p, p)) if p > 1 else inputs
    for channels in self.encoder_channels:
      x = self._block(conv(channels), x, train)
    # The first decoder conv also undoes the pooling: nearest upsample + conv,
    # computed at low resolution when phase_upsample is on (same function).
    x = self._block(upsample_conv.UpsampleConv(
        self.decoder_channels[0], self.kernel_size, p,
        phase=self.phase_upsample, kernel_init=_KERNEL_INIT), x, train)
    if self.skip_channels:
      skip = self._block(conv(self.skip_channels), inputs, train)
      x = jnp.concatenate([x, skip], axis=-1)
    for channels in self.decoder_channels[1:]:
      x = self._block(conv(channels), x, train)
    k_out = (self.output_kernel_size, self.output_kernel_size)
    x = nn.Conv(1, k_out, kernel_init=_KERNEL_INIT)(x)
    if self.output_mode == 'mask':
      return jnp.exp(self.mask_exponent * nn.log_sigmoid(x)) * inputs
    if self.output_mode == 'residual':
      return nn.relu(inputs + x)
    return OUTPUT_ACTIVATIONS[self.output_activation](x)


def build_model(model_config) -> AutoEncoder:
  """The model a config describes; `model_config` is config.model."""
  return AutoEncoder(
      encoder_channels=tuple(model_config.encoder_channels),
      decoder_channels=tuple(model_config.decoder_channels),
      kernel_size=model_config.kernel_size,
      output_kernel_size=model_config.output_kernel_size,
      pool=model_config.pool,
      batch_norm=model_config.batch_norm,
      bn_momentum=model_config.bn_momentum,
      bn_epsilon=model_config.bn_epsilon,
      output_activation=model_config.output_activation,
      output_mode=model_config.output_mode,
      mask_exponent=model_config.mask_exponent,
      skip_channels=model_config.skip_channels,
      phase_upsample=model_config.phase_upsample)


def count_params(params) -> int:
  return sum(int(jnp.size(p)) for p in jax.tree_util.tree_leaves(params))
