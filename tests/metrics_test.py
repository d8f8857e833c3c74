"""Metric values on tiny arrays worked out by hand."""
from absl.testing import absltest
import numpy as np

from mel_ae import metrics
from mel_ae.features import Normalizer

_REF = np.array([[0.0, 4.0], [1.0, 9.0]], np.float32)
_PRED = np.array([[1.0, 4.0], [1.0, 6.0]], np.float32)  # Errors 1 and 3.


class MetricsTest(absltest.TestCase):

  def test_competition_mse(self):
    self.assertAlmostEqual(metrics.competition_mse(_PRED, _REF), 10 / 4)

  def test_normalized_mse_uses_the_model_domain(self):
    sqrt = Normalizer(root=2.0, scale=3.0)  # sqrt of 9 maps to 1.
    expected = ((1 / 3)**2 + (1 - np.sqrt(6) / 3)**2) / 4
    self.assertAlmostEqual(metrics.normalized_mse(_PRED, _REF, sqrt),
                           expected, places=6)

  def test_lsd_of_identical_is_zero(self):
    self.assertEqual(metrics.lsd_db(_REF, _REF), 0.0)

  def test_lsd_by_hand(self):
    ref = np.array([[100.0, 1.0], [100.0, 1.0]])
    pred = np.array([[10.0, 1.0], [1000.0, 1.0]])  # +-10 dB in frame 0.
    self.assertAlmostEqual(metrics.lsd_db(pred, ref), (10 + 0) / 2)

  def test_lsd_floor_is_relative_to_reference_peak(self):
    ref = np.array([[100.0, 0.0]])
    quieter_than_floor = np.array([[100.0, 1e-7]])  # 90 dB below the peak.
    self.assertEqual(metrics.lsd_db(quieter_than_floor, ref), 0.0)
    self.assertAlmostEqual(metrics.lsd_db(np.array([[100.0, 1e-4]]), ref),
                           (0 + 20) / 2)

  def test_file_metrics_with_noisy(self):
    noisy = _REF + 2.0
    row = metrics.file_metrics(_PRED, _REF, Normalizer(), noisy)
    self.assertAlmostEqual(row['noisy_competition_mse'], 4.0)
    self.assertAlmostEqual(row['mse_improvement'], 1 - 2.5 / 4)
    self.assertAlmostEqual(row['lsd_improvement_db'],
                           row['noisy_lsd_db'] - row['lsd_db'])
    self.assertNotIn('mse_improvement',
                     metrics.file_metrics(_PRED, _REF, Normalizer()))

  def test_summarize_means_numeric_columns(self):
    rows = [{'file': 'a', 'x': 1.0, 'y': 2}, {'file': 'b', 'x': 3.0, 'y': 4}]
    self.assertEqual(metrics.summarize(rows), {'x': 2.0, 'y': 3.0})

  def test_summary_improvement_is_of_mean_mses(self):
    rows = [{'competition_mse': 1.0, 'noisy_competition_mse': 2.0,
             'mse_improvement': 0.5},
            {'competition_mse': 1.0, 'noisy_competition_mse': 100.0,
             'mse_improvement': 0.99}]
    self.assertAlmostEqual(metrics.summarize(rows)['mse_improvement'],
                           1 - 1 / 51)


if __name__ == '__main__':
  absltest.main()
