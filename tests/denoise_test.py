"""Using a trained model: the notebook API and the denoise command."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import mel_ae
from conftest import ROOT, as_denoise, fake_mel, make_tiny_config, write_corpus
from mel_ae import checkpointing
from mel_ae import features
from mel_ae import mel_io
from mel_ae import metrics
from mel_ae import models
from mel_ae import train
from mel_ae import whole_file
from mel_ae import writers


@pytest.fixture
def workdir(tiny_run):
  return tiny_run


@pytest.mark.parametrize('frames', [1, 7, 64, 333])
def test_denoise_keeps_shape_and_dtype_for_any_length(workdir, frames):
  d = mel_ae.load(workdir)
  for dtype in (np.float32, np.float16, np.float64):
    mel = fake_mel(np.random.default_rng(frames), frames).astype(dtype)
    out = d.denoise(mel)
    assert out.shape == mel.shape and out.dtype == dtype
    assert np.all(np.isfinite(out)) and out.min() >= 0


def test_chunked_inference_equals_whole_file(workdir):
  """Windows with enough context give what one pass over the file gives."""
  d = mel_ae.load(workdir)
  mel = d.normalizer.forward(fake_mel(np.random.default_rng(0), 256))
  whole = np.asarray(whole_file._apply(  # pylint: disable=protected-access
      d.model, d.variables, mel[None, :, :, None]))[0, :, :, 0]
  chunked = whole_file.denoise_model_domain(
      d.model, d.variables, [mel], chunk=64, margin=32, batch_size=2)[0]
  np.testing.assert_allclose(chunked[:, 32:-32], whole[:, 32:-32], atol=1e-5)


@pytest.mark.parametrize('edge_padding', whole_file.EDGE_PADDINGS)
def test_narrow_windows_give_what_full_chunks_give(workdir, edge_padding):
  """Mels shorter than a chunk, of mixed lengths in one call, get narrower
  windows: the same frames as windows of a whole chunk."""
  d = mel_ae.load(workdir)
  rng = np.random.default_rng(3)
  mels = [d.normalizer.forward(fake_mel(rng, t)) for t in (1, 7, 33, 64, 90)]
  outs = whole_file.denoise_model_domain(
      d.model, d.variables, mels, chunk=64, margin=16, batch_size=2,
      silence=d.normalizer.silence, edge_padding=edge_padding)
  for mel, out in zip(mels, outs):
    windows = whole_file._windows(  # pylint: disable=protected-access
        mel, 64, 16, d.normalizer.silence, edge_padding)
    full = np.asarray(whole_file._apply(  # pylint: disable=protected-access
        d.model, d.variables, windows[..., None]))[:, :, 16:80, 0]
    expected = np.concatenate(list(full), axis=1)[:, :mel.shape[1]]
    assert out.shape == mel.shape
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_reflect_edges_equal_one_pass_over_the_mirrored_file(workdir):
  """infer.edge_padding='reflect': the file's ends see its own frames
  mirrored, as in one pass over the file so extended, not silence."""
  d = mel_ae.load(workdir)
  mel = d.normalizer.forward(fake_mel(np.random.default_rng(0), 200))
  mirrored = np.pad(mel, ((0, 0), (32, 32)), mode='reflect')
  whole = np.asarray(whole_file._apply(  # pylint: disable=protected-access
      d.model, d.variables, mirrored[None, :, :, None]))[0, :, 32:-32, 0]
  chunked = whole_file.denoise_model_domain(
      d.model, d.variables, [mel], chunk=64, margin=32, batch_size=2,
      silence=d.normalizer.silence, edge_padding='reflect')[0]
  np.testing.assert_allclose(chunked, whole, atol=1e-5)
  silent = whole_file.denoise_model_domain(
      d.model, d.variables, [mel], chunk=64, margin=32, batch_size=2,
      silence=d.normalizer.silence)[0]
  assert not np.allclose(silent[:, :8], chunked[:, :8], atol=1e-3)


def test_unknown_edge_padding_is_refused(tiny_config):
  tiny_config.infer.edge_padding = 'zeros'
  with pytest.raises(train.ConfigError, match='infer.edge_padding must be'):
    train.validate_config(tiny_config)


def test_batch_and_audio_api(workdir):
  d = mel_ae.load(workdir)
  rng = np.random.default_rng(1)
  mels = [fake_mel(rng, 50), fake_mel(rng, 90)]
  outs = d.denoise_batch(mels)
  for m, o in zip(mels, outs):
    np.testing.assert_allclose(o, d.denoise(m), rtol=1e-5, atol=1e-6)
  wave = np.sin(np.linspace(0, 2000, 16000)).astype(np.float32) * 0.1
  out = d.denoise_audio(wave, 16000)
  assert out.shape == wave.shape and out.dtype == np.float32
  stereo = np.stack([wave, wave[::-1]], axis=1)
  both = d.denoise_audio(stereo, 16000)
  assert both.shape == stereo.shape
  np.testing.assert_allclose(both[:, 0], out, atol=1e-6)


def test_load_denoises_with_the_normaliser_saved_in_the_checkpoint(workdir):
  """load().denoise(x) = saved.inverse(model(saved.forward(x))), with the
  normaliser read from the checkpoint's meta, not through `load`."""
  manager = checkpointing.create_manager(workdir, read_only=True)
  step = max(manager.all_steps())
  meta = checkpointing.restore_meta(manager, step)
  saved = features.Normalizer.from_dict(meta['normalizer'])
  variables = checkpointing.restore_variables(manager, step, meta)
  manager.close()
  assert saved.scale != features.Normalizer().scale  # else nothing to tell
  d = mel_ae.load(workdir)
  chunk, margin = d.config.infer.chunk_frames, d.config.infer.margin_frames
  frames = chunk - 14  # One window: its margins and the tail are zeros.
  mel = fake_mel(np.random.default_rng(5), frames)
  window = np.pad(saved.forward(mel), ((0, 0), (margin, chunk - frames + margin)))
  out = d.model.apply(variables, window[None, :, :, None], train=False)
  expected = saved.inverse(np.asarray(out)[0, :, margin:margin + frames, 0])
  np.testing.assert_allclose(d.denoise(mel), expected, rtol=1e-4, atol=1e-6)


