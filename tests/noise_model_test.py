"""The noise model fitted from unpaired noisy files: it tells the embedded
corpus' gain family from its additive one and says by what margin, refuses
what it cannot fit, and the 'fitted' bank kind draws noise that looks like
the noisy files. Corpora unlike the embedded one: noise_corpora_test.py."""
import dataclasses
import functools
import json
import os

import numpy as np
import pytest

from configs import denoise
from mel_ae import audio
from mel_ae import fit_noise
from mel_ae import input_pipeline
from mel_ae import noise
from mel_ae import noise_bank
from mel_ae import noise_model
from mel_ae import settings
from mel_ae import train

_CORPUS = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), 'mel_ae', 'corpus')
_SPEC = audio.MelSpec()
# The embedded gain family's noise: clean * U(0.001, 2.0) per bin.
_GAIN_STD = noise_model.log_gain_std('uniform', (0.001, 2.0))


@functools.lru_cache(maxsize=None)
def _folder(*parts):
  """The files as training loads them (float32)."""
  return input_pipeline.load_folder(os.path.join(_CORPUS, *parts), _SPEC,
                                    1).mels


@functools.lru_cache(maxsize=None)
def _fit(*noisy_parts):
  return noise_model.fit(_folder('train'), _folder(*noisy_parts),
                         settings.fill('noise', None), _SPEC, seed=0)


def test_fit_finds_the_competition_gain_and_no_floor_on_the_gain_corpus():
  model = _fit('gain', 'noisy')
  low, high = model.gain_range
  # Measured: U(0.0079, 1.88), log-gain std 0.93 (0.985 for U(0.001, 2));
  # the window's floor, the files' own float16 clip at 1e-4, hides the
  # lowest gains. The upper end follows the mean power, and the clean
  # versions of these 20 sentences carry 5.2 % less power than the
  # training files.
  assert model.hypothesis == 'gain' and not model.additive
  assert high == pytest.approx(2.0, rel=0.10) and low < 0.05
  assert model.log_gain_std == pytest.approx(_GAIN_STD, rel=0.10)
  assert model.distance < 0.25 * model.clean_distance
  # Measured: 7.4 dB of distance better than the rival (no noise), at a
  # resolution of 0.4.
  assert model.rival == 'none' and model.margin > 5 * model.resolution


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_fit_finds_an_additive_floor_and_no_gain_on_the_additive_corpus(seed):
  """Measured (seed 0): no gain at all, mean floor 10.6 dB above the clean
  quiet frames, its level std 8.5 dB between files (SNRs 0-15 dB, five
  noises); the gain alone fits 2.5 dB of distance worse, at a resolution
  of 1.1."""
  model = noise_model.fit(_folder('train'), _folder('noisy'),
                          settings.fill('noise', None), _SPEC, seed)
  assert model.hypothesis == 'additive' and model.gain_range == (1.0, 1.0)
  assert model.floor_mean_db > model.clean_floor_db + 3
  assert model.file_std_db > 3
  assert model.distance < 0.5 * model.clean_distance
  assert model.rival == 'gain' and model.margin > model.resolution


def test_the_simplest_hypothesis_within_the_resolution_is_chosen():
  distances = {'none': 9.0, 'additive': 2.0, 'gain': 5.0, 'both': 1.8}
  assert noise_model._choose(distances, 0.5, 1.0) == (
      'additive', ('additive', 'both'))
  assert noise_model._choose(distances, 0.1, 1.0) == ('both', ('both',))
  assert noise_model._choose({**distances, 'none': 2.2}, 0.5, 1.0)[0] == (
      'none')
  # Additive noise and a gain alike: both, the safer; said in one line.
  tied = {**distances, 'gain': 2.1}
  chosen, explaining = noise_model._choose(tied, 0.5, 1.0)
  assert chosen == 'both'
  model = dataclasses.replace(_fit('noisy'), hypothesis=chosen,
                              distances=tied, explaining=explaining)
  assert model.undecided and '\n' not in model.summary()
  assert model.summary().startswith(
      'noise model: cannot tell additive noise from a per-bin gain '
      '(histogram distances 2.00 and 2.10 dB, resolution')


