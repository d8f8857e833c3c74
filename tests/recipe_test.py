"""The metric-aligned recipe's pieces: U-Net, log-power domain, raw-power
loss, time flips, flip-averaged inference, noisy validation, the fitted
noise model and its fallback."""
import functools
import json
import logging
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import as_denoise
from conftest import fake_mel
from configs import base
import mel_ae
from mel_ae import baselines
from mel_ae import features
from mel_ae import fit_noise
from mel_ae import input_pipeline
from mel_ae import metrics
from mel_ae import models
from mel_ae import output_forms
from mel_ae import recipes
from mel_ae import settings
from mel_ae import train
from mel_ae import training_data
from mel_ae import whole_file


def _unet_config():
  config = base.get_config()
  config.model.name = 'unet'
  config.model.encoder_channels = (4, 8, 16)
  config.model.kernel_size = 3
  config.model.output_kernel_size = 1
  config.model.output_mode = 'residual'
  return config


def test_unet_keeps_the_shape_and_its_residual_starts_from_the_input():
  config = _unet_config()
  model = models.build_model(config.model)
  x = jax.random.uniform(jax.random.key(0), (2, 128, 40, 1))
  variables = model.init(jax.random.key(1), x, train=False)
  assert models.stride(config.model) == 4
  assert model.apply(variables, x).shape == x.shape
  # A zero last conv: the residual output is the input itself.
  params = dict(variables['params'])
  last = max((k for k in params if k.startswith('Conv_')),
             key=lambda k: int(k.split('_')[1]))
  params[last] = jax.tree_util.tree_map(jnp.zeros_like, params[last])
  np.testing.assert_array_equal(
      model.apply({**variables, 'params': params}, x), x)
  config.model.output_mode = 'image'
  assert not np.allclose(models.build_model(config.model).apply(
      {**variables, 'params': params}, x), x)


def test_log_domain_is_exactly_invertible_in_natural_log_units():
  rng = np.random.default_rng(0)
  mels = [fake_mel(rng, 50) for _ in range(3)]
  normalizer = features.fit_normalizer(mels, 'log', log_eps=1e-6)
  z = normalizer.forward(mels[0])
  assert np.mean([normalizer.forward(m) for m in mels]) == (
      pytest.approx(0.0, abs=1e-5))
  # A residual of ln 2 doubles the power.
  np.testing.assert_allclose(normalizer.inverse(z + np.log(2)),
                             2 * mels[0] + 1e-6, rtol=1e-5)
  np.testing.assert_allclose(normalizer.inverse(z), mels[0], rtol=2e-6)
  np.testing.assert_allclose(
      np.asarray(normalizer.inverse(jnp.asarray(z), xp=jnp)), mels[0],
      rtol=1e-4)
  assert np.isfinite(normalizer.inverse(jnp.full((2,), 1e6), xp=jnp)).all()
  assert normalizer.mean_power == pytest.approx(np.mean(mels))
  restored = features.Normalizer.from_dict(normalizer.to_dict())
  assert restored == normalizer
  with pytest.raises(ValueError, match='all zero'):
    features.fit_normalizer([np.zeros((128, 4))], 'log')


def test_power_loss_is_the_competition_mse_plus_the_log_term():
  rng = np.random.default_rng(1)
  clean = [fake_mel(rng, 32) for _ in range(2)]
  normalizer = features.fit_normalizer(clean, 'log')
  target = normalizer.forward(np.stack(clean))[..., None]
  pred = target + rng.normal(0, 0.02, target.shape).astype(np.float32)
  config = base.get_config()
  config.train.loss = 'power'
  loss = recipes.Recipe.of(config).loss(normalizer)
  p, q = normalizer.inverse(pred), normalizer.inverse(target)
  assert float(loss(jnp.asarray(pred), jnp.asarray(target))) == pytest.approx(
      np.mean((p - q) ** 2), rel=1e-4)
  config.train.loss_log_weight = 0.5
  loss = recipes.Recipe.of(config).loss(normalizer)
  floor = q.max(axis=(1, 2, 3), keepdims=True) * 1e-8
  log_term = np.mean((np.log(np.maximum(p, floor))
                      - np.log(np.maximum(q, floor))) ** 2)
  assert float(loss(jnp.asarray(pred), jnp.asarray(target))) == pytest.approx(
      np.mean((p - q) ** 2) + 0.5 * log_term, rel=1e-4)
  assert metrics.LSD_TOP_DB == 80.0  # the floor above: 1e-8 of the peak


