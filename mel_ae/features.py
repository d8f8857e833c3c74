"""The model domain: compressed, normalised power mels, and the exact inverse.

The seed compresses a power mel with `x ** (1 / root)` (root 16) and divides
by the largest compressed value of the training files, so inputs lie in
[0, 1]. The normaliser is fitted once on the training files and travels with
the checkpoint (`to_dict` / `from_dict`), so inference never refits it.
`kind='db'` is the log alternative used in ablations: 10 log10(x + eps),
mapped linearly so that [max - top_db, max] becomes [0, 1]. `kind='log'` is
ln(x + log_eps) minus its mean over the training files: natural-log units
(a residual of r in this domain is a gain of e^r on power,
output_forms.Residual), exactly invertible, and centred, so that the zeros a
convolution pads its input with stand for a typical level, not for the
loudest.
"""
import dataclasses
from typing import Iterable

import numpy as np

_DB_EPS = 1e-10
KINDS = ('root', 'db', 'log')
# kind='log' inverts at most to e^30 times the training files' geometric
# mean (~1e11 times their maximum): a wild prediction early in training then
# gives a large but finite raw-power loss (its square fits float32), not inf.
_MAX_LOG_GAIN = 30.0


@dataclasses.dataclass(frozen=True)
class Normalizer:
  """Maps power mels to [0, 1] and back. Fields are JSON-friendly."""
  kind: str = 'root'     # one of KINDS
  root: float = 16.0     # compression root for kind='root'
  top_db: float = 80.0   # dynamic range kept for kind='db'
  scale: float = 1.0     # max of the compressed training values (root)
  offset: float = 0.0    # subtracted before scaling (db, log)
  log_eps: float = 1e-6  # added to power before the log (kind='log')
  # The training files' mean power: their level, which floors and true
  # zeros hardly move (the 'power' loss' unit, mel_ae/recipes.py).
  mean_power: float = 1.0

  def compress(self, power: np.ndarray) -> np.ndarray:
    if self.kind == 'root':
      return np.power(power, 1.0 / self.root)
    if self.kind == 'db':
      return 10.0 * np.log10(power + _DB_EPS)
    if self.kind == 'log':
      return np.log(power + self.log_eps)
    raise ValueError(f'unknown transform kind {self.kind!r}, one of {KINDS}')

  def forward(self, power: np.ndarray) -> np.ndarray:
    """Power mel -> model domain (float32)."""
    z = (self.compress(np.asarray(power, np.float64)) - self.offset) / self.scale
    if self.kind == 'db':
      z = np.clip(z, 0.0, None)
    return z.astype(np.float32)

  def inverse(self, z, xp=np):
    """Model domain -> power mel; the exact inverse of `forward` for the
    root and log kinds (values below 0 go to 0 power for root).

    `xp=jax.numpy` gives a differentiable version for losses in raw power.
    """
    c = (np.asarray(z, np.float64) if xp is np else z) * self.scale + self.offset
    if self.kind == 'root':
      return xp.power(xp.clip(c, 0.0, None), self.root)
    if self.kind == 'log':
      c = xp.minimum(c, self.offset + _MAX_LOG_GAIN)
      return xp.clip(xp.exp(c) - self.log_eps, 0.0, None)
    return xp.clip(xp.power(10.0, c / 10.0) - _DB_EPS, 0.0, None)

  @property
  def silence(self) -> float:
    """The model-domain value of zero power: what padding must hold (0 for
    root and db; far below the training files for log)."""
    return float(self.forward(np.zeros(1))[0])

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, d: dict) -> 'Normalizer':
    return cls(**{k: (str(v) if k == 'kind' else float(v)) for k, v in d.items()})


def fit_normalizer(mels: Iterable[np.ndarray], kind: str = 'root',
                   root: float = 16.0, top_db: float = 80.0,
                   log_eps: float = 1e-6) -> Normalizer:
  """Fits the scale (and offset) on training power mels."""
  mels = [np.asarray(m, np.float64) for m in mels]
  mean_power = sum(float(m.sum()) for m in mels) / sum(m.size for m in mels)
  probe = Normalizer(kind=kind, root=root, top_db=top_db, log_eps=log_eps,
                     mean_power=mean_power)
  peak = max(float(np.max(probe.compress(m))) for m in mels)
  if kind == 'db':
    return dataclasses.replace(probe, offset=peak - top_db, scale=top_db)
  if peak <= (np.log(log_eps) if kind == 'log' else 0.0):
    raise ValueError('training mels are all zero: cannot fit the normaliser')
  if kind == 'log':
    logs = [probe.compress(m) for m in mels]
    mean = sum(float(l.sum()) for l in logs) / sum(l.size for l in logs)
    return dataclasses.replace(probe, offset=mean, scale=1.0)
  return dataclasses.replace(probe, scale=peak)
