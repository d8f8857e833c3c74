"""Ablation sweeps: a grid of config overrides, one training run per point.

  python -m experiments.sweep experiments/seed_ablations/sweeps/kernel_size.py
  python -m experiments.sweep experiments/*/sweeps/*.py --dry_run

A sweep file is a Python module whose `get_sweep()` returns

  {'name': 'kernel_size',             # results/<name>.{md,csv,png}
   'config': 'configs/base.py',       # relative to the repository root
   'overrides': {'train.num_steps': 1500},        # the same for every point
   'grid': {'model.kernel_size': [2, 3, 5, 7],    # one run per combination
            'seed': [0, 1, 2]}}

A grid key may also be a tuple of fields whose values change together, e.g.
{('data.transform', 'data.root'): [('root', 2.0), ('db', 16.0)]}.

Every point runs `python -m mel_ae.main --config=... --workdir=ROOT/<name>/
<point> --config.a.b=v ...` in a subprocess (the same entry point as by hand;
a crash of one point does not stop the others). Rerunning a sweep skips the
finished points and resumes interrupted ones from their checkpoints; raising
train.num_steps in the file extends the existing runs. Afterwards each run's
final metrics are gathered into <name>.md, .csv and .png in the study's
results/ folder (beside the sweeps/ folder that holds the file, e.g.
experiments/seed_ablations/results/); the exit status is non-zero if any point
failed.
"""
import concurrent.futures
import csv
import glob
import importlib.util
import itertools
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from absl import app
from absl import flags
from absl import logging
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FLAGS = flags.FLAGS
flags.DEFINE_string('root', os.path.join(REPO, 'runs', 'sweeps'),
                    'Workdirs go to ROOT/<sweep name>/<point name>.')
flags.DEFINE_string('results_dir', '',
                    'Where <sweep name>.md, .csv and .png are written; by '
                    "default the results/ folder of the sweep file's study "
                    '(STUDY/results for STUDY/sweeps/<file>.py).')
flags.DEFINE_integer('parallel', 1, 'Points trained at the same time.')
flags.DEFINE_bool('dry_run', False, 'Only list the commands (and which points '
                  'are finished); run and write nothing.')
flags.DEFINE_bool('reuse', True, 'Copy a finished run with the identical config '
                  '(from any sweep under --root) instead of training it again.')
flags.DEFINE_bool('aggregate_only', False,
                  'Write the results from the existing runs; train nothing.')

# The final metrics reported per point, in table order.
METRICS = ('train_loss', 'val_mse', 'val_power_mse', 'test_mse',
           'test_noisy_mse')
# Also per point: trainable parameters (from train.log) and the last logged
# training throughput (machine-load dependent; for rough cost only).
EXTRAS = ('params', 'examples_per_sec')
SEED = 'seed'


# ---------------------------------------------------------------- definition