def test_power_loss_in_data_units_is_the_same_at_any_level():
  rng = np.random.default_rng(3)
  clean = [fake_mel(rng, 32) for _ in range(2)]
  config = base.get_config()
  config.train.loss = 'power'
  config.train.loss_log_weight = 0.6
  config.train.loss_power_unit = 'data'

  def losses(levels):
    out = []
    for level in levels:
      mels = [level * m for m in clean]
      normalizer = features.fit_normalizer(mels, 'log', log_eps=1e-30)
      target = normalizer.forward(np.stack(mels))[..., None]
      pred = target + 0.05 * np.sin(np.arange(32, dtype=np.float32))[:, None]
      loss = recipes.Recipe.of(config).loss(normalizer)
      out.append(float(loss(jnp.asarray(pred), jnp.asarray(target))))
    return out
  at_levels = losses((1e-2, 1.0, 1e2))
  np.testing.assert_allclose(at_levels, at_levels[1], rtol=1e-4)
  # In absolute units the raw-power term grows with the level squared.
  config.train.loss_power_unit = 'absolute'
  config.train.loss_log_weight = 0.0
  quiet, loud = losses((1.0, 1e2))
  assert loud == pytest.approx(1e4 * quiet, rel=1e-3)
  config.train.loss_power_unit = 'decibels'
  with pytest.raises(train.ConfigError, match='loss_power_unit'):
    train.validate_config(config)


def test_border_frames_leave_the_crop_edges_out_of_the_loss():
  rng = np.random.default_rng(2)
  clean = [fake_mel(rng, 32) for _ in range(2)]
  normalizer = features.fit_normalizer(clean, 'log')
  target = jnp.asarray(normalizer.forward(np.stack(clean))[..., None])
  pred = target + jnp.asarray(rng.normal(0, 0.02, target.shape), jnp.float32)
  config = base.get_config()
  config.train.loss = 'power'
  config.train.loss_log_weight = 0.3
  plain = recipes.Recipe.of(config).loss(normalizer)
  config.train.loss_border_frames = 4
  bordered = recipes.Recipe.of(config).loss(normalizer)
  # Only the middle 24 of 32 frames count: the edges may be anything.
  wild_edges = pred.at[:, :, :4].set(9.0).at[:, :, -4:].set(-9.0)
  assert float(bordered(wild_edges, target)) == pytest.approx(
      float(plain(pred[:, :, 4:-4], target[:, :, 4:-4])), rel=1e-6)
  assert float(plain(wild_edges, target)) > 10 * float(plain(pred, target))
  config.train.loss_border_frames = 64
  with pytest.raises(train.ConfigError, match='loss_border_frames'):
    train.validate_config(config)


def test_time_flips_reverse_input_and_target_together(tiny_config):
  as_denoise(tiny_config, ('white',))
  tiny_config.train.batch_size = 16
  data = training_data.load_data(tiny_config)
  plain = training_data.make_sampler(tiny_config, data)
  tiny_config.data.time_flip = True
  flipped = training_data.make_sampler(tiny_config, data)
  a, b = plain(5), flipped(5)
  same = [np.array_equal(a['input'][i], b['input'][i]) for i in range(16)]
  reversed_ = [np.array_equal(a[k][i, :, ::-1], b[k][i])
               for i in range(16) if not same[i] for k in a]
  assert 0 < sum(same) < 16 and all(reversed_)
  np.testing.assert_array_equal(flipped(5)['input'], b['input'])


def test_flip_average_is_the_mean_of_both_directions_in_power():
  config = _unet_config()
  model = models.build_model(config.model)
  mel = fake_mel(np.random.default_rng(2), 70)
  normalizer = features.fit_normalizer([mel], 'log')
  variables = jax.jit(functools.partial(model.init, train=False))(
      jax.random.key(0), jnp.zeros((1, 128, 64, 1)))
  infer = config.infer
  one_way = functools.partial(whole_file.denoise_power, model, variables,
                               normalizer)
  forward = one_way([mel], infer)[0]
  backward = one_way([mel[:, ::-1]], infer)[0][:, ::-1]
  infer.flip_average = True
  np.testing.assert_allclose(one_way([mel], infer)[0],
                             (forward + backward) / 2, rtol=1e-5)


