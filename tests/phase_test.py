"""The phase decomposition must equal upsample-then-conv, gradients included."""
import functools
import itertools

from absl.testing import absltest
from absl.testing import parameterized
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mel_ae import layers
from mel_ae.backends import phase

# Only compile time changes; the ops and their float32 results do not.
jax.config.update('jax_disable_most_optimizations', True)

_CASES = [dict(kernel_size=k, factor=f)
          for k, f in itertools.product((1, 2, 3, 5, 7), (1, 2, 4))]
_X = (2, 5, 6, 3)  # odd and even low-res sizes, 3 channels


def _upsample_conv(features, kernel_size, factor, low_res):
  compute = phase.upsample_conv_phase if low_res else layers.upsample_then_conv
  return layers.UpsampleConv(features, kernel_size, factor, compute=compute)


def _assert_close(a, b):
  """float32 tolerance, scaled: grads sum hundreds of terms."""
  np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6 * (1 + np.abs(b).max()))


@functools.partial(jax.jit, static_argnames='modules')
def _outputs_and_grads(params, x, cotangent, modules):
  """Per module: output, and grads of <output, cotangent> w.r.t. params, x."""
  def loss(module, params, x):
    y = module.apply({'params': params}, x)
    return jnp.vdot(y, cotangent), y
  return [jax.grad(functools.partial(loss, m), (0, 1), has_aux=True)(params, x)
          for m in modules]


class UpsampleConvTest(parameterized.TestCase):

  @parameterized.parameters(_CASES)
  def test_phase_equals_plain(self, kernel_size, factor):
    # Random params, not module.init (eager init would dominate the test
    # time); a nonzero bias exercises its gradient too.
    kx, kk, kb, kg = jax.random.split(jax.random.key(0), 4)
    k = kernel_size
    params = {'kernel': jax.random.normal(kk, (k, k, _X[-1], 4)),
              'bias': jax.random.normal(kb, (4,))}
    out_shape = (_X[0], _X[1] * factor, _X[2] * factor, 4)
    modules = tuple(_upsample_conv(4, k, factor, p) for p in (True, False))
    (g1, y1), (g2, y2) = _outputs_and_grads(
        params, jax.random.normal(kx, _X), jax.random.normal(kg, out_shape),
        modules)
    self.assertEqual(y1.shape, out_shape)
    _assert_close(y1, y2)
    jax.tree.map(_assert_close, g1, g2)

  @parameterized.parameters(2, 3, 5)
  def test_plain_is_nn_conv_on_repeated_input(self, kernel_size):
    """Pins SAME padding (even kernels pad more on the high side)."""
    x = jnp.ones(_X)
    up = _upsample_conv(4, kernel_size, 2, False)
    variables = up.init(jax.random.key(0), x)
    x2 = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
    conv = nn.Conv(4, (kernel_size, kernel_size), padding='SAME')
    _assert_close(up.apply(variables, x), conv.apply(variables, x2))

  def test_param_trees_identical_and_like_nn_conv(self):
    x = jnp.ones(_X)
    trees = [jax.jit(_upsample_conv(4, 5, 2, p).init)(jax.random.key(0), x)
             for p in (True, False)]
    equal = jax.tree.map(np.array_equal, trees[0], trees[1])
    self.assertTrue(all(jax.tree.leaves(equal)))
    conv = nn.Conv(4, (5, 5)).init(jax.random.key(0), x)
    self.assertEqual(jax.tree.map(jnp.shape, trees[0]),
                     jax.tree.map(jnp.shape, conv))

  @parameterized.parameters((0, 3), (2, 0))
  def test_rejects_bad_sizes(self, factor, kernel_size):
    with self.assertRaises(ValueError):
      layers.UpsampleConv(4, kernel_size, factor).init(jax.random.key(0),
                                                       jnp.ones(_X))


if __name__ == '__main__':
  absltest.main()
