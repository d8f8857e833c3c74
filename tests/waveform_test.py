"""Audio in, audio out: the noisy STFT times the denoiser's gain."""
import os
import struct
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from conftest import ROOT
from mel_ae import audio
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


def _identity(mels):
  return [np.array(m) for m in mels]


def _silence(mels):
  return [np.zeros_like(m) for m in mels]


@pytest.mark.parametrize('pad_mode', audio.PAD_MODES)
@pytest.mark.parametrize('n', [2048, 22050 + 77])
def test_unit_gain_gives_the_input_back(pad_mode, n):
  spec = audio.MelSpec(pad_mode=pad_mode)
  wave = _voiced(n / 22050)[:n]
  frames = 1 + n // spec.hop_length
  out = audio.apply_mel_gain(wave, np.ones((128, frames)), spec)
  assert out.shape == wave.shape and out.dtype == np.float32
  np.testing.assert_allclose(out, wave, atol=1e-6)


def test_blocks_give_what_one_pass_gives():
  wave = _voiced(3.0)
  frames = 1 + len(wave) // SPEC.hop_length
  gain = np.random.default_rng(0).random((128, frames))
  whole = audio.apply_mel_gain(wave, gain, SPEC, block=frames)
  np.testing.assert_allclose(audio.apply_mel_gain(wave, gain, SPEC, block=7),
                             whole, atol=1e-6)


@pytest.mark.parametrize('method', audio.BIN_GAINS)
def test_bin_gain_rows_are_weighted_means_of_band_gains(method):
  weights = audio.bin_gain_matrix(SPEC, method)
  assert weights.shape == (1 + SPEC.n_fft // 2, SPEC.n_mels)
  assert weights.min() >= 0
  np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-12)


@pytest.mark.parametrize('sr', [22050, 16000, 44100])
@pytest.mark.parametrize('channels', [None, 2])
def test_identity_denoiser_gives_the_recording_back(sr, channels):
  wave = _voiced(1.3, sr)
  if channels:
    wave = np.stack([wave, 0.5 * wave[::-1]], axis=1)
  out, mels = waveform.denoise_wave(wave, sr, _identity, SPEC)
  assert out.shape == wave.shape and out.dtype == np.float32
  assert len(mels) == (channels or 1)
  np.testing.assert_allclose(out, wave, atol=1e-5)


def test_attenuation_is_bounded_in_every_bin():
  """A denoiser that removes everything, bounded at 12 dB, turns every bin
  down by exactly 12 dB; unbounded, it leaves silence."""
  wave = _voiced(1.0)
  out, _ = waveform.denoise_wave(wave, 22050, _silence, SPEC,
                                 max_attenuation_db=12.0)
  np.testing.assert_allclose(out, wave * 10 ** (-12 / 20), atol=1e-6)
  silent, _ = waveform.denoise_wave(wave, 22050, _silence, SPEC)
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
  out, _ = waveform.denoise_wave(wave, 22050, lambda ms: [m / 2 for m in ms],
                                 SPEC)
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
  result = _run_denoise([f'--input={inputs}', f'--output={out}',
                         '--method=spectral_subtraction',
                         '--max_attenuation_db=20'])
  assert result.returncode == 1, result.stderr[-2000:]
  failures = [line.strip() for line in result.stderr.splitlines()
              if line.startswith('  ')]
  assert len(failures) == 7, result.stderr
  for name, why in [('nan.wav', 'NaN'), ('eight.wav', 'too coarse'),
                    ('empty.wav', 'no audio samples'),
                    ('rate0.wav', 'not a readable audio file'),  # libsndfile's refusal
                    ('rate1m.wav', 'sample rate 1000000 Hz'),
                    ('rate10.wav', 'sample rate 10 Hz'),
                    ('junk.ogg', 'not a readable audio file')]:
    assert any(name in f and why in f for f in failures), (name, failures)
  assert 'note:' in result.stderr and '16000 Hz' in result.stderr
  for stem, source in [('a', 'a.wav'), ('b', 'b.flac'), ('c', 'c.wav')]:
    written, info = soundfile.read(out / f'{stem}.wav', always_2d=True), (
        soundfile.info(inputs / source))
    assert soundfile.info(out / f'{stem}.wav').samplerate == info.samplerate
    assert written[0].shape == (info.frames, info.channels)
    assert np.load(out / f'{stem}.npy').shape[0] == 128
  assert soundfile.info(out / 'a.wav').subtype == 'PCM_16'
  assert soundfile.info(out / 'b.wav').subtype == 'FLOAT'
  again = _run_denoise([f'--input={inputs / "a.wav"}', f'--output={out}',
                        '--method=spectral_subtraction'])
  assert again.returncode == 1 and 'exists already' in again.stderr
