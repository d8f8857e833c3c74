"""The shipped corpus is what experiments/make_corpus.py makes, and the
oracle analysis built on regenerating it measures what it says."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from experiments import make_corpus
from experiments import oracle
from mel_ae import mel_io

# make_corpus flag -> the folder it writes in the repository.
_ROOTS = {'out': 'mel_ae/corpus', 'heldout_out': 'experiments/data/heldout'}
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _data_files(root):
  """Paths under `root` of every file but the hand-written READMEs."""
  return sorted(os.path.relpath(os.path.join(folder, name), root)
                for folder, _, names in os.walk(root) for name in names
                if name != 'README.md')


@pytest.mark.skipif(shutil.which('espeak-ng') is None,
                    reason='espeak-ng (apt-get install espeak-ng) synthesises'
                    ' the corpus')
def test_corpus_regenerates_byte_identical(tmp_path):
  """The documented command writes every shipped file and manifest byte for
  byte, and no other file."""
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
      with open(os.path.join(_REPO, shipped, name), 'rb') as f:
        expected = f.read()
      with open(os.path.join(out[flag], name), 'rb') as f:
        assert f.read() == expected, os.path.join(shipped, name)
    count += sum(name.endswith('.npy') for name in names)
  # train, noisy, test pairs, held-out pairs, the gain family's 20 + 30.
  assert count == 100 + 20 + 2 * 30 + 2 * 20 + 20 + 30


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
