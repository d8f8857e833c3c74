"""Convolutional autoencoders for mel spectrograms (flax linen, NHWC).

Inputs are model-domain mels shaped (batch, n_mels, frames, 1). With the
default config this is exactly the 2020 seed: MaxPool 2x2 -> Conv 8, 16, 32
(5x5, BatchNorm, ReLU) -> nearest upsample 2x -> Conv 16, 8 (5x5, BatchNorm,
ReLU) -> Conv 1 (3x3) -> sigmoid; 32,513 trainable parameters. How the
last conv becomes the output is the model's output form
(mel_ae/output_forms.py).

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

from mel_ae import layers
from mel_ae import output_forms

ModuleDef = Any

# Keras' Conv2D default, which the seed used.
_KERNEL_INIT = nn.initializers.xavier_uniform()


class AutoEncoder(nn.Module):
  """Pool -> encoder convs -> upsample -> decoder convs -> output form.

  `output` (mel_ae/output_forms.py) says what the network sees, how many
  channels its last conv gives and what the model returns: the seed's
  'image' (a sigmoid), a 'mask' on the input or a 'residual' added to it.
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
  skip_channels: int = 0
  output: output_forms.OutputForm = output_forms.Activation()
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
    seen = self.output.sees(inputs)
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
    x = self._conv(self.output.channels, self.output_kernel_size, x,
                   dtype=jnp.float32)
    return self.output(seen, x)

  @staticmethod
  def stride(m) -> int:
    """How much it downsamples (`m`: config.model as built)."""
    return m.pool

  @staticmethod
  def checks(config, m) -> List[Tuple[bool, str]]:
    """(ok, message) pairs for its fields (`m`: config.model as built)."""
    channels = tuple(m.encoder_channels) + tuple(m.decoder_channels)
    return [
        (m.kernel_size >= 1,
         f'model.kernel_size must be >= 1, got {m.kernel_size}'),
        (m.output_kernel_size >= 1, 'model.output_kernel_size must be >= 1'),
        (m.pool >= 1, f'model.pool must be >= 1, got {m.pool}'),
        (len(m.encoder_channels) > 0, 'model.encoder_channels is empty'),
        (len(m.decoder_channels) > 0, 'model.decoder_channels is empty'),
        (all(c >= 1 for c in channels), 'model channel counts must be >= 1'),
        (m.skip_channels >= 0, 'model.skip_channels must be >= 0'),
        (config.audio.n_mels % m.pool == 0,
         f'audio.n_mels={config.audio.n_mels} is not a multiple of '
         f'model.pool={m.pool}'),
    ]


class UNet(nn.Module):
  """An encoder-decoder with a skip at every scale (a U-Net).

  Level i runs two `kernel_size` convs (BatchNorm, ReLU) with
  `encoder_channels[i]` channels; a 2x max pool goes down a level, a
  nearest 2x upsample + conv comes back up, and the level's encoder output
  is concatenated before its decoder convs. `output` (mel_ae/
  output_forms.py) makes the model's output of the last conv: 'residual'
  adds it to the input (in the log-power domain a gain per bin), 'image'
  returns it alone, 'kernel' weighs each bin's noisy neighbours.
  """
  encoder_channels: Sequence[int] = (16, 32, 64)
  kernel_size: int = 3
  output_kernel_size: int = 1
  batch_norm: bool = True
  bn_momentum: float = 0.9
  bn_epsilon: float = 1e-5
  output: output_forms.OutputForm = output_forms.Residual()
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
    seen = self.output.sees(inputs)
    skips, x = [], seen
    for level, channels in enumerate(self.encoder_channels):
      if level:
        x = self.max_pool(x, 2)
      x = self._block(x, channels, train)
      skips.append(x)
    for channels, skip in zip(self.encoder_channels[-2::-1], skips[-2::-1]):
      x = nn.relu(self.upsample_conv(channels, self.kernel_size, 2,
                                     kernel_init=_KERNEL_INIT)(x))
      x = self._block(jnp.concatenate([x, skip], axis=-1), channels, train)
    # Zero-initialised, so training starts from the identity ('residual')
    # or an even mean of the window ('kernel'); float32 whatever the compute
    # dtype, as AutoEncoder's output.
    x = self.conv(self.output.channels, (self.output_kernel_size,) * 2,
                  kernel_init=nn.initializers.zeros_init(),
                  dtype=jnp.float32)(x)
    return self.output(seen, x)

  @staticmethod
  def stride(m) -> int:
    """How much it downsamples (`m`: config.model as built)."""
    return 2 ** (len(m.encoder_channels) - 1)

  @staticmethod
  def checks(config, m) -> List[Tuple[bool, str]]:
    """(ok, message) pairs for its fields (`m`: config.model as built)."""
    return [
        (len(m.encoder_channels) >= 1 and min(m.encoder_channels) >= 1,
         'model.encoder_channels must be >= 1 channels per level'),
        (m.kernel_size >= 1 and m.output_kernel_size >= 1,
         'model.kernel_size and output_kernel_size must be >= 1'),
        (config.audio.n_mels % UNet.stride(m) == 0,
         f'audio.n_mels={config.audio.n_mels} is not a multiple of the '
         f'U-Net stride {UNet.stride(m)}'),
    ]


