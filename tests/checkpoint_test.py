"""Checkpoints you can trust and pick: digests checked on every read, the best
step kept beside the newest, damage (and only damage) moved aside, and
checkpoints saved before a format change read as today's."""
import dataclasses
import functools
import json
import logging
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from configs import base
from configs import tiny
from conftest import ROOT
from experiments.subtract import output_form  # pylint: disable=unused-import
import mel_ae
from mel_ae import audio
from mel_ae import checkpointing
from mel_ae import inference
from mel_ae import mel_io
from mel_ae import models
from mel_ae import report
from mel_ae import settings
from mel_ae import train
from mel_ae import writers

# Workdirs written before checkpoints carried a config_version (version 0):
# by today's format less the field, and by the format before the execution
# back-end left the model config.
_V0 = os.path.join(ROOT, 'tests', 'data', 'config_v0')
_V0_BACKEND_IN_MODEL = os.path.join(ROOT, 'tests', 'data', 'onednn_v0')


@pytest.fixture(scope='module')
def run(tmp_path_factory):
  """A tiny run evaluated and saved at steps 2, 4 and 6, and its report."""
  from conftest import make_tiny_config, write_corpus  # pylint: disable=g-import-not-at-top
  root = tmp_path_factory.mktemp('ckpt')
  config = make_tiny_config(write_corpus(str(root / 'corpus')))
  config.train.eval_every = config.train.checkpoint_every = 2
  workdir = str(root / 'run')
  report.write_after_training(workdir, train.run(config, workdir), config)
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
  assert inference.load_spec(f'{run}@best').step == best
  assert inference.load_spec(f'{run}@4').step == 4


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


def _saved_meta(workdir, step):
  with open(os.path.join(checkpointing.checkpoint_dir(workdir), str(step),
                         'meta', 'metadata')) as f:
    return json.load(f)


def _field_names(config, prefix=''):
  """Dotted names of a config dict's fields (an empty section is one)."""
  return {n for k, v in config.items() for n in (
      _field_names(v, f'{prefix}{k}.') if isinstance(v, dict) and v
      else [prefix + k])}


@pytest.mark.parametrize('workdir, step', [(_V0, 6),
                                           (_V0_BACKEND_IN_MODEL, 6)])
def test_upgrade_gives_an_old_meta_every_field_of_today(workdir, step):
  saved = _saved_meta(workdir, step)
  meta = checkpointing.upgrade(saved)
  assert 'config_version' not in saved  # The saved meta is left as it is.
  assert meta['config_version'] == checkpointing.CONFIG_VERSION
  # Every field of configs/base.py, and otherwise only fields a recipe may
  # set (mel_ae/settings.py) or the model's and MelSpec's own.
  names = _field_names(meta['config'])
  assert _field_names(base.get_config().to_dict()) <= names
  recipe = {f'{section}.{field}' for section, fields in
            settings.RECIPE_FIELDS.items() for field in fields}
  # The models' fields and their output forms' (the earlier recipe's
  # 'subtract' among them: experiments/subtract, imported above).
  classes = {f'model.{field}' for name in models.MODELS for field in vars(
      models.model_fields(ml_collections.ConfigDict(
          {'name': name, 'output_mode': 'residual'})))} | {
              f'audio.{f.name}' for f in dataclasses.fields(audio.MelSpec)}
  assert names - _field_names(base.get_config().to_dict()) <= recipe | classes
  value = lambda config, name: functools.reduce(dict.get, name.split('.'),
                                                config)
  for name in _field_names(saved['config']) - set(
      checkpointing._RENAMED_FIELDS) - set(  # pylint: disable=protected-access
          checkpointing._DROPPED_FIELDS) - set(  # pylint: disable=protected-access
              checkpointing._REFIT_FIELDS) - {  # pylint: disable=protected-access
              'train.output_learning_rates',  # now train.output_forms
              'train.output_loss_border_frames'}:
    assert value(meta['config'], name) == value(saved['config'], name), name
  assert meta['unsupported'] == []
  assert meta['output_mode'] == 'image'


