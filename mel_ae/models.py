"""Convolutional autoencoders for mel spectrograms (flax linen, NHWC).

Inputs are model-domain mels shaped (batch, n_mels, frames, 1). With the
default config this is exactly the 2020 seed: MaxPool 2x2 -> Conv 8, 16, 32
(5x5, BatchNorm, ReLU) -> nearest upsample 2x -> Conv 16, 8 (5x5, BatchNorm,
ReLU) -> Conv 1 (3x3) -> sigmoid; 32,513 trainable parameters.

The models say what they compute; how their convolutions are computed is a
run-time choice (`conv` / `upsample_conv` modules, see mel_ae/backends).
"""
import dataclasses
import functools
import types
from typing import Any, List, Optional, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mel_ae import layers

ModuleDef = Any

# Keras' Conv2D default, which the seed used.
_KERNEL_INIT = nn.initializers.xavier_uniform()

OUTPUT_MODES = ('image', 'mask', 'residual', 'subtract')
NOISE_ESTIMATES = ('minimum', 'quiet')
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
  to the input (then ReLU, as power is >= 0); 'subtract' is a learned
  spectral subtraction (`subtract_noise`): the network also sees a local
  noise-floor estimate and predicts, per bin, how much of it to subtract
  from the power and the least gain to keep, so a loud bin can lose at
  most a few times the noise floor whatever the network thinks of it.
  skip_channels > 0 adds a
  full-resolution conv of the input, concatenated after the upsampling: a
  one-level U-Net, so detail need not pass through the pooling.
  `conv`, `upsample_conv`, `norm` and `max_pool` are what its
  convolutions, BatchNorms and pooling are made of (any drop-in with the
  same function and parameters; their `dtype` is the run's compute dtype).
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
  noise_estimate: str = 'minimum'
  noise_radius: int = 32
  noise_smooth: int = 5
  noise_quiet_fraction: float = 0.3
  max_subtraction: float = 4.0
  skip_channels: int = 0
  conv: ModuleDef = nn.Conv
  upsample_conv: ModuleDef = layers.UpsampleConv
  norm: ModuleDef = nn.BatchNorm
  max_pool: layers.MaxPoolFn = layers.max_pool

  def _conv(self, features: int, kernel_size: int, x: jax.Array,
            **kwargs) -> jax.Array:
    return self.conv(features, (kernel_size, kernel_size),
                     kernel_init=_KERNEL_INIT, **kwargs)(x)

  def _block(self, conv, x: jax.Array, train: bool) -> jax.Array:
    x = conv(x)
    if self.batch_norm:
      x = self.norm(use_running_average=not train, momentum=self.bn_momentum,
                    epsilon=self.bn_epsilon)(x)
    return nn.relu(x)

  @nn.compact
  def __call__(self, inputs: jax.Array, train: bool = False) -> jax.Array:
    conv = lambda features: functools.partial(self._conv, features,
                                              self.kernel_size)
    p = self.pool
    seen = inputs
    if self.output_mode == 'subtract':
      noise = (noise_floor(inputs, self.noise_radius, self.noise_smooth)
               if self.noise_estimate == 'minimum' else
               quiet_mean(inputs, self.noise_radius, self.noise_quiet_fraction))
      seen = jnp.concatenate([inputs, noise], axis=-1)
    x = self.max_pool(seen, p) if p > 1 else seen
    for channels in self.encoder_channels:
      x = self._block(conv(channels), x, train)
    # The first decoder conv also undoes the pooling: nearest upsample + conv.
    x = self._block(self.upsample_conv(
        self.decoder_channels[0], self.kernel_size, p,
        kernel_init=_KERNEL_INIT), x, train)
    if self.skip_channels:
      skip = self._block(conv(self.skip_channels), seen, train)
      x = jnp.concatenate([x, skip], axis=-1)
    for channels in self.decoder_channels[1:]:
      x = self._block(conv(channels), x, train)
    # The output layer computes in float32 whatever the compute dtype: a
    # bfloat16 output (8-bit mantissa) raised to the 16th power by the root
    # transform would be a few % off in power.
    x = self._conv(2 if self.output_mode == 'subtract' else 1,
                   self.output_kernel_size, x, dtype=jnp.float32)
    if self.output_mode == 'subtract':
      return subtract_noise(inputs, noise, x, self.mask_exponent,
                            self.max_subtraction)
    if self.output_mode == 'mask':
      return jnp.exp(self.mask_exponent * nn.log_sigmoid(x)) * inputs
    if self.output_mode == 'residual':
      return nn.relu(inputs + x)
    return OUTPUT_ACTIVATIONS[self.output_activation](x)


class UNet(nn.Module):
  """An encoder-decoder with a skip at every scale (a U-Net).

  Level i runs two `kernel_size` convs (BatchNorm, ReLU) with
  `encoder_channels[i]` channels; a 2x max pool goes down a level, a
  nearest 2x upsample + conv comes back up, and the level's encoder output
  is concatenated before its decoder convs. output_mode 'residual' adds the
  network's output to its input: in the log-power domain
  (data.transform='log') that is a per-bin gain on power, the output form
  of the 2020 competition's winning solution; 'image' returns it alone;
  'kernel' predicts, per bin, weights over a `kernel_window` (bands,
  frames) of neighbouring noisy bins and a gain: the output power is the
  gain times that weighted mean of the neighbours' power (`kernel_output`),
  so noise that is independent from bin to bin can be averaged away where
  the neighbours hold the same sound, and a floor scaled down.
  """
  encoder_channels: Sequence[int] = (16, 32, 64)
  kernel_size: int = 3
  output_kernel_size: int = 1
  batch_norm: bool = True
  bn_momentum: float = 0.9
  bn_epsilon: float = 1e-5
  output_mode: str = 'residual'
  kernel_window: Sequence[int] = (3, 7)
  conv: ModuleDef = nn.Conv
  upsample_conv: ModuleDef = layers.UpsampleConv
  norm: ModuleDef = nn.BatchNorm
  max_pool: layers.MaxPoolFn = layers.max_pool

  def _block(self, x: jax.Array, channels: int, train: bool) -> jax.Array:
    for _ in range(2):
      x = self.conv(channels, (self.kernel_size,) * 2,
                    kernel_init=_KERNEL_INIT)(x)
      if self.batch_norm:
        x = self.norm(use_running_average=not train,
                      momentum=self.bn_momentum, epsilon=self.bn_epsilon)(x)
      x = nn.relu(x)
    return x

  @nn.compact
  def __call__(self, inputs: jax.Array, train: bool = False) -> jax.Array:
    skips, x = [], inputs
    for level, channels in enumerate(self.encoder_channels):
      if level:
        x = self.max_pool(x, 2)
      x = self._block(x, channels, train)
      skips.append(x)
    for channels, skip in zip(self.encoder_channels[-2::-1], skips[-2::-1]):
      x = nn.relu(self.upsample_conv(channels, self.kernel_size, 2,
                                     kernel_init=_KERNEL_INIT)(x))
      x = self._block(jnp.concatenate([x, skip], axis=-1), channels, train)
    taps = int(np.prod(self.kernel_window))
    # Zero-initialised, so training starts from the identity ('residual')
    # or an even mean of the window ('kernel'); float32 whatever the compute
    # dtype, as AutoEncoder's output.
    x = self.conv(taps + 1 if self.output_mode == 'kernel' else 1,
                  (self.output_kernel_size,) * 2,
                  kernel_init=nn.initializers.zeros_init(),
                  dtype=jnp.float32)(x)
    if self.output_mode == 'kernel':
      return kernel_output(inputs, x, tuple(self.kernel_window))
    return inputs + x if self.output_mode == 'residual' else x


def kernel_output(z: jax.Array, logits: jax.Array,
                  window: Tuple[int, int]) -> jax.Array:
  """ln(g * sum_k softmax(w)_k e^{z_k}) for log-power z (NHWC, 1 channel):
  a gain g = e^{logits[..., -1]} on the mean of the `window` (bands, frames)
  neighbours' power weighted by softmax(logits[..., :-1]). Edges repeat."""
  (fh, fw) = window
  pad = ((0, 0), (fh // 2, fh - 1 - fh // 2), (fw // 2, fw - 1 - fw // 2),
         (0, 0))
  zp = jnp.pad(z[..., 0:1].astype(logits.dtype), pad, mode='edge')
  h, w = z.shape[1:3]
  shifted = jnp.concatenate([zp[:, i:i + h, j:j + w]
                             for i in range(fh) for j in range(fw)], axis=-1)
  weights = logits[..., :-1]
  mean = (jax.nn.logsumexp(weights + shifted, axis=-1, keepdims=True)
          - jax.nn.logsumexp(weights, axis=-1, keepdims=True))
  return logits[..., -1:] + mean


MODELS = {'autoencoder': AutoEncoder, 'unet': UNet}
# Module fields that are not model settings: flax's, and how layers compute.
_NOT_CONFIG = ('parent', 'name', 'conv', 'upsample_conv', 'norm',
               'max_pool')
UNET_OUTPUT_MODES = ('residual', 'image', 'kernel')
# A config value, not a model: the noise stage decides 'kernel' or
# 'residual' from the noise it fits (mel_ae/fit_noise.py), and the model is
# built with that decision (`output_form`).
FITTED = 'fitted'


def stride(model_config) -> int:
  """How much the model downsamples: inputs' frames and bands must be
  multiples of it (1 for an unknown model.name, which check_config
  refuses)."""
  if model_config.name not in MODELS:
    return 1
  m = model_fields(model_config)
  if m.name == 'unet':
    return 2 ** (len(m.encoder_channels) - 1)
  return m.pool


# Guards for logs and powers of the root domain (x ** (1/exponent) of a
# normalised value underflows float32 long before x reaches 0).
_TINY = 1e-6
_MAX_LOG_RATIO = 30.0
_MIN_GAIN = 1e-3


def noise_floor(x: jax.Array, radius: int, smooth: int) -> jax.Array:
  """Minimum statistics per band: the least `smooth`-frame mean within
  `radius` frames either side (NHWC, frames on axis 2).

  Local, so chunked inference with a margin >= the receptive radius still
  equals the whole file; a minimum commutes with the root transform, so it
  is taken in the model domain. Exact zeros (padding, digital silence)
  carry no noise and are skipped; a window of zeros only gives 0.
  """
  valid = (x > 0).astype(x.dtype)
  pool = lambda a: nn.avg_pool(a, (1, smooth), padding='SAME')
  count = pool(valid)
  mean = jnp.where(count > 0, pool(x) / jnp.maximum(count, _TINY), jnp.inf)
  floor = -nn.max_pool(-mean, (1, 2 * radius + 1), padding='SAME')
  return jnp.where(jnp.isfinite(floor), floor, 0.0)


def quiet_mean(x: jax.Array, radius: int, fraction: float) -> jax.Array:
  """Per band, the mean over the `fraction` of frames with the least total
  (summed over bands) value within `radius` frames either side; x is
  (batch, n_mels, frames, 1).

  Spectral subtraction's estimate (`baselines.spectral_subtraction`), made
  local so chunked inference equals the whole file. Exact-zero frames
  (padding, digital silence) are never chosen; a window without a non-zero
  frame gives 0.
  """
  frames = x.shape[2]
  width = 2 * radius + 1
  count = max(1, int(round(fraction * width)))
  valid = jnp.any(x > 0, axis=1)  # (B, T, C)
  energy = jnp.where(valid, x.sum(axis=1), jnp.inf)
  window = jnp.arange(frames)[:, None] + jnp.arange(width)[None, :] - radius
  inside = (window >= 0) & (window < frames)
  window = jnp.clip(window, 0, frames - 1)
  # (B, T, W, C): each frame's window; frames off the edge are never chosen.
  energies = jnp.where(inside[None, :, :, None], energy[:, window], jnp.inf)
  _, order = jax.lax.top_k(-jnp.moveaxis(energies, 2, -1), count)
  order = jnp.moveaxis(order, -1, 2)  # (B, T, k, C): the quietest first
  chosen = jnp.take_along_axis(window[None, :, :, None], order, axis=2)
  weight = jnp.isfinite(jnp.take_along_axis(energies, order, axis=2)
                        ).astype(x.dtype)
  gathered = jax.vmap(lambda xb, cb: xb[:, cb[..., 0]])(x, chosen)  # (B,F,T,k,C)
  total = jnp.sum(gathered * weight[:, None], axis=3)
  return total / jnp.maximum(weight.sum(axis=2), 1.0)[:, None]


def subtract_noise(x: jax.Array, noise: jax.Array, logits: jax.Array,
                   exponent: float, max_subtraction: float) -> jax.Array:
  """Power P - g N, at least f P, in the root domain (x ~ P ** exponent).

  g in (0, max_subtraction) and f in (0, 1) come from the two logit
  channels; plain spectral subtraction is g = 2, f = 0.05 everywhere.
  """
  g = max_subtraction * nn.sigmoid(logits[..., :1])
  least = _MIN_GAIN + (1 - _MIN_GAIN) * nn.sigmoid(logits[..., 1:])
  log_ratio = (jnp.log(jnp.maximum(noise, _TINY))
               - jnp.log(jnp.maximum(x, _TINY))) / exponent
  ratio = jnp.exp(jnp.minimum(log_ratio, _MAX_LOG_RATIO))
  gain = jnp.maximum(1 - g * ratio, least)
  return x * gain ** exponent


def model_fields(model_config) -> types.SimpleNamespace:
  """config.model as its module is built: its name, and each of the
  module's fields from the config or, where the recipe leaves it out, the
  module's default (fields of another model are ignored)."""
  cls = MODELS[model_config.name]
  fields = {f.name: f.default for f in dataclasses.fields(cls)
            if f.name not in _NOT_CONFIG}
  fields.update({k: tuple(v) if isinstance(v, (list, tuple)) else v
                 for k, v in model_config.items() if k in fields})
  return types.SimpleNamespace(name=model_config.name, **fields)


def check_config(config) -> List[Tuple[bool, str]]:
  """(ok, message) pairs for config.model (with what it needs of the rest)."""
  if config.model.name not in MODELS:
    return [(False, f'model.name must be one of {sorted(MODELS)}')]
  m, d = model_fields(config.model), config.data
  if m.name == 'unet':
    return [
        (len(m.encoder_channels) >= 1 and min(m.encoder_channels) >= 1,
         'model.encoder_channels must be >= 1 channels per level'),
        (m.kernel_size >= 1 and m.output_kernel_size >= 1,
         'model.kernel_size and output_kernel_size must be >= 1'),
        (m.output_mode in UNET_OUTPUT_MODES + (FITTED,),
         f'model.output_mode must be one of {UNET_OUTPUT_MODES + (FITTED,)} '
         "for 'unet'"),
        (m.output_mode not in ('kernel', FITTED) or (
            d.transform == 'log' and len(m.kernel_window) == 2
            and min(m.kernel_window) >= 1),
         "model.output_mode='kernel' or 'fitted' needs data.transform='log' "
         'and a model.kernel_window of (bands, frames) >= 1'),
        (m.output_mode != FITTED or config.train.mode == 'denoise',
         "model.output_mode='fitted' needs train.mode='denoise': the noise "
         'decides it'),
        (config.audio.n_mels % stride(config.model) == 0,
         f'audio.n_mels={config.audio.n_mels} is not a multiple of the '
         f'U-Net stride {stride(config.model)}'),
    ]
  channels = tuple(m.encoder_channels) + tuple(m.decoder_channels)
  checks = [
      (m.kernel_size >= 1, f'model.kernel_size must be >= 1, got {m.kernel_size}'),
      (m.output_kernel_size >= 1, 'model.output_kernel_size must be >= 1'),
      (m.pool >= 1, f'model.pool must be >= 1, got {m.pool}'),
      (len(m.encoder_channels) > 0, 'model.encoder_channels is empty'),
      (len(m.decoder_channels) > 0, 'model.decoder_channels is empty'),
      (all(c >= 1 for c in channels), 'model channel counts must be >= 1'),
      (m.skip_channels >= 0, 'model.skip_channels must be >= 0'),
      (m.output_activation in OUTPUT_ACTIVATIONS,
       f'model.output_activation must be one of {sorted(OUTPUT_ACTIVATIONS)}'),
      (m.output_mode in OUTPUT_MODES,
       f'model.output_mode must be one of {OUTPUT_MODES}'),
      (config.audio.n_mels % m.pool == 0,
       f'audio.n_mels={config.audio.n_mels} is not a multiple of '
       f'model.pool={m.pool}'),
  ]
  if m.output_mode == 'subtract':  # It turns model values back into power.
    checks += [
        (d.transform == 'root' and abs(m.mask_exponent * d.root - 1) < 1e-6,
         "model.output_mode='subtract' needs data.transform='root' and "
         'model.mask_exponent=1/data.root'),
        (m.noise_radius >= 0 and m.noise_smooth >= 1 and m.max_subtraction > 0
         and 0 < m.noise_quiet_fraction <= 1,
         'model.noise_radius >= 0, noise_smooth >= 1, max_subtraction > 0 and '
         "0 < noise_quiet_fraction <= 1 are needed for output_mode='subtract'"),
        (m.noise_estimate in NOISE_ESTIMATES,
         f'model.noise_estimate must be one of {NOISE_ESTIMATES}'),
    ]
  return checks


def output_form(model_config, fitted_mode: Optional[str] = None
                ) -> Optional[str]:
  """The output form a model is built with: model.output_mode or, where
  that is 'fitted', `fitted_mode`, what the noise stage decided."""
  mode = model_config.output_mode
  if mode != FITTED:
    return mode
  if fitted_mode is None:
    raise ValueError("model.output_mode='fitted' is decided by the noise "
                     'stage (mel_ae/fit_noise.py): pass its decision')
  return fitted_mode


def build_model(model_config, fitted_mode: Optional[str] = None,
                **modules) -> nn.Module:
  """The model a config describes; `model_config` is config.model.

  Config fields carry the module's field names; a field the config leaves
  out takes the module's default, and fields the module does not have
  (another model's) are ignored (`model_fields`). `modules` (`conv`,
  `upsample_conv`, `norm`, `max_pool`) say how the layers are computed: `mel_ae.backends.layers_for(
  config.runtime, config.train.compute_dtype)`; `fitted_mode` the output
  form the noise stage decided, for model.output_mode='fitted'
  (`output_form`).
  """
  fields = vars(model_fields(model_config))
  del fields['name']
  fields['output_mode'] = output_form(model_config, fitted_mode)
  return MODELS[model_config.name](**fields, **modules)


def count_params(params) -> int:
  return sum(int(jnp.size(p)) for p in jax.tree_util.tree_leaves(params))
