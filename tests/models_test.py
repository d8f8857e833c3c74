"""Model shapes, parameter count and BatchNorm behaviour."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import base
from mel_ae import models
from mel_ae import output_forms


def _init(config, shape=(2, 128, 128, 1)):
  model = models.build_model(config.model)
  return model, model.init(jax.random.PRNGKey(0), jnp.zeros(shape), train=False)


def test_seed_model_has_exactly_32513_trainable_params():
  _, variables = _init(base.get_config())
  params = variables['params']
  convs = sum(int(np.size(v)) for k, layer in params.items()
              if 'BatchNorm' not in k for v in jax.tree_util.tree_leaves(layer))
  assert models.count_params(params) == 32513
  assert convs == 32353
  assert set(variables) == {'params', 'batch_stats'}


@pytest.mark.parametrize('frames', [2, 6, 64, 130])
def test_output_shape_equals_input_shape(frames):
  model, variables = _init(base.get_config())
  x = jax.random.uniform(jax.random.PRNGKey(1), (1, 128, frames, 1))
  y = model.apply(variables, x, train=False)
  assert y.shape == x.shape
  assert float(y.min()) >= 0 and float(y.max()) <= 1  # sigmoid output


def test_kernel_size_override_reaches_every_conv():
  config = base.get_config()
  config.model.kernel_size = 3
  _, variables = _init(config)
  kernels = [v['kernel'].shape for k, v in variables['params'].items()
             if 'kernel' in v]
  assert [k[:2] for k in kernels] == [(3, 3)] * 5 + [(3, 3)]
  convs = sum(9 * cin * cout + cout for cin, cout in
              [(1, 8), (8, 16), (16, 32), (32, 16), (16, 8)]) + 9 * 8 + 1
  assert models.count_params(variables['params']) == convs + 160


def test_batchnorm_train_updates_stats_and_eval_uses_them():
  model, variables = _init(base.get_config(), (4, 128, 32, 1))
  x = jax.random.uniform(jax.random.PRNGKey(2), (4, 128, 32, 1))
  y_train, updates = model.apply(variables, x, train=True,
                                 mutable=['batch_stats'])
  changed = jax.tree_util.tree_map(lambda a, b: bool(jnp.any(a != b)),
                                   variables['batch_stats'],
                                   updates['batch_stats'])
  assert all(jax.tree_util.tree_leaves(changed))
  y_eval = model.apply(variables, x, train=False)
  assert not np.allclose(y_train, y_eval)  # batch vs running statistics
  with pytest.raises(Exception, match='batch_stats'):
    model.apply(variables, x, train=True)  # must be declared mutable


def test_batch_norm_off_has_no_batch_stats():
  config = base.get_config()
  config.model.batch_norm = False
  _, variables = _init(config)
  assert 'batch_stats' not in variables
  assert models.count_params(variables['params']) == 32353


def test_an_unknown_output_form_is_refused_in_one_line():
  config = base.get_config()
  config.model.output_mode = 'nonesuch'  # e.g. a study's, not imported
  with pytest.raises(output_forms.UnknownFormError,
                     match=r"^no output form 'nonesuch' for model "
                     r"'autoencoder' \(known: image, mask, residual"):
    models.build_model(config.model)
