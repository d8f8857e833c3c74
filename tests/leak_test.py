"""The test set's clean references never reach training, not even in memory.

tests/noise_bank_test.py watches which files training reads, which cannot
see arrays already in memory; here the references are poisoned (NaN) right
where every file is loaded, and training must come out bit-identical.
"""
import os

import jax
import numpy as np

from conftest import as_denoise
from conftest import make_tiny_config
from mel_ae import audio
from mel_ae import train
from mel_ae import writers


def _train(config, workdir):
  """Final parameters and BatchNorm statistics as raw bytes, and the log."""
  state = train.train_and_evaluate(config, workdir)
  leaves = jax.tree_util.tree_leaves(jax.device_get(
      {'params': state.params, 'batch_stats': state.batch_stats}))
  return [np.asarray(x).tobytes() for x in leaves], writers.read_metrics(
      workdir)


def test_poisoned_test_references_leave_training_bit_identical(
    corpus, tmp_path, monkeypatch):
  config = as_denoise(make_tiny_config(corpus))  # The noise bank in use.
  config.data.noisy_dir = corpus['test_noisy']  # Transductive: allowed.
  refs = os.path.realpath(corpus['test_clean']) + os.sep
  plain, plain_log = _train(config, str(tmp_path / 'plain'))
  real_load = audio.load_input

  def poisoned_load(path, *args, **kwargs):
    mel = real_load(path, *args, **kwargs)
    if os.path.realpath(path).startswith(refs):
      return np.full_like(mel, np.nan)
    return mel

  monkeypatch.setattr(audio, 'load_input', poisoned_load)
  poisoned, poisoned_log = _train(config, str(tmp_path / 'poisoned'))
  # The poison reached the references the run held: its test score is NaN.
  assert np.isfinite(plain_log[-1]['test_mse'])
  assert np.isnan(poisoned_log[-1]['test_mse'])
  assert len(poisoned) == len(plain) and poisoned == plain
  assert ([r['train_loss'] for r in poisoned_log]
          == [r['train_loss'] for r in plain_log])