def test_config_refuses_a_negative_tolerance(tiny_config):
  tiny_config.noise.model_tolerance = -0.1
  with pytest.raises(train.ConfigError,
                     match='noise.model_tolerance must be >= 0'):
    train.validate_config(tiny_config)


def test_fit_recovers_the_parameters_of_its_own_simulation():
  config = settings.fill('noise', None)
  truth = noise_model.NoiseModel(
      'uniform', (0.3, 1.5), (-25.0,) * 128,
      tuple(noise_model.band_dof(_SPEC)), file_std_db=0.0, frame_std_db=4.0,
      clean_floor_db=0.0)
  rng = np.random.default_rng(5)
  noisy = [truth.simulate(c, rng) for c in _folder('test', 'clean')]
  model = noise_model.fit(_folder('train'), noisy, config, _SPEC, seed=0)
  # Measured: both, log-gain std 0.33 (0.44 drawn), floor -28.0 dB median,
  # 5.7 dB frame to frame (4 drawn). A floor 7.5 dB below the clean files'
  # own: the drawn parameters fit 0.05 dB of distance worse than these, far
  # within the resolution (0.70), so the gain's spread is known to ~25 %.
  assert model.hypothesis == 'both'
  assert model.log_gain_std == pytest.approx(truth.log_gain_std, rel=0.25)
  assert model.floor_median_db == pytest.approx(-25.0, abs=3.0)
  assert model.frame_std_db == pytest.approx(4.0, abs=2.0)


def test_band_dof_is_white_noises_measured_fluctuation():
  rng = np.random.default_rng(0)
  mel = audio.audio_to_mel(noise.white(30 * _SPEC.sr, rng).astype(np.float32),
                           _SPEC).astype(np.float64)
  measured = mel.mean(axis=1) ** 2 / mel.var(axis=1)
  # 1,300 frames: each band's variance is known to about 10 %.
  np.testing.assert_allclose(measured[1:], noise_model.band_dof(_SPEC)[1:],
                             rtol=0.2)


@pytest.mark.parametrize('noisy, message', [
    ([np.ones((128, 3))] * 2, '6 frames in all, the fit needs at least 32'),
    ([np.zeros((128, 50))] * 2, 'every value is 0, nothing to fit'),
])
def test_fit_refuses_what_it_cannot_fit_in_one_line(noisy, message):
  with pytest.raises(noise_model.NoiseModelError,
                     match='noise model: /data/noisy: ' + message) as error:
    noise_model.fit(_folder('train'), noisy, settings.fill('noise', None), _SPEC, 0,
                    source='/data/noisy')
  assert isinstance(error.value, ValueError) and '\n' not in str(error.value)


def test_model_round_trips_through_json_and_plots(tmp_path):
  model = _fit('gain', 'noisy')
  assert noise_model.NoiseModel.from_dict(
      json.loads(json.dumps(model.to_dict()))) == model
  noisy = _folder('gain', 'noisy')
  noise_model.plot(str(tmp_path / 'noise_model.png'), model,
                   _folder('train')[:10], noisy[:5], settings.fill('noise', None),
                   seed=0)
  assert (tmp_path / 'noise_model.png').stat().st_size > 10_000
  assert model.summary().startswith(
      'noise model: a per-bin gain, over no noise by +')
  assert '\n' not in model.summary()


def test_fitted_kind_draws_crops_that_look_like_the_noisy_files():
  config = settings.fill('noise', None)
  config.kinds = ('fitted',)
  clean, noisy = _folder('train'), _folder('gain', 'noisy')
  bank = noise_bank.build_noise_bank(config, _SPEC, clean, noisy, seed=0)
  assert bank.model == _fit('gain', 'noisy')
  rng = np.random.default_rng(0)
  drawn = [bank.corrupt(c, rng) for c in clean[:40]]
  # Measured: 0.39 against 6.7 for the clean files as they are.
  assert (noise_model.histogram_distance(drawn, noisy, config)
          < 0.25 * noise_model.histogram_distance(clean, noisy, config))
  # A model handed in is used as it is: no noisy files needed.
  again = noise_bank.build_noise_bank(config, _SPEC, clean, [], 0, bank.model)
  assert again.model is bank.model and set(again.corruptions) == {'fitted'}


