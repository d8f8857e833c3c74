"""A checkpoint works on every machine: the execution back-end is chosen at
run time and is not part of the model, so a workdir trained on the fastest
CPU path loads, denoises and resumes where that path does not exist."""
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

from conftest import ROOT
from conftest import make_tiny_config
from conftest import write_corpus
import mel_ae
from mel_ae import backends
from mel_ae import checkpointing
from mel_ae import mel_io
from mel_ae import models
from mel_ae import train
from mel_ae.backends import onednn

_OLD_WORKDIR = os.path.join(ROOT, 'tests', 'data', 'onednn_v0')
_HERE = [impl for impl in ('xla', 'matmul_grad', 'onednn')
         if impl != 'onednn' or not onednn.unavailable_reason()]


def _assert_close(a, b):
  np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6 * np.abs(b).max())


@pytest.mark.parametrize('conv_impl', _HERE)
def test_workdir_saved_with_the_backend_in_the_model_still_denoises(
    conv_impl):
  """Written before the split (model.conv_impl='onednn' in its config)."""
  expected = np.load(os.path.join(_OLD_WORKDIR, 'expected.npz'))
  denoiser = mel_ae.load(_OLD_WORKDIR, conv_impl=conv_impl)
  # As it was saved, where the back-end is saved today (`upgrade`).
  assert denoiser.config.runtime.conv_impl == 'onednn'
  assert 'conv_impl' not in denoiser.config.model
  _assert_close(denoiser.denoise(expected['noisy']), expected['denoised'])


def _without_compiler(tmp_path):
  """An environment where oneDNN cannot be built: no compiler, no cache."""
  (tmp_path / 'empty_path').mkdir()
  env = {k: v for k, v in os.environ.items() if k != onednn.REQUIRE_ENV}
  return {**env, 'PATH': str(tmp_path / 'empty_path'), 'CXX': 'no-such-cxx',
          'MEL_AE_CACHE': str(tmp_path / 'empty_cache')}


def _in_subprocess(env, *args):
  result = subprocess.run([sys.executable, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  return result


@pytest.mark.skipif(bool(onednn.unavailable_reason()),
                    reason=onednn.unavailable_reason() or 'available')
def test_onednn_checkpoint_denoises_and_resumes_without_onednn(tmp_path):
  corpus = write_corpus(str(tmp_path / 'corpus'))
  config = make_tiny_config(corpus)
  config.runtime.conv_impl = 'onednn'
  workdir = str(tmp_path / 'onednn_run')
  train.train_and_evaluate(config, workdir)
  noisy_path = os.path.join(corpus['test_noisy'], 'noised_000.npy')
  env = _without_compiler(tmp_path)
  assert 'C++ compiler' in _in_subprocess(
      env, '-c', 'from mel_ae.backends import onednn; '
      'print(onednn.unavailable_reason())').stdout

  # Denoise there: 'auto' falls back to XLA's convolutions.
  out = str(tmp_path / 'denoised.npy')
  _in_subprocess(env, '-c', 'import numpy as np, mel_ae; '
                 'from mel_ae import mel_io; '
                 f'd = mel_ae.load({workdir!r}); '
                 f'np.save({out!r}, d.denoise(mel_io.load_mel({noisy_path!r})))')
  _assert_close(np.load(out),
                mel_ae.load(workdir).denoise(mel_io.load_mel(noisy_path)))

  # Resume there for two more steps, and here on oneDNN from a copy.
  copy = str(tmp_path / 'onednn_copy')
  shutil.copytree(workdir, copy)
  steps = config.train.num_steps + 2
  flags = [f'--config.data.train_dir={corpus["train"]}',
           '--config.data.noisy_dir=', '--config.data.test_noisy_dir=',
           '--config.data.test_clean_dir=', f'--config.train.num_steps={steps}']
  result = _in_subprocess(env, '-m', 'mel_ae.main', '--config=configs/tiny.py',
                          f'--workdir={workdir}', *flags)
  assert 'Resumed from step' in result.stderr
  config.train.num_steps = steps
  config.data.test_noisy_dir = config.data.test_clean_dir = ''
  train.train_and_evaluate(config, copy)
  resumed = [checkpointing.read_for_inference(w, steps)[2]
             for w in (workdir, copy)]
  # Biases before a BatchNorm get (float noise) gradients that Adam scales
  # to full steps: there the two back-ends may differ by a fraction of one
  # step (lr 1e-3; 2e-5 seen), everywhere else to float32 tolerance.
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4,
                                                       atol=1e-4),
               *resumed)


def test_backend_is_not_part_of_the_model():
  """Every back-end builds the same parameter tree from the same config."""
  config = make_tiny_config({'train': ROOT})
  shapes = []
  for impl in _HERE:
    config.runtime.conv_impl = impl
    model = models.build_model(config.model,
                               **backends.layers_for(config.runtime))
    shapes.append(jax.eval_shape(model.init, jax.random.key(0),
                                 jax.numpy.zeros((1, 128, 32, 1))))
  for other in shapes[1:]:
    assert jax.tree.structure(other) == jax.tree.structure(shapes[0])