def test_upgrade_moves_the_backend_out_of_the_model_and_fills_the_rest():
  meta = checkpointing.upgrade(_saved_meta(_V0_BACKEND_IN_MODEL, 6))
  config = meta['config']
  assert config['runtime']['conv_impl'] == 'onednn'
  assert config['runtime']['phase_upsample'] is True
  assert 'conv_impl' not in config['model']
  # What the code assumed of configs before each field existed.
  assert config['infer']['edge_padding'] == 'silence'
  assert config['infer']['flip_average'] is False
  assert config['audio']['pad_mode'] == 'constant'
  assert config['model']['name'] == 'autoencoder'
  assert 'model_min_log_gain_std' not in config['noise']  # Version 3.
  assert config['train']['output_forms'] == {}
  assert 'output_learning_rates' not in config['train']
  assert 'top_db' not in config['data']
  assert meta['variables_digest'] is None
  assert meta[checkpointing.VOICE_CHECK_KEY] is None


def test_upgrade_turns_version_1_tables_into_output_forms():
  """Version 1 (before configs/ split by recipe): the per-output-form tables
  become train.output_forms; dropped fields go, and one that held a value
  mel_ae no longer trains with is listed (resuming refuses it)."""
  config = base.get_config().to_dict()
  config['train'].update(
      output_learning_rates={'kernel': 1.2e-2},
      output_loss_border_frames={'residual': 16}, loss_border_frames=0,
      eval_batch_size=16, adam_eps=1e-7, warmup_steps=0, grad_clip_norm=1.0)
  config['data'].update(top_db=80.0, log_eps=1e-6, crop_past_ends=0)
  meta = checkpointing.upgrade({'config_version': 1, 'config': config,
                                'output_mode': 'kernel'})
  train_config = meta['config']['train']
  assert train_config['output_forms'] == {
      'kernel': {'learning_rate': 1.2e-2}, 'residual': {'loss_border_frames': 16}}
  for name in checkpointing._DROPPED_FIELDS:  # pylint: disable=protected-access
    section, key = name.split('.')
    assert key not in meta['config'].get(section, {}), name
  assert meta['unsupported'] == ['train.grad_clip_norm=1.0']


def test_a_checkpoint_saved_now_carries_the_version(run):
  saved = _saved_meta(run, 6)
  assert saved['config_version'] == checkpointing.CONFIG_VERSION
  assert checkpointing.upgrade(saved) is saved


def test_a_workdir_saved_before_the_version_denoises_as_it_did():
  expected = np.load(os.path.join(_V0, 'expected.npz'))['denoised']
  noisy = mel_io.load_mel(os.path.join(
      ROOT, 'mel_ae', 'corpus', 'test', 'noisy', 'noised_120.npy'))[:, :96]
  denoiser = mel_ae.load(_V0)
  np.testing.assert_allclose(denoiser.denoise(noisy), expected, rtol=1e-5,
                             atol=1e-6 * np.abs(expected).max())
  # Its loudest-bins figure measured something else: no voice check.
  assert denoiser.val_clear_speech_loss_db is None
  assert repr(denoiser) == (
      "Denoiser(step=6, model='autoencoder', output_mode='image', "
      "conv_impl='auto')")


def test_a_workdir_saved_before_the_version_resumes(tmp_path):
  workdir = str(tmp_path / 'copy')
  subprocess.run(['cp', '-r', _V0, workdir], check=True)
  config = tiny.get_config()
  config.train.num_steps = 7
  config.train.keep_checkpoints = 1
  config.data.test_noisy_dir = config.data.test_clean_dir = ''
  train.train_and_evaluate(config, workdir)
  assert [r['step'] for r in writers.read_metrics(workdir)] == [7]
  assert _saved_meta(workdir, 7)['config_version'] == (
      checkpointing.CONFIG_VERSION)


def test_upgrade_drops_version_2_noise_fit_fields():
  """Version 2 -> 3: the old fit's absolute window and gain floor go (only
  the fit read them); nothing else changes."""
  config = base.get_config().to_dict()
  config['noise'] = {'kinds': ['fitted'], 'model_db_range': [-40.0, 30.0],
                     'model_min_log_gain_std': 0.1,
                     'fitted_textures_above_db': 0.0, 'model_db_step': 0.5}
  meta = checkpointing.upgrade({'config_version': 2, 'config': config,
                                'output_mode': 'residual', 'unsupported': []})
  assert meta['config']['noise'] == {'kinds': ['fitted'], 'model_db_step': 0.5}
  assert meta['config_version'] == checkpointing.CONFIG_VERSION
  assert meta['unsupported'] == []
