"""Checkpoints you can trust and pick: digests checked on every read, the best
step kept beside the newest, damage (and only damage) moved aside."""
import json
import logging
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest

from conftest import ROOT
import mel_ae
from mel_ae import checkpointing
from mel_ae import cli
from mel_ae import train
from mel_ae import writers


@pytest.fixture(scope='module')
def run(tmp_path_factory):
  """A tiny run evaluated and saved at steps 2, 4 and 6."""
  from conftest import make_tiny_config, write_corpus  # pylint: disable=g-import-not-at-top
  root = tmp_path_factory.mktemp('ckpt')
  config = make_tiny_config(write_corpus(str(root / 'corpus')))
  config.train.eval_every = config.train.checkpoint_every = 2
  workdir = str(root / 'run')
  train.train_and_evaluate(config, workdir)
  return workdir


def _tamper_digest(workdir, step):
  """What a silently changed value looks like to the reader."""
  path = os.path.join(checkpointing.checkpoint_dir(workdir), str(step),
                      'meta', 'metadata')
  with open(path) as f:
    meta = json.load(f)
  meta['variables_digest'] = '0' * 64
  with open(path, 'w') as f:
    json.dump(meta, f)


def test_load_checks_the_digest_and_only_latest_falls_back(run, tmp_path):
  workdir = str(tmp_path / 'copy')
  subprocess.run(['cp', '-r', run, workdir], check=True)
  _tamper_digest(workdir, 6)
  with pytest.raises(checkpointing.IntegrityError,
                     match=r'^checkpoint step 6: the values read back'):
    mel_ae.load(workdir, step=6)
  assert mel_ae.load(workdir).step == 4  # the latest asked for: fall back
  noisy = os.path.join(ROOT, 'mel_ae', 'corpus', 'test', 'noisy')
  result = subprocess.run(
      [sys.executable, '-m', 'mel_ae.denoise', f'--workdir={workdir}',
       '--step=6', f'--input={noisy}', f'--output={tmp_path / "out"}'],
      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode == 1 and 'Traceback' not in result.stderr
  assert result.stderr.strip().splitlines()[-1].startswith(
      'error: checkpoint step 6: the values read back do not match')


def test_best_step_is_the_least_validation_metric(run):
  rows = {r['step']: r['val_power_mse'] for r in writers.read_metrics(run)
          if 'val_power_mse' in r}
  best = min(rows, key=rows.get)
  assert mel_ae.load(run, step='best').step == best
  assert cli.load_model(f'{run}@best').step == best
  assert cli.load_model(f'{run}@4').step == 4


def _save_steps(workdir, metrics, keep):
  state = {'params': {'w': jnp.zeros(2)}, 'batch_stats': {}}
  with checkpointing.create_manager(workdir, keep) as manager:
    for step, metric in enumerate(metrics, 1):
      checkpointing.save(manager, step, state, {'config': {}},
                         metric and ('val_power_mse', metric))
    manager.wait_until_finished()
    return manager.all_steps()


def test_the_best_step_is_kept_beside_the_newest(tmp_path):
  kept = _save_steps(str(tmp_path / 'w'), [5.0, 1.0, 4.0, None, 3.0, 2.0], 2)
  assert kept == [2, 5, 6]


def test_only_damage_is_moved_aside(run, tmp_path, monkeypatch):
  workdir = str(tmp_path / 'copy')
  subprocess.run(['cp', '-r', run, workdir], check=True)
  abstract = jax.eval_shape(lambda: {})

  def unreadable(*args):
    raise PermissionError('[Errno 13] Permission denied')
  monkeypatch.setattr(checkpointing, 'restore_meta', unreadable)
  with checkpointing.create_manager(workdir) as manager:
    with pytest.raises(PermissionError):
      checkpointing.resume(manager, workdir, {}, abstract)
  assert not os.path.exists(os.path.join(workdir, 'damaged_checkpoints'))
  assert sorted(os.listdir(checkpointing.checkpoint_dir(workdir))) == [
      '2', '4', '6']


def test_report_names_the_step_it_scored_and_the_best(run):
  with open(os.path.join(run, 'report.md')) as f:
    lines = f.read().splitlines()
  assert lines[0] == '# Test-set report, checkpoint step 6 (the last)'
  best = mel_ae.load(run, step='best').step
  assert lines[2].startswith(f'The best checkpoint by val_power_mse is step '
                             f'{best}:')


def test_a_load_warns_of_nothing_and_prints_short(tiny_run, caplog):
  """Orbax's notes that a manager opened read-only is read-only are noise."""
  with caplog.at_level(logging.INFO):
    denoiser = mel_ae.load(tiny_run)
  assert not [r.getMessage() for r in caplog.records
              if r.levelno >= logging.WARNING], caplog.text
  assert repr(denoiser) == (
      "Denoiser(step=6, model='autoencoder', output_mode='image', "
      "conv_impl='auto')")
