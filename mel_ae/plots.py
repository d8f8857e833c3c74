"""Pictures for people: spectrogram panels and training curves (matplotlib,
headless Agg backend, so it works on servers and in CI). matplotlib is
imported when a picture is drawn, not at start-up (~0.5 s)."""
from typing import Dict, Sequence

import numpy as np

_DB_RANGE = 80.0  # dB shown below the loudest panel's peak


def to_db(mel: np.ndarray) -> np.ndarray:
  return 10.0 * np.log10(np.maximum(mel, 1e-10))


def pyplot():
  """matplotlib.pyplot on the headless Agg backend, imported on first use."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def spectrogram_panels(path: str, panels: Dict[str, np.ndarray], sr: int,
                       hop_length: int, title: str = '') -> None:
  """One row per panel (e.g. noisy | denoised | clean), one colour scale."""
  dbs = {name: to_db(mel) for name, mel in panels.items()}
  top = max(float(d.max()) for d in dbs.values())
  plt = pyplot()
  fig, axes = plt.subplots(len(dbs), 1, figsize=(9, 2.4 * len(dbs)),
                           sharex=True, squeeze=False)
  for ax, (name, db) in zip(axes[:, 0], dbs.items()):
    seconds = db.shape[1] * hop_length / sr
    image = ax.imshow(db, origin='lower', aspect='auto', cmap='magma',
                      vmin=top - _DB_RANGE, vmax=top,
                      extent=(0, seconds, 0, db.shape[0]))
    ax.set_ylabel('mel bin')
    ax.set_title(name, loc='left', fontsize=9)
  axes[-1, 0].set_xlabel('time (s)')
  fig.colorbar(image, ax=axes[:, 0].tolist(), label='power (dB)')
  if title:
    fig.suptitle(title, fontsize=10)
  fig.savefig(path, dpi=90)
  plt.close(fig)


def training_curves(path: str, rows: Sequence[dict],
                    keys=('train_loss', 'val_mse', 'test_mse')) -> None:
  """Metrics from metrics.jsonl against step, one log-scale panel each."""
  present = [k for k in keys if any(k in r for r in rows)]
  plt = pyplot()
  fig, axes = plt.subplots(1, len(present), figsize=(4 * len(present), 3),
                           squeeze=False)
  for ax, key in zip(axes[0], present):
    points = [(r['step'], r[key]) for r in rows if key in r]
    ax.plot(*zip(*points), marker='.' if len(points) < 30 else None)
    if key == 'test_mse':
      noisy = [(r['step'], r['test_noisy_mse']) for r in rows
               if 'test_noisy_mse' in r]
      ax.plot(*zip(*noisy), ls='--', label='noisy input')
      ax.legend()
    ax.set_yscale('log')
    ax.set_xlabel('step')
    ax.set_title(key, fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=90)
  plt.close(fig)
