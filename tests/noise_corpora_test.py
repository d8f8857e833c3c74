"""The noise fit on corpora unlike the embedded one (experiments/
noise_corpora): float16 and float32, levels shifted by 20 dB, floors from
-100 dB to true zeros, another voice, each with known noise. It finds the
kind (additive: no gain at all; gain: its log-std within 10 %), the
additive floor's level within 3 dB, and a set scaled by 10^k fits the same
noise, scaled."""
import functools
import os
import shutil

import numpy as np
import pytest

from configs import denoise
from experiments.noise_corpora import corpora
from mel_ae import fit_noise
from mel_ae import noise_model
from mel_ae import settings

_CORPUS = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), 'mel_ae', 'corpus')


@functools.lru_cache(maxsize=None)
def _speech(voice):
  """The training files of the embedded corpus or of a voice."""
  return corpora.speech(voice, _CORPUS)[0]


@functools.lru_cache(maxsize=None)
def _corpus(recipe: corpora.Recipe, scale: float = 1.0):
  """(clean, noisy, truth): the command's split of the recipe's speech (80
  clean, 20 made noisy), no test pairs, times `scale`."""
  train = _speech(recipe.voice)
  files, manifest = corpora.make(recipe, train[:80], train[80:], ())
  as_read = lambda split: [m.astype(np.float32) * np.float32(scale)
                           for m in files[split]]
  return as_read('train'), as_read('noisy'), manifest['truth']


@functools.lru_cache(maxsize=None)
def _fit(recipe: corpora.Recipe, scale: float = 1.0):
  clean, noisy, truth = _corpus(recipe, scale)
  return noise_model.fit(clean, noisy, settings.fill('noise', None), corpora.SPEC,
                         seed=0), truth


@pytest.mark.parametrize('recipe', [
    corpora.Recipe('white', dtype='float16'),
    corpora.Recipe('pink', level_db=-20.0),
    corpora.Recipe('brown', floor_db=None),
    corpora.Recipe('hum', level_db=20.0),
], ids=lambda r: r.name)
def test_additive_noise_is_found_without_a_gain_at_its_level(recipe):
  """Measured (80 clean, 20 noisy files; float32, 0 dB, -70 dB floor):
  the median file's floor within 0.0 (white), 0.3 (pink), 2.2 (brown),
  1.8 dB (hum) of the noise's power in the median file."""
  model, truth = _fit(recipe)
  assert model.hypothesis == 'additive' and model.log_gain_std == 0.0
  assert model.floor_file_mean_db == pytest.approx(truth['floor_db'], abs=3.0)
  assert model.margin > model.resolution


@pytest.mark.parametrize('recipe', [
    corpora.Recipe('babble'), corpora.Recipe('mixed', dtype='float16'),
    corpora.Recipe('mixed', floor_db=-40.0)], ids=lambda r: r.name)
def test_noise_of_several_colours_is_found_additive(recipe):
  """Babble, and the five kinds in turn: additive without a gain, the
  median file's floor within 3 dB of its power though the model has one
  colour (measured: 1.0 dB for babble, 0.1 for the five kinds in turn at
  any dtype, level or floor)."""
  model, truth = _fit(recipe)
  assert model.hypothesis == 'additive' and model.log_gain_std == 0.0
  assert model.floor_file_mean_db == pytest.approx(truth['floor_db'], abs=3.0)


@pytest.mark.parametrize('recipe', [
    corpora.Recipe('gain_uniform', floor_db=-100.0),
    corpora.Recipe('gain_uniform', dtype='float16'),
    corpora.Recipe('gain_uniform', floor_db=None),
    corpora.Recipe('gain_loguniform'),
], ids=lambda r: r.name)
def test_a_gain_is_found_with_its_spread_and_no_floor(recipe):
  """Measured: log-gain std 0.91-0.94 for U(0.001, 2) (0.99; on true
  zeros 0.94), 1.29 for logU(0.01, 1) (1.33)."""
  model, truth = _fit(recipe)
  assert model.hypothesis == 'gain' and not model.additive
  assert model.log_gain_std == pytest.approx(truth['log_gain_std'], rel=0.1)


