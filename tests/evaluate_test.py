"""End-to-end runs of the evaluate CLI in a temporary folder."""
import json
import os
import subprocess
import sys
import tempfile

from absl.testing import absltest
import numpy as np

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