@pytest.mark.parametrize('family, textured', [(('noisy',), True),
                                               (('gain', 'noisy'), False)])
def test_fitted_floor_is_made_of_the_noisy_files_where_they_have_one(
    family, textured):
  """Additive corpus: the noisy files' own quiet frames at the fitted levels
  (their hum lines and babble), and the synthetic additive prior beside
  them; gain corpus: the model's own simulation alone. The family decides
  configs/denoise.py's output (the noise stage, mel_ae/fit_noise.py): a
  per-bin gain ('residual') where noise only adds power, a weighted mean of
  the neighbours' power ('kernel') where it scales the power."""
  run_config = denoise.get_config()
  config = run_config.noise
  bank = noise_bank.build_noise_bank(config, _SPEC, _folder('train'),
                                     _folder(*family), seed=0,
                                     model=_fit(*family), kinds=('fitted',))
  fitted = bank.corruptions['fitted']
  assert bool(fitted.textures) == textured == bank.additive
  decided = fit_noise.decide(run_config, _folder('train'), _folder(*family))
  assert decided.output_mode == ('residual' if textured else 'kernel')
  assert decided.model == _fit(*family)
  additive = set(config.additive_kinds) if textured else set()
  assert set(bank.corruptions) == {'fitted'} | additive
  clean = _folder('train')[0]
  rng = np.random.default_rng(0)
  noisy = fitted(clean, rng)
  assert noisy.shape == clean.shape and np.all(noisy >= 0)
  if textured:
    # A texture is one noisy file's quiet frames, scaled: its colour is
    # theirs (hum's low bands stand out), not the model's smooth floor.
    colours = [t.mean(axis=1) / t.mean() for t in fitted.textures]
    assert max(np.max(c) for c in colours) > 10


@pytest.mark.parametrize('family', [('noisy',), ('gain', 'noisy')])
def test_validation_noise_is_the_fitted_noise_never_trained_on(family):
  """Validation scores the data's own noise, not the synthetic prior: the
  fitted noise made of the last noise.val_noise_fraction of each noisy
  file's quiet frames, which the training textures leave out."""
  config = settings.section(denoise.get_config(), 'noise')
  bank = noise_bank.build_noise_bank(config, _SPEC, _folder('train'),
                                     _folder(*family), seed=0,
                                     model=_fit(*family), kinds=('fitted',))
  train, val = bank.corruptions['fitted'].textures, bank.validation.textures
  assert bank.validation.model is bank.model and len(train) == len(val)
  for kept, held_out in zip(train, val):
    whole = kept.shape[1] + held_out.shape[1]
    assert held_out.shape[1] == round(config.val_noise_fraction * whole)
    assert not np.any(np.all(kept[:, :, None] == held_out[:, None, :], axis=0))
  clean = _folder('train')[0]
  noisy = bank.corrupt_validation(clean, np.random.default_rng(0))
  assert noisy.shape == clean.shape and np.all(noisy >= 0)
  assert not np.allclose(noisy, clean)
  assert bool(val) == (family == ('noisy',))  # Gain: the model's simulation.


def test_without_a_fitted_noise_validation_draws_from_the_whole_bank():
  config = settings.fill('noise', None)
  config.kinds = ('white', 'hum')
  bank = noise_bank.build_noise_bank(config, _SPEC, _folder('train')[:4], [],
                                     seed=0)
  assert bank.validation is None
  clean = _folder('train')[0]
  np.testing.assert_array_equal(
      bank.corrupt_validation(clean, np.random.default_rng(3)),
      bank.corrupt(clean, np.random.default_rng(3)))


