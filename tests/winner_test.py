"""The competition winner's recipe as a PyTorch peer
(experiments/recipe/winner.py): flip-averaged inference, seeded training on our batches, the command line
and `compare --preds`."""
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip(
    'torch', reason='torch is only in the bench extra (pip install .[bench])')

# pylint: disable=g-import-not-at-top,wrong-import-position
from conftest import ROOT, make_tiny_config, write_corpus
from experiments.recipe import winner
from mel_ae import mel_io
from mel_ae import metrics
from mel_ae import train
from mel_ae import training_data

# configs/denoise.py (which has the noise and time_flip fields) shrunk.
_TINY_OVERRIDES = ("--config.noise.kinds=('white', 'pink')",
                   '--config.noise.seconds=2.0',
                   '--config.model.output_mode=residual',
                   '--config.data.crop_frames=32',
                   '--config.train.output_forms.residual.loss_border_frames=4',
                   '--config.data.val_fraction=0.2',
                   '--config.train.batch_size=4',
                   '--config.train.num_steps=3')


class _TimeRamp(torch.nn.Module):
  """A gain rising linearly over time, 0 to 2: cancelled by flip averaging."""

  def forward(self, x):
    return x * torch.linspace(0.0, 2.0, x.shape[-1])


@pytest.mark.parametrize('frames', [1, 7, 32, 45])
def test_flip_averaged_inference_of_a_log_identity_returns_the_input(frames):
  mel = np.random.default_rng(frames).exponential(
      10.0, (128, frames)).astype(np.float32)
  np.testing.assert_array_equal(winner.denoise(torch.nn.Identity(), mel, 8),
                                mel)
  unet = winner.LogGainUNet((4, 8, 16), 1e-6)  # Zero log gain: exp(log x).
  torch.nn.init.zeros_(unet.head.weight)
  torch.nn.init.zeros_(unet.head.bias)
  np.testing.assert_array_equal(winner.denoise(unet, mel, unet.multiple), mel)
  # The ramp and its reverse sum to 2 over the padded width, so padding,
  # flip and crop line up only if the output is the input.
  np.testing.assert_allclose(winner.denoise(_TimeRamp(), mel, 8), mel,
                             rtol=1e-6)


def _config(corpus):
  config = make_tiny_config(corpus)
  config.train.mode = 'denoise'
  config.noise.kinds = ('white', 'pink')
  config.data.time_flip = True
  config.train.num_steps = 3
  return config


def test_peer_batches_are_ours_in_power(corpus):
  config = _config(corpus)
  data = training_data.load_data(config)
  sampler = training_data.make_sampler(config, data)
  x, y = winner.power_batch(sampler, data.normalizer, 2)
  ours = sampler(2)
  for key, got in (('input', x), ('target', y)):
    power = data.normalizer.inverse(ours[key])
    np.testing.assert_allclose(got.numpy(), np.moveaxis(power, -1, 1),
                               rtol=1e-6)
  assert not np.allclose(x.numpy(), y.numpy())  # Noise in, clean out.


def test_refuses_a_config_the_recipe_cannot_use(corpus):
  for field, value, message in (('data.time_flip', False, 'time_flip=True'),
                                ('train.mode', 'autoencoder', "'denoise'"),
                                ('data.crop_frames', 30, 'multiples')):
    config = _config(corpus)
    section, name = field.split('.')
    config[section][name] = value
    with pytest.raises(train.ConfigError, match=message):
      winner.train_model(config, winner.Recipe())


def test_training_is_seeded_and_outputs_are_power(corpus):
  config = _config(corpus)
  noisy = [mel_io.load_mel(p) for p in mel_io.list_files(corpus['test_noisy'])]
  outputs = []
  for _ in range(2):
    model, timing = winner.train_model(config, winner.Recipe())
    assert timing['examples_per_sec'] > 0
    outputs.append([winner.denoise(model, m, model.multiple) for m in noisy])
  for a, b, mel in zip(*outputs, noisy):
    np.testing.assert_array_equal(a, b)
    assert a.shape == mel.shape and a.dtype == np.float32
    assert np.all(np.isfinite(a)) and a.min() >= 0
    assert not np.allclose(a, mel)  # Three steps moved the gain off 1.


def _run(module, *args):
  return subprocess.run([sys.executable, '-m', f'experiments.{module}', *args],
                        cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_command_line_and_compare_preds(tmp_path):
  corpus = write_corpus(str(tmp_path / 'corpus'))
  workdir, out = str(tmp_path / 'run'), str(tmp_path / 'again')
  args = ('--config=configs/denoise.py', f'--workdir={workdir}',
          f'--noisy={corpus["test_noisy"]}',
          f'--config.data.train_dir={corpus["train"]}',
          '--config.data.noisy_dir=') + _TINY_OVERRIDES
  first = _run('recipe.winner', *args)
  assert first.returncode == 0, first.stderr[-2000:]
  denoised = os.path.join(workdir, 'denoised')
  names = sorted(os.listdir(denoised))
  assert names == sorted(os.listdir(corpus['test_noisy']))
  refused = _run('recipe.winner', *args)
  assert refused.returncode != 0
  assert refused.stderr.strip().splitlines()[-1] == (
      f'error: {workdir}/winner.pt: exists already (pass --overwrite to '
      'replace)')
  reloaded = _run('recipe.winner', *args, '--skip_train', f'--out={out}')
  assert reloaded.returncode == 0, reloaded.stderr[-2000:]
  for name in names:
    np.testing.assert_array_equal(np.load(os.path.join(out, name)),
                                  np.load(os.path.join(denoised, name)))
  scored = _run('compare', f'--preds=winner:{denoised}',
                f'--noisy={corpus["test_noisy"]}',
                f'--clean={corpus["test_clean"]}')
  assert scored.returncode == 0, scored.stderr[-2000:]
  rows = {line.split('|')[1].strip(' *'): line.split('|')
          for line in scored.stdout.splitlines() if line.startswith('| ')}
  assert {'winner', 'identity', 'spectral_subtraction'} <= set(rows)
  expected = np.mean([metrics.competition_mse(
      np.load(os.path.join(denoised, name)),
      np.load(os.path.join(corpus['test_clean'], name[len('noised_'):])))
                      for name in names])
  assert float(rows['winner'][2]) == pytest.approx(expected, rel=1e-3)
