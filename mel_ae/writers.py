"""Metric logs: WORKDIR/metrics.jsonl (one JSON object per line) and
TensorBoard event files written by tensorboardX (no TensorFlow needed)."""
import json
import os
from typing import Any, Dict

import numpy as np


def _plain(value: Any) -> Any:
  return value.item() if isinstance(value, np.generic) else value


class MetricWriter:
  """Appends metrics; on resume, drops lines past the restored step so the
  log of an interrupted run matches an uninterrupted one."""

  def __init__(self, workdir: str, resume_step: int):
    self._path = os.path.join(workdir, 'metrics.jsonl')
    self._truncate_after(resume_step)
    from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
    self._tb = SummaryWriter(os.path.join(workdir, 'tensorboard'))

  def _truncate_after(self, step: int) -> None:
    if not os.path.exists(self._path):
      return
    with open(self._path) as f:
      lines = [l for l in f if l.strip()]
    kept = []
    for line in lines:
      try:
        if json.loads(line)['step'] <= step:
          kept.append(line)
      except (ValueError, KeyError):
        pass  # A line cut short by a crash.
    tmp = self._path + '.tmp'
    with open(tmp, 'w') as f:
      f.writelines(kept)
    os.replace(tmp, self._path)

  def write(self, step: int, metrics: Dict[str, Any]) -> None:
    row = {'step': step, **{k: _plain(v) for k, v in metrics.items()}}
    with open(self._path, 'a') as f:
      f.write(json.dumps(row) + '\n')
    for key, value in row.items():
      if key != 'step' and isinstance(value, (int, float)):
        self._tb.add_scalar(key, value, step)
    self._tb.flush()

  def close(self) -> None:
    self._tb.close()


def read_metrics(workdir: str):
  """The rows of WORKDIR/metrics.jsonl, for notebooks and reports."""
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return [json.loads(l) for l in f if l.strip()]
