"""The shipped corpus is what experiments/make_corpus.py makes, and the
oracle analysis built on regenerating it measures what it says."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from experiments import make_corpus
from experiments.oracles import oracle
from mel_ae import audio
from mel_ae import mel_io

# make_corpus flag -> the folder it writes in the repository.
_ROOTS = {'out': 'mel_ae/corpus', 'heldout_out': 'experiments/data/heldout'}
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CORPUS = os.path.join(_REPO, 'mel_ae', 'corpus')
# Shipped audio against the stored float16 mels, measured on all 30 pairs:
# relative error up to 6.3e-4 on bins above 1 % of the file's max (float16's
# own rounding is 4.9e-4) and MSE up to 3.1e-6 (the noisy input scores 1.8).
_AUDIO_RTOL = 1e-3
_AUDIO_MSE = 1e-5


def _data_files(root):
  """Paths under `root` of every file but the hand-written READMEs."""
  return sorted(os.path.relpath(os.path.join(folder, name), root)
                for folder, _, names in os.walk(root) for name in names
                if name != 'README.md')


def _read_flac(path):
  """What a FLAC file decodes to; its bytes depend on the bundled libFLAC."""
  samples, sr = soundfile.read(path, dtype='int16')
  return samples, sr, soundfile.info(path).subtype


@pytest.mark.skipif(shutil.which('espeak-ng') is None,
                    reason='espeak-ng (apt-get install espeak-ng) synthesises'
                    ' the corpus')
def test_corpus_regenerates_byte_identical(tmp_path):
  """The documented command writes every shipped file and manifest byte for
  byte (FLAC: sample for sample), and no other file."""
  out = {flag: str(tmp_path / flag) for flag in _ROOTS}
  result = subprocess.run(
      [sys.executable, '-m', 'experiments.make_corpus'] +
      [f'--{flag}={folder}' for flag, folder in out.items()],
      cwd=_REPO, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  count = 0
  for flag, shipped in _ROOTS.items():
    names = _data_files(os.path.join(_REPO, shipped))
    assert 'manifest.json' in names
    assert _data_files(out[flag]) == names
    for name in names:
      path = os.path.join(_REPO, shipped, name)
      made = os.path.join(out[flag], name)
      if name.endswith('.flac'):
        expected, got = _read_flac(path), _read_flac(made)
        assert got[1:] == expected[1:], path
        np.testing.assert_array_equal(got[0], expected[0], err_msg=path)
        continue
      with open(path, 'rb') as f:
        expected = f.read()
      with open(made, 'rb') as f:
        assert f.read() == expected, os.path.join(shipped, name)
    count += sum(name.endswith(('.npy', '.flac')) for name in names)
  # train, noisy, test pairs, held-out pairs, the gain family's 20 + 30, the
  # test pairs as audio.
  assert count == 100 + 20 + 2 * 30 + 2 * 20 + 20 + 30 + 2 * 30


def test_audio_pairs_reanalyse_to_the_stored_mels():
  """Needs no espeak-ng: the audio pairs are on the stored mels' level, so a
  model trained on the mels can denoise them."""
  with open(os.path.join(_CORPUS, 'manifest.json')) as f:
    files = json.load(f)['files']
  spec = audio.MelSpec()
  for uid in range(120, 150):
    lengths = []
    for name in (f'clean/{uid}', f'noisy/noised_{uid}'):
      key = f'audio/test/{name}.flac'
      path = os.path.join(_CORPUS, key)
      info = soundfile.info(path)
      assert (info.format, info.subtype, info.samplerate, info.channels) == (
          'FLAC', 'PCM_16', spec.sr, 1), key
      wave = audio.load_audio(path, spec.sr)
      assert files[key]['samples'] == len(wave), key
      mel = audio.audio_to_mel(wave, spec).astype(np.float64)
      stored = mel_io.load_mel(
          os.path.join(_CORPUS, f'test/{name}.npy')).astype(np.float64)
      assert mel.shape == stored.shape, key
      loud = stored > 1e-2 * stored.max()
      np.testing.assert_allclose(mel[loud], stored[loud], rtol=_AUDIO_RTOL,
                                 err_msg=key)
      assert np.mean((mel - stored) ** 2) < _AUDIO_MSE, key
      assert {k: v for k, v in files[key].items() if k != 'samples'} == {
          k: v for k, v in files[f'test/{name}.npy'].items()
          if k != 'frames'}, key
      lengths.append(len(wave))
    assert lengths[0] == lengths[1], uid
  assert sum(k.startswith('audio/') for k in files) == 2 * 30


def test_gain_family_is_the_stored_clean_times_a_seeded_uniform_gain():
  """Needs no espeak-ng: the gain test files come from test/clean alone."""
  corpus = os.path.join(_REPO, 'mel_ae', 'corpus')
  with open(os.path.join(corpus, 'manifest.json')) as f:
    files = json.load(f)['files']
  gain_files = [k for k in files if k.startswith('gain/')]
  assert len(gain_files) == 20 + 30
  for key in gain_files:
    uid = int(key[-7:-4])
    assert files[key]['noise'] == 'gain'
    assert tuple(files[key]['gain_range']) == make_corpus.GAIN_RANGE
    unpaired = files.get(f'noisy/noised_{uid:03d}.npy')
    paired = files.get(f'test/noisy/noised_{uid:03d}.npy')
    assert files[key]['text'] == (unpaired or paired)['text']
    if paired:
      clean = mel_io.read_npy(os.path.join(corpus, f'test/clean/{uid:03d}.npy'))
      np.testing.assert_array_equal(
          mel_io.read_npy(os.path.join(corpus, key)),
          make_corpus.gain_noised(clean, 0, uid), err_msg=key)


def test_oracles_subtract_the_noise_they_are_given():
  rng = np.random.default_rng(0)
  clean = 0.01 + rng.exponential(1.0, (128, 50))  # above the f16 floor
  noise = rng.exponential(0.5, (128, 50))
  estimates = oracle.estimates(clean + noise, noise)
  np.testing.assert_allclose(estimates['known noise power'], clean)
  steady = np.broadcast_to(noise.mean(axis=1, keepdims=True), noise.shape)
  np.testing.assert_allclose(oracle.estimates(clean + steady, noise)
                             ['known noise spectrum'], clean)
  np.testing.assert_array_equal(estimates['identity'], clean + noise)