@pytest.fixture(scope='module')
def tested_run(tmp_path_factory):
  """A tiny run with a paired test set: (workdir, corpus folders)."""
  root = tmp_path_factory.mktemp('tested')
  corpus = write_corpus(str(root / 'corpus'))
  train.train_and_evaluate(make_tiny_config(corpus), str(root / 'run'))
  return str(root / 'run'), corpus


def test_loaded_checkpoints_score_the_test_mse_training_logged(tested_run):
  workdir, corpus = tested_run
  logged = {r['step']: r['test_mse'] for r in writers.read_metrics(workdir)
            if 'test_mse' in r}
  assert sorted(logged) == [3, 6]
  names = sorted(os.listdir(corpus['test_clean']))
  clean = [np.load(os.path.join(corpus['test_clean'], n)) for n in names]
  noisy = [np.load(os.path.join(corpus['test_noisy'], 'noised_' + n))
           for n in names]
  for step, test_mse in logged.items():
    denoised = mel_ae.load(workdir, step=step).denoise_batch(noisy)
    score = np.mean([metrics.competition_mse(p, c)
                     for p, c in zip(denoised, clean)])
    # The same jitted model on the same values: equal to the last bit here.
    # A default Normalizer() in `load` moves this score by 7e-5 (the tiny
    # model's output is small beside the references).
    assert score == pytest.approx(test_mse, rel=1e-9, abs=0), step


def test_load_errors(workdir, tmp_path):
  with pytest.raises(checkpointing.CheckpointError, match='no checkpoint'):
    mel_ae.load(str(tmp_path))
  with pytest.raises(checkpointing.CheckpointError,
                     match='no checkpoint for step 99'):
    mel_ae.load(workdir, step=99)
  with pytest.raises(mel_io.MelFileError, match='64 mel bands, expected 128'):
    mel_ae.load(workdir).denoise(np.ones((64, 10), np.float32))


