"""What corrupts the unpaired noisy files, fitted without clean/noisy pairs.

The model, per bin (f, t) of a power mel: noisy = g * clean + a, with
- g an i.i.d. per-bin gain, uniform or log-uniform on (low, high) (the 2020
  competition's noise was a uniform gain);
- a an additive floor: a median spectrum per band (its level and colour), a
  log-normal level that varies between files and from frame to frame (how
  stationary it is), and, within a band, the gamma-distributed fluctuation
  that Gaussian noise has after the STFT and the mel filterbank.

The clean training files and the noisy files hold different sentences, so
the fit compares statistics that hardly depend on what is said: histograms of
log power per group of bands, and of the log-power differences between
neighbouring bands and between neighbouring frames (an i.i.d. gain widens
those; clean speech does not), on a dB range below which everything counts
as floor. The floor's colour comes from the quietest frames; gain spread,
floor scale and level spreads are found by simulating clean crops through
candidate models and matching the histograms (1-Wasserstein distance, a
coordinate search on grids), with common random numbers, so the fit is
deterministic for a seed. The mean gain then follows from the mean powers.
"""
import dataclasses
import json
from typing import Dict, List, Sequence, Tuple

import numpy as np

from mel_ae import audio
from mel_ae import plots

GAIN_DISTRIBUTIONS = ('uniform', 'loguniform')
_DB = 10.0 / np.log(10.0)  # natural log -> dB
_TINY = 1e-10  # power standing in for "no floor at all" (-100 dB)
_SEED_TAG = 0xF17  # the fit's random stream: [seed, _SEED_TAG]
# The simulated clean sample: crops from random training files.
_SIM_CROPS, _SIM_CROP_FRAMES = 64, 32
_MAX_NOISY_FRAMES = 20000  # beyond this, a random subset of the noisy files
_BAND_GROUPS = 8  # the log-power histogram is matched per group of bands
_SWEEPS = 4  # most coordinate-search passes over the parameters
# Search grids. Gain: low / high ratio (1: no spread); floor: multiples of the
# quiet-frame estimate; the floor's level std (dB) frame to frame and file to
# file.
_RATIO_GRID = tuple(float(r) for r in np.geomspace(1e-4, 1.0, 17))
_FLOOR_SCALE_GRID = (0.0,) + tuple(float(s)
                                   for s in np.geomspace(0.125, 8.0, 13))
_FRAME_STD_GRID = (0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0)
_FILE_STD_GRID = (0.0, 2.0, 4.0, 6.0, 8.0, 12.0)
_REFINE_POINTS = 9  # a finer grid between the best point's neighbours
_GRIDS = {'gain_distribution': GAIN_DISTRIBUTIONS, 'ratio': _RATIO_GRID,
          'floor_scale': _FLOOR_SCALE_GRID, 'frame_std_db': _FRAME_STD_GRID,
          'file_std_db': _FILE_STD_GRID}
_START = {'gain_distribution': 'uniform', 'ratio': 1.0, 'floor_scale': 1.0,
          'frame_std_db': 0.0, 'file_std_db': 0.0}
_MIN_GAIN = 0.01  # least mean gain, as a fraction of noisy / clean mean power


class NoiseModelError(ValueError):
  """Noisy (or clean) files the model cannot be fitted to; one line, named."""


def gain_from_uniform(distribution: str, gain_range: Tuple[float, float],
                      u: np.ndarray) -> np.ndarray:
  """Maps uniform draws u in [0, 1) to gains of the named distribution."""
  low, high = gain_range
  if distribution == 'uniform':
    return low + (high - low) * u
  if distribution == 'loguniform':
    return low * (high / low) ** u
  raise ValueError(f'gain distribution must be one of {GAIN_DISTRIBUTIONS}, '
                   f'got {distribution!r}')


def log_gain_std(distribution: str, gain_range: Tuple[float, float]) -> float:
  """Std of ln g: the gain's spread on the scale that log power sees."""
  low, high = gain_range
  if high <= low:
    return 0.0
  if distribution == 'loguniform':
    return float(np.log(high / low) / np.sqrt(12.0))
  # Uniform: E[ln g] and E[ln^2 g] from the antiderivatives of ln and ln^2.
  first = lambda g: g * np.log(g) - g
  second = lambda g: g * (np.log(g) ** 2 - 2 * np.log(g) + 2)
  m1 = (first(high) - first(low)) / (high - low)
  m2 = (second(high) - second(low)) / (high - low)
  return float(np.sqrt(max(m2 - m1 ** 2, 0.0)))


