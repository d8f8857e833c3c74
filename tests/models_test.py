"""Model shapes, parameter count and BatchNorm behaviour."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import base
from mel_ae import models


def _init(config, shape=(2, 128, 128, 1)):
  model = models.build_model(config.model)
  return model, model.init(jax.random.PRNGKey(0), jnp.zeros(shape), train=False)


def test_seed_model_has_exactly_32513_trainable_params():
  _, variables = _init(base.get_config())
  params = variables['params']
  convs = sum(int(np.size(v)) for k, layer in params.items()
              if 'BatchNorm' not in k for v in jax.tree_util.tree_leaves(layer))
  assert models.count_params(params) == 32513
  assert convs == 32353
  assert set(variables) == {'params', 'batch_stats'}


@pytest.mark.parametrize('frames', [2, 6, 64, 130])
def test_output_shape_equals_input_shape(frames):
  model, variables = _init(base.get_config())
  x = jax.random.uniform(jax.random.PRNGKey(1), (1, 128, frames, 1))
  y = model.apply(variables, x, train=False)
  assert y.shape == x.shape
  assert float(y.min()) >= 0 and float(y.max()) <= 1  # sigmoid output


def test_kernel_size_override_reaches_every_conv():
  config = base.get_config()
  config.model.kernel_size = 3
  _, variables = _init(config)
  kernels = [v['kernel'].shape for k, v in variables['params'].items()
             if 'kernel' in v]
  assert [k[:2] for k in kernels] == [(3, 3)] * 5 + [(3, 3)]
  convs = sum(9 * cin * cout + cout for cin, cout in
              [(1, 8), (8, 16), (16, 32), (32, 16), (16, 8)]) + 9 * 8 + 1
  assert models.count_params(variables['params']) == convs + 160


def test_batchnorm_train_updates_stats_and_eval_uses_them():
  model, variables = _init(base.get_config(), (4, 128, 32, 1))
  x = jax.random.uniform(jax.random.PRNGKey(2), (4, 128, 32, 1))
  y_train, updates = model.apply(variables, x, train=True,
                                 mutable=['batch_stats'])
  changed = jax.tree_util.tree_map(lambda a, b: bool(jnp.any(a != b)),
                                   variables['batch_stats'],
                                   updates['batch_stats'])
  assert all(jax.tree_util.tree_leaves(changed))
  y_eval = model.apply(variables, x, train=False)
  assert not np.allclose(y_train, y_eval)  # batch vs running statistics
  with pytest.raises(Exception, match='batch_stats'):
    model.apply(variables, x, train=True)  # must be declared mutable


def test_batch_norm_off_has_no_batch_stats():
  config = base.get_config()
  config.model.batch_norm = False
  _, variables = _init(config)
  assert 'batch_stats' not in variables
  assert models.count_params(variables['params']) == 32353


def test_noise_floor_is_the_local_minimum_and_skips_zeros():
  band = np.full(200, 0.3, np.float32)
  band[80:120] = 0.9  # speech on top of a steady floor
  band[:10] = 0.0  # padding
  x = jnp.asarray(band)[None, None, :, None]
  floor = np.asarray(models.noise_floor(x, radius=24, smooth=1))[0, 0, :, 0]
  np.testing.assert_allclose(floor[10:], 0.3)  # also under the speech
  np.testing.assert_allclose(floor[:10], 0.3)  # zeros are not noise
  assert float(models.noise_floor(jnp.zeros((1, 2, 5, 1)), 2, 3).max()) == 0


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
  got = np.asarray(models.quiet_mean(jnp.asarray(x), radius=5, fraction=0.3))
  for b in range(2):
    np.testing.assert_allclose(got[b, ..., 0],
                               _quiet_mean_reference(x[b, ..., 0], 5, 0.3),
                               rtol=1e-6)
  assert float(models.quiet_mean(jnp.zeros((1, 2, 5, 1)), 2, 0.5).max()) == 0


def test_subtract_noise_is_spectral_subtraction_in_power():
  """g = 2 and least gain f: max(P - 2 N, f P), as `baselines` computes it."""
  rng = np.random.default_rng(0)
  x = rng.uniform(0.2, 1.0, (1, 8, 16, 1)).astype(np.float32)
  noise = np.full_like(x, 0.5)
  f = 0.05
  logits = np.concatenate([np.zeros_like(x),
                           np.full_like(x, np.log(f / (1 - f)))], axis=-1)
  y = models.subtract_noise(jnp.asarray(x), jnp.asarray(noise),
                            jnp.asarray(logits), 1 / 4, 4.0)
  p, n = x.astype(np.float64) ** 4, noise.astype(np.float64) ** 4
  least = models._MIN_GAIN + (1 - models._MIN_GAIN) * f
  np.testing.assert_allclose(np.asarray(y, np.float64) ** 4,
                             np.maximum(p - 2 * n, least * p), rtol=1e-4)


@pytest.mark.parametrize('estimate', models.NOISE_ESTIMATES)
def test_subtract_mode_is_finite_with_silence_and_chunks_like_whole(estimate):
  """Zero frames give finite outputs and gradients, and the noise estimate
  is local: windows with margin >= the receptive radius equal one pass."""
  from mel_ae import whole_file  # pylint: disable=g-import-not-at-top
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
