"""conv_matmul's patch-matmul kernel gradient must equal XLA's, and the model
must be the same function with either conv_impl."""
from absl.testing import absltest
from absl.testing import parameterized
import jax

import conv_testing
from mel_ae.backends import conv_matmul


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
    conv_testing.check_convs(conv_matmul.convs, x_shape, kernel_shapes,
                             paddings)

  def test_chunks_cover_the_batch(self):
    """Batches split into several scan steps (tiny chunk budget)."""
    with absltest.mock.patch.object(conv_matmul, '_CHUNK_BYTES', 2000):
      conv_testing.check_convs(conv_matmul.convs, (6, 5, 5, 2),
                               [(3, 3, 2, 3)], [((1, 1), (1, 1))])
      self.assertEqual(conv_matmul._chunk(6, 700), 2)  # pylint: disable=protected-access

  def test_drop_in_for_lax_conv_general_dilated(self):
    x = conv_testing.random((2, 6, 5, 3), 0)
    k = conv_testing.random((3, 3, 3, 4), 1)
    dims = ('NHWC', 'HWIO', 'NHWC')
    conv = conv_matmul.drop_in(conv_matmul.convs)
    conv_testing.assert_close(
        conv(x, k, (1, 1), 'SAME', dimension_numbers=dims),
        jax.lax.conv_general_dilated(x, k, (1, 1), 'SAME',
                                     dimension_numbers=dims))
    # What it cannot compute goes to XLA unchanged (stride 2, dilation).
    for strides, dilation in (((2, 2), None), ((1, 1), (2, 2))):
      conv_testing.assert_close(
          conv(x, k, strides, 'SAME', rhs_dilation=dilation,
               dimension_numbers=dims),
          jax.lax.conv_general_dilated(x, k, strides, 'SAME',
                                       rhs_dilation=dilation,
                                       dimension_numbers=dims))

  @parameterized.parameters(3, 5)
  def test_upsample_conv_phase(self, kernel_size):
    conv_testing.check_upsample_conv_phase(conv_matmul.convs, 16, kernel_size)


class ModelTest(absltest.TestCase):

  def test_conv_impl_is_the_same_function_and_params(self):
    """The seed (channels 16 and 32 take the matmul path) at a small size."""
    conv_testing.check_model_matches_xla('matmul_grad')


if __name__ == '__main__':
  absltest.main()
