"""The general model's study form (experiments/voices/floor_form.py): what
the network sees beside the input, its output, and its config's checks."""
import jax
import jax.numpy as jnp
import numpy as np

from experiments.voices import floor_form
from experiments.voices import general_floor
from mel_ae import models


def test_each_band_sees_its_quiet_level_over_the_input_frames():
  x = np.zeros((1, 2, 10, 1), np.float32)
  x[0, 0] = np.arange(10)[:, None]  # band 0 rises; band 1 stays at 0
  seen = np.asarray(floor_form.FloorResidual(floor_quantile=0.2).sees(
      jnp.asarray(x)))
  assert seen.shape == (1, 2, 10, 2)
  np.testing.assert_array_equal(seen[..., 0], x[..., 0])
  np.testing.assert_allclose(seen[0, 0, :, 1], np.quantile(np.arange(10), 0.2))
  np.testing.assert_array_equal(seen[0, 1, :, 1], 0)


def test_the_untrained_model_hands_back_its_input():
  config = general_floor.get_config()
  config.model.encoder_channels = (4, 8)
  assert all(ok for ok, _ in models.check_config(config))
  model = models.build_model(config.model)
  x = jax.random.normal(jax.random.PRNGKey(1), (2, 16, 32, 1))
  variables = model.init(jax.random.PRNGKey(0), x, train=False)
  np.testing.assert_array_equal(model.apply(variables, x, train=False), x)


def test_a_quantile_outside_0_1_is_refused():
  config = general_floor.get_config()
  config.model.floor_quantile = 1.5
  errors = [msg for ok, msg in models.check_config(config) if not ok]
  assert errors == ['model.floor_quantile must lie in (0, 1)']
