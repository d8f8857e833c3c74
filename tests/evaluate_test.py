"""End-to-end runs of the evaluate CLI in a temporary folder."""
import json
import os
import subprocess
import sys
import tempfile

from absl.testing import absltest
import numpy as np
import pytest
import soundfile

from mel_ae import audio_metrics
from mel_ae import evaluate
from mel_ae.mel_io import MelFileError

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class EvaluateCliTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    # Not create_tempdir: that needs absl flags parsed, which pytest skips.
    tmp = tempfile.TemporaryDirectory()
    self.addCleanup(tmp.cleanup)
    self.root = tmp.name
    rng = np.random.default_rng(0)
    for key in ('001', '002'):
      clean = rng.gamma(1.0, 1.0, (8, 20)).astype(np.float32)
      self._save('ref', f'{key}.npy', clean)
      self._save('noisy', f'noised_{key}.npy', clean + 1.0)
      self._save('pred', f'noised_{key}.npy', clean + 0.5)

  def _save(self, folder, name, mel):
    os.makedirs(os.path.join(self.root, folder), exist_ok=True)
    np.save(os.path.join(self.root, folder, name), mel)

  def _run(self, *args):
    dirs = [f'--{d}={os.path.join(self.root, d)}' for d in ('pred', 'ref')]
    return subprocess.run(
        [sys.executable, '-m', 'mel_ae.evaluate', *dirs, *args],
        cwd=_REPO, capture_output=True, text=True, check=False)

  def test_prefixed_files_match_and_json_is_written(self):
    path = os.path.join(self.root, 'report.json')
    result = self._run(f'--noisy={os.path.join(self.root, "noisy")}',
                       f'--json={path}')
    self.assertEqual(result.returncode, 0, result.stderr)
    self.assertIn('001.npy', result.stdout)
    self.assertIn('mean', result.stdout)
    with open(path) as f:
      report = json.load(f)
    self.assertLen(report['files'], 2)
    self.assertAlmostEqual(report['mean']['competition_mse'], 0.25, places=6)
    self.assertAlmostEqual(report['mean']['mse_improvement'], 0.75, places=6)
    self.assertEqual(self._run(f'--json={path}').returncode, 1)  # No overwrite.

  def test_missing_prediction_is_named(self):
    os.remove(os.path.join(self.root, 'pred', 'noised_002.npy'))
    result = self._run()
    self.assertEqual(result.returncode, 1)
    self.assertIn("002.npy: no pred file with key '002'", result.stderr)
    self.assertNotIn('Traceback', result.stderr)

  def test_all_bad_predictions_are_reported(self):
    self._save('pred', 'noised_001.npy', np.zeros((8, 19), np.float32))
    self._save('pred', 'noised_002.npy', np.full((8, 20), np.nan, np.float32))
    result = self._run()
    self.assertEqual(result.returncode, 1)
    self.assertIn('error: 2 problem(s)', result.stderr)
    self.assertIn('noised_001.npy: shape (8, 19)', result.stderr)
    self.assertIn('noised_002.npy: holds 160 NaN', result.stderr)


if __name__ == '__main__':
  absltest.main()


def _speechlike(seconds: float, sr: int, seed: int) -> np.ndarray:
  """Harmonics of a gliding pitch under a syllable-rate envelope."""
  t = np.arange(int(seconds * sr)) / sr
  phase = 2 * np.pi * np.cumsum(120 + 30 * np.sin(2 * np.pi * 0.7 * t)) / sr
  tone = sum(np.sin(k * phase) / k for k in range(1, 20))
  envelope = np.abs(np.sin(2 * np.pi * 2.0 * t + seed)) ** 2
  return (0.2 * envelope * tone).astype(np.float32)


def test_recordings_are_scored_by_waveform_and_mel_metrics(tmp_path):
  """Audio references: PESQ-WB, STOI and SI-SDR beside the mel metrics of
  the re-analysed recordings; the clean prediction scores best."""
  rng = np.random.default_rng(0)
  folders = {k: tmp_path / k for k in ('ref', 'noisy', 'pred')}
  for folder in folders.values():
    folder.mkdir()
  for i in range(2):
    clean = _speechlike(3.0, 16000, i)
    noisy = clean + 0.05 * rng.standard_normal(len(clean)).astype(np.float32)
    soundfile.write(folders['ref'] / f'{i:03d}.wav', clean, 16000)
    soundfile.write(folders['noisy'] / f'noised_{i:03d}.flac', noisy, 16000)
    soundfile.write(folders['pred'] / f'{i:03d}.wav', clean, 16000)
  assert evaluate.is_audio_dir(str(folders['ref']))
  rows, mean = evaluate.evaluate_audio_dirs(
      str(folders['pred']), str(folders['ref']), str(folders['noisy']))
  assert len(rows) == 2
  assert mean['competition_mse'] < 1e-3 * mean['noisy_competition_mse']
  assert mean['si_sdr'] > 40 > mean['noisy_si_sdr']
  if not audio_metrics.missing():
    assert mean['pesq_wb'] > 4.0 > mean['noisy_pesq_wb']
    assert mean['stoi'] > 0.99 > mean['noisy_stoi']
  (folders['pred'] / '001.wav').unlink()
  with pytest.raises(MelFileError, match='no pred file'):
    evaluate.evaluate_audio_dirs(str(folders['pred']), str(folders['ref']))


def test_si_sdr_ignores_scale_and_counts_what_is_left():
  rng = np.random.default_rng(1)
  ref = rng.standard_normal(8000)
  assert audio_metrics.si_sdr(3 * ref, ref) > 100
  np.testing.assert_allclose(
      audio_metrics.si_sdr(ref + 0.1 * rng.standard_normal(8000), ref), 20,
      atol=0.3)