def test_spectral_subtraction_weight_averages_the_two_in_log_power():
  config = _unet_config()
  model = models.build_model(config.model)
  mel = fake_mel(np.random.default_rng(3), 70)
  variables = jax.jit(functools.partial(model.init, train=False))(
      jax.random.key(1), jnp.zeros((1, 128, 64, 1)))
  one_way = functools.partial(whole_file.denoise_power, model, variables,
                               features.fit_normalizer([mel], 'log'), [mel])
  infer = settings.fill('infer', config.infer)
  alone = one_way(infer)[0].astype(np.float64)
  subtracted = baselines.spectral_subtraction(mel.astype(np.float64),
                                             over_subtraction=3.0)
  infer.spectral_subtraction_weight = 0.25
  infer.spectral_subtraction_factor = 3.0
  np.testing.assert_allclose(one_way(infer)[0],
                             alone ** 0.75 * subtracted ** 0.25, rtol=1e-5)
  infer.spectral_subtraction_weight = 1.5
  assert [m for ok, m in whole_file.check_config(infer, 4) if not ok] == [
      'infer.spectral_subtraction_weight must be in [0, 1]']


def test_denoise_validation_is_noisy_fixed_and_scored(tiny_config):
  as_denoise(tiny_config, ('gain',))
  tiny_config.noise.val_draws = 3
  data = training_data.load_data(tiny_config)
  bank = training_data.make_noise_bank(tiny_config, data)
  val = training_data.make_validation(tiny_config, data, bank)
  again = training_data.make_validation(tiny_config, data, bank)
  np.testing.assert_array_equal(val.inputs, again.inputs)
  assert not np.allclose(val.inputs, val.targets)
  # Three draws of the noise on the same windows, one block after another.
  inputs, targets = (np.split(a, 3) for a in (val.inputs, val.targets))
  windows, _ = input_pipeline.tile_windows(
      data.val, tiny_config.data.crop_frames, data.normalizer.silence)
  for block in targets:
    np.testing.assert_array_equal(block, windows)
  assert not np.allclose(inputs[0], inputs[1])
  # The noisy inputs themselves, scored as the prediction.
  scores = train._validation_metrics(val.inputs, val, data.normalizer)  # pylint: disable=protected-access
  assert scores['val_power_mse'] > 0 and scores['val_lsd_db'] > 0
  # With crop edges out of the loss, validation leaves them out too.
  bordered = training_data.make_validation(tiny_config, data, bank, 4)
  np.testing.assert_array_equal(bordered.inputs, val.inputs)
  assert not bordered.mask[:, :, :4].any() and not bordered.mask[:, :, -4:].any()
  np.testing.assert_array_equal(bordered.mask[:, :, 4:-4], val.mask[:, :, 4:-4])
  val.mask[0] = 0  # a window may have no frames left to score
  assert np.isfinite(list(train._validation_metrics(  # pylint: disable=protected-access
      val.inputs, val, data.normalizer).values())).all()


def test_fitted_noise_is_written_or_falls_back_in_one_line(
    tiny_config, tmp_path, corpus, caplog):
  caplog.set_level(logging.INFO)
  as_denoise(tiny_config, ('fitted',))
  tiny_config.noise.model_min_frames = 8
  fallback = fit_noise.fit(tiny_config, str(tmp_path / 'none'))
  assert fallback.model is None
  assert fallback.kinds == tuple(tiny_config.noise.additive_kinds)
  bank = training_data.make_noise_bank(
      tiny_config, training_data.load_data(tiny_config), fallback)
  assert set(bank.corruptions) == set(tiny_config.noise.additive_kinds)
  assert bank.additive
  assert sum('synthetic noise bank' in m for m in caplog.messages) == 1
  assert not os.path.exists(tmp_path / 'none' / 'noise_model.png')
  tiny_config.data.noisy_dir = corpus['test_noisy']  # unpaired, here
  fit = fit_noise.fit(tiny_config, str(tmp_path / 'fitted'))
  data = training_data.load_data(tiny_config)
  with pytest.raises(ValueError, match="the noise stage's fit"):
    training_data.make_noise_bank(tiny_config, data)  # Never fitted here.
  bank = training_data.make_noise_bank(tiny_config, data, fit)
  # These noisy files are clean + exponential noise: additive, so the
  # synthetic additive prior comes along.
  assert fit.model.hypothesis == 'additive' and bank.model == fit.model
  assert set(bank.corruptions) == {'fitted'} | set(
      tiny_config.noise.additive_kinds)
  with open(tmp_path / 'fitted' / 'noise_model.json') as f:
    assert json.load(f)['noise_model']['gain_distribution'] in (
        'uniform', 'loguniform')
  assert os.path.exists(tmp_path / 'fitted' / 'noise_model.png')
  assert any(m.startswith('noise model:') for m in caplog.messages)


