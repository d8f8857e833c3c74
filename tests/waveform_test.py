"""Audio in, audio out: the noisy STFT times the denoiser's gain."""
import struct
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from conftest import ROOT
from mel_ae import audio
from mel_ae import baselines
from mel_ae import waveform

SPEC = audio.MelSpec()


def _voiced(seconds: float, sr: int = 22050, seed: int = 0) -> np.ndarray:
  """A 140 Hz harmonic complex with a syllable-like envelope, plus noise."""
  t = np.arange(int(seconds * sr)) / sr
  tone = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 12))
  envelope = np.abs(np.sin(2 * np.pi * 1.5 * t))
  rng = np.random.default_rng(seed)
  return (0.2 * envelope * tone + 0.02 * rng.standard_normal(len(t))).astype(
      np.float32)


def _apply(wave, sr, gain, spec, block=waveform.BLOCK_FRAMES):
  """waveform.apply_gains on a mono array, joined."""
  return np.concatenate(list(waveform.apply_gains(
      lambda start, stop: wave[start:stop, None], len(wave), sr, [gain], spec,
      block=block)))[:, 0]


def _identity(mels):
  return [np.array(m) for m in mels]


def _silence(mels):
  return [np.zeros_like(m) for m in mels]


@pytest.mark.parametrize('pad_mode', audio.PAD_MODES)
@pytest.mark.parametrize('sr,n', [(22050, 2048), (22050, 22050 + 77),
                                  (16000, 16000 + 5), (48000, 48000)])
def test_unit_gain_gives_the_input_back(pad_mode, sr, n):
  spec = audio.MelSpec(pad_mode=pad_mode)
  wave = _voiced(n / sr, sr)[:n]
  frames = 1 + len(audio.resample(wave, sr, spec.sr)) // spec.hop_length
  out = _apply(wave, sr, np.ones((128, frames)), spec)
  assert out.shape == wave.shape and out.dtype == np.float32
  np.testing.assert_allclose(out, wave, atol=1e-6)


@pytest.mark.parametrize('pad_mode', audio.PAD_MODES)
@pytest.mark.parametrize('sr', [22050, 16000, 44100])
def test_blocks_give_what_one_pass_gives(sr, pad_mode):
  """Read, resampled, analysed and resynthesised 7 frames at a time, a
  stereo recording gives the mels of the whole and what one block gives."""
  spec = audio.MelSpec(pad_mode=pad_mode)
  wave = np.stack([_voiced(3.0, sr), _voiced(3.0, sr, seed=1)], axis=1)
  halve_high = lambda ms: [m * np.linspace(1, 0.1, 128)[:, None] for m in ms]
  whole, noisy, _ = waveform.denoise_wave(wave, sr, halve_high, spec,
                                          block=10 ** 6)
  for c in range(2):
    np.testing.assert_allclose(
        noisy[c], audio.audio_to_mel(audio.resample(wave[:, c], sr, spec.sr),
                                     spec), rtol=1e-5, atol=1e-6)
  blocked, blocked_noisy, _ = waveform.denoise_wave(wave, sr, halve_high,
                                                    spec, block=7)
  np.testing.assert_allclose(blocked_noisy[1], noisy[1], rtol=1e-5,
                             atol=1e-6)
  np.testing.assert_allclose(blocked, whole, atol=1e-6)
  assert not np.allclose(whole, wave, atol=1e-3)


@pytest.mark.parametrize('sr', [16000, 22050, 48000])
def test_bin_gain_rows_are_weighted_means_of_band_gains(sr):
  weights = audio.bin_gain_matrix(SPEC, sr)
  assert weights.shape == (1 + audio.stft_at(SPEC, sr).n_fft // 2, 128)
  assert weights.min() >= 0
  np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-6)
  top = np.fft.rfftfreq(audio.stft_at(SPEC, sr).n_fft, 1 / sr) > 11025
  assert np.all(weights[top, -1] == 1)  # above the mel: its top band


