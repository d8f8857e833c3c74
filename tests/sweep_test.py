"""The sweep runner: point names and flags, skip/resume logic, and a real
two-point sweep on the tiny config (runs, skips on rerun, aggregates)."""
import csv
import glob
import json
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import ROOT
from experiments import sweep as sweep_lib
from mel_ae import train


def test_values_format_as_config_flags_and_names_are_safe():
  assert sweep_lib.format_value((8, 16, 32)) == '(8,16,32)'
  assert sweep_lib.format_value((16,)) == '(16,)'
  assert sweep_lib.format_value(('white', 'hum')) == "('white','hum')"
  assert sweep_lib.format_value('') == ''
  assert sweep_lib.format_value(False) == 'False'
  assert sweep_lib.format_value(2.0) == '2.0'
  point = {'model.encoder_channels': (8, 16), 'data.noisy_dir': '',
           ('data.transform', 'data.root'): ('db', 16.0), 'seed': 1}
  name = sweep_lib.point_name(point)
  assert name == ('encoder_channels-8x16__noisy_dir-empty__'
                  'transform+root-db_16__seed-1')
  # Two keys with the same last part keep their full names apart.
  assert sweep_lib.point_name({'a.pool': 1, 'b.pool': 2}) == 'a.pool-1__b.pool-2'


def test_grid_is_the_product_and_commands_carry_every_override():
  sweep = {'name': 's', 'config': 'configs/tiny.py',
           'overrides': {'train.num_steps': 2},
           'grid': {'model.kernel_size': [3, 5], 'seed': [0, 1, 2]}}
  pts = sweep_lib.points(sweep)
  assert len(pts) == 6 and pts[1] == {'model.kernel_size': 3, 'seed': 1}
  cmd = sweep_lib.command(sweep, pts[1], '/w')
  assert cmd[1:3] == ['-m', 'mel_ae.main']
  assert cmd[-3:] == ['--config.train.num_steps=2',
                      '--config.model.kernel_size=3', '--config.seed=1']
  config = sweep_lib.effective_config(sweep, pts[1])
  assert (config.train.num_steps, config.model.kernel_size) == (2, 3)
  with pytest.raises(KeyError, match='kernel_sise'):
    sweep_lib.effective_config({**sweep, 'overrides': {
        'model.kernel_sise': 3}}, pts[0])


SWEEP_FILES = sorted(glob.glob(
    os.path.join(ROOT, 'experiments', '*', 'sweeps', '*.py')))


def _without_absent_generated_data(sweep):
  """`sweep` without its data folders that are generated, not shipped
  (under runs/, e.g. the other voice's development corpus), where they are
  absent: every other override of each point is still checked."""
  runs = os.path.join(ROOT, 'runs') + os.sep
  overrides = {k: v for k, v in sweep['overrides'].items()
               if not (k.startswith('data.') and isinstance(v, str)
                       and v.startswith(runs) and not os.path.isdir(v))}
  return {**sweep, 'overrides': overrides}


@pytest.mark.parametrize('path', SWEEP_FILES, ids=os.path.basename)
def test_every_committed_sweep_builds_a_valid_config_per_point(path):
  sweep = _without_absent_generated_data(sweep_lib.load_sweep(path))
  for point in sweep_lib.points(sweep):
    train.validate_config(sweep_lib.effective_config(sweep, point))


def test_a_point_is_finished_only_with_its_last_row_and_checkpoint(tmp_path):
  workdir = str(tmp_path)
  assert not sweep_lib.is_finished(workdir, 6)
  with open(os.path.join(workdir, 'metrics.jsonl'), 'w') as f:
    f.write('{"step": 3}\n{"step": 6}\n{"ste')  # A line cut short.
  assert not sweep_lib.is_finished(workdir, 6)  # No checkpoint 6 yet.
  os.makedirs(os.path.join(workdir, 'checkpoints', '6'))
  assert sweep_lib.is_finished(workdir, 6)
  assert not sweep_lib.is_finished(workdir, 9)  # num_steps raised: resume.


def _write_sweep(path, name, corpus, kernel_sizes):
  overrides = {'data.train_dir': corpus['train'], 'data.noisy_dir': '',
               'data.test_noisy_dir': corpus['test_noisy'],
               'data.test_clean_dir': corpus['test_clean'],
               'train.num_steps': 2}
  path.write_text(textwrap.dedent(f"""
      def get_sweep():
        return {{'name': {name!r}, 'config': 'configs/tiny.py',
                'overrides': {overrides!r},
                'grid': {{'model.kernel_size': {kernel_sizes!r}}}}}
      """))
  return str(path)


