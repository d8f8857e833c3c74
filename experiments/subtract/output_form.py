"""The learned spectral subtraction: the 'subtract' output form of the
autoencoder (configs/base.py's model), registered with mel_ae's output
forms when this module is imported (experiments/subtract/config.py does).

The network also sees a local noise-floor estimate and predicts, per bin,
how much of it to subtract from the power and the least gain to keep
(`subtract_noise`), so a loud bin can lose at most a few times the noise
floor whatever the network thinks of it.
"""
import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from mel_ae import output_forms

NOISE_ESTIMATES = ('minimum', 'quiet')
# Guards for logs and powers of the root domain (x ** (1/exponent) of a
# normalised value underflows float32 long before x reaches 0).
_TINY = 1e-6
_MAX_LOG_RATIO = 30.0
_MIN_GAIN = 1e-3


@output_forms.register('autoencoder', 'subtract')
@dataclasses.dataclass(frozen=True)
class Subtract(output_forms.OutputForm):
  """The network sees the input and its noise estimate (`noise_estimate`:
  'minimum', `noise_floor`, or 'quiet', `quiet_mean`, within
  `noise_radius` frames); its two channels say how many noise floors to
  subtract (at most `max_subtraction`) and the least gain to keep, on
  power (`mask_exponent`: 1/data.root)."""
  channels = 2
  mask_exponent: float = 1.0
  noise_estimate: str = 'minimum'
  noise_radius: int = 32
  noise_smooth: int = 5
  noise_quiet_fraction: float = 0.3
  max_subtraction: float = 4.0

  def sees(self, inputs):
    noise = (noise_floor(inputs, self.noise_radius, self.noise_smooth)
             if self.noise_estimate == 'minimum' else
             quiet_mean(inputs, self.noise_radius, self.noise_quiet_fraction))
    return jnp.concatenate([inputs, noise], axis=-1)

  def __call__(self, seen, out):
    return subtract_noise(seen[..., :1], seen[..., 1:], out,
                          self.mask_exponent, self.max_subtraction)

  @classmethod
  def checks(cls, config, m):
    d = config.data  # It turns model values back into power.
    return [
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
