"""The masked-gradient max pool must equal XLA's, ties and ragged edges
included: values and gradients bit for bit, float32 and bfloat16."""
from absl.testing import absltest
from absl.testing import parameterized
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


if __name__ == '__main__':
  absltest.main()
