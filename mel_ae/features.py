"""The model domain: compressed, normalised power mels, and the exact inverse.

The seed compresses a power mel with `x ** (1 / root)` (root 16) and divides
by the largest compressed value of the training files, so inputs lie in
[0, 1]. The normaliser is fitted once on the training files and travels with
the checkpoint (`to_dict` / `from_dict`), so inference never refits it.
`kind='db'` is the log alternative used in ablations: 10 log10(x + eps),
mapped linearly so that [max - top_db, max] becomes [0, 1].
"""
import dataclasses
from typing import Iterable

import numpy as np

_DB_EPS = 1e-10


@dataclasses.dataclass(frozen=True)
class Normalizer:
  """Maps power mels to [0, 1] and back. Fields are JSON-friendly."""
  kind: str = 'root'     # 'root' or 'db'
  root: float = 16.0     # compression root for kind='root'
  top_db: float = 80.0   # dynamic range kept for kind='db'
  scale: float = 1.0     # max of the compressed training values
  offset: float = 0.0    # subtracted before scaling (db only)

  def compress(self, power: np.ndarray) -> np.ndarray:
    if self.kind == 'root':
      return np.power(power, 1.0 / self.root)
    if self.kind == 'db':
      return 10.0 * np.log10(power + _DB_EPS)
    raise ValueError(f'unknown transform kind {self.kind!r} (root or db)')

  def forward(self, power: np.ndarray) -> np.ndarray:
    """Power mel -> model domain (float32)."""
    z = (self.compress(np.asarray(power, np.float64)) - self.offset) / self.scale
    if self.kind == 'db':
      z = np.clip(z, 0.0, None)
    return z.astype(np.float32)

  def inverse(self, z, xp=np):
    """Model domain -> power mel; exact inverse of `forward` for kind='root'.

    `xp=jax.numpy` gives a differentiable version for losses in raw power.
    """
    c = (np.asarray(z, np.float64) if xp is np else z) * self.scale + self.offset
    if self.kind == 'root':
      return xp.power(xp.clip(c, 0.0, None), self.root)
    return xp.clip(xp.power(10.0, c / 10.0) - _DB_EPS, 0.0, None)

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, d: dict) -> 'Normalizer':
    return cls(**{k: (str(v) if k == 'kind' else float(v)) for k, v in d.items()})


def fit_normalizer(mels: Iterable[np.ndarray], kind: str = 'root',
                   root: float = 16.0, top_db: float = 80.0) -> Normalizer:
  """Fits the scale (and dB offset) on training power mels."""
  probe = Normalizer(kind=kind, root=root, top_db=top_db)
  peak = max(float(np.max(probe.compress(np.asarray(m, np.float64))))
             for m in mels)
  if kind == 'db':
    return dataclasses.replace(probe, offset=peak - top_db, scale=top_db)
  if peak <= 0:
    raise ValueError('training mels are all zero: cannot fit the normaliser')
  return dataclasses.replace(probe, scale=peak)
