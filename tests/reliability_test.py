"""Crash safety of `python -m mel_ae.main`: SIGKILL and rerun, damaged
checkpoints, a non-finite loss, and the workdir guard.

Every run is a real process on the tiny config, as a user would start it, so
the kill points are real and the results compare bitwise with a run that was
never interrupted (same command, same XLA flags).
"""
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import types

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from conftest import ROOT
from conftest import write_corpus
from mel_ae import checkpointing
from mel_ae import train
from mel_ae import training_data
from mel_ae import writers

_STEPS = 8
_RUN_FLAGS = (f'--config.train.num_steps={_STEPS}',
              '--config.train.checkpoint_every=2',
              '--config.train.log_every=1', '--config.train.eval_every=100')
_TMP = re.compile(r'^(\d+)\.orbax-checkpoint-tmp')


@pytest.fixture(scope='module')
def data_flags(tmp_path_factory):
  corpus = write_corpus(str(tmp_path_factory.mktemp('corpus')))
  return [f'--config.data.train_dir={corpus["train"]}',
          '--config.data.noisy_dir=', '--config.data.test_noisy_dir=',
          '--config.data.test_clean_dir=']


def _command(workdir, data_flags, extra=()):
  return ([sys.executable, '-m', 'mel_ae.main', '--config=configs/tiny.py',
           f'--workdir={workdir}'] + data_flags + list(_RUN_FLAGS) +
          list(extra))


def _run(workdir, data_flags, *extra):
  return subprocess.run(_command(workdir, data_flags, extra), cwd=ROOT,
                        capture_output=True, text=True, timeout=300)


def _variables(workdir, step=_STEPS):
  return checkpointing.read_for_inference(workdir, step)[2]


def _assert_bitwise_equal(a, b):
  leaves_a, tree_a = jax.tree_util.tree_flatten(a)
  leaves_b, tree_b = jax.tree_util.tree_flatten(b)
  assert tree_a == tree_b
  for x, y in zip(leaves_a, leaves_b):
    assert np.asarray(x).tobytes() == np.asarray(y).tobytes()


def _losses(workdir):
  return [(r['step'], r['train_loss']) for r in writers.read_metrics(workdir)]


def _steps(workdir):
  return sorted(int(n) for n in os.listdir(
      checkpointing.checkpoint_dir(workdir)) if n.isdigit())


@pytest.fixture(scope='module')
def reference(tmp_path_factory, data_flags):
  """An uninterrupted run: its workdir, final variables and loss log."""
  workdir = str(tmp_path_factory.mktemp('reference'))
  result = _run(workdir, data_flags)
  assert result.returncode == 0, result.stderr[-3000:]
  return workdir, _variables(workdir), _losses(workdir)


def _copy(reference, tmp_path):
  workdir = str(tmp_path / 'run')
  shutil.copytree(reference[0], workdir)
  return workdir


# Kill points: each is checked on (stderr lines so far, checkpoint dir names).
def _after_line(text):
  return lambda lines, names: any(text in line for line in lines)


def _mid_save(min_step):
  return lambda lines, names: any(
      m and int(m.group(1)) >= min_step for m in map(_TMP.match, names))


def _kill_when(command, checkpoints, condition):
  """SIGKILLs the run when `condition` holds.

  The run is frozen (SIGSTOP) before the condition is re-checked, so a save
  seen in flight is still in flight when the kill lands; if it finished in
  between, the run goes on to the next chance. Returns the checkpoint folder
  names at the kill and the run's log lines.
  """
  proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
  lines = []

  def read():
    for line in proc.stderr:
      lines.append(line)

  threading.Thread(target=read, daemon=True).start()

  def names():
    return os.listdir(checkpoints) if os.path.isdir(checkpoints) else []

  try:
    while proc.poll() is None:
      if condition(lines, names()):
        proc.send_signal(signal.SIGSTOP)
        if condition(lines, names()):
          return names(), lines
        proc.send_signal(signal.SIGCONT)
      time.sleep(0.0005)
  finally:
    proc.kill()
    proc.wait()
  raise AssertionError('the run ended before the kill point: ' +
                       ''.join(lines[-5:]))


def _resumed_from(lines):
  found = re.findall(r'Resumed from step (\d+) ', ''.join(lines))
  return int(found[0]) if found else 0


