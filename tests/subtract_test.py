"""The earlier recipe's learned spectral subtraction (experiments/subtract):
its noise estimates, its output form and its config's checks."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import base
from experiments.subtract import config as subtract_config
from experiments.subtract import output_form
from mel_ae import models
from mel_ae import train
from mel_ae import whole_file


def _init(config, shape):
  model = models.build_model(config.model)
  return model, model.init(jax.random.PRNGKey(0), jnp.zeros(shape), train=False)


def test_noise_floor_is_the_local_minimum_and_skips_zeros():
  band = np.full(200, 0.3, np.float32)
  band[80:120] = 0.9  # speech on top of a steady floor
  band[:10] = 0.0  # padding
  x = jnp.asarray(band)[None, None, :, None]
  floor = np.asarray(output_form.noise_floor(x, radius=24, smooth=1))[0, 0, :, 0]
  np.testing.assert_allclose(floor[10:], 0.3)  # also under the speech
  np.testing.assert_allclose(floor[:10], 0.3)  # zeros are not noise
  assert float(output_form.noise_floor(jnp.zeros((1, 2, 5, 1)), 2, 3).max()) == 0


def _quiet_mean_reference(band_by_frame, radius, fraction):
  """Spectral subtraction's quiet-frame mean, frame by frame, in NumPy."""
  frames = band_by_frame.shape[1]
  count = max(1, int(round(fraction * (2 * radius + 1))))
  energy = np.where(band_by_frame.max(axis=0) > 0, band_by_frame.sum(axis=0),
                    np.inf)
  out = np.zeros_like(band_by_frame)
  for t in range(frames):
    window = np.arange(max(0, t - radius), min(frames, t + radius + 1))
    quiet = window[np.argsort(energy[window], kind='stable')[:count]]
    quiet = quiet[np.isfinite(energy[quiet])]
    if quiet.size:
      out[:, t] = band_by_frame[:, quiet].mean(axis=1)
  return out


def test_quiet_mean_is_local_spectral_subtraction_estimate_and_skips_zeros():
  rng = np.random.default_rng(4)
  x = rng.uniform(0.2, 1.0, (2, 6, 40, 1)).astype(np.float32)
  x[0, :, :7] = 0  # padding
  x[1, :, 30:] = 0
  got = np.asarray(output_form.quiet_mean(jnp.asarray(x), radius=5, fraction=0.3))
  for b in range(2):
    np.testing.assert_allclose(got[b, ..., 0],
                               _quiet_mean_reference(x[b, ..., 0], 5, 0.3),
                               rtol=1e-6)
  assert float(output_form.quiet_mean(jnp.zeros((1, 2, 5, 1)), 2, 0.5).max()) == 0


def test_subtract_noise_is_spectral_subtraction_in_power():
  """g = 2 and least gain f: max(P - 2 N, f P), as `baselines` computes it."""
  rng = np.random.default_rng(0)
  x = rng.uniform(0.2, 1.0, (1, 8, 16, 1)).astype(np.float32)
  noise = np.full_like(x, 0.5)
  f = 0.05
  logits = np.concatenate([np.zeros_like(x),
                           np.full_like(x, np.log(f / (1 - f)))], axis=-1)
  y = output_form.subtract_noise(jnp.asarray(x), jnp.asarray(noise),
                            jnp.asarray(logits), 1 / 4, 4.0)
  p, n = x.astype(np.float64) ** 4, noise.astype(np.float64) ** 4
  least = output_form._MIN_GAIN + (1 - output_form._MIN_GAIN) * f
  np.testing.assert_allclose(np.asarray(y, np.float64) ** 4,
                             np.maximum(p - 2 * n, least * p), rtol=1e-4)


@pytest.mark.parametrize('estimate', output_form.NOISE_ESTIMATES)
def test_subtract_mode_is_finite_with_silence_and_chunks_like_whole(estimate):
  """Zero frames give finite outputs and gradients, and the noise estimate
  is local: windows with margin >= the receptive radius equal one pass."""
  config = base.get_config()
  config.model.output_mode = 'subtract'
  config.model.mask_exponent = 1 / 16
  config.model.noise_radius = 8
  config.model.noise_estimate = estimate
  model, variables = _init(config, (1, 128, 64, 1))
  mel = np.array(jax.random.uniform(jax.random.PRNGKey(3), (128, 256)))
  mel[:, :40] = 0
  whole = np.asarray(model.apply(variables, mel[None, :, :, None]))[0, ..., 0]
  assert np.all(np.isfinite(whole)) and np.all(whole[:, :40] == 0)
  chunked = whole_file.denoise_model_domain(model, variables, [mel], chunk=64,
                                            margin=48, batch_size=2)[0]
  # The file's end differs as in every model: padding passes BatchNorm there.
  np.testing.assert_allclose(chunked[:, :-48], whole[:, :-48], atol=1e-5)
  grads = jax.grad(lambda p: jnp.sum(model.apply(
      {'params': p, 'batch_stats': variables['batch_stats']},
      jnp.asarray(mel)[None, :, :, None])))(variables['params'])
  assert all(np.all(np.isfinite(g)) for g in jax.tree_util.tree_leaves(grads))


def test_its_config_is_checked_by_its_form(tiny_config):
  """configs/base.py's fields under the recipe's own, and its checks."""
  config = subtract_config.get_config()
  train.validate_config(config)  # Registered on import: known, and valid.
  tiny_config.model.output_mode = 'subtract'
  with pytest.raises(train.ConfigError, match='mask_exponent=1/data.root'):
    train.validate_config(tiny_config)