MODELS = {'autoencoder': AutoEncoder, 'unet': UNet}
# Module fields that are not model settings: flax's, how layers compute,
# and the output form, built from config.model.output_mode and its fields.
_NOT_CONFIG = ('parent', 'name', 'conv', 'upsample_conv', 'norm',
               'max_pool', 'output')
# A config value, not a model: the noise stage decides one of FITTED_FORMS
# from the noise it fits (mel_ae/fit_noise.py), and the model is built with
# that decision (`output_form`).
FITTED = 'fitted'
FITTED_FORMS = ('residual', 'kernel')


def stride(model_config) -> int:
  """How much the model downsamples: inputs' frames and bands must be
  multiples of it (1 for an unknown model.name, which check_config
  refuses)."""
  if model_config.name not in MODELS:
    return 1
  return MODELS[model_config.name].stride(model_fields(model_config))


def model_fields(model_config) -> types.SimpleNamespace:
  """config.model as its module is built: its name, its output_mode, and
  each field of the module and of its output forms (mel_ae/output_forms.py)
  from the config or, where the recipe leaves it out, their default
  (fields of another model are ignored)."""
  name = model_config.name
  fields = {f.name: f.default for f in dataclasses.fields(MODELS[name])
            if f.name not in _NOT_CONFIG}
  fields.update(output_forms.defaults(name))
  fields['output_mode'] = model_config.output_mode
  fields.update({k: tuple(v) if isinstance(v, (list, tuple)) else v
                 for k, v in model_config.items() if k in fields})
  return types.SimpleNamespace(name=name, **fields)


def check_config(config) -> List[Tuple[bool, str]]:
  """(ok, message) pairs for config.model (with what it needs of the rest):
  the module's own checks and its output form's."""
  if config.model.name not in MODELS:
    return [(False, f'model.name must be one of {sorted(MODELS)}')]
  m = model_fields(config.model)
  return MODELS[m.name].checks(config, m) + _output_checks(config, m)


def _output_checks(config, m) -> List[Tuple[bool, str]]:
  """The output form's checks; for 'fitted', those of every form the noise
  stage may decide, where the model has them all."""
  known = output_forms.names(m.name)
  if set(FITTED_FORMS) <= set(known):
    known += (FITTED,)
  if m.output_mode not in known:
    return [(False, f'model.output_mode must be one of {known} for '
             f'{m.name!r}')]
  if m.output_mode != FITTED:
    return output_forms.form_class(m.name, m.output_mode).checks(config, m)
  return [(config.train.mode == 'denoise',
           "model.output_mode='fitted' needs train.mode='denoise': the noise "
           'decides it')] + [
               check for form in FITTED_FORMS for check in
               output_forms.form_class(m.name, form).checks(config, m)]


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

  Config fields carry the module's and its output form's field names; a
  field the config leaves out takes their default, and fields they do not
  have (another model's) are ignored (`model_fields`). `modules` (`conv`,
  `upsample_conv`, `norm`, `max_pool`) say how the layers are computed:
  `mel_ae.backends.layers_for(config.runtime,
  config.train.compute_dtype)`;
  `fitted_mode` the output form the noise stage decided, for
  model.output_mode='fitted' (`output_form`).
  """
  fields = vars(model_fields(model_config))
  name = fields.pop('name')
  form = output_forms.build(name, output_form(model_config, fitted_mode),
                            fields)
  module_fields = {f.name for f in dataclasses.fields(MODELS[name])}
  return MODELS[name](output=form, **modules, **{
      k: v for k, v in fields.items() if k in module_fields})


def count_params(params) -> int:
  return sum(int(jnp.size(p)) for p in jax.tree_util.tree_leaves(params))