def test_kernel_output_is_a_weighted_mean_of_the_neighbours_power():
  rng = np.random.default_rng(3)
  z = rng.normal(size=(1, 6, 9, 1)).astype(np.float32)
  logits = rng.normal(size=(1, 6, 9, 3 * 5 + 1)).astype(np.float32)
  got = np.asarray(output_forms.kernel_output(jnp.asarray(z), jnp.asarray(logits),
                                        (3, 5)))[0, ..., 0]
  padded = np.pad(z[0, ..., 0], ((1, 1), (2, 2)), mode='edge')
  weights = np.exp(logits[0, ..., :-1])
  weights /= weights.sum(-1, keepdims=True)
  for f, t in [(0, 0), (3, 4), (5, 8)]:
    neighbours = padded[f:f + 3, t:t + 5].ravel()
    power = np.exp(logits[0, f, t, -1]) * np.dot(weights[f, t],
                                                  np.exp(neighbours))
    assert got[f, t] == pytest.approx(np.log(power), rel=1e-5)


@pytest.mark.parametrize('kind', features.KINDS)
def test_padding_is_zero_power_in_every_domain(kind):
  mel = fake_mel(np.random.default_rng(4), 20)
  normalizer = features.fit_normalizer([mel], kind)
  windows, mask = input_pipeline.tile_windows([normalizer.forward(mel)], 32,
                                              normalizer.silence)
  # 'db' cannot go below top_db under the peak: its silence is 1e-8 of it.
  quiet = 1e-7 * mel.max()
  assert mask[0, 0, 20:, 0].sum() == 0
  np.testing.assert_allclose(normalizer.inverse(windows[0, :, 20:, 0]), 0,
                             atol=quiet)
  windows = whole_file._windows(normalizer.forward(mel), 16, 8,  # pylint: disable=protected-access
                                normalizer.silence, 'silence')
  np.testing.assert_allclose(normalizer.inverse(windows[0, :, :8]), 0,
                             atol=quiet)


@pytest.mark.parametrize('kinds, decided', [(('gain',), 'kernel'),
                                            (('white',), 'residual')])
def test_fitted_output_is_decided_saved_and_resumed(tiny_config, tmp_path,
                                                    kinds, decided):
  """output_mode='fitted': the noise stage decides, the checkpoint keeps
  the decision beside the config, and rerunning resumes that model."""
  as_denoise(tiny_config, kinds)
  tiny_config.model.name = 'unet'
  tiny_config.model.encoder_channels = (4, 8)
  tiny_config.model.kernel_size = 3
  tiny_config.model.output_kernel_size = 1
  tiny_config.model.output_mode = 'fitted'
  tiny_config.data.transform = 'log'
  tiny_config.data.test_noisy_dir = tiny_config.data.test_clean_dir = ''
  tiny_config.train.num_steps = 3
  workdir = str(tmp_path / 'run')
  fit_noise.fit(tiny_config, workdir)
  train.train_and_evaluate(tiny_config, workdir)
  denoiser = mel_ae.load(workdir)
  assert denoiser.output_mode == decided
  assert denoiser.config.model.output_mode == 'fitted'  # As started.
  tiny_config.train.num_steps = 4
  state = train.train_and_evaluate(tiny_config, workdir)
  assert int(state.step) == 4
  assert tiny_config.model.output_mode == 'fitted'  # The caller's is kept.