def test_own_texture_levels_keep_each_noisy_files_quiet_frame_power():
  config = settings.section(denoise.get_config(), 'noise')
  config.texture_levels = 'own'
  noisy = _folder('noisy')
  bank = noise_bank.build_noise_bank(config, _SPEC, _folder('train'), noisy,
                                     seed=0, model=_fit('noisy'),
                                     kinds=('fitted',))
  fitted = bank.corruptions['fitted']
  quiet = noise_model.quiet_frames(noisy[0], config.quiet_fraction)
  assert fitted.levels[0] == pytest.approx(float(quiet.mean()))
  # Silence in: out comes texture 0 (the only one here) at its file's level.
  single = noise_bank.Fitted(fitted.model, fitted.textures[:1],
                             fitted.levels[:1])
  texture = single.textures[0]
  out = single(np.zeros_like(texture), np.random.default_rng(0))
  np.testing.assert_allclose(out, fitted.levels[0] * texture)
  # Validation draws its held-out frames at the same levels.
  assert bank.validation.levels == fitted.levels


def test_fitted_floor_mixes_with_a_random_cross_term():
  """noise.cross_std > 0: each bin is off the powers' sum by 2 sqrt(S N)
  times N(0, cross_std); 0 draws nothing more (the same stream as before).
  Validation mixes with noise.val_cross_std whatever training does."""
  config = settings.section(denoise.get_config(), 'noise')
  config.cross_std = 0.3
  bank = noise_bank.build_noise_bank(config, _SPEC, _folder('train'),
                                     _folder('noisy'), seed=0,
                                     model=_fit('noisy'), kinds=('fitted',))
  crossed = bank.corruptions['fitted']
  assert crossed.cross_std == 0.3
  assert bank.validation.cross_std == config.val_cross_std
  plain = noise_bank.Fitted(crossed.model, crossed.textures, crossed.levels)
  clean = np.repeat(_folder('train')[0][:, :64], 8, axis=1)
  sum_of_powers = plain(clean, np.random.default_rng(5))
  noisy = crossed(clean, np.random.default_rng(5))
  noise_power = sum_of_powers - clean
  both = (clean > 1e-3) & (noise_power > 1e-3)
  term = (noisy - sum_of_powers)[both] / (2 * np.sqrt(clean * noise_power)[both])
  kept = noisy[both] > 0  # The floor at 0 clips the most negative draws.
  assert abs(np.std(term[kept]) - 0.3) < 0.05 and abs(np.mean(term)) < 0.05
  assert np.all(noisy >= 0)


def test_fitted_weight_sets_how_often_the_datas_own_noise_is_drawn():
  """noise.fitted_weight: the fitted kind against 1 for each prior kind;
  1 keeps the uniform draw (and its random stream)."""
  config = settings.section(denoise.get_config(), 'noise')
  clean, noisy, model = _folder('train'), _folder('noisy'), _fit('noisy')
  config.fitted_weight = 1.0
  assert not noise_bank.build_noise_bank(config, _SPEC, clean, noisy, seed=0,
                                         model=model).weights
  config.fitted_weight = 5.0
  bank = noise_bank.build_noise_bank(config, _SPEC, clean, noisy, seed=0,
                                     model=model)
  assert len(bank.corruptions) == 6 and bank.weights[0] == 5.0
  drawn = []
  bank = dataclasses.replace(bank, corruptions={
      kind: (lambda c, rng, kind=kind: drawn.append(kind) or c)
      for kind in bank.corruptions})
  rng = np.random.default_rng(0)
  for _ in range(2000):
    bank.corrupt(clean[0], rng)
  assert abs(drawn.count('fitted') / 2000 - 0.5) < 0.04
  # The gain family's bank is the fitted kind alone: nothing to weigh.
  assert not noise_bank.build_noise_bank(config, _SPEC, clean, _folder(
      'gain', 'noisy'), seed=0, model=_fit('gain', 'noisy')).weights