def test_sigkilled_three_times_then_rerun_equals_uninterrupted_run(
    reference, data_flags, tmp_path):
  workdir = str(tmp_path / 'run')
  checkpoints = checkpointing.checkpoint_dir(workdir)
  last_complete = 0
  for kill_point, mid_save in [(_mid_save(2), True),
                               (_after_line(f'step 5/{_STEPS}'), False),
                               (_mid_save(6), True)]:
    left, lines = _kill_when(_command(workdir, data_flags), checkpoints,
                             kill_point)
    assert _resumed_from(lines) == last_complete
    assert any(_TMP.match(n) for n in left) or not mid_save, left
    last_complete = max([int(n) for n in left if n.isdigit()], default=0)
  result = _run(workdir, data_flags)
  assert result.returncode == 0, result.stderr[-3000:]
  assert _resumed_from([result.stderr]) == last_complete == 4
  names = os.listdir(checkpoints)
  assert not [n for n in names if _TMP.match(n)], names
  assert _steps(workdir) == [4, 6, 8]
  _assert_bitwise_equal(_variables(workdir), reference[1])
  assert _losses(workdir) == reference[2]


# Damage done to one checkpoint step folder.
def _truncate_state(step_dir):
  for path in glob.glob(os.path.join(step_dir, 'state', '**'), recursive=True):
    if os.path.isfile(path):
      os.truncate(path, os.path.getsize(path) // 2)


def _empty_every_file(step_dir):
  for path in glob.glob(os.path.join(step_dir, '**'), recursive=True):
    if os.path.isfile(path):
      os.truncate(path, 0)


def _garbage_meta(step_dir):
  with open(os.path.join(step_dir, 'meta', 'metadata'), 'w') as f:
    f.write('{"config": ')


def _no_meta(step_dir):
  shutil.rmtree(os.path.join(step_dir, 'meta'))


def _flip_a_bit_silently(step_dir):
  """Flips one bit in the stored arrays where orbax/tensorstore reads back
  other values without any error: only a digest can tell."""
  workdir = os.path.dirname(os.path.dirname(step_dir))
  step = int(os.path.basename(step_dir))
  before = _saved_arrays(workdir, step)  # unchecked: no digest
  data = sorted(glob.glob(os.path.join(step_dir, 'state', 'ocdbt.process_0',
                                       'd', '*')), key=os.path.getsize)
  for path in reversed(data):
    with open(path, 'rb') as f:
      original = f.read()
    for position in range(0, len(original), max(len(original) // 50, 1)):
      flipped = bytearray(original)
      flipped[position] ^= 0x10
      with open(path, 'wb') as f:
        f.write(flipped)
      try:
        after = _saved_arrays(workdir, step)
      except Exception:  # pylint: disable=broad-except
        after = before  # Detected by tensorstore: not the case we want.
      if any(not np.array_equal(x, y) for x, y in zip(before, after)):
        return
    with open(path, 'wb') as f:
      f.write(original)
  raise AssertionError('found no silent bit flip')


def _files(directory):
  return sorted(os.path.relpath(p, directory) for p in glob.glob(
      os.path.join(directory, '**'), recursive=True) if os.path.isfile(p))


def test_damaged_steps_are_moved_aside_and_a_longer_rerun_matches(
    reference, data_flags, tmp_path):
  """More steps is a compatible change: the rerun goes on past the old end."""
  workdir = _copy(reference, tmp_path)
  root = checkpointing.checkpoint_dir(workdir)
  _truncate_state(os.path.join(root, '8'))
  _flip_a_bit_silently(os.path.join(root, '6'))
  kept = {s: _files(os.path.join(root, str(s))) for s in (6, 8)}
  result = _run(workdir, data_flags, f'--config.train.num_steps={_STEPS + 2}')
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'Traceback' not in result.stderr
  damaged = [l for l in result.stderr.splitlines() if 'is damaged' in l]
  assert len(damaged) == 2 and 'step 8' in damaged[0] and 'step 6' in damaged[1]
  assert 'Resumed from step 4 ' in result.stderr
  moved = os.path.join(workdir, 'damaged_checkpoints')
  for name in os.listdir(moved):  # Nothing deleted: every file is still there.
    assert _files(os.path.join(moved, name)) == kept[int(name.split('-')[0])]
  assert _steps(workdir) == [6, 8, 10]
  _assert_bitwise_equal(_variables(workdir, _STEPS), reference[1])


@pytest.mark.parametrize('damage', [
    _truncate_state, _empty_every_file, _garbage_meta, _no_meta])
def test_resume_skips_a_damaged_latest_step(reference, tmp_path, damage,
                                            tiny_config):
  workdir = _copy(reference, tmp_path)
  damage(os.path.join(checkpointing.checkpoint_dir(workdir), '8'))
  tiny_config.train.num_steps = _STEPS
  manager = checkpointing.create_manager(workdir)
  abstract = jax.eval_shape(lambda: train.create_train_state(
      jax.random.PRNGKey(0), tiny_config, (4, 128, 32, 1)))
  step, state, meta = checkpointing.resume(manager, workdir,
                                          tiny_config.to_dict(), abstract)
  manager.close()
  assert step == 6 and int(state.step) == 6 and meta['config']
  assert _steps(workdir) == [4, 6]
  assert len(os.listdir(os.path.join(workdir, 'damaged_checkpoints'))) == 1


def test_non_finite_loss_stops_naming_step_and_a_complete_checkpoint(
    data_flags, tmp_path):
  workdir = str(tmp_path / 'nan')
  result = _run(workdir, data_flags, '--config.train.learning_rate=1e30',
                '--config.train.checkpoint_every=1')
  assert result.returncode == 1
  assert 'Traceback' not in result.stderr, result.stderr[-3000:]
  last = result.stderr.strip().splitlines()[-1]
  match = re.fullmatch(r'error: non-finite loss by step (\d+); '
                       r'last good checkpoint: (\d+)', last)
  assert match, last
  assert _steps(workdir) and _steps(workdir)[-1] == int(match.group(2))
  for step in _steps(workdir):
    for leaf in jax.tree_util.tree_leaves(_variables(workdir, step)):
      assert np.all(np.isfinite(leaf)), step


def _saved_arrays(workdir, step):
  """Every array of a checkpoint's state: params, batch_stats, optimizer."""
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  manager = checkpointing.create_manager(workdir, read_only=True)
  try:
    state = manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(fallback_sharding=device))).state
  finally:
    manager.close()
  return jax.tree_util.tree_leaves(state)


def test_parameters_overflowing_before_the_loss_are_never_saved(
    reference, data_flags, tmp_path):
  """A learning rate beyond float32 (1e39 is inf there) makes the first
  update of the rerun, step 9, inf/NaN while step 9's loss, computed with
  step 8's parameters, is finite and logged: only the parameter check can
  stop that save (with 1e30 the loss check fires first)."""
  workdir = _copy(reference, tmp_path)
  result = _run(workdir, data_flags, f'--config.train.num_steps={_STEPS + 2}',
                '--config.train.learning_rate=1e39',
                '--config.train.checkpoint_every=1')
  assert result.returncode == 1
  assert 'Traceback' not in result.stderr, result.stderr[-3000:]
  last = result.stderr.strip().splitlines()[-1]
  assert last == (f'error: non-finite parameters at step {_STEPS + 1}; '
                  f'last good checkpoint: {_STEPS}')
  step, loss = _losses(workdir)[-1]
  assert step == _STEPS + 1 and np.isfinite(loss)
  assert _steps(workdir) == [4, 6, 8]
  assert not [n for n in os.listdir(checkpointing.checkpoint_dir(workdir))
              if _TMP.match(n)]
  for step in _steps(workdir):
    for leaf in _saved_arrays(workdir, step):
      assert np.all(np.isfinite(leaf)), step


def test_non_finite_parameters_are_never_saved():
  check = train._check_finite  # pylint: disable=protected-access
  good = types.SimpleNamespace(params={'w': np.ones(3, np.float32)},
                               batch_stats={'mean': np.zeros(2, np.float32)})
  check(good, 7, 6)
  for bad in (dict(params={'w': np.array([1, np.nan], np.float32)}),
              dict(batch_stats={'mean': np.array([np.inf], np.float32)})):
    with pytest.raises(FloatingPointError,
                       match='step 7; last good checkpoint: 6'):
      check(types.SimpleNamespace(**{**vars(good), **bad}), 7, 6)


def test_incompatible_config_is_refused_in_one_line(reference, data_flags,
                                                    tmp_path):
  workdir = _copy(reference, tmp_path)
  before = _files(workdir)
  result = _run(workdir, data_flags, '--config.model.encoder_channels=(4,16)',
                '--config.data.transform=db')
  assert result.returncode == 1
  assert 'Traceback' not in result.stderr
  last = result.stderr.strip().splitlines()[-1]
  assert last == (f'error: {workdir} holds a run with another model or '
                  "features (data.transform: 'root' -> 'db'; "
                  'model.encoder_channels: [4, 8] -> (4, 16)); '
                  'use a new --workdir')
  assert _files(workdir) == before


def test_all_zero_training_files_are_a_one_line_data_error(tiny_config,
                                                          tmp_path):
  train_dir = tmp_path / 'zeros'
  train_dir.mkdir()
  for i in range(3):
    np.save(train_dir / f'{i}.npy', np.zeros((128, 40), np.float32))
  tiny_config.data.train_dir = str(train_dir)
  with pytest.raises(training_data.DataError, match='all zero'):
    training_data.load_data(tiny_config)
