"""The noise stage (mel_ae/fit_noise.py): fitted once before training, its
decision written beside the fit, reused by a rerun, refused where it is not
of the run's files and config, and read by training, which saves the
config it was started with and the decided output form beside it."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT
from configs import denoise
import mel_ae
from mel_ae import audio
from mel_ae import checkpointing
from mel_ae import fit_noise
from mel_ae import input_pipeline
from mel_ae import mel_io
from mel_ae import noise_model
from mel_ae import train

_GAIN = os.path.join(ROOT, 'mel_ae', 'corpus', 'gain')
# configs/denoise.py shrunk to seconds, on the embedded gain family.
_TINY = {'model.encoder_channels': (4, 8), 'data.crop_frames': 32,
         'data.noisy_dir': os.path.join(_GAIN, 'noisy'),
         'data.test_noisy_dir': '', 'data.test_clean_dir': '',
         'train.num_steps': 3, 'train.batch_size': 4, 'train.log_every': 1,
         'train.eval_every': 3, 'train.checkpoint_every': 3,
         'infer.chunk_frames': 64,
         'infer.margin_frames': 16, 'noise.seconds': 2.0,
         'train.output_forms.residual.loss_border_frames': 4}


def _config(**overrides):
  config = denoise.get_config()
  config.update_from_flattened_dict({**_TINY, **overrides})
  return config


def _flags(**overrides):
  return ['--config=configs/denoise.py'] + [
      f'--config.{k}={v}' for k, v in {**_TINY, **overrides}.items()]


def _no_fit(*args, **kwargs):
  raise AssertionError('the noise was fitted again')


def _run(module, workdir, *flags):
  return subprocess.run([sys.executable, '-m', module, f'--workdir={workdir}',
                         *flags], cwd=ROOT, capture_output=True, text=True,
                        timeout=300)


@pytest.mark.parametrize('noisy, decided', [
    (os.path.join(_GAIN, 'noisy'), 'kernel'),
    (os.path.join(ROOT, 'mel_ae', 'corpus', 'noisy'), 'residual')])
def test_stage_writes_the_fit_and_the_output_form_it_decides(
    tmp_path, noisy, decided):
  config = _config(**{'data.noisy_dir': noisy})
  fit = fit_noise.fit(config, str(tmp_path))
  with open(tmp_path / 'noise_model.json') as f:
    saved = json.load(f)
  assert saved['output_mode'] == decided and saved['kinds'] == ['fitted']
  # The model as noise_model.fit makes it of training's clean files.
  spec = audio.MelSpec.from_config(config.audio)
  clean, _ = input_pipeline.load_split(config.data, spec, 4, config.seed)
  expected = noise_model.fit(clean, input_pipeline.load_folder(
      noisy, spec, 1).mels, config.noise, spec, config.seed)
  assert saved['noise_model'] == expected.to_dict() and fit.model == expected
  assert (tmp_path / 'noise_model.png').stat().st_size > 10_000


def test_noisy_files_holding_no_noise_are_said_to_change_nothing(caplog):
  config = _config()
  spec = audio.MelSpec.from_config(config.audio)
  clean, _ = input_pipeline.load_split(config.data, spec, 4, config.seed)
  with caplog.at_level('INFO'):
    fit = fit_noise.decide(config, clean, clean[:20])
  assert not fit.model.additive and not fit.model.scales
  assert fit.output_mode == 'residual'  # Starts as the identity: stays it.
  assert 'the training noise changes nothing' in caplog.text


def test_a_rerun_reuses_the_fit_and_another_is_refused_in_one_line(
    tmp_path, monkeypatch):
  workdir = str(tmp_path / 'run')
  path = os.path.join(workdir, 'noise_model.json')
  first = fit_noise.fit(_config(), workdir)
  written = os.stat(path).st_mtime_ns
  monkeypatch.setattr(noise_model, 'fit', _no_fit)
  assert fit_noise.fit(_config(), workdir) == first
  assert os.stat(path).st_mtime_ns == written
  # Another config.noise: the command stops in one line, the file stays.
  result = _run('mel_ae.fit_noise', workdir,
                *_flags(**{'noise.quiet_fraction': 0.2}))
  assert result.returncode == 1 and 'Traceback' not in result.stderr
  assert result.stderr.strip().splitlines()[-1] == (
      f'error: {path} was fitted to other files or another config.noise, '
      'config.audio or seed (or by an older mel_ae): use a new --workdir, '
      'or move it away to fit again')
  assert os.stat(path).st_mtime_ns == written
  # A file from before the stage (the model alone) is not taken for one.
  old = tmp_path / 'old'
  old.mkdir()
  (old / 'noise_model.json').write_text(json.dumps(first.model.to_dict()))
  with pytest.raises(fit_noise.NoiseFitError, match='older mel_ae'):
    fit_noise.fit(_config(), str(old))


def test_training_reads_the_stage_and_never_fits(tmp_path, monkeypatch):
  config = _config()
  with pytest.raises(fit_noise.NoiseFitError, match='run python -m '
                     'mel_ae.fit_noise with the same --config and --workdir'):
    train.train_and_evaluate(config, str(tmp_path))
  fit_noise.fit(config, str(tmp_path))
  monkeypatch.setattr(noise_model, 'fit', _no_fit)
  train.train_and_evaluate(config, str(tmp_path))
  assert config.model.output_mode == 'fitted'  # The caller's, untouched.
  assert mel_ae.load(str(tmp_path)).output_mode == 'kernel'


def _as_saved_before_the_stage(workdir: str) -> None:
  """Rewrites every step's meta as training wrote it before the stage: the
  decided output form in the config, nothing beside it, no config_version
  (the digests cover the values, not the meta)."""
  for step in os.listdir(checkpointing.checkpoint_dir(workdir)):
    path = os.path.join(checkpointing.checkpoint_dir(workdir), step, 'meta',
                        'metadata')
    with open(path) as f:
      meta = json.load(f)
    meta['config']['model']['output_mode'] = meta.pop('output_mode')
    del meta['config_version']
    with open(path, 'w') as f:
      json.dump(meta, f)


def test_main_runs_the_stage_first_and_saves_the_config_as_started(tmp_path):
  workdir = str(tmp_path / 'run')
  result = _run('mel_ae.main', workdir, *_flags())
  assert result.returncode == 0, result.stderr[-2000:]
  assert (result.stderr.index('The noise decides the output form')
          < result.stderr.index('Peak learning rate'))
  with open(os.path.join(workdir, 'noise_model.json')) as f:
    assert json.load(f)['output_mode'] == 'kernel'
  _, meta, _ = checkpointing.read_for_inference(workdir)
  assert meta['config']['model']['output_mode'] == 'fitted'
  assert meta['output_mode'] == 'kernel'
  # A checkpoint saved before the stage existed denoises the same, and
  # resumes.
  old = str(tmp_path / 'old')
  shutil.copytree(workdir, old)
  _as_saved_before_the_stage(old)
  before, after = mel_ae.load(old), mel_ae.load(workdir)
  assert before.config.model.output_mode == before.output_mode == 'kernel'
  noisy = mel_io.load_mel(os.path.join(_GAIN, 'test', 'noisy',
                                       sorted(os.listdir(os.path.join(
                                           _GAIN, 'test', 'noisy')))[0]))
  np.testing.assert_array_equal(before.denoise(noisy), after.denoise(noisy))
  result = _run('mel_ae.main', old, *_flags(**{'train.num_steps': 4}))
  assert result.returncode == 0, result.stderr[-2000:]
  assert 'Noise fit: reusing' in result.stderr
  assert 'Resumed from step 3' in result.stderr
