"""A config's model as one object (scenic's BaseModel): its flax module
built with its output form, the train settings and loss that form trains
with, and the checks of all three.

Training (mel_ae/train.py) and inference build models through it; the
training loop itself, its optimizer schedule and data are train.py's.
"""
import dataclasses
import functools
from typing import List, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from mel_ae import features
from mel_ae import metrics
from mel_ae import models
from mel_ae import settings

LOSSES = ('model', 'power')
POWER_UNITS = ('absolute', 'data')


def mse(pred: jax.Array, target: jax.Array) -> jax.Array:
  return jnp.mean((pred - target) ** 2)


def log_spectral_mse(pred_power: jax.Array, target_power: jax.Array,
                     top_db: float = metrics.LSD_TOP_DB) -> jax.Array:
  """MSE of ln power, both clipped `top_db` below each target's peak: the
  quiet bins that a raw-power loss ignores, weighed as `metrics.lsd_db`
  weighs them."""
  peak = jnp.max(target_power, axis=(1, 2, 3), keepdims=True)
  floor = jnp.maximum(peak * 10.0 ** (-top_db / 10.0), 1e-10)
  log = lambda p: jnp.log(jnp.maximum(p, floor))
  return jnp.mean((log(pred_power) - log(target_power)) ** 2)


@dataclasses.dataclass(frozen=True, eq=False)  # A ConfigDict has no hash.
class Recipe:
  """The model of `config` built with output form `output_mode`:
  config.model.output_mode, or what the noise stage decided where that is
  'fitted' (`of`)."""
  config: ml_collections.ConfigDict
  output_mode: str

  @classmethod
  def of(cls, config: ml_collections.ConfigDict,
         fitted_mode: Optional[str] = None) -> 'Recipe':
    """`fitted_mode`: the noise stage's decision, for output 'fitted'."""
    return cls(config, models.output_form(config.model, fitted_mode))

  @property
  def train(self) -> ml_collections.ConfigDict:
    """The train section as this output form trains: the recipe's
    train.output_forms[form] over it (`settings.for_output_form`)."""
    return settings.for_output_form(self.config, self.output_mode)

  def module(self, **layers) -> nn.Module:
    """The flax module; `layers` say how its layers compute
    (`backends.layers_for`), never what."""
    return models.build_model(self.config.model, self.output_mode, **layers)

  def loss(self, normalizer: features.Normalizer):
    """The training loss of model-domain (pred, target[, level]) batches.

    train.loss 'power': the MSE in raw power, the competition metric, plus
    loss_log_weight times the log-spectral MSE; power in loss_power_unit
    ('data': the training files' mean power, so that the balance of the
    two terms does not move with the data's level). 'model': the MSE in the
    model domain, each bin weighted by 1 + loss_power_weight *
    P'(target)^2, the first-order expansion of the raw-power MSE around the
    target (loud bins count more, without taking the power of a
    prediction). Either leaves out the `loss_border_frames` at each crop
    edge. Each as the output form trains (`train`).
    """
    t = self.train
    loss = _pointwise_loss(t, normalizer)
    border = t.loss_border_frames
    if not border:
      return loss
    # Frames near a crop's edges see the convolutions' zero padding, which a
    # whole file denoised in overlapping windows never shows the model.
    return lambda pred, target, level=None: loss(
        pred[:, :, border:-border], target[:, :, border:-border], level)

  @staticmethod
  def checks(config: ml_collections.ConfigDict) -> List[Tuple[bool, str]]:
    """(ok, message) pairs for the model, its output form and the loss and
    train settings of every output form the recipe names; before the noise
    stage decides anything."""
    t = settings.section(config, 'train')
    forms = [settings.for_output_form(config, form)
             for form in (None, *t.output_forms.keys())]
    return models.check_config(config) + [
        (t.loss in LOSSES, f'train.loss must be one of {LOSSES}'),
        (all(0 <= 2 * f.loss_border_frames < config.data.crop_frames
             for f in forms),
         'train.loss_border_frames (and each train.output_forms\' own) must '
         'be >= 0 and under half of data.crop_frames'),
        (t.loss_log_weight >= 0 and t.loss_power_weight >= 0,
         'train.loss_log_weight and loss_power_weight must be >= 0'),
        (t.loss_power_unit in POWER_UNITS,
         f'train.loss_power_unit must be one of {POWER_UNITS}'),
        (all(f.learning_rate > 0 for f in forms),
         'train.learning_rate (and each train.output_forms\' own) must be '
         '> 0'),
    ]


def _pointwise_loss(t: ml_collections.ConfigDict,
                    normalizer: features.Normalizer):
  """`t`: the train settings of the model's output form."""
  power = functools.partial(normalizer.inverse, xp=jnp)
  if t.loss == 'power':
    unit = normalizer.mean_power if t.loss_power_unit == 'data' else 1.0

    def power_loss(pred, target, level=None):
      """`level`: each crop's level-augmentation factor (noise.level_db),
      divided out so that every crop counts as at its own level, not by
      its level squared."""
      p, q = power(pred) / unit, power(target) / unit
      if level is not None:
        p, q = p / level, q / level
      return mse(p, q) + t.loss_log_weight * log_spectral_mse(p, q)
    return power_loss
  if not t.loss_power_weight:  # The model domain compresses any level.
    return lambda pred, target, level=None: mse(pred, target)

  def weighted(pred, target, level=None):
    del level  # The model domain (log or root) compresses it already.
    _, slope = jax.jvp(power, (target,), (jnp.ones_like(target),))
    return jnp.mean((1.0 + t.loss_power_weight * slope ** 2)
                    * (pred - target) ** 2)
  return weighted
