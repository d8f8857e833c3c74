"""Data parallelism: 4 fake CPU devices train exactly like 1 device.

The 4-device run happens in a subprocess, because the device count is fixed
when JAX starts (XLA_FLAGS=--xla_force_host_platform_device_count=4).
"""
import os
import subprocess
import sys

from flax import traverse_util
import jax
import numpy as np

from conftest import ROOT, make_tiny_config

_TESTS = os.path.dirname(os.path.abspath(__file__))


def train_and_save(config, workdir: str, out: str) -> None:
  """Trains `config` into `workdir`; saves params and batch_stats to `out`."""
  from mel_ae import train  # pylint: disable=g-import-not-at-top
  state = train.train_and_evaluate(config, workdir)
  flat = traverse_util.flatten_dict(
      {'params': state.params, 'batch_stats': state.batch_stats}, sep='/')
  devices = {len(leaf.sharding.device_set) for leaf in flat.values()}
  assert devices == {jax.device_count()}, devices  # replicated everywhere
  np.savez(out, **{k: np.asarray(v) for k, v in flat.items()})


def _noise_driven(keys):
  """Biases of the convs followed by BatchNorm (all but the output conv):
  BN removes any constant, so their true gradient is 0 and Adam turns the
  rounding noise of the reductions (summed in another order on 4 devices)
  into +-learning-rate steps."""
  output_conv = max((k.split('/')[1] for k in keys if '/Conv_' in k),
                    key=lambda name: int(name.split('_')[1]))
  return {k for k in keys if k.startswith('params/') and
          k.endswith('/bias') and k.split('/')[1] != output_conv}


def _config(corpus):
  config = make_tiny_config(corpus)
  config.model.encoder_channels = (16, 16)  # the matmul_grad path too
  config.train.batch_size = 8  # 2 rows per device
  return config


_CHILD = '''
import sys
sys.path[:0] = [{root!r}, {tests!r}]
import jax
jax.config.update('jax_disable_most_optimizations', True)
assert jax.device_count() == 4, jax.devices()
import sharding_test
sharding_test.train_and_save(sharding_test._config({corpus!r}), {workdir!r},
                             {out!r})
'''


def test_four_devices_match_one(corpus, tmp_path):
  assert jax.device_count() == 1
  outs = [str(tmp_path / f'{n}.npz') for n in ('one', 'four')]
  train_and_save(_config(corpus), str(tmp_path / 'one'), outs[0])
  env = dict(os.environ,
             XLA_FLAGS='--xla_force_host_platform_device_count=4',
             JAX_PLATFORMS='cpu')
  subprocess.run([sys.executable, '-c', _CHILD.format(
      root=ROOT, tests=_TESTS, corpus=corpus, workdir=str(tmp_path / 'four'),
      out=outs[1])], check=True, env=env, cwd=ROOT)
  one, four = (np.load(o) for o in outs)
  assert sorted(one.files) == sorted(four.files)
  checked = set(one.files) - _noise_driven(one.files)
  # atol: those biases also shift BN's running means, by (1 - momentum) of it.
  assert len(checked) > 10 and any('batch_stats' in k for k in checked)
  for key in sorted(checked):
    np.testing.assert_allclose(four[key], one[key], rtol=1e-4, atol=1e-4,
                               err_msg=key)
