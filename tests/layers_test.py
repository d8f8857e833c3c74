"""The CPU back-ends' reformulations must equal flax's and XLA's layers:
the masked-gradient max pool bit for bit (ties and ragged edges included),
the closed-form BatchNorm gradient with flax's values, statistics and
parameter tree bit for bit and its gradients to rounding."""
from absl.testing import absltest
from absl.testing import parameterized
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mel_ae import layers


class MaxPoolTest(parameterized.TestCase):

  @parameterized.product(shape=((2, 8, 10, 3), (1, 9, 7, 2), (1, 12, 12, 2)),
                         window=(2, 3), dtype=('float32', 'bfloat16'))
  def test_equals_xla(self, shape, window, dtype):
    rng = np.random.default_rng(0)
    # Few distinct values: most tiles hold their maximum more than once.
    x = jnp.asarray(rng.integers(0, 3, shape), dtype)
    grad = jnp.asarray(rng.normal(size=layers.max_pool(x, window).shape),
                       dtype)
    want, want_vjp = jax.vjp(lambda x: layers.max_pool(x, window), x)
    got, got_vjp = jax.vjp(
        lambda x: layers.max_pool_masked_grad(x, window), x)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got_vjp(grad)[0], want_vjp(grad)[0])
    self.assertEqual(got_vjp(grad)[0].dtype, x.dtype)


class BatchNormTest(parameterized.TestCase):

  def _train_and_eval(self, module, x, params, cotangent):
    """Outputs, updated statistics, eval outputs and gradients (params, x)
    of <relu(BatchNorm(x)), cotangent>, as a ReLU follows it in the models."""
    stats = module.init(jax.random.PRNGKey(0), x,
                        use_running_average=False)['batch_stats']

    def loss(params, x):
      y, updates = module.apply({'params': params, 'batch_stats': stats}, x,
                                use_running_average=False,
                                mutable=['batch_stats'])
      return jnp.vdot(nn.relu(y).astype(jnp.float32), cotangent), (y, updates)

    (_, (y, updates)), grads = jax.jit(jax.value_and_grad(
        loss, (0, 1), has_aux=True))(params, x)
    evaluated = module.apply({'params': params, **updates}, x,
                             use_running_average=True)
    return y, updates, evaluated, grads

  @parameterized.parameters('float32', 'bfloat16')
  def test_equals_flax(self, dtype):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(2, 3, (4, 8, 6, 5)), dtype)
    cotangent = jnp.asarray(rng.normal(size=x.shape), jnp.float32)
    params = {'scale': jnp.arange(1.0, 6.0), 'bias': jnp.arange(5.0) / 3}
    # float32 runs pass no dtype (flax's default: the inputs' and params').
    kwargs = dict(momentum=0.9, epsilon=1e-5,
                  dtype=None if dtype == 'float32' else jnp.dtype(dtype))
    flax_bn, ours = nn.BatchNorm(**kwargs), layers.BatchNorm(**kwargs)
    self.assertEqual(
        jax.tree.structure(ours.init(jax.random.PRNGKey(0), x, False)),
        jax.tree.structure(flax_bn.init(jax.random.PRNGKey(0), x, False)))
    want = self._train_and_eval(flax_bn, x, params, cotangent)
    got = self._train_and_eval(ours, x, params, cotangent)
    for w, g in zip(jax.tree.leaves(want[:3]), jax.tree.leaves(got[:3])):
      self.assertEqual(g.dtype, w.dtype)
      np.testing.assert_array_equal(np.float32(g), np.float32(w))
    # bfloat16's input gradient: within a rounding of its 8-bit mantissa.
    rtol = 1e-5 if dtype == 'float32' else 1e-2
    for w, g in zip(jax.tree.leaves(want[3]), jax.tree.leaves(got[3])):
      self.assertEqual(g.dtype, w.dtype)
      np.testing.assert_allclose(np.float32(g), np.float32(w), rtol=rtol,
                                 atol=rtol * np.abs(np.float32(w)).max())


if __name__ == '__main__':
  absltest.main()
