"""The audio studies run end to end on a tiny model and score what they say."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import mel_ae
from conftest import ROOT, make_tiny_config, write_corpus
from experiments.audio import audio_gain
from mel_ae import audio_metrics
from mel_ae import report
from mel_ae import train

CORPUS_AUDIO = os.path.join(ROOT, 'mel_ae', 'corpus', 'audio', 'test')


@pytest.fixture
def workdir(tiny_run):
  return tiny_run


def test_gain_variants_score_the_oracle_above_the_input(workdir):
  """On one corpus recording, the oracle gain (clean / noisy mel) through
  every spreading leaves less error than the noisy input."""
  import soundfile  # pylint: disable=g-import-not-at-top
  clean, _ = soundfile.read(os.path.join(CORPUS_AUDIO, 'clean', '120.flac'),
                            dtype='float32')
  noisy, _ = soundfile.read(
      os.path.join(CORPUS_AUDIO, 'noisy', 'noised_120.flac'), dtype='float32')
  scores = {name: audio_metrics.score_recording(run(noisy, clean), clean,
                                               audio_gain.SPEC)
            for name, run in audio_gain.variants(mel_ae.load(workdir)).items()}
  noisy_mse = scores['noisy input']['competition_mse']
  oracles = [s for name, s in scores.items() if name.startswith('oracle')]
  assert len(oracles) == 2
  for s in oracles:
    assert s['competition_mse'] < 0.8 * noisy_mse
    assert s['si_sdr'] > scores['noisy input']['si_sdr']
  assert '| oracle, ceiling 1 |' in audio_gain.markdown(
      {k: v for k, v in scores.items()}, 1)


def test_compare_writes_outputs_and_a_table(workdir, tmp_path):
  for role, name in (('noisy', 'noised_121.flac'), ('clean', '121.flac')):
    os.makedirs(tmp_path / role)
    shutil.copy(os.path.join(CORPUS_AUDIO, role, name), tmp_path / role)
  result = subprocess.run(
      [sys.executable, '-m', 'experiments.audio.audio_compare',
       f'--workdir=tiny={workdir}', '--peers=noisereduce_stationary',
       f'--noisy={tmp_path / "noisy"}', f'--clean={tmp_path / "clean"}',
       f'--out={tmp_path / "out"}'],
      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  table = (tmp_path / 'out' / 'table.md').read_text()
  for method in ('noisy input', 'spectral subtraction', 'tiny',
                 'noisereduce_stationary'):
    assert f'| {method} |' in table
    assert (tmp_path / 'out' / method.replace(' ', '_') / 'noised_121.wav'
            ).exists()
  noisy_row = next(l for l in table.splitlines() if l.startswith('| noisy'))
  assert np.isfinite(float(noisy_row.split('|')[2]))
  # The model timed on the same audio as mel files: three positive factors.
  mel_row = table.split('one long mel |')[1].splitlines()[2]
  assert mel_row.startswith('| tiny |')
  assert all(float(v) > 0 for v in mel_row.split('|')[2:5])


def test_report_scores_recordings_when_the_test_set_is_audio(tmp_path):
  corpus = write_corpus(str(tmp_path / 'corpus'), n_test=0)
  for role, names in (('noisy', ('noised_120.flac', 'noised_121.flac')),
                      ('clean', ('120.flac', '121.flac'))):
    corpus[f'test_{role}'] = str(tmp_path / role)
    os.makedirs(corpus[f'test_{role}'])
    for name in names:
      shutil.copy(os.path.join(CORPUS_AUDIO, role, name), tmp_path / role)
  config, workdir = make_tiny_config(corpus), str(tmp_path / 'run')
  report.write_after_training(workdir, train.run(config, workdir), config)
  text = (tmp_path / 'run' / 'report.md').read_text()
  assert 'Recordings: the noisy STFT' in text
  rows = {line.split('|')[1].strip(): line.split('|')[2:-1]
          for line in text.splitlines()
          if line.startswith('| noisy input') or line.startswith('| model |')}
  assert set(rows) == {'noisy input', 'model'}
  for cells in rows.values():
    assert len(cells) == 5 and all(np.isfinite(float(c)) for c in cells)