@pytest.mark.parametrize('sr', [16000, 22050, 44100])
def test_band_gains_act_on_their_own_frequencies_at_any_rate(sr):
  """Zeroing the bands above 4 kHz removes that part of the recording at
  its own rate, up to its Nyquist, and keeps the rest."""
  rng = np.random.default_rng(0)
  wave = rng.standard_normal(sr * 2).astype(np.float32) * 0.1
  high = audio.band_centres_hz(SPEC) > 4000

  def lowpass(mels):
    return [m * ~high[:, None] for m in mels]

  out, _, _ = waveform.denoise_wave(wave, sr, lowpass, SPEC)
  spectrum_in, spectrum_out = (np.abs(np.fft.rfft(x)) ** 2 for x in (wave,
                                                                       out))
  freqs = np.fft.rfftfreq(len(wave), 1 / sr)
  above, below = freqs > 4700, freqs < 3300
  assert spectrum_out[above].sum() < 1e-3 * spectrum_in[above].sum()
  np.testing.assert_allclose(spectrum_out[below].sum(),
                             spectrum_in[below].sum(), rtol=0.02)


@pytest.mark.parametrize('sr', [22050, 16000, 44100])
@pytest.mark.parametrize('channels', [None, 2])
def test_identity_denoiser_gives_the_recording_back(sr, channels):
  wave = _voiced(1.3, sr)
  if channels:
    wave = np.stack([wave, 0.5 * wave[::-1]], axis=1)
  out, noisy, denoised = waveform.denoise_wave(wave, sr, _identity, SPEC)
  assert out.shape == wave.shape and out.dtype == np.float32
  assert len(noisy) == len(denoised) == (channels or 1)
  np.testing.assert_allclose(out, wave, atol=1e-5)


@pytest.mark.parametrize('sr', [16000, 22050, 48000])
@pytest.mark.parametrize('power', [1.0, 2.0])
def test_attenuation_is_bounded_in_every_bin(sr, power):
  """A denoiser that removes everything, bounded at 12 dB, turns every bin
  down by exactly 12 dB, whatever the mel's power; unbounded, it leaves
  silence."""
  spec = audio.MelSpec(power=power)
  wave = _voiced(1.0, sr)
  out = waveform.denoise_wave(wave, sr, _silence, spec,
                              max_attenuation_db=12.0)[0]
  np.testing.assert_allclose(out, wave * 10 ** (-12 / 20), atol=1e-6)
  silent = waveform.denoise_wave(wave, sr, _silence, spec)[0]
  assert np.abs(silent).max() < 1e-6


def test_mel_attenuation_bound_holds_per_bin():
  rng = np.random.default_rng(0)
  noisy = rng.random((128, 40)).astype(np.float32) * 100
  denoised = noisy * rng.random(noisy.shape).astype(np.float32) ** 8
  bounded = waveform.limit_attenuation(denoised, noisy, 6.0)
  assert np.all(bounded >= noisy * 10 ** -0.6 * (1 - 1e-6))
  assert np.all(bounded >= denoised)
  assert np.any(bounded > denoised)
  with pytest.raises(ValueError, match='max_attenuation_db'):
    waveform.min_gain(-1.0)


def test_gain_follows_the_denoiser_where_speech_is():
  """Halving every band's power halves the recording's power."""
  wave = _voiced(1.0)
  out = waveform.denoise_wave(wave, 22050, lambda ms: [m / 2 for m in ms],
                              SPEC)[0]
  np.testing.assert_allclose(out, wave / np.sqrt(2), atol=1e-6)


def test_bad_shapes_are_refused():
  with pytest.raises(ValueError, match='expected a waveform'):
    waveform.denoise_wave(np.zeros((4, 4, 4)), 22050, _identity, SPEC)


def _wav_with_rate(path: str, rate: int) -> None:
  """A valid 16-bit WAV whose header claims `rate` (soundfile refuses to
  write absurd rates)."""
  soundfile.write(path, _voiced(0.5), 22050, subtype='PCM_16')
  with open(path, 'r+b') as f:
    f.seek(24)
    f.write(struct.pack('<I', rate))


