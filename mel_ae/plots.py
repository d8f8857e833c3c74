"""Pictures for people: spectrogram panels and training curves.

Every function returns a matplotlib `Figure` built with the object-oriented
API: no pyplot, no global figure state, and the backend is never switched,
so the same call works on a headless server, in CI and inline in Jupyter (a
returned figure shows itself as a PNG, with or without `%matplotlib inline`).
`save(fig, path)` writes one to a file. matplotlib is imported when a picture
is drawn, not at start-up (~0.5 s).
"""
import functools
import io
from typing import Dict, Sequence, Tuple

import numpy as np

from mel_ae import audio

DPI = 90
_DB_RANGE = 80.0  # dB shown below the loudest panel's peak
_CMAP = 'magma'
# Candidate frequency ticks (Hz); those too close to a higher one are dropped.
_TICKS_HZ = (16000, 8000, 4000, 2000, 1000, 500, 200, 100, 50)
_MIN_TICK_GAP = 0.07  # of the axis height


def to_db(mel: np.ndarray) -> np.ndarray:
  return 10.0 * np.log10(np.maximum(mel, 1e-10))


@functools.cache
def _figure_class():
  import matplotlib.figure  # pylint: disable=g-import-not-at-top

  class Figure(matplotlib.figure.Figure):
    """A matplotlib Figure that Jupyter shows inline as a PNG without pyplot
    (IPython's own matplotlib formatter, if active, takes precedence)."""

    def _repr_png_(self) -> bytes:
      buffer = io.BytesIO()
      self.savefig(buffer, format='png', dpi=DPI, bbox_inches='tight')
      return buffer.getvalue()

  return Figure


def figure(**kwargs):
  """A new Figure (kwargs as matplotlib.figure.Figure: figsize, layout...)."""
  return _figure_class()(**kwargs)


def subplots(nrows: int = 1, ncols: int = 1, figsize=None, **kwargs):
  """(Figure, axes) as pyplot.subplots, without pyplot."""
  fig = figure(figsize=figsize)
  return fig, fig.subplots(nrows, ncols, **kwargs)


def save(fig, path: str, dpi: int = DPI) -> str:
  """Writes `fig` to `path` (the format from its suffix); returns the path."""
  fig.savefig(path, dpi=dpi)
  return path


def frequency_ticks(spec: audio.MelSpec) -> Tuple[np.ndarray, Sequence[str]]:
  """(positions, labels) in Hz / kHz for a mel axis whose band m spans
  [m, m + 1), at the bands' centre frequencies (spec's mel scale)."""
  centres = audio.band_centres_hz(spec)
  rows = np.arange(spec.n_mels) + 0.5
  positions, labels = [], []
  for hz in _TICKS_HZ:
    if not centres[0] <= hz <= centres[-1]:
      continue
    y = float(np.interp(hz, centres, rows))
    if positions and positions[-1] - y < _MIN_TICK_GAP * spec.n_mels:
      continue
    positions.append(y)
    labels.append(f'{hz / 1000:g} kHz' if hz >= 1000 else f'{hz:g} Hz')
  return np.array(positions[::-1]), labels[::-1]


def spectrogram_panels(panels: Dict[str, np.ndarray], spec: audio.MelSpec,
                       title: str = ''):
  """One row per panel (e.g. noisy | denoised | clean), one colour scale;
  time in seconds, frequency in Hz at the mel bands' centres."""
  dbs = {name: to_db(np.asarray(mel, np.float32))
         for name, mel in panels.items()}
  top = max(float(d.max()) for d in dbs.values())
  fig, axes = subplots(len(dbs), 1, figsize=(9, 2.4 * len(dbs)), sharex=True,
                       squeeze=False)
  ticks, labels = frequency_ticks(spec)
  for ax, (name, db) in zip(axes[:, 0], dbs.items()):
    seconds = db.shape[1] * spec.hop_length / spec.sr
    image = ax.imshow(db, origin='lower', aspect='auto', cmap=_CMAP,
                      vmin=top - _DB_RANGE, vmax=top,
                      extent=(0, seconds, 0, db.shape[0]))
    ax.set_yticks(ticks, labels)
    ax.set_ylabel('frequency')
    ax.set_title(name, loc='left', fontsize=9)
  axes[-1, 0].set_xlabel('time (s)')
  fig.colorbar(image, ax=axes[:, 0].tolist(), label='power (dB)')
  if title:
    fig.suptitle(title, fontsize=10)
  return fig


def training_curves(rows: Sequence[dict],
                    keys=('train_loss', 'val_mse', 'test_mse')):
  """Metrics from metrics.jsonl against step, one log-scale panel each."""
  present = [k for k in keys if any(k in r for r in rows)]
  fig, axes = subplots(1, max(len(present), 1),
                       figsize=(4 * max(len(present), 1), 3), squeeze=False)
  for ax, key in zip(axes[0], present):
    points = [(r['step'], r[key]) for r in rows if key in r]
    ax.plot(*zip(*points), marker='.' if len(points) < 30 else None)
    if key == 'test_mse':
      noisy = [(r['step'], r['test_noisy_mse']) for r in rows
               if 'test_noisy_mse' in r]
      if noisy:
        ax.plot(*zip(*noisy), ls='--', label='noisy input')
        ax.legend()
    ax.set_yscale('log')
    ax.set_xlabel('step')
    ax.set_title(key, fontsize=9)
  fig.tight_layout()
  return fig


def spectrogram_strip(mels: Sequence[np.ndarray], scale: int = 2,
                      gap: int = 2) -> np.ndarray:
  """(H, W, 3) uint8: the mels side by side (e.g. noisy | denoised | clean)
  on one colour scale (80 dB below the loudest), low frequencies at the
  bottom, white gaps between them, each pixel `scale` times repeated. No
  axes: milliseconds to draw, for TensorBoard at every evaluation."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  cmap = matplotlib.colormaps[_CMAP]
  dbs = [to_db(np.asarray(m, np.float32))[::-1] for m in mels]
  top = max(float(d.max()) for d in dbs)
  parts = []
  for db in dbs:
    if parts:
      parts.append(np.full((db.shape[0], gap, 3), 255, np.uint8))
    level = np.clip((db - (top - _DB_RANGE)) / _DB_RANGE, 0.0, 1.0)
    parts.append((cmap(level)[..., :3] * 255).round().astype(np.uint8))
  rgb = np.concatenate(parts, axis=1)
  return rgb.repeat(scale, axis=0).repeat(scale, axis=1)