def _sweep(args):
  env = dict(os.environ, JAX_DISABLE_MOST_OPTIMIZATIONS='1')  # Faster compiles.
  return subprocess.run([sys.executable, '-m', 'experiments.sweep'] + args,
                        cwd=ROOT, env=env, capture_output=True, text=True,
                        timeout=300)


def test_two_point_sweep_runs_skips_on_rerun_and_aggregates(corpus, tmp_path,
                                                            monkeypatch):
  root = str(tmp_path / 'runs')
  # No --results_dir: the results go to the study's results/ folder.
  results = str(tmp_path / 'study' / 'results')
  (tmp_path / 'study' / 'sweeps').mkdir(parents=True)
  path = _write_sweep(tmp_path / 'study' / 'sweeps' / 'two.py', 'two', corpus,
                      [3, 5])
  first = _sweep([path, '--parallel=2', f'--root={root}'])
  assert first.returncode == 0, first.stderr[-3000:]
  assert sorted(os.listdir(results)) == ['two.csv', 'two.md', 'two.png']
  workdirs = [os.path.join(root, 'two', f'kernel_size-{k}') for k in (3, 5)]
  for workdir in workdirs:
    rows = [json.loads(l) for l in open(os.path.join(workdir, 'metrics.jsonl'))]
    assert rows[-1]['step'] == 2 and 'test_mse' in rows[-1]
  stamps = [os.path.getmtime(os.path.join(w, 'metrics.jsonl'))
            for w in workdirs]

  # Rerun (in-process, as the CLI does): nothing trains, nothing changes.
  sweep = sweep_lib.load_sweep(path)
  monkeypatch.setattr(sweep_lib, '_run_point', _must_not_run)
  assert sweep_lib.run_sweep(sweep, root) == (
      ['kernel_size-3', 'kernel_size-5'], [])
  assert stamps == [os.path.getmtime(os.path.join(w, 'metrics.jsonl'))
                    for w in workdirs]
  sweep_lib.aggregate(sweep, root, results)

  with open(os.path.join(results, 'two.csv')) as f:
    table = list(csv.DictReader(f))
  assert [r['model.kernel_size'] for r in table] == ['3', '5']
  assert all(r['status'] == 'done' and r['step'] == '2' for r in table)
  assert all(float(r['test_mse']) > 0 and float(r['test_noisy_mse']) > 0
             for r in table)
  markdown = open(os.path.join(results, 'two.md')).read()
  assert '| kernel_size-5 | done | 2 |' in markdown
  assert os.path.getsize(os.path.join(results, 'two.png')) > 1000

  # Another sweep holding an identical point copies it, trains nothing.
  one = sweep_lib.load_sweep(_write_sweep(tmp_path / 'one.py', 'one', corpus,
                                          [5]))
  assert sweep_lib.run_sweep(one, root) == (['kernel_size-5'], [])
  copy = os.path.join(root, 'one', 'kernel_size-5')
  assert sweep_lib.is_finished(copy, 2)
  assert json.load(open(os.path.join(copy, 'sweep_point.json')))[
      'copied_from'] == workdirs[1]


def _must_not_run(cmd, workdir):
  raise AssertionError(f'trained {workdir}')


def test_a_failing_point_is_reported_and_the_others_still_run(
    tmp_path, monkeypatch):
  def fake_command(sweep, point, workdir):
    code = ('import sys; sys.exit("error: boom")' if point['seed'] == 0 else
            'print("fine")')
    return [sys.executable, '-c', code]
  monkeypatch.setattr(sweep_lib, 'command', fake_command)
  sweep = {'name': 'bad', 'config': 'configs/tiny.py', 'overrides': {},
           'grid': {'seed': [0, 1]}}
  root = str(tmp_path / 'runs')
  skipped, failed = sweep_lib.run_sweep(sweep, root)
  assert (skipped, failed) == ([], ['seed-0', 'seed-1'])  # 1 never finishes.
  log = open(os.path.join(root, 'bad', 'seed-1', 'train.log')).read()
  assert 'fine' in log
  assert sweep_lib._run_point(fake_command(None, {'seed': 0}, None),
                              str(tmp_path / 'w'))[::2] == (1, 'error: boom')
