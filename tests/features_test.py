"""The model-domain transform and its inverse."""
import numpy as np
import pytest

from mel_ae import features


@pytest.mark.parametrize('root', [1.0, 2.0, 16.0])
def test_root_transform_inverts_exactly(root):
  rng = np.random.default_rng(0)
  mels = [rng.exponential(20.0, (128, 50)).astype(np.float32) for _ in range(3)]
  mels[0][0, 0] = 0.0
  norm = features.fit_normalizer(mels, 'root', root)
  z = norm.forward(mels[1])
  assert z.dtype == np.float32
  assert 0.0 <= z.min() and z.max() <= 1.0
  np.testing.assert_allclose(norm.inverse(z), mels[1], rtol=2e-6 * root,
                             atol=1e-30)
  top = max(m.max() for m in mels)
  assert norm.scale == pytest.approx(top ** (1.0 / root))


def test_seed_transform_is_root16_over_training_max():
  mels = [np.array([[0.0, 1.0], [420.0, 16.0]], np.float32)]
  norm = features.fit_normalizer(mels)
  expected = mels[0].astype(np.float64) ** (1 / 16) / 420.0 ** (1 / 16)
  np.testing.assert_allclose(norm.forward(mels[0]), expected, rtol=1e-7)
  assert norm.forward(mels[0]).max() == pytest.approx(1.0)


def test_normalizer_round_trips_through_json_dict():
  norm = features.fit_normalizer([np.full((4, 4), 3.0)], 'db', top_db=60.0)
  assert features.Normalizer.from_dict(norm.to_dict()) == norm


def test_db_transform_inverts_above_floor():
  mel = np.array([[1e-3, 1.0, 100.0]], np.float32)
  norm = features.fit_normalizer([mel], 'db', top_db=80.0)
  np.testing.assert_allclose(norm.inverse(norm.forward(mel)), mel, rtol=1e-5)


def test_all_zero_training_set_is_a_clear_error():
  with pytest.raises(ValueError, match='all zero'):
    features.fit_normalizer([np.zeros((2, 2))])