def _run_denoise(args):
  return subprocess.run([sys.executable, '-m', 'mel_ae.denoise'] + args,
                        cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_denoise_command_writes_audio_like_its_input(tmp_path):
  """Rate, length, channels and sample format of each input; bad files
  named in one line each, the good ones still written, nothing replaced."""
  inputs, out = tmp_path / 'in', tmp_path / 'out'
  inputs.mkdir()
  mono16 = _voiced(1.2, 16000)
  soundfile.write(inputs / 'a.wav', mono16, 16000, subtype='PCM_16')
  stereo = np.stack([_voiced(0.9, 44100), _voiced(0.9, 44100, 1)], axis=1)
  soundfile.write(inputs / 'b.flac', stereo, 44100, subtype='PCM_24')
  soundfile.write(inputs / 'c.wav', _voiced(0.7), 22050, subtype='FLOAT')
  nan = _voiced(0.5)
  nan[100] = np.nan
  soundfile.write(inputs / 'nan.wav', nan, 22050, subtype='FLOAT')
  soundfile.write(inputs / 'eight.wav', _voiced(0.5), 22050, subtype='PCM_U8')
  soundfile.write(inputs / 'empty.wav', np.zeros(0), 22050, subtype='PCM_16')
  _wav_with_rate(str(inputs / 'rate0.wav'), 0)
  _wav_with_rate(str(inputs / 'rate1m.wav'), 1_000_000)
  _wav_with_rate(str(inputs / 'rate10.wav'), 10)
  (inputs / 'junk.ogg').write_bytes(b'not audio at all')
  soundfile.write(inputs / 'c.flac', _voiced(0.7), 22050)  # c.wav's names
  result = _run_denoise([f'--input={inputs}', f'--output={out}',
                         '--method=spectral_subtraction',
                         '--max_attenuation_db=20'])
  assert result.returncode == 1, result.stderr[-2000:]
  failures = [line.strip() for line in result.stderr.splitlines()
              if line.startswith('  ')]
  assert len(failures) == 8, result.stderr
  for name, why in [('nan.wav', 'NaN'), ('eight.wav', 'too coarse'),
                    ('empty.wav', 'no audio samples'),
                    ('rate0.wav', 'not a readable audio file'),  # libsndfile's refusal
                    ('rate1m.wav', 'sample rate 1000000 Hz'),
                    ('rate10.wav', 'sample rate 10 Hz'),
                    ('junk.ogg', 'not a readable audio file'),
                    ('c.wav', 'would replace those of')]:
    assert any(name in f and why in f for f in failures), (name, failures)
  assert 'note:' in result.stderr and '16000 Hz' in result.stderr
  for stem, source in [('a', 'a.wav'), ('b', 'b.flac'), ('c', 'c.flac')]:
    written, info = soundfile.read(out / f'{stem}.wav', always_2d=True), (
        soundfile.info(inputs / source))
    assert soundfile.info(out / f'{stem}.wav').samplerate == info.samplerate
    assert written[0].shape == (info.frames, info.channels)
    assert np.load(out / f'{stem}.npy').shape[0] == 128
  assert soundfile.info(out / 'a.wav').subtype == 'PCM_16'
  assert soundfile.info(out / 'b.wav').subtype == 'FLOAT'
  stereo_read, _ = soundfile.read(inputs / 'b.flac', dtype='float32')
  expected = waveform.denoise_wave(
      stereo_read, 44100,
      lambda ms: [waveform.limit_attenuation(
          baselines.spectral_subtraction(m), m, 20) for m in ms],
      SPEC, max_attenuation_db=20)[0]
  np.testing.assert_allclose(soundfile.read(out / 'b.wav')[0], expected,
                             atol=1e-6)
  assert not np.allclose(expected, stereo_read, atol=1e-3)
  again = _run_denoise([f'--input={inputs / "a.wav"}', f'--output={out}',
                        '--method=spectral_subtraction'])
  assert again.returncode == 1 and 'exists already' in again.stderr
