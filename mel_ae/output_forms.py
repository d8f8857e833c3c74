"""How a network's last conv becomes the model's output: one small object
per output form (config.model.output_mode), registered by model and name.

A form says what the network sees (`sees`: the input itself, or the input
with what the form needs beside it), how many channels the model's last
conv gives (`channels`) and how those become the output (`__call__`), and
checks its own settings (`checks`). Its settings are config.model fields,
like the module's: a field a form has is read from the config, else the
form's default. A form defined outside mel_ae registers itself when its
module is imported (`register`), e.g. a study's.
"""
import dataclasses
from typing import Any, Callable, ClassVar, Dict, List, Tuple, Type

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

Check = Tuple[bool, str]


class UnknownFormError(ValueError):
  """An output form no imported module registered; one line."""


@dataclasses.dataclass(frozen=True)
class OutputForm:
  """What every form shares: the network sees the input itself, and the
  last conv gives one channel. Frozen, so a flax module holds a form as a
  field like any other setting.
  """
  channels: ClassVar[int] = 1

  def sees(self, inputs: jax.Array) -> jax.Array:
    """What the network is fed for model-domain `inputs` (NHWC, 1 channel)."""
    return inputs

  def __call__(self, seen: jax.Array, out: jax.Array) -> jax.Array:
    """The model's output from what the network saw (`sees`) and its last
    conv's `channels` float32 channels."""
    raise NotImplementedError

  @classmethod
  def checks(cls, config, m) -> List[Check]:
    """(ok, message) pairs for this form's settings: `m` is config.model as
    built (models.model_fields), `config` the rest the form needs."""
    del config, m
    return []


_FORMS: Dict[str, Dict[str, Type[OutputForm]]] = {}


def register(model: str, name: str) -> Callable[[Type[OutputForm]],
                                                Type[OutputForm]]:
  """A class decorator: the form `name` of model `model` (its config.model.
  name) is the class."""
  def add(cls: Type[OutputForm]) -> Type[OutputForm]:
    forms = _FORMS.setdefault(model, {})
    if forms.get(name, cls) is not cls:
      raise ValueError(f'output form {name!r} of {model!r} is registered')
    # Forms share the config.model namespace: a field two forms have must
    # mean the same thing, so it has one default.
    known = defaults(model)
    for field in dataclasses.fields(cls):
      if known.get(field.name, field.default) != field.default:
        raise ValueError(f'{cls.__name__}.{field.name} defaults to '
                         f'{field.default!r}, another form of {model!r} to '
                         f'{known[field.name]!r}')
    forms[name] = cls
    return cls
  return add


def names(model: str) -> Tuple[str, ...]:
  """The output forms registered for `model`."""
  return tuple(_FORMS.get(model, {}))


def form_class(model: str, name: str) -> Type[OutputForm]:
  if name not in names(model):
    raise UnknownFormError(
        f'no output form {name!r} for model {model!r} (known: '
        f'{", ".join(names(model))}); a form defined outside mel_ae is known '
        'once the module that registers it is imported')
  return _FORMS[model][name]


def defaults(model: str) -> Dict[str, Any]:
  """Every setting of `model`'s forms, with its default: the config.model
  fields the forms read."""
  return {f.name: f.default for cls in _FORMS.get(model, {}).values()
          for f in dataclasses.fields(cls)}


def build(model: str, name: str, settings: Dict[str, Any]) -> OutputForm:
  """Form `name` of `model` with its settings taken from `settings` (a
  dict of config.model fields, defaults filled in)."""
  cls = form_class(model, name)
  return cls(**{f.name: settings[f.name] for f in dataclasses.fields(cls)})


ACTIVATIONS = {
    'sigmoid': nn.sigmoid,
    'relu': nn.relu,
    'linear': lambda x: x,
}


@register('autoencoder', 'image')
@dataclasses.dataclass(frozen=True)
class Activation(OutputForm):
  """The last conv through `output_activation`: the seed's sigmoid image."""
  output_activation: str = 'sigmoid'

  def __call__(self, seen, out):
    return ACTIVATIONS[self.output_activation](out)

  @classmethod
  def checks(cls, config, m):
    return [(m.output_activation in ACTIVATIONS,
             f'model.output_activation must be one of {sorted(ACTIVATIONS)}')]


@register('autoencoder', 'mask')
@dataclasses.dataclass(frozen=True)
class Mask(OutputForm):
  """The input times a sigmoid mask raised to `mask_exponent` (1/16 under
  the root-16 transform makes it a gain on power, where loud bins stay
  nearly untouched)."""
  mask_exponent: float = 1.0

  def __call__(self, seen, out):
    return jnp.exp(self.mask_exponent * nn.log_sigmoid(out)) * seen


@register('autoencoder', 'residual')
@dataclasses.dataclass(frozen=True)
class NonNegativeResidual(OutputForm):
  """A correction added to the input, then ReLU: the root domain's values
  are powers' roots, never negative."""

  def __call__(self, seen, out):
    return nn.relu(seen + out)


@register('unet', 'residual')
@dataclasses.dataclass(frozen=True)
class Residual(OutputForm):
  """A correction added to the input: in the log-power domain
  (data.transform='log') a per-bin gain on power, the output form of the
  2020 competition's winning solution."""

  def __call__(self, seen, out):
    return seen + out


@register('unet', 'image')
@dataclasses.dataclass(frozen=True)
class Image(OutputForm):
  """The last conv itself."""

  def __call__(self, seen, out):
    return out


@register('unet', 'kernel')
@dataclasses.dataclass(frozen=True)
class Kernel(OutputForm):
  """Per bin, weights over a `kernel_window` (bands, frames) of the noisy
  neighbouring bins and a gain: the output power is the gain times that
  weighted mean of the neighbours' power (`kernel_output`), so noise that
  is independent from bin to bin can be averaged away where the neighbours
  hold the same sound, and a floor scaled down."""
  kernel_window: Tuple[int, int] = (3, 7)

  @property
  def channels(self) -> int:
    return int(np.prod(self.kernel_window)) + 1

  def __call__(self, seen, out):
    return kernel_output(seen, out, tuple(self.kernel_window))

  @classmethod
  def checks(cls, config, m):
    return [(config.data.transform == 'log' and len(m.kernel_window) == 2
             and min(m.kernel_window) >= 1,
             f'model.output_mode={m.output_mode!r} needs '
             "data.transform='log' and a model.kernel_window of (bands, "
             'frames) >= 1')]


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