def test_a_gain_and_additive_noise_are_found_together(monkeypatch):
  """Measured: log-gain std 1.00 (0.99), over additive alone by 3.2 dB of
  distance (resolution 0.6); the floor 2.9 dB low. The gain gives
  configs/denoise.py the 'kernel' output, as a gain alone does."""
  model, truth = _fit(corpora.Recipe('both'))
  assert model.hypothesis == 'both'
  assert model.log_gain_std == pytest.approx(truth['log_gain_std'], rel=0.1)
  assert model.floor_file_mean_db == pytest.approx(truth['floor_db'], abs=3.0)
  monkeypatch.setattr(noise_model, 'fit', lambda *args: model)
  clean, noisy, _ = _corpus(corpora.Recipe('both'))
  decided = fit_noise.decide(denoise.get_config(), clean, noisy)
  assert decided.model is model and decided.output_mode == 'kernel'


@pytest.mark.parametrize('recipe', [
    corpora.Recipe('none', floor_db=None),
    corpora.Recipe('none', dtype='float16', floor_db=-40.0)],
                         ids=lambda r: r.name)
def test_no_noise_is_found_as_none(recipe):
  model, _ = _fit(recipe)
  assert model.hypothesis == 'none' and model.gain_range == (1.0, 1.0)
  assert 'no noise' in model.summary()


@pytest.mark.parametrize('scale', [1e-2, 1e2])
@pytest.mark.parametrize('noise', ['both', 'mixed'])
def test_a_set_scaled_by_10_to_the_k_fits_the_same_noise_scaled(noise, scale):
  recipe = corpora.Recipe(noise)
  (model, _), (scaled, _) = _fit(recipe), _fit(recipe, scale)
  assert scaled.hypothesis == model.hypothesis
  assert scaled.gain_distribution == model.gain_distribution
  assert scaled.log_gain_std == pytest.approx(model.log_gain_std, abs=1e-6)
  np.testing.assert_allclose(np.subtract(scaled.floor_db, model.floor_db),
                             10 * np.log10(scale), atol=0.01)


@pytest.mark.skipif(shutil.which('espeak-ng') is None,
                    reason='another voice needs espeak-ng (experiments/voices)')
def test_another_voices_noise_is_found_alike():
  """espeak-ng's us_m7 (a male voice, not the embedded one) as the speech.
  Measured: the five kinds in turn additive without a gain, floor 2.1 dB
  low; U(0.001, 2) a gain of log-std 1.00 (0.99)."""
  additive, truth = _fit(corpora.Recipe('mixed', voice='us_m7'))
  assert additive.hypothesis == 'additive' and additive.log_gain_std == 0.0
  assert additive.floor_file_mean_db == pytest.approx(truth['floor_db'],
                                                      abs=3.0)
  gain, truth = _fit(corpora.Recipe('gain_uniform', voice='us_m7'))
  assert gain.hypothesis == 'gain' and not gain.additive
  assert gain.log_gain_std == pytest.approx(truth['log_gain_std'], rel=0.1)


@pytest.mark.skipif(
    not os.path.isdir('/usr/share/festival/voices/english/kal_diphone'),
    reason="Festival's kal voice (festvox-kallpc16k) is not installed")
@pytest.mark.parametrize('seed', range(4))
def test_a_16khz_voices_gain_spread_is_read_on_any_seed(seed):
  """Festival's kal, cut from a 16 kHz recording: its upper bands hold only
  the floor, and on one simulation a narrow log-uniform gain ties with the
  true wide uniform one. Measured on seeds 0-3: 0.96, 1.00, 0.90, 0.96
  (0.79, 1.00, 0.75, 0.96 when two simulations decided)."""
  clean, noisy, truth = _corpus(corpora.Recipe('gain_uniform', voice='kal'))
  model = noise_model.fit(clean, noisy, settings.fill('noise', None),
                          corpora.SPEC, seed=seed)
  assert model.hypothesis == 'gain' and model.gain_distribution == 'uniform'
  assert model.log_gain_std == pytest.approx(truth['log_gain_std'], rel=0.1)
