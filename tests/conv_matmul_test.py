"""conv_matmul's patch-matmul kernel gradient must equal XLA's, and the model
must be the same function with either conv_impl."""
import functools

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

from configs import base
from mel_ae import conv_matmul
from mel_ae import models
from mel_ae import upsample_conv

# Only compile time changes; the ops and their float32 results do not.
jax.config.update('jax_disable_most_optimizations', True)


def _assert_close(a, b):
  """float32 tolerance, scaled: grads sum thousands of terms."""
  np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * (1 + np.abs(b).max()))


@functools.partial(jax.jit, static_argnums=(0, 1))
def _outputs_and_grads(convs, paddings, x, kernels, cotangents):
  def loss(x, kernels):
    ys = convs(x, kernels, paddings)
    return sum(jnp.vdot(y, g) for y, g in zip(ys, cotangents)), ys
  return jax.grad(loss, (0, 1), has_aux=True)(x, kernels)


def _random(shape, seed):
  return jax.random.normal(jax.random.key(seed), shape)


def _check(x_shape, kernel_shapes, paddings):
  """Outputs and grads (input and kernels) of convs equal lax_convs'."""
  x = _random(x_shape, 0)
  kernels = [_random(s, i + 1) for i, s in enumerate(kernel_shapes)]
  outs = conv_matmul.lax_convs(x, kernels, paddings)
  cotangents = [_random(y.shape, 10 + i) for i, y in enumerate(outs)]
  paddings = tuple(tuple(map(tuple, p)) for p in paddings)
  (g1, y1), (g2, y2) = [
      _outputs_and_grads(c, paddings, x, kernels, cotangents)
      for c in (conv_matmul.convs, conv_matmul.lax_convs)]
  jax.tree.map(_assert_close, (y1, g1), (y2, g2))


class ConvsTest(parameterized.TestCase):

  @parameterized.named_parameters(
      ('same_5x5', (3, 7, 6, 4), [(5, 5, 4, 6)], [((2, 2), (2, 2))]),
      ('same_even_kernel', (2, 5, 8, 3), [(2, 4, 3, 5)], [((0, 1), (1, 2))]),
      ('valid', (2, 7, 6, 3), [(3, 3, 3, 2)], [((0, 0), (0, 0))]),
      # The phase convs of a 2x upsample + 3x3 conv: different windows.
      ('phase_windows', (4, 5, 6, 3), [(2, 2, 3, 4)] * 4,
       [((1, 0), (1, 0)), ((1, 0), (0, 1)), ((0, 1), (1, 0)),
        ((0, 1), (0, 1))]),
  )
  def test_matches_lax(self, x_shape, kernel_shapes, paddings):
    _check(x_shape, kernel_shapes, paddings)

  def test_chunks_cover_the_batch(self):
    """Batches split into several scan steps (tiny chunk budget)."""
    with absltest.mock.patch.object(conv_matmul, '_CHUNK_BYTES', 2000):
      _check((6, 5, 5, 2), [(3, 3, 2, 3)], [((1, 1), (1, 1))])
      self.assertEqual(conv_matmul._chunk(6, 700), 2)  # pylint: disable=protected-access

  def test_drop_in_for_lax_conv_general_dilated(self):
    x, k = _random((2, 6, 5, 3), 0), _random((3, 3, 3, 4), 1)
    dims = ('NHWC', 'HWIO', 'NHWC')
    _assert_close(
        conv_matmul.drop_in(conv_matmul.convs)(x, k, (1, 1), 'SAME',
                                         dimension_numbers=dims),
        jax.lax.conv_general_dilated(x, k, (1, 1), 'SAME',
                                     dimension_numbers=dims))
    with self.assertRaisesRegex(ValueError, 'stride-1'):
      conv_matmul.drop_in(conv_matmul.convs)(x, k, (2, 2), 'SAME',
                                       dimension_numbers=dims)

  @parameterized.parameters(3, 5)
  def test_upsample_conv_phase(self, kernel_size):
    x = _random((2, 4, 5, 16), 0)
    kernel = _random((kernel_size, kernel_size, 16, 16), 1)
    g = _random((2, 8, 10, 16), 2)

    def grads(convs):
      f = lambda x, k: jnp.vdot(
          upsample_conv.upsample_conv_phase(x, k, 2, convs), g)
      return jax.jit(jax.grad(f, (0, 1)))(x, kernel)
    jax.tree.map(_assert_close, grads(conv_matmul.convs),
                 grads(conv_matmul.lax_convs))


class ModelTest(absltest.TestCase):

  def test_conv_impl_is_the_same_function_and_params(self):
    """The seed (channels 16 and 32 take the matmul path) at a small size."""
    config = base.get_config()
    x = jax.random.uniform(jax.random.key(0), (2, 16, 24, 1))
    results = []
    for impl in ('xla', 'matmul_grad'):
      config.model.conv_impl = impl
      model = models.build_model(config.model)
      variables = jax.jit(functools.partial(model.init, train=False))(
          jax.random.key(0), x)

      def loss(params, model=model, variables=variables):
        y, _ = model.apply({**variables, 'params': params}, x, train=True,
                           mutable=['batch_stats'])
        return jnp.mean((y - x) ** 2)
      results.append((variables, jax.jit(jax.value_and_grad(loss))(
          variables['params'])))
    (v1, r1), (v2, r2) = results
    self.assertEqual(models.count_params(v1['params']), 32_513)
    jax.tree.map(np.testing.assert_array_equal, v1, v2)  # same names/shapes
    jax.tree.map(_assert_close, r2, r1)


if __name__ == '__main__':
  absltest.main()
