"""The 'gain' noise kind (the 2020 competition's per-bin gain) and the
generalised bank: seeded, the configured distribution, old kinds untouched."""
import numpy as np
import pytest

from conftest import as_denoise
from conftest import fake_mel
from mel_ae import audio
from mel_ae import noise_bank
from mel_ae import noise_model
from mel_ae import training_data

# Batch sums of the denoising sampler (tiny corpus, every additive kind, the
# random cross term on), recorded with the bank as it was before 'gain' and
# 'fitted' existed (commit 18bb838): the generalised bank must not move them.
_GOLDEN_SUMS = {1: 11885.556764751673, 2: 10816.722467631102,
                3: 11848.774231255054}


@pytest.mark.parametrize('distribution, gain_range', [
    ('uniform', (0.001, 2.0)), ('uniform', (0.5, 1.5)),
    ('loguniform', (0.01, 4.0))])
def test_gain_kind_draws_the_configured_distribution(tiny_config, distribution,
                                                     gain_range):
  tiny_config.noise.kinds = ('gain',)
  tiny_config.noise.gain_distribution = distribution
  tiny_config.noise.gain_range = gain_range
  bank = noise_bank.build_noise_bank(tiny_config.noise, audio.MelSpec(), [],
                                     [], seed=0)
  clean = fake_mel(np.random.default_rng(0), 2000).astype(np.float64)
  gain = bank.corrupt(clean, np.random.default_rng(1)) / clean
  low, high = gain_range
  assert low <= gain.min() and gain.max() <= high
  # 256,000 draws: the sample moments are within ~0.3 % (5 standard errors)
  # of the distribution's; 1 % is the tolerance.
  if distribution == 'uniform':
    expected_mean, expected_std = (low + high) / 2, (high - low) / np.sqrt(12)
  else:
    expected_mean = (high - low) / np.log(high / low)
    expected_std = np.sqrt((high ** 2 - low ** 2) / (2 * np.log(high / low))
                           - expected_mean ** 2)
  assert gain.mean() == pytest.approx(expected_mean, rel=0.01)
  assert gain.std() == pytest.approx(expected_std, rel=0.01)
  assert np.log(gain).std() == pytest.approx(
      noise_model.log_gain_std(distribution, gain_range), rel=0.01)


def test_gain_kind_is_seeded_and_a_pure_function_of_the_step(tiny_config):
  config = as_denoise(tiny_config, ('gain',))
  data = training_data.load_data(config)
  first, again = training_data.make_sampler(config, data), training_data.make_sampler(config,
                                                                      data)
  np.testing.assert_array_equal(first(3)['input'], again(3)['input'])
  assert not np.array_equal(first(3)['input'], first(4)['input'])
  config.seed = 1
  other = training_data.make_sampler(config, training_data.load_data(config))
  assert not np.array_equal(first(3)['input'], other(3)['input'])


def test_existing_kinds_give_the_batches_they_gave_before(tiny_config):
  config = as_denoise(tiny_config, noise_bank.SYNTHETIC
                           + ('babble', 'estimated'))
  config.noise.cross_std = 0.4
  config.data.noisy_dir = config.data.test_noisy_dir  # 'estimated' needs one
  sampler = training_data.make_sampler(config, training_data.load_data(config))
  for step, total in _GOLDEN_SUMS.items():
    batch = sampler(step)['input'].astype(np.float64)
    assert batch.sum() == pytest.approx(total, rel=1e-9)


def test_new_kinds_leave_the_other_kinds_textures_alone(tiny_config):
  rng = np.random.default_rng(2)
  clean = [fake_mel(rng, 80) for _ in range(5)]
  spec = audio.MelSpec()
  tiny_config.noise.seconds = 2.0
  plain = noise_bank.build_noise_bank(tiny_config.noise, spec, clean, [], 0)
  tiny_config.noise.kinds = ('gain',) + tuple(tiny_config.noise.kinds)
  more = noise_bank.build_noise_bank(tiny_config.noise, spec, clean, [], 0)
  assert set(more.corruptions) - set(plain.corruptions) == {'gain'}
  for kind, additive in plain.corruptions.items():
    for a, b in zip(additive.textures, more.corruptions[kind].textures):
      np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize('distribution, gain_range', [
    ('gaussian', (0.5, 1.5)), ('uniform', (0.0, 2.0)), ('uniform', (2.0, 1.0))])
def test_bad_gain_settings_are_refused_in_one_line(tiny_config, distribution,
                                                    gain_range):
  tiny_config.noise.kinds = ('gain',)
  tiny_config.noise.gain_distribution = distribution
  tiny_config.noise.gain_range = gain_range
  with pytest.raises(ValueError, match='noise.gain_') as error:
    noise_bank.build_noise_bank(tiny_config.noise, audio.MelSpec(), [], [], 0)
  assert '\n' not in str(error.value)