def load_sweep(path: str) -> Dict[str, Any]:
  """The dict returned by get_sweep() in the Python file at PATH, checked."""
  spec = importlib.util.spec_from_file_location(
      'sweep_' + re.sub(r'\W', '_', os.path.basename(path)), path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  sweep = dict(module.get_sweep())
  sweep.setdefault('overrides', {})
  sweep.setdefault('file', os.path.relpath(path, REPO) if os.path.abspath(
      path).startswith(REPO + os.sep) else path)
  missing = {'name', 'config', 'grid'} - set(sweep)
  if missing:
    raise ValueError(f'{path}: get_sweep() lacks {sorted(missing)}')
  if not re.fullmatch(r'[\w.-]+', sweep['name']):
    raise ValueError(f'{path}: name {sweep["name"]!r} is not filesystem safe')
  for key, values in sweep['grid'].items():
    if not isinstance(values, (list, tuple)) or not values:
      raise ValueError(f'{path}: grid[{key!r}] must be a non-empty list')
    if isinstance(key, tuple) and not all(
        isinstance(v, tuple) and len(v) == len(key) for v in values):
      raise ValueError(f'{path}: grid[{key!r}] values must be '
                       f'{len(key)}-tuples')
  return sweep


def points(sweep: Dict[str, Any]) -> List[Dict[Any, Any]]:
  """One {grid key: value} per combination, first key slowest."""
  keys = list(sweep['grid'])
  return [dict(zip(keys, values))
          for values in itertools.product(*sweep['grid'].values())]


def flat_overrides(point: Dict[Any, Any]) -> Dict[str, Any]:
  """{field: value}, tuple keys (fields changed together) spread out."""
  out = {}
  for key, value in point.items():
    out.update(zip(key, value) if isinstance(key, tuple) else [(key, value)])
  return out


def format_value(value: Any) -> str:
  """A value as ml_collections' config flags parse it back."""
  if isinstance(value, (tuple, list)):  # A Python literal: strings quoted.
    items = ','.join(repr(v) if isinstance(v, str) else format_value(v)
                     for v in value)
    return f'({items},)' if len(value) == 1 else f'({items})'
  return str(value)  # bool -> True/False, '' -> '', floats keep their '.0'


def _slug(value: Any) -> str:
  if isinstance(value, (tuple, list)):
    return 'x'.join(_slug(v) for v in value) or 'empty'
  if isinstance(value, float) and value.is_integer():
    value = int(value)
  text = re.sub(r'[^A-Za-z0-9.+-]+', '_', str(value)).strip('_')
  return text or 'empty'


def _short(key: Any) -> str:
  fields = key if isinstance(key, tuple) else (key,)
  return '+'.join(f.split('.')[-1] for f in fields)


def point_name(point: Dict[Any, Any]) -> str:
  """E.g. 'kernel_size-5__seed-0': filesystem safe, one part per grid key."""
  shorts = [_short(k) for k in point]
  parts = []
  for key, short in zip(point, shorts):
    # The last name part alone, unless two grid keys share it.
    label = short if shorts.count(short) == 1 else re.sub(
        r'[^\w.+-]', '_', str(key))
    value = point[key]
    parts.append(label + '-' + ('_'.join(_slug(v) for v in value)
                                if isinstance(key, tuple) else _slug(value)))
  return '__'.join(parts)


def config_path(sweep: Dict[str, Any]) -> str:
  path = sweep['config']
  return path if os.path.isabs(path) else os.path.join(REPO, path)


def effective_config(sweep: Dict[str, Any], point: Dict[Any, Any]):
  """The config a point trains with (fails early on a misspelt field)."""
  path, _, arg = config_path(sweep).partition(':')
  if REPO not in sys.path:
    sys.path.insert(0, REPO)  # Config files import `configs.base`.
  spec = importlib.util.spec_from_file_location('sweep_config', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config(arg) if arg else module.get_config()
  overrides = {**sweep['overrides'], **flat_overrides(point)}
  for field, value in overrides.items():
    *parents, name = field.split('.')
    node = config
    for parent in parents:
      node = node[parent]
    if name not in node:
      raise KeyError(f'sweep {sweep["name"]}: config has no field {field!r}')
    node[name] = value
  return config


def command(sweep: Dict[str, Any], point: Dict[Any, Any],
            workdir: str) -> List[str]:
  overrides = {**sweep['overrides'], **flat_overrides(point)}
  return ([sys.executable, '-m', 'mel_ae.main',
           f'--config={config_path(sweep)}', f'--workdir={workdir}'] +
          [f'--config.{k}={format_value(v)}' for k, v in overrides.items()])


# -------------------------------------------------------------------- running

def read_rows(workdir: str) -> List[Dict[str, Any]]:
  """metrics.jsonl's rows; a line cut short by a crash is ignored."""
  path = os.path.join(workdir, 'metrics.jsonl')
  if not os.path.exists(path):
    return []
  rows = []
  with open(path) as f:
    for line in f:
      try:
        rows.append(json.loads(line))
      except ValueError:
        pass
  return rows


def is_finished(workdir: str, num_steps: int) -> bool:
  """Last logged step is num_steps and that step's checkpoint is complete.

  Orbax writes a step into a tmp folder and renames it when complete, so a
  folder named exactly <num_steps> is a finished save.
  """
  rows = read_rows(workdir)
  return bool(rows) and rows[-1].get('step') == num_steps and os.path.isdir(
      os.path.join(workdir, 'checkpoints', str(num_steps)))


def _run_point(cmd: List[str], workdir: str) -> Tuple[int, float, str]:
  """(exit status, seconds, last line of stderr); output to WORKDIR/train.log."""
  os.makedirs(workdir, exist_ok=True)
  log_path = os.path.join(workdir, 'train.log')
  start = time.time()
  with open(log_path, 'a') as log:
    log.write(f'\n# {time.strftime("%Y-%m-%d %H:%M:%S")} {" ".join(cmd)}\n')
    log.flush()
    rc = subprocess.call(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
  with open(log_path) as f:
    lines = [l.strip() for l in f if l.strip()]
  return rc, time.time() - start, lines[-1] if lines else ''


def _point_record(sweep, point, cmd) -> Dict[str, Any]:
  """What WORKDIR/sweep_point.json holds: enough to find an identical run."""
  return {'sweep': sweep['name'], 'point': point_name(point), 'command': cmd,
          'config': json.loads(json.dumps(
              effective_config(sweep, point).to_dict(), sort_keys=True))}


def _find_identical(root: str, record: Dict[str, Any]) -> Optional[str]:
  """A finished workdir under ROOT (any sweep) trained with the same config."""
  num_steps = record['config']['train']['num_steps']
  for path in sorted(glob.glob(os.path.join(root, '*', '*',
                                            'sweep_point.json'))):
    try:
      with open(path) as f:
        other = json.load(f)
    except (OSError, ValueError):
      continue
    workdir = os.path.dirname(path)
    if other.get('config') == record['config'] and is_finished(workdir,
                                                               num_steps):
      return workdir
  return None


def run_sweep(sweep: Dict[str, Any], root: str, parallel: int = 1,
              dry_run: bool = False,
              reuse: bool = True) -> Tuple[List[str], List[str]]:
  """Trains the unfinished points; returns (skipped, failed) point names.

  With REUSE, a point whose exact config another sweep already trained to
  the end (e.g. the base point shared by every ablation) gets a copy of that
  workdir instead of a new run.
  """
  todo, skipped = [], []
  for point in points(sweep):
    name = point_name(point)
    workdir = os.path.join(root, sweep['name'], name)
    cmd = command(sweep, point, workdir)
    record = _point_record(sweep, point, cmd)
    num_steps = record['config']['train']['num_steps']
    source = None if is_finished(workdir, num_steps) or not reuse else (
        _find_identical(root, record))
    if is_finished(workdir, num_steps):
      skipped.append(name)
      logging.info('%s: finished, skipped', name)
    elif source and not dry_run:
      _copy_run(source, workdir, record)
      skipped.append(name)
      logging.info('%s: same config as %s, copied', name, source)
    else:
      todo.append((name, cmd, workdir, point))
    if dry_run:
      note = ('# finished: ' if name in skipped else
              f'# copy of {source}: ' if source else '')
      print(note + ' '.join(_quote(c) for c in cmd), flush=True)
  if dry_run or not todo:
    return skipped, []
  failed = []

  def one(item):
    name, cmd, workdir, point = item
    logging.info('%s: training (%s)', name, workdir)
    os.makedirs(workdir, exist_ok=True)
    # Read the config file again now: it may have changed since the start.
    record = _point_record(sweep, point, cmd)
    _write_json(os.path.join(workdir, 'sweep_point.json'), record)
    rc, seconds, last = _run_point(cmd, workdir)
    ok = rc == 0 and is_finished(workdir, record['config']['train']['num_steps'])
    logging.info('%s: %s in %.0fs%s', name, 'done' if ok else f'FAILED (exit '
                 f'{rc})', seconds, '' if ok else f': {last}')
    return name, ok

  with concurrent.futures.ThreadPoolExecutor(max(parallel, 1)) as pool:
    for name, ok in pool.map(one, todo):
      if not ok:
        failed.append(name)
  return skipped, failed


def _write_json(path: str, obj: Any) -> None:
  with open(path + '.tmp', 'w') as f:
    json.dump(obj, f, indent=1, sort_keys=True)
  os.replace(path + '.tmp', path)


def _copy_run(source: str, workdir: str, record: Dict[str, Any]) -> None:
  """Copies a finished run (checkpoints, metrics, log) into WORKDIR."""
  tmp = workdir + '.copying'
  shutil.rmtree(tmp, ignore_errors=True)
  shutil.copytree(source, tmp, symlinks=True)
  _write_json(os.path.join(tmp, 'sweep_point.json'),
              {**record, 'copied_from': source})
  shutil.rmtree(workdir, ignore_errors=True)  # An unfinished attempt.
  os.makedirs(os.path.dirname(workdir), exist_ok=True)
  os.replace(tmp, workdir)


def _quote(arg: str) -> str:
  return arg if re.fullmatch(r'[\w./=:+,-]+', arg) else "'" + arg.replace(
      "'", "'\\''") + "'"


# ---------------------------------------------------------------- aggregation

def collect(sweep: Dict[str, Any], root: str) -> List[Dict[str, Any]]:
  """One record per point: its grid values, status and final metrics."""
  records = []
  for point in points(sweep):
    name = point_name(point)
    workdir = os.path.join(root, sweep['name'], name)
    num_steps = effective_config(sweep, point).train.num_steps
    rows = read_rows(workdir)
    final = rows[-1] if rows else {}
    if is_finished(workdir, num_steps):
      status = 'done'
    else:
      status = f'partial ({final["step"]}/{num_steps})' if rows else 'missing'
    records.append({'point': name, 'values': point, 'status': status,
                    'step': final.get('step'),
                    **{m: final.get(m) for m in METRICS},
                    'params': _params(workdir),
                    'examples_per_sec': final.get('examples_per_sec')})
  return records


def _params(workdir: str) -> Optional[int]:
  """The trainable-parameter count main.py logs, or None."""
  try:
    with open(os.path.join(workdir, 'train.log')) as f:
      found = re.findall(r'Model: (\d+) trainable parameters', f.read())
  except OSError:
    return None
  return int(found[-1]) if found else None


def _label(value: Any) -> str:
  if isinstance(value, tuple) and value and not isinstance(value[0], (int, float)):
    return '/'.join(_label(v) for v in value)
  if isinstance(value, float) and value.is_integer():
    return str(int(value))
  return repr(value) if value == '' else str(value)


def _key_label(key: Any) -> str:
  return '+'.join(key) if isinstance(key, tuple) else key


def _fmt(x: Optional[float]) -> str:
  if isinstance(x, int):
    return str(x)
  return '' if x is None else f'{x:.5g}'


def summarise(records: List[Dict[str, Any]], by: Sequence[Any],
              metric: str) -> List[Tuple[Tuple[Any, ...], List[float]]]:
  """[(values of BY, [metric of each finished point with those values])],
  in grid order; the remaining grid keys (the seeds) are pooled."""
  groups: Dict[Tuple[Any, ...], List[float]] = {}
  for r in records:
    key = tuple(r['values'][k] for k in by)
    groups.setdefault(key, [])
    if r['status'] == 'done' and r[metric] is not None:
      groups[key].append(r[metric])
  return list(groups.items())


def mean_std(values: Sequence[float]) -> Tuple[float, float]:
  """Mean and sample standard deviation (0 for a single value)."""
  if not values:
    return math.nan, math.nan
  return float(np.mean(values)), float(np.std(values, ddof=1)) if len(
      values) > 1 else 0.0


def write_csv(path: str, sweep: Dict[str, Any],
              records: List[Dict[str, Any]]) -> None:
  keys = list(sweep['grid'])
  with open(path, 'w', newline='') as f:
    w = csv.writer(f)
    w.writerow(['point'] + [_key_label(k) for k in keys] +
               ['status', 'step'] + list(METRICS) + list(EXTRAS))
    for r in records:
      w.writerow([r['point']] + [_label(r['values'][k]) for k in keys] +
                 [r['status'], r['step']] +
                 ['' if r[m] is None else repr(r[m]) for m in METRICS + EXTRAS])


def write_markdown(path: str, sweep: Dict[str, Any],
                   records: List[Dict[str, Any]], plot_name: str) -> None:
  keys = list(sweep['grid'])
  swept = [k for k in keys if k != SEED]
  overrides = ' '.join(f'--config.{k}={format_value(v)}'
                       for k, v in sweep['overrides'].items()) or '(none)'
  lines = [f'# Sweep `{sweep["name"]}`', '',
           f'Config `{sweep["config"]}`; fixed overrides: `{overrides}`; '
           'grid: ' + ', '.join(f'`{_key_label(k)}` in '
                                f'{[_label(v) for v in sweep["grid"][k]]}'
                                for k in keys) + '.', '',
           f'Rerun: `python -m experiments.sweep {sweep.get("file", "SWEEP.py")} '
           '--parallel=1` (finished points are skipped).', '',
           'Final metrics (last logged step). `test_mse` is the competition '
           'metric (raw-power MSE of the denoised test files, mean over files); '
           '`test_noisy_mse` scores the untouched noisy input; `val_power_mse` '
           'is the clean-validation reconstruction error in raw power.', '']
  if swept:
    seeds = f'mean ± std over {SEED}s' if SEED in keys else 'one run each'
    lines += [f'## Summary ({seeds})', '',
              '| ' + ' | '.join(_key_label(k) for k in swept) +
              ' | runs | test_mse | test_noisy_mse | val_power_mse | val_mse '
              '| params |', '|' + '---|' * (len(swept) + 6)]
    columns = [summarise(records, swept, m) for m in
               ('test_mse', 'test_noisy_mse', 'val_power_mse', 'val_mse')]
    params = summarise(records, swept, 'params')
    for i, (values, test) in enumerate(columns[0]):
      cells = []
      for column in columns:
        found = column[i][1]
        m, s = mean_std(found)
        cells.append('' if not found else f'{m:.5g}' if len(found) == 1 else
                     f'{m:.5g} ± {s:.2g}')
      cells.append(str(params[i][1][0]) if params[i][1] else '')
      lines.append('| ' + ' | '.join(_label(v) for v in values) +
                   f' | {len(test)} | ' + ' | '.join(cells) + ' |')
    lines += ['', f'![{sweep["name"]}]({plot_name})', '']
  lines += ['## Every run', '',
            '| point | status | step | ' + ' | '.join(METRICS + EXTRAS) + ' |',
            '|' + '---|' * (3 + len(METRICS + EXTRAS))]
  for r in records:
    lines.append(f'| {r["point"]} | {r["status"]} | {r["step"] or ""} | ' +
                 ' | '.join(_fmt(r[m]) for m in METRICS + EXTRAS) + ' |')
  with open(path, 'w') as f:
    f.write('\n'.join(lines) + '\n')


def write_plot(path: str, sweep: Dict[str, Any],
               records: List[Dict[str, Any]]) -> bool:
  """Per swept key: test_mse, val_power_mse and val_mse (mean ± std over
  seeds; one line per value of the other swept keys) against its values; the
  noisy input's test_mse dashed. val_mse is in the model domain: it ranks
  architectures, but not transforms."""
  # Imported here: mel_ae brings in JAX, which the sweep's parent never needs.
  from mel_ae import plots  # pylint: disable=g-import-not-at-top
  swept = [k for k in sweep['grid'] if k != SEED]
  if not swept:
    return False
  panels = ('test_mse', 'val_power_mse', 'val_mse')
  fig, axes = plots.subplots(len(swept), len(panels), squeeze=False,
                             figsize=(4.6 * len(panels), 3.4 * len(swept)))
  for row, key in enumerate(swept):
    others = [k for k in swept if k != key]
    xs = sweep['grid'][key]
    lines = sorted({tuple(r['values'][k] for k in others) for r in records},
                   key=str)
    for col, metric in enumerate(panels):
      ax = axes[row, col]
      for line in lines:
        chosen = [r for r in records
                  if tuple(r['values'][k] for k in others) == line]
        stats = [mean_std(v) for _, v in summarise(chosen, [key], metric)]
        label = ', '.join(f'{_short(k)}={_label(v)}'
                          for k, v in zip(others, line)) or None
        ax.errorbar(range(len(xs)), [m for m, _ in stats],
                    yerr=[s for _, s in stats], marker='o', capsize=4,
                    label=label)
        for i, x in enumerate(xs):  # The individual seeds, faint.
          ys = [r[metric] for r in chosen if r['values'][key] == x and
                r['status'] == 'done' and r[metric] is not None]
          ax.scatter([i] * len(ys), ys, s=10, color='grey', alpha=0.5,
                     zorder=3)
        if metric == 'test_mse':
          noisy = [mean_std(v)[0] for _, v in
                   summarise(chosen, [key], 'test_noisy_mse')]
          ax.plot(range(len(xs)), noisy, ls='--', color='black',
                  label='noisy input' if line == lines[0] else None)
      ax.set_xticks(range(len(xs)), [_label(x) for x in xs])
      ax.set_xlabel(_key_label(key))
      ax.set_title(metric + (' (model domain)' if metric == 'val_mse' else '')
                   + (', mean ± std over seeds' if SEED in sweep['grid'] else
                      ''), fontsize=9)
      values = [y for r in records if r['status'] == 'done'
                for y in [r[metric]] if y is not None and y > 0]
      if values and max(values) > 100 * min(values):  # E.g. raw power vs root.
        ax.set_yscale('log')
      else:
        ax.ticklabel_format(axis='y', useOffset=False)
      if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
  fig.suptitle(f'sweep {sweep["name"]}', fontsize=10)
  fig.tight_layout()
  plots.save(fig, path)
  return True


def aggregate(sweep: Dict[str, Any], root: str, results_dir: str) -> List[str]:
  """Writes <name>.md, .csv and .png to RESULTS_DIR; returns their paths."""
  os.makedirs(results_dir, exist_ok=True)
  records = collect(sweep, root)
  base = os.path.join(results_dir, sweep['name'])
  write_csv(base + '.csv', sweep, records)
  written = [base + '.csv']
  if write_plot(base + '.png', sweep, records):
    written.append(base + '.png')
  write_markdown(base + '.md', sweep, records, sweep['name'] + '.png')
  return written + [base + '.md']


def main(argv):
  if len(argv) < 2:
    raise app.UsageError('name at least one sweep file')
  failures = []
  for path in argv[1:]:
    sweep = load_sweep(path)
    root = os.path.abspath(FLAGS.root)
    if not FLAGS.aggregate_only:
      skipped, failed = run_sweep(sweep, root, FLAGS.parallel, FLAGS.dry_run,
                                  FLAGS.reuse)
      logging.info('sweep %s: %d points, %d already finished, %d failed',
                   sweep['name'], len(points(sweep)), len(skipped), len(failed))
      failures += [f'{sweep["name"]}/{name}' for name in failed]
    if not FLAGS.dry_run:
      results_dir = FLAGS.results_dir or os.path.join(
          os.path.dirname(os.path.dirname(os.path.abspath(path))), 'results')
      for written in aggregate(sweep, root, results_dir):
        logging.info('wrote %s', written)
  if failures:
    sys.exit('failed points (see their train.log): ' + ', '.join(failures))


if __name__ == '__main__':
  app.run(main)
