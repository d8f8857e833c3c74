"""Noise generators: exact SNR, the right spectra, and reproducible."""
import numpy as np
import pytest
import scipy.signal

from mel_ae import noise

SR = 22050
N = 4 * SR


def _all_kinds(n, rng):
  waves = [np.sin(np.arange(3000) * f) for f in (0.05, 0.11, 0.2)]
  return {
      'white': noise.white(n, rng), 'pink': noise.pink(n, rng),
      'brown': noise.brown(n, rng), 'blue': noise.blue(n, rng),
      'hum': noise.hum(n, SR, rng, base=60.0),
      'band': noise.band_limited(n, SR, rng, 1000.0, 2000.0),
      'tones': noise.tones(n, SR, rng, [440.0, 1234.5]),
      'bursts': noise.bursts(n, SR, rng), 'clicks': noise.clicks(n, rng),
      'babble': noise.babble(waves, n, rng, talkers=2),
  }


def test_generators_are_zero_mean_unit_rms_and_seeded():
  first = _all_kinds(N, np.random.default_rng(3))
  again = _all_kinds(N, np.random.default_rng(3))
  other = _all_kinds(N, np.random.default_rng(4))
  for kind, x in first.items():
    assert x.shape == (N,), kind
    assert abs(noise.power(x) - 1) < 1e-9, kind
    assert abs(x.mean()) < (1e-2 if kind in ('bursts', 'clicks') else 1e-9)
    np.testing.assert_array_equal(x, again[kind], err_msg=kind)
    assert not np.array_equal(x, other[kind]), kind


@pytest.mark.parametrize('snr_db', [-5.0, 0.0, 7.3, 15.0, 40.0])
@pytest.mark.parametrize('kind', ['white', 'brown', 'hum', 'bursts'])
def test_mix_at_snr_is_exact(snr_db, kind):
  rng = np.random.default_rng(0)
  clean = 0.3 * noise.tones(N, SR, rng, [200.0, 330.0])
  mixed = noise.mix_at_snr(clean, 5.0 * _all_kinds(N, rng)[kind], snr_db)
  measured = 10 * np.log10(noise.power(clean) / noise.power(mixed - clean))
  assert abs(measured - snr_db) < 0.01


def test_mix_at_snr_rejects_bad_noise():
  with pytest.raises(ValueError, match='differ'):
    noise.mix_at_snr(np.ones(10), np.ones(11), 0.0)
  with pytest.raises(ValueError, match='silent'):
    noise.mix_at_snr(np.ones(10), np.zeros(10), 0.0)


@pytest.mark.parametrize('kind, slope', [('white', 0.0), ('pink', -1.0),
                                         ('brown', -2.0), ('blue', 1.0)])
def test_colours_have_their_spectral_slope(kind, slope):
  x = getattr(noise, kind)(N, np.random.default_rng(1))
  freqs, psd = scipy.signal.welch(x, SR, nperseg=4096)
  band = (freqs > 50) & (freqs < 8000)
  fitted = np.polyfit(np.log10(freqs[band]), np.log10(psd[band]), 1)[0]
  assert abs(fitted - slope) < 0.1, fitted


def test_hum_sits_on_mains_harmonics():
  x = noise.hum(SR, SR, np.random.default_rng(0), base=50.0, harmonics=4)
  spectrum = np.abs(np.fft.rfft(x)) ** 2  # 1 Hz bins.
  assert np.sum(spectrum[[50, 100, 150, 200]]) > 0.999 * spectrum.sum()
  assert spectrum[50] > spectrum[100] > spectrum[150]


def test_band_limited_stays_in_band():
  x = noise.band_limited(N, SR, np.random.default_rng(0), 1000.0, 2000.0)
  freqs = np.fft.rfftfreq(N, 1 / SR)
  power = np.abs(np.fft.rfft(x)) ** 2
  inside = (freqs >= 1000) & (freqs <= 2000)
  assert power[inside].sum() > 0.999 * power.sum()


def test_bursts_and_clicks_are_intermittent():
  rng = np.random.default_rng(0)
  bursts = noise.bursts(N, SR, rng, rate_hz=2.0, burst_s=0.05)
  assert np.mean(bursts == 0) > 0.5
  assert np.count_nonzero(noise.clicks(N, rng, 20)) <= 20
