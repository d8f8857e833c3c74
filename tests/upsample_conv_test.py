"""The phase decomposition must equal upsample-then-conv, gradients included."""
import itertools

from absl.testing import absltest
from absl.testing import parameterized
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mel_ae.upsample_conv import UpsampleConv

# Only compile time changes; the ops and their float32 results do not.
jax.config.update('jax_disable_most_optimizations', True)

_CASES = [dict(kernel_size=k, factor=f, hw=hw) for k, f, hw in
          itertools.product((1, 2, 3, 5, 7), (1, 2, 4), ((5, 6), (4, 3)))]


def _assert_close(a, b):
  """float32 tolerance, scaled: grads sum hundreds of terms."""
  np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6 * (1 + np.abs(b).max()))


def _data(hw, cin=3):
  kx, kg = jax.random.split(jax.random.key(1))
  return jax.random.normal(kx, (2, *hw, cin)), kg


def _value_and_grads(module, variables, x, kg):
  """Output and grads of <output, g> w.r.t. params and input."""
  def loss(params, x):
    y = module.apply({'params': params}, x)
    return jnp.vdot(y, jax.random.normal(kg, y.shape)), y
  (_, y), grads = jax.jit(jax.value_and_grad(loss, (0, 1), has_aux=True))(
      variables['params'], x)
  return y, grads


class UpsampleConvTest(parameterized.TestCase):

  @parameterized.parameters(_CASES)
  def test_phase_equals_plain(self, kernel_size, factor, hw):
    x, kg = _data(hw)
    modules = [UpsampleConv(4, kernel_size, factor, phase=p)
               for p in (True, False)]
    variables = modules[0].init(jax.random.key(0), x)
    # Nonzero bias so its gradient path is exercised too.
    variables = jax.tree.map(lambda v: v + 0.1, variables)
    (y1, g1), (y2, g2) = [_value_and_grads(m, variables, x, kg)
                          for m in modules]
    self.assertEqual(y1.shape, (2, hw[0] * factor, hw[1] * factor, 4))
    _assert_close(y1, y2)
    jax.tree.map(_assert_close, g1, g2)

  @parameterized.parameters(2, 3, 5)
  def test_plain_is_nn_conv_on_repeated_input(self, kernel_size):
    """Pins SAME padding (even kernels pad more on the high side)."""
    x, _ = _data((5, 6))
    up = UpsampleConv(4, kernel_size, 2, phase=False)
    variables = up.init(jax.random.key(0), x)
    x2 = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
    conv = nn.Conv(4, (kernel_size, kernel_size), padding='SAME')
    _assert_close(up.apply(variables, x), conv.apply(variables, x2))

  def test_param_trees_identical_and_like_nn_conv(self):
    x, _ = _data((5, 6))
    trees = [UpsampleConv(4, 5, 2, phase=p).init(jax.random.key(0), x)
             for p in (True, False)]
    equal = jax.tree.map(np.array_equal, trees[0], trees[1])
    self.assertTrue(all(jax.tree.leaves(equal)))
    conv = nn.Conv(4, (5, 5)).init(jax.random.key(0), x)
    self.assertEqual(jax.tree.map(jnp.shape, trees[0]),
                     jax.tree.map(jnp.shape, conv))

  @parameterized.parameters((0, 3), (2, 0))
  def test_rejects_bad_sizes(self, factor, kernel_size):
    x, _ = _data((5, 6))
    with self.assertRaises(ValueError):
      UpsampleConv(4, kernel_size, factor).init(jax.random.key(0), x)


if __name__ == '__main__':
  absltest.main()
