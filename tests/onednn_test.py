"""The oneDNN convolutions must be XLA's function: outputs and gradients, per
conv and through the whole model; and they must fail with a clear reason."""
import os
import subprocess
import sys

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp

import conv_testing
from configs import base
from mel_ae import backends
from mel_ae import layers
from mel_ae import train
from mel_ae.backends import onednn

_REASON = onednn.unavailable_reason()
needs_onednn = absltest.skipIf(bool(_REASON), _REASON)


@needs_onednn
class ConvsTest(parameterized.TestCase):

  @parameterized.named_parameters(
      ('same_5x5', (3, 9, 7, 4), [(5, 5, 4, 6)], [((2, 2), (2, 2))]),
      ('even_kernel_uneven_padding', (2, 5, 8, 3), [(2, 4, 3, 5)],
       [((0, 1), (1, 2))]),
      ('valid', (2, 7, 6, 3), [(3, 3, 3, 2)], [((0, 0), (0, 0))]),
      ('one_channel_in_and_out', (2, 6, 6, 1), [(3, 3, 1, 1)],
       [((1, 1), (1, 1))]),
      ('phase_windows', (4, 5, 6, 3), [(2, 2, 3, 4)] * 4,
       [((1, 0), (1, 0)), ((1, 0), (0, 1)), ((0, 1), (1, 0)),
        ((0, 1), (0, 1))]),
  )
  def test_matches_lax(self, x_shape, kernel_shapes, paddings):
    conv_testing.check_convs(onednn.convs, x_shape, kernel_shapes,
                             paddings)

  def test_upsample_conv_phase(self):
    conv_testing.check_upsample_conv_phase(onednn.convs, 5, 5)

  def test_vmap_loops_over_the_extra_axis(self):
    x = conv_testing.random((3, 2, 6, 5, 2), 0)
    kernel = conv_testing.random((3, 3, 2, 4), 1)
    pads = (((1, 1), (1, 1)),)
    per_item = lambda convs: jax.vmap(lambda x: convs(x, [kernel], pads)[0])
    conv_testing.assert_close(per_item(onednn.convs)(x),
                  per_item(layers.lax_convs)(x))

  def test_other_dtypes_go_to_xla(self):
    x = jnp.ones((1, 4, 4, 1), jnp.float16)
    args = ([jnp.ones((3, 3, 1, 1), jnp.float16)], (((1, 1), (1, 1)),))
    got, = onednn.convs(x, *args)
    self.assertEqual(got.dtype, jnp.float16)
    conv_testing.assert_close(got.astype(jnp.float32),
                              layers.lax_convs(x, *args)[0].astype(
                                  jnp.float32))


@needs_onednn
class ModelTest(absltest.TestCase):

  def test_same_function_and_params_as_xla(self):
    conv_testing.check_model_matches_xla('onednn')

  def test_auto_picks_onednn_on_one_cpu_device(self):
    self.assertEqual(backends.resolve('auto'), 'onednn')
    self.assertEqual(backends.resolve('xla'), 'xla')


class UnavailableTest(absltest.TestCase):

  def test_missing_compiler_is_named(self):
    with absltest.mock.patch.object(onednn.shutil, 'which',
                                    return_value=None):
      with self.assertRaisesRegex(onednn.OneDnnUnavailable,
                                  'no C\\+\\+ compiler'):
        onednn._compiler()  # pylint: disable=protected-access

  def test_config_asking_for_it_gets_the_reason(self):
    config = base.get_config()
    config.runtime.conv_impl = 'onednn'
    with absltest.mock.patch.object(onednn, 'unavailable_reason',
                                    return_value='no C++ compiler'):
      with self.assertRaisesRegex(train.ConfigError, 'no C\\+\\+ compiler'):
        train.validate_config(config)
      # 'auto' falls back to XLA's convolutions instead.
      self.assertEqual(backends.resolve('auto'), 'matmul_grad')

  def test_auto_on_an_accelerator_uses_xla(self):
    with absltest.mock.patch.object(backends.jax, 'default_backend',
                                    return_value='gpu'):
      self.assertEqual(backends.resolve('auto'), 'xla')

  def test_auto_on_several_devices_skips_onednn(self):
    """XLA cannot partition the custom calls; checked with 2 CPU devices."""
    code = ('import jax; from mel_ae import backends; '
            "print(jax.device_count(), backends.resolve('auto'))")
    out = subprocess.run(
        [sys.executable, '-c', code], capture_output=True, text=True,
        check=True, env={**os.environ,
                         'XLA_FLAGS': '--xla_force_host_platform_device_count=2',
                         'JAX_PLATFORMS': 'cpu'})
    self.assertEqual(out.stdout.split(), ['2', 'matmul_grad'])


if __name__ == '__main__':
  absltest.main()