def _range_with_mean(distribution: str, ratio: float,
                     mean: float) -> Tuple[float, float]:
  """(low, high) with low = ratio * high and the given mean gain."""
  if distribution == 'uniform':
    high = 2 * mean / (1 + ratio)
  elif ratio < 1:
    high = mean * np.log(1 / ratio) / (1 - ratio)
  else:
    high = mean
  return float(ratio * high), float(high)


def band_dof(spec: audio.MelSpec) -> np.ndarray:
  """Per band, the gamma shape of stationary Gaussian noise's mel power.

  Mean^2 / variance of sum_k w_k |X_k|^2; neighbouring STFT bins of a Hann
  window are correlated, so a band fluctuates more than its bin count says.
  """
  weights = audio.mel_filterbank(spec).astype(np.float64)
  window = np.hanning(spec.n_fft + 1)[:-1]  # periodic Hann, as the STFT's
  lag_power = np.abs(np.fft.fft(window ** 2)[:spec.n_fft // 2]) ** 2
  lag_power /= lag_power[0]
  variance = (weights ** 2).sum(axis=1)
  for lag in np.flatnonzero(lag_power > 1e-12)[1:]:  # Hann: lags 1 and 2
    neighbours = (weights[:, :-lag] * weights[:, lag:]).sum(axis=1)
    variance += 2 * lag_power[lag] * neighbours
  return weights.sum(axis=1) ** 2 / variance


def quiet_frames(mel: np.ndarray, fraction: float) -> np.ndarray:
  """The quietest `fraction` of a file's frames, in time order: mostly noise."""
  n = max(1, int(round(fraction * mel.shape[1])))
  return mel[:, np.sort(np.argsort(mel.sum(axis=0), kind='stable')[:n])]


@dataclasses.dataclass(frozen=True)
class NoiseModel:
  """noisy = g * clean + a (module docstring); JSON via to_dict/from_dict."""
  gain_distribution: str  # one of GAIN_DISTRIBUTIONS
  gain_range: Tuple[float, float]  # (low, high); low == high: no spread
  floor_db: Tuple[float, ...]  # median power of a per band, dB
  floor_dof: Tuple[float, ...]  # gamma shape of a per band (`band_dof`)
  file_std_db: float  # std of the floor's level (dB) from file to file
  frame_std_db: float  # ... and from frame to frame (0: stationary)
  clean_floor_db: float  # the clean files' quiet-frame level, for reference
  distance: float  # histogram distance, simulated clean + noise to noisy
  clean_distance: float  # the same for the clean files as they are

  @property
  def log_gain_std(self) -> float:
    return log_gain_std(self.gain_distribution, self.gain_range)

  @property
  def floor_median_db(self) -> float:
    """The floor's median power, averaged over bands, in dB."""
    return float(_DB * np.log(np.mean(10.0 ** (np.array(self.floor_db) / 10))))

  @property
  def floor_mean_db(self) -> float:
    """Its mean power, dB: log-normal levels raise the mean above the median."""
    return self.floor_median_db + (self.file_std_db ** 2
                                  + self.frame_std_db ** 2) / (2 * _DB)

  def to_dict(self) -> Dict:
    return json.loads(json.dumps(dataclasses.asdict(self)))

  @classmethod
  def from_dict(cls, values: Dict) -> 'NoiseModel':
    return cls(**{k: tuple(v) if isinstance(v, list) else v
                  for k, v in values.items()})

  def summary(self) -> str:
    """One line for the training log."""
    low, high = self.gain_range
    name = {'uniform': 'U', 'loguniform': 'logU'}[self.gain_distribution]
    return (f'noise model: multiplicative gain {name}({low:.3g}, {high:.3g}) '
            f'(log-gain std {self.log_gain_std:.2f}); additive floor '
            f'{self.floor_median_db:.1f} dB median, {self.floor_mean_db:.1f} dB '
            f'mean (clean quiet frames {self.clean_floor_db:.1f} dB), level '
            f'std {self.file_std_db:.1f} dB file to file, '
            f'{self.frame_std_db:.1f} dB frame to frame; histogram distance '
            f'{self.distance:.2f} (clean as is: {self.clean_distance:.2f})')

  def simulate(self, clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One corrupted draw of a clean (n_mels, T) power mel, float64."""
    draws = _draw(rng, clean.shape, np.array(self.floor_dof),
                  np.zeros(clean.shape[1], np.int64))
    return _corrupt(self, clean, draws)


@dataclasses.dataclass(frozen=True)
class _Draws:
  """The randomness of a corruption, apart from the model's parameters."""
  u: np.ndarray  # (n_mels, T) uniforms, turned into gains
  fluctuation: np.ndarray  # (n_mels, T) gamma(dof) / dof: mean 1
  file_z: np.ndarray  # (T,) standard normal, one value per file
  frame_z: np.ndarray  # (T,) standard normal per frame


def _draw(rng: np.random.Generator, shape, dof: np.ndarray,
          segments: np.ndarray) -> _Draws:
  """Draws for (n_mels, T) bins; `segments` numbers the file of each frame."""
  dof = dof[:, None]
  return _Draws(rng.random(shape), rng.gamma(dof, 1.0 / dof, shape),
                rng.standard_normal(segments[-1] + 1)[segments],
                rng.standard_normal(shape[1]))


def _corrupt(model: NoiseModel, clean: np.ndarray, draws: _Draws) -> np.ndarray:
  """g * clean + a for the model's parameters and the given draws."""
  gain = gain_from_uniform(model.gain_distribution, model.gain_range, draws.u)
  level_db = (model.file_std_db * draws.file_z
              + model.frame_std_db * draws.frame_z)
  floor = np.outer(10.0 ** (np.array(model.floor_db) / 10),
                   10.0 ** (level_db / 10))
  return gain * np.asarray(clean, np.float64) + floor * draws.fluctuation


def _log_power(power: np.ndarray, db_range: Tuple[float, float]) -> np.ndarray:
  """dB, clipped to the histograms' range (what lies below is all floor)."""
  return np.clip(_DB * np.log(np.maximum(power, _TINY)), *db_range)


class _Histograms:
  """Cumulative histograms of log power (per band group) and of its
  differences between neighbouring bands and frames, on fixed dB grids."""

  def __init__(self, noise_config, n_mels: int):
    self._low, self._high = noise_config.model_db_range
    self._step = noise_config.model_db_step
    self._bins = int(round((self._high - self._low) / self._step))
    self._groups = (np.arange(n_mels) * _BAND_GROUPS // n_mels)[:, None]

  def __call__(self, power: np.ndarray,
               segments: np.ndarray) -> List[np.ndarray]:
    """CDFs: one per band group, then band and frame differences; segments
    numbers the file of each frame (no difference across two files)."""
    db = _log_power(power, (self._low, self._high))
    level = self._count(db - self._low, self._groups, self._bins)
    span = self._high - self._low
    same_file = segments[1:] == segments[:-1]
    bands = self._count(np.diff(db, axis=0) + span, 0, 2 * self._bins)
    frames = self._count(np.diff(db, axis=1)[:, same_file] + span, 0,
                         2 * self._bins)
    return list(level) + [bands[0], frames[0]]

  def _count(self, values: np.ndarray, groups, bins: int) -> np.ndarray:
    """(groups, bins) normalised cumulative counts of values >= 0."""
    index = np.minimum((values / self._step).astype(np.int64), bins - 1)
    index = index + bins * np.broadcast_to(groups, np.shape(values))
    counts = np.bincount(index.ravel(), minlength=bins * (np.max(groups) + 1))
    cdf = np.cumsum(counts.reshape(-1, bins), axis=1, dtype=np.float64)
    return cdf / np.maximum(cdf[:, -1:], 1)

  def distance(self, a: List[np.ndarray], b: List[np.ndarray]) -> float:
    """Sum of 1-Wasserstein distances (dB): band groups averaged, then
    the two difference histograms."""
    w1 = [float(np.abs(x - y).sum() * self._step) for x, y in zip(a, b)]
    return float(np.mean(w1[:-2]) + w1[-2] + w1[-1])


def _check(mels: Sequence[np.ndarray], source: str, noise_config) -> None:
  """Refuses, in one line, files that no fit can learn anything from."""
  frames = sum(m.shape[1] for m in mels)
  if frames < noise_config.model_min_frames:
    raise NoiseModelError(
        f'noise model: {source}: {frames} frames in all, the fit needs at '
        f'least {noise_config.model_min_frames} (noise.model_min_frames)')
  low = 10.0 ** (noise_config.model_db_range[0] / 10)
  if not any(np.any(m > low) for m in mels):
    raise NoiseModelError(
        f'noise model: {source}: no value above '
        f'{noise_config.model_db_range[0]:g} dB (all zeros?), nothing to fit')


def _pool(mels: Sequence[np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
  """Files side by side in time, and the file number of every frame."""
  return (np.concatenate(mels, axis=1).astype(np.float64),
          np.repeat(np.arange(len(mels)), [m.shape[1] for m in mels]))


def _subset(mels: Sequence[np.ndarray], max_frames: int,
            rng: np.random.Generator) -> List[np.ndarray]:
  """Whole files in random order, as many as fit in max_frames (at least 1)."""
  order = rng.permutation(len(mels))
  total = np.cumsum([mels[i].shape[1] for i in order])
  return [mels[i] for i in order[:max(1, np.searchsorted(total, max_frames,
                                                          'right'))]]


def _crops(mels: Sequence[np.ndarray], count: int, frames: int,
           rng: np.random.Generator) -> List[np.ndarray]:
  """`count` random crops of up to `frames` frames from random files."""
  crops = []
  for i in rng.integers(len(mels), size=count):
    width = min(frames, mels[i].shape[1])
    start = rng.integers(mels[i].shape[1] - width + 1)
    crops.append(mels[i][:, start:start + width])
  return crops


def _mean_power(mels: Sequence[np.ndarray]) -> float:
  return (sum(float(np.sum(m, dtype=np.float64)) for m in mels)
          / sum(m.size for m in mels))


def _quiet_means(mels: Sequence[np.ndarray], fraction: float) -> np.ndarray:
  """(files, n_mels): each file's mean power per band over its quiet frames."""
  return np.stack([quiet_frames(np.asarray(m, np.float64), fraction).mean(1)
                   for m in mels])


class _Candidates:
  """Search point -> NoiseModel. The floor's colour is the median excess of
  the noisy files' quiet frames over the clean files'; the mean gain then
  follows from the mean powers (noisy = E[g] clean + floor)."""

  def __init__(self, clean, noisy, quiet_fraction: float, dof: np.ndarray):
    self._clean_mean, self._noisy_mean = _mean_power(clean), _mean_power(noisy)
    clean_floor = np.median(_quiet_means(clean, quiet_fraction), axis=0)
    excess = (_quiet_means(noisy, quiet_fraction)
              - self._noisy_mean / self._clean_mean * clean_floor)
    self._floor = np.median(np.maximum(excess, 0.0), axis=0)
    self._clean_floor_db = float(_DB * np.log(max(clean_floor.mean(), _TINY)))
    self._dof = tuple(float(d) for d in dof)

  def __call__(self, point: Dict) -> NoiseModel:
    floor = point['floor_scale'] * self._floor
    spread = (point['file_std_db'] ** 2 + point['frame_std_db'] ** 2) / _DB ** 2
    mean_gain = max(self._noisy_mean - floor.mean() * np.exp(spread / 2),
                    _MIN_GAIN * self._noisy_mean) / self._clean_mean
    return NoiseModel(
        point['gain_distribution'],
        _range_with_mean(point['gain_distribution'], point['ratio'], mean_gain),
        tuple(float(x) for x in _DB * np.log(np.maximum(floor, _TINY))),
        self._dof, float(point['file_std_db']), float(point['frame_std_db']),
        self._clean_floor_db, float('nan'), float('nan'))


def _refined(grid: Tuple, best) -> Tuple:
  """A finer grid between the neighbours of `best` in `grid`."""
  i = grid.index(best)
  low, high = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
  space = np.geomspace if low > 0 else np.linspace
  return tuple(float(v) for v in space(low, high, _REFINE_POINTS))


def _search(cost, point: Dict, grids: Dict[str, Tuple]) -> Dict:
  """Coordinate descent over the grids, then once more on refined grids."""
  seen = {}

  def best_along(point, name, grid):
    for value in grid:
      candidate = {**point, name: value}
      key = tuple(sorted(candidate.items()))
      if key not in seen:
        seen[key] = cost(candidate)
    costs = [seen[tuple(sorted({**point, name: v}.items()))] for v in grid]
    return {**point, name: grid[int(np.argmin(costs))]}

  for _ in range(_SWEEPS):
    start = point
    for name, grid in grids.items():
      point = best_along(point, name, grid)
    if point == start:
      break
  for name, grid in grids.items():
    if not isinstance(point[name], str):
      point = best_along(point, name, _refined(grid, point[name]))
  return point


def fit(clean: Sequence[np.ndarray], noisy: Sequence[np.ndarray], noise_config,
        spec: audio.MelSpec, seed: int,
        source: str = 'the unpaired noisy files') -> NoiseModel:
  """The model whose simulation of the clean files looks most like `noisy`.

  Raises NoiseModelError (a ValueError) naming `source` when the noisy or
  clean files hold too little to fit.
  """
  _check(noisy, source, noise_config)
  _check(clean, 'the clean training files', noise_config)
  rng = np.random.default_rng([seed, _SEED_TAG])
  histograms = _Histograms(noise_config, spec.n_mels)
  target = histograms(*_pool(_subset(noisy, _MAX_NOISY_FRAMES, rng)))
  sample, segments = _pool(_crops(clean, _SIM_CROPS, _SIM_CROP_FRAMES, rng))
  dof = band_dof(spec)
  draws = _draw(rng, sample.shape, dof, segments)
  candidates = _Candidates(clean, noisy, noise_config.quiet_fraction, dof)
  distance = lambda model: histograms.distance(
      histograms(_corrupt(model, sample, draws), segments), target)
  model = candidates(_search(lambda point: distance(candidates(point)), _START,
                             _GRIDS))
  if model.log_gain_std < noise_config.model_min_log_gain_std:
    # A spread this small is below what the histograms resolve, and the mean
    # gain is then what is left of the mean power after the floor's poorly
    # determined mean: it moved between 0.82 and 1.04 with the fit's random
    # stream on one additive corpus. Taken as no gain at all.
    model = dataclasses.replace(model, gain_range=(1.0, 1.0))
  return dataclasses.replace(
      model, distance=distance(model),
      clean_distance=histograms.distance(histograms(sample, segments), target))


def histogram_distance(a: Sequence[np.ndarray], b: Sequence[np.ndarray],
                       noise_config) -> float:
  """The fit's distance (dB) between the statistics of two sets of mels."""
  histograms = _Histograms(noise_config, a[0].shape[0])
  return histograms.distance(histograms(*_pool(a)), histograms(*_pool(b)))


def plot(path: str, model: NoiseModel, clean: Sequence[np.ndarray],
         noisy: Sequence[np.ndarray], noise_config, seed: int,
         simulate=None) -> None:
  """The fit's histograms of the noisy files, the clean files and the clean
  files through the model (or through `simulate(clean, rng)`, what training
  draws from it) as a PNG at `path`, so that a bad fit shows at a glance."""
  rng = np.random.default_rng([seed, _SEED_TAG, 1])
  sets = {'noisy': noisy, 'clean': clean,
          'clean + fitted noise': [(simulate or model.simulate)(c, rng)
                                   for c in clean]}
  _plot(path, sets, noise_config, model.summary().replace('; ', '\n'))


def _plot(path: str, sets: Dict[str, Sequence[np.ndarray]], noise_config,
          title: str) -> None:
  """Log-power, band-difference and frame-difference histograms per set."""
  low, high = noise_config.model_db_range
  span, step = high - low, noise_config.model_db_step
  panels = (('log power (dB)', lambda d: d, low, high),
            ('difference to the next band (dB)',
             lambda d: np.diff(d, axis=0), -span / 2, span / 2),
            ('difference to the next frame (dB)',
             lambda d: np.diff(d, axis=1), -span / 2, span / 2))
  fig, axes = plots.subplots(1, len(panels), figsize=(13, 4))
  for ax, (label, statistic, start, stop) in zip(axes, panels):
    for name, mels in sets.items():
      values = [statistic(_log_power(m, (low, high))).ravel() for m in mels]
      ax.hist(np.concatenate(values), np.arange(start, stop + step / 2, step),
              density=True, histtype='step', label=name)
    ax.set_xlabel(label)
    ax.set_yscale('log')
  axes[0].legend(fontsize=8)
  fig.suptitle(title, fontsize=8)
  fig.tight_layout()
  plots.save(fig, path)