def _denoise(*args):
  return subprocess.run([sys.executable, '-m', 'mel_ae.denoise', *args],
                        cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_denoise_command_writes_submission_format(workdir, tmp_path):
  corpus = write_corpus(str(tmp_path / 'c'), seed=3, n_train=0, n_test=2)
  noisy = corpus['test_noisy']
  np.save(os.path.join(noisy, 'noised_099.npy'),
          np.ones((128, 20), np.float16))
  out = str(tmp_path / 'out')
  r = _denoise(f'--workdir={workdir}', f'--input={noisy}', f'--output={out}',
               '--plots', f'--clean={corpus["test_clean"]}', '--audio')
  assert r.returncode == 0, r.stderr[-2000:]
  for name in os.listdir(noisy):
    stem = os.path.splitext(name)[0]
    src, dst = np.load(os.path.join(noisy, name)), np.load(
        os.path.join(out, name))
    assert dst.shape == src.shape and dst.dtype == src.dtype
    assert os.path.getsize(os.path.join(out, stem + '.png')) > 1000
    assert os.path.getsize(os.path.join(out, stem + '.wav')) > 1000
  before = os.path.getmtime(os.path.join(out, 'noised_099.npy'))
  r = _denoise(f'--workdir={workdir}', f'--input={noisy}', f'--output={out}')
  assert r.returncode == 1 and 'exists already' in r.stderr
  assert os.path.getmtime(os.path.join(out, 'noised_099.npy')) == before


def test_bad_files_are_listed_and_the_rest_processed(workdir, tmp_path):
  inp = tmp_path / 'in'
  inp.mkdir()
  rng = np.random.default_rng(0)
  np.save(inp / 'a_good.npy', fake_mel(rng, 30))
  np.save(inp / 'b_nan.npy', np.full((128, 30), np.nan, np.float32))
  np.save(inp / 'c_bands.npy', np.ones((80, 30), np.float32))
  (inp / 'd_broken.npy').write_bytes(b'garbage')
  (inp / 'e_broken.wav').write_bytes(b'RIFF....')
  np.save(inp / 'f_good.npy', fake_mel(rng, 40))
  out = str(tmp_path / 'out')
  r = _denoise(f'--workdir={workdir}', f'--input={inp}', f'--output={out}')
  assert r.returncode == 1
  assert sorted(os.listdir(out)) == ['a_good.npy', 'f_good.npy']
  for bad, why in [('b_nan', 'NaN'), ('c_bands', '80 mel bands'),
                   ('d_broken', 'not a readable numpy'),
                   ('e_broken', 'not a readable audio')]:
    assert any(bad in l and why in l for l in r.stderr.splitlines()), bad
  assert 'Traceback' not in r.stderr


@pytest.mark.parametrize('args, message', [
    (['--input={inp}', '--output={inp}', '--method=median'], 'is the input folder'),
    (['--input={inp}', '--output={out}', '--workdir={empty}'], 'no checkpoint'),
    (['--input={inp}/nope.npy', '--output={out}', '--method=median'], 'no such file'),
])
def test_command_errors_are_one_line(tmp_path, args, message):
  inp, empty = tmp_path / 'in', tmp_path / 'empty'
  inp.mkdir()
  empty.mkdir()
  np.save(inp / 'x.npy', np.ones((128, 8), np.float32))
  fmt = {'inp': inp, 'out': tmp_path / 'out', 'empty': empty}
  r = _denoise(*[a.format(**fmt) for a in args])
  assert r.returncode == 1
  assert r.stderr.strip().splitlines()[-1].startswith('error: ')
  assert message in r.stderr and 'Traceback' not in r.stderr
  assert os.listdir(inp) == ['x.npy']


@pytest.mark.parametrize('method', ['identity', 'lowpass', 'median',
                                    'spectral_subtraction'])
def test_baselines_need_no_checkpoint(tmp_path, method):
  corpus = write_corpus(str(tmp_path / 'c'), n_train=0, n_test=1)
  out = str(tmp_path / method)
  r = _denoise(f'--method={method}', f'--input={corpus["test_noisy"]}',
               f'--output={out}')
  assert r.returncode == 0, r.stderr[-1000:]
  assert os.listdir(out) == ['noised_000.npy']


def _experiment(name, *args):
  return subprocess.run([sys.executable, '-m', f'experiments.{name}', *args],
                        cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_compare_and_passthrough_read_a_chosen_checkpoint(workdir):
  test = os.path.join(os.path.dirname(workdir), 'corpus', 'test')
  manifest = os.path.join(test, 'manifest.json')
  kinds = {'noised_000': 'hum', 'noised_001': 'hum', 'noised_002': 'white'}
  with open(manifest, 'w') as f:
    json.dump({'files': {f'noisy/{k}.npy': {'noise': v}
                         for k, v in kinds.items()}}, f)
  compare = _experiment('compare', f'--workdirs=a:{workdir}@3,b:{workdir}',
                        f'--noisy={test}/noisy', f'--clean={test}/clean',
                        f'--manifest={manifest}')
  assert compare.returncode == 0, compare.stderr
  overall, per_noise = compare.stdout.split('per noise kind')
  rows = {line.split('|')[1].strip(' *'): line for line in
          overall.splitlines() if line.startswith('| ')}
  assert {'a', 'b', 'identity', 'spectral_subtraction'} <= set(rows)
  assert rows['a'] != rows['b']  # steps 3 and 6 differ
  identity = [l for l in per_noise.splitlines() if l.startswith('| identity')]
  hum = np.mean([metrics.competition_mse(
      np.load(f'{test}/noisy/noised_{i}.npy'), np.load(f'{test}/clean/{i}.npy'))
                 for i in ('000', '001')])
  assert float(identity[0].split('|')[2]) == pytest.approx(hum, rel=1e-3)
  passthrough = _experiment('passthrough', f'--workdir={workdir}@6',
                            f'--clean={test}/clean', '--loud=1')
  assert passthrough.returncode == 0, passthrough.stderr
  row = passthrough.stdout.splitlines()[-1].split('|')
  assert row[1].strip() == f'{test}/clean' and 0 <= float(row[3]) < 10


def test_edge_padding_study_changes_only_the_ends(tmp_path):
  """experiments.recipe.edge_padding scores both paddings on a denoise run's
  validation files; frames beyond the receptive field from a file's ends
  do not depend on what lies past them."""
  corpus = write_corpus(str(tmp_path / 'corpus'))
  config = as_denoise(make_tiny_config({'train': corpus['train']}))
  train.train_and_evaluate(config, str(tmp_path / 'run'))
  study = _experiment('recipe.edge_padding', f'--workdir={tmp_path / "run"}')
  assert study.returncode == 0, study.stderr
  rows = {line.split('|')[1].strip(): [float(v) for v in line.split('|')[2:6]]
          for line in study.stdout.splitlines()
          if line.startswith('| ') and line.split('|')[2].strip()[:1].isdigit()}
  assert set(rows) == set(whole_file.EDGE_PADDINGS)
  assert all(np.all(np.isfinite(v)) for v in rows.values())
  assert rows['silence'][3] == pytest.approx(rows['reflect'][3], rel=1e-6)
  assert rows['silence'][2] != rows['reflect'][2]


def _table(stdout: str):
  """A markdown table's data rows, as lists of stripped cells."""
  return [[c.strip() for c in line.split('|')[1:-1]]
          for line in stdout.splitlines()
          if line.startswith('| ') and not line.startswith('| run ')
          and not line.startswith('| checkpoints')]


def test_weight_averaging_and_common_validation_score_alike(tmp_path):
  """The newest checkpoint alone scores on its run's validation what the
  common-validation study gives it there; two averaged score otherwise."""
  corpus = write_corpus(str(tmp_path / 'corpus'))
  config = as_denoise(make_tiny_config({'train': corpus['train']}))
  run = str(tmp_path / 'run')
  train.train_and_evaluate(config, run)
  averaging = _experiment('recipe.weight_averaging', f'--workdir={run}',
                          '--last=1,2')
  assert averaging.returncode == 0, averaging.stderr
  (one, steps_one, mse_one, _), (two, steps_two, mse_two, _) = _table(
      averaging.stdout)
  assert (one, steps_one, two, steps_two) == ('1', '6-6', '2', '3-6')
  assert mse_one != mse_two
  common = _experiment('recipe.common_validation',
                       f'--workdirs=a:{run},b:{run}')
  assert common.returncode == 0, common.stderr
  rows = _table(common.stdout)
  assert [r[0] for r in rows] == ['a', 'b']
  assert rows[0][1:] == rows[1][1:] == [rows[0][1]] * 2
  assert rows[0][1].split(' / ')[0] == mse_one
