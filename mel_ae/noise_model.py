"""What corrupts the unpaired noisy files, fitted without clean/noisy pairs.

The model, per bin (f, t) of a power mel: noisy = g * clean + a, with
- g an i.i.d. per-bin gain, uniform or log-uniform on (low, high) (the 2020
  competition's noise was a uniform gain);
- a an additive floor: a median spectrum per band (its level and colour), a
  log-normal level that varies between files and from frame to frame (how
  stationary it is), and, within a band, the gamma-distributed fluctuation
  that Gaussian noise has after the STFT and the mel filterbank.

Four hypotheses compete (HYPOTHESES): no noise, additive noise alone
(g = 1), a gain alone (a = 0), and both. The clean training files and the
noisy files hold different sentences, so each is fitted by simulating clean
crops through candidate models and matching statistics that hardly depend
on what is said: histograms of log power per group of bands, of the
log-power differences between neighbouring bands and between neighbouring
frames, and of those differences among loud bins alone (an i.i.d. gain
widens them at every level, additive noise leaves loud bins as they are, so
neither can stand in for the other). Distances are 1-Wasserstein (dB),
found by a coordinate search on grids with common random numbers, so the
fit is deterministic for a seed. The fit's resolution is the distance
between two simulations of the best model from other clean crops and
draws; the simplest hypothesis within noise.model_tolerance resolutions of
the best is chosen, and where additive noise and a gain both are, the fit
says it cannot tell them apart and takes both, which holds either.

Nothing is tied to one corpus' level or storage: the histograms span
noise.model_db_window around the clean files' loud level (a high percentile
of their bins), clipped below at the highest floor either set was stored
with (a value that a share of its bins sits at, or float16's least normal
value), so true zeros and clipped floors look alike on both sides, and a
set scaled by 10^k fits the same noise, scaled. The floor's colour is the
excess of the noisy files' quiet bins (a low quantile over frames, band by
band) over the clean files'; the mean gain follows from the mean powers.
"""
import dataclasses
import json
from typing import Dict, List, Sequence, Tuple

import numpy as np
from scipy import special

from mel_ae import audio
from mel_ae import plots

GAIN_DISTRIBUTIONS = ('uniform', 'loguniform')
HYPOTHESES = ('none', 'additive', 'gain', 'both')  # simplest first
_WORDS = {'none': 'no noise', 'additive': 'additive noise',
          'gain': 'a per-bin gain', 'both': 'a per-bin gain and additive noise'}
_WITH_GAIN, _WITH_FLOOR = ('gain', 'both'), ('additive', 'both')
_COMPLEXITY = {'none': 0, 'additive': 1, 'gain': 1, 'both': 2}
_DB = 10.0 / np.log(10.0)  # natural log -> dB
_LOUD_PERCENTILE = 99.0  # the clean files' loud level: this percentile bin
_NO_FLOOR_DB = -150.0  # the floor of a hypothesis without one, re loud level
# A set whose least value holds at least this share of its bins was clipped
# there (the embedded gain family: 0.38 % at 1e-4; its clean files 2e-6).
_CLIP_SHARE = 1e-3
_SEED_TAG = 0xF17  # the fit's random stream: [seed, _SEED_TAG]
# The simulated clean sample: crops from random training files.
_SIM_CROPS, _SIM_CROP_FRAMES = 64, 32
# Simulations a close call between two gain distributions is averaged over
# (two let a 16 kHz voice's wide uniform gain lose to a narrow log-uniform
# one on some seeds: tests/noise_corpora_test.py).
_STEADY_SIMULATIONS = 8
_MAX_NOISY_FRAMES = 20000  # beyond this, a random subset of the noisy files
_BAND_GROUPS = 8  # the log-power histogram is matched per group of bands
_SWEEPS = 4  # most coordinate-search passes over the parameters
# Search grids. Gain: low / high ratio (1: no spread); floor: multiples of the
# noisy files' quiet-bin estimates; the floor's level std (dB) frame to
# frame.
_RATIO_GRID = tuple(float(r) for r in np.geomspace(1e-4, 1.0, 17))
_FLOOR_SCALE_GRID = tuple(float(s) for s in np.geomspace(0.125, 8.0, 13))
_FRAME_STD_GRID = (0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0)
_REFINE_POINTS = 9  # a finer grid between the best point's neighbours
_FLOOR_GRIDS = {'floor_scale': _FLOOR_SCALE_GRID,
                'frame_std_db': _FRAME_STD_GRID}
_START = {'gain_distribution': 'uniform', 'ratio': 1.0, 'floor_scale': 1.0,
          'frame_std_db': 0.0}
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
  """noisy = g * clean + a (module docstring), the hypothesis it was chosen
  as and the evidence; JSON via to_dict/from_dict."""
  gain_distribution: str  # one of GAIN_DISTRIBUTIONS
  gain_range: Tuple[float, float]  # (low, high); (1, 1): no gain
  floor_db: Tuple[float, ...]  # median power of a per band, dB
  floor_dof: Tuple[float, ...]  # gamma shape of a per band (`band_dof`)
  file_std_db: float  # std of the floor's level (dB) from file to file
  frame_std_db: float  # ... and from frame to frame (0: stationary)
  clean_floor_db: float  # the clean files' quiet-frame level, for reference
  clean_loud_db: float = 0.0  # their loud level, which the window follows
  hypothesis: str = 'both'  # one of HYPOTHESES
  # Histogram distance (dB) of each hypothesis' best fit to the noisy files.
  distances: Dict[str, float] = dataclasses.field(default_factory=dict)
  resolution: float = float('nan')  # distance between two simulations
  explaining: Tuple[str, ...] = ()  # hypotheses within the tolerance

  @property
  def log_gain_std(self) -> float:
    return log_gain_std(self.gain_distribution, self.gain_range)

  @property
  def additive(self) -> bool:
    """Whether the noise adds power (an additive floor)."""
    return self.hypothesis in _WITH_FLOOR

  @property
  def scales(self) -> bool:
    """Whether the noise scales the power per bin (a gain)."""
    return self.hypothesis in _WITH_GAIN

  @property
  def distance(self) -> float:
    return self.distances[self.hypothesis]

  @property
  def clean_distance(self) -> float:
    """The distance of the clean files as they are (no noise)."""
    return self.distances['none']

  @property
  def undecided(self) -> bool:
    """Whether additive noise and a gain alone explained the files alike."""
    return 'none' not in self.explaining and {'additive', 'gain'} <= set(
        self.explaining)

  @property
  def rival(self) -> str:
    """The best fit among the other hypotheses no more complex than the
    chosen one (for 'none': among all others)."""
    others = [h for h in HYPOTHESES if h != self.hypothesis]
    simpler = [h for h in others
               if _COMPLEXITY[h] <= _COMPLEXITY[self.hypothesis]]
    return min(simpler or others, key=self.distances.get)

  @property
  def margin(self) -> float:
    """How much worse (dB of distance) the rival fits; < 0: it fits better,
    by less than the tolerance."""
    return self.distances[self.rival] - self.distance

  @property
  def floor_median_db(self) -> float:
    """The floor's median power, averaged over bands, in dB."""
    return float(_DB * np.log(np.mean(10.0 ** (np.array(self.floor_db) / 10))))

  @property
  def floor_file_mean_db(self) -> float:
    """The mean power of the median file's floor, dB: its frames'
    log-normal levels raise it above the median (each bin's fluctuation
    has mean 1); what a noise's level over a file measures."""
    return self.floor_median_db + self.frame_std_db ** 2 / (2 * _DB)

  @property
  def floor_mean_db(self) -> float:
    """Its mean power, dB: log-normal levels raise the mean above the median."""
    return self.floor_file_mean_db + self.file_std_db ** 2 / (2 * _DB)

  def to_dict(self) -> Dict:
    return json.loads(json.dumps(dataclasses.asdict(self)))

  @classmethod
  def from_dict(cls, values: Dict) -> 'NoiseModel':
    return cls(**{k: tuple(v) if isinstance(v, list) else v
                  for k, v in values.items()})

  def decision(self) -> str:
    """Which hypothesis, over which rival, by what margin, in words."""
    d = self.distances
    if self.undecided:
      return ('cannot tell additive noise from a per-bin gain (histogram '
              f'distances {d["additive"]:.2f} and {d["gain"]:.2f} dB, '
              f'resolution {self.resolution:.2f} dB): both, the safer '
              'training noise')
    return (f'{_WORDS[self.hypothesis]}, over {_WORDS[self.rival]} by '
            f'{self.margin:+.2f} dB of histogram distance (resolution '
            f'{self.resolution:.2f} dB)')

  def parameters(self) -> str:
    """The fitted gain and floor, in words."""
    parts = []
    if self.hypothesis in _WITH_GAIN:
      low, high = self.gain_range
      name = {'uniform': 'U', 'loguniform': 'logU'}[self.gain_distribution]
      parts.append(f'gain {name}({low:.3g}, {high:.3g}) (log-gain std '
                   f'{self.log_gain_std:.2f})')
    if self.additive:
      parts.append(
          f'additive floor {self.floor_median_db:.1f} dB median, '
          f'{self.floor_mean_db:.1f} dB mean (clean quiet frames '
          f'{self.clean_floor_db:.1f} dB), level std {self.file_std_db:.1f} '
          f'dB file to file, {self.frame_std_db:.1f} dB frame to frame')
    return '; '.join(parts) or 'noisy = clean'

  def summary(self) -> str:
    """One line for the training log."""
    distances = ', '.join(f'{h} {self.distances[h]:.2f}' for h in HYPOTHESES)
    return (f'noise model: {self.decision()}; {self.parameters()}; '
            f'distances {distances} dB')

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


def _corrupt(model: NoiseModel, clean: np.ndarray, draws: _Draws,
             floor=None) -> np.ndarray:
  """g * clean + a for the model's parameters and the given draws; `floor`,
  (n_mels, T) powers, in place of the model's median floor at its file to
  file levels."""
  gain = gain_from_uniform(model.gain_distribution, model.gain_range, draws.u)
  if floor is None:
    floor = np.outer(10.0 ** (np.array(model.floor_db) / 10),
                     10.0 ** (model.file_std_db * draws.file_z / 10))
  floor = floor * 10.0 ** (model.frame_std_db * draws.frame_z / 10)
  return gain * np.asarray(clean, np.float64) + floor * draws.fluctuation


@dataclasses.dataclass(frozen=True)
class _Window:
  """Absolute dB levels the histograms follow, from the data."""
  low_db: float  # everything below counts as floor (clipped here)
  high_db: float
  loud_db: float  # a bin this loud or louder is a loud bin
  reference_db: float  # the clean files' loud level


def _values(mels: Sequence[np.ndarray]) -> np.ndarray:
  return np.concatenate([np.ravel(m) for m in mels]).astype(np.float64)


def _stored_floor(values: np.ndarray) -> float:
  """The least power a set resolves: a clip that a share of its bins sits at,
  or float16's least normal where every value is a float16 (below it,
  float16 keeps few digits); 0 where neither."""
  least = float(values.min())
  floor = least if np.mean(values == least) >= _CLIP_SHARE else 0.0
  if np.array_equal(values.astype(np.float16).astype(np.float64), values):
    floor = max(floor, float(np.finfo(np.float16).tiny))
  return floor


def _window(clean: Sequence[np.ndarray], noisy: Sequence[np.ndarray],
            noise_config) -> _Window:
  """noise.model_db_window and model_loud_db around the clean files' loud
  level, clipped below at the highest floor either set is stored with."""
  clean_values = _values(clean)
  loud = _DB * np.log(np.percentile(clean_values, _LOUD_PERCENTILE))
  stored = max(_stored_floor(clean_values), _stored_floor(_values(noisy)))
  low, high = noise_config.model_db_window
  low_db = max(loud + low, _DB * np.log(stored) if stored > 0 else -np.inf)
  return _Window(float(low_db), float(loud + high),
                 float(loud + noise_config.model_loud_db), float(loud))


def _log_power(power: np.ndarray, window: _Window) -> np.ndarray:
  """dB, clipped to the window (what lies below is all floor)."""
  tiny = 10.0 ** ((window.low_db - 1) / 10)
  return np.clip(_DB * np.log(np.maximum(power, tiny)), window.low_db,
                 window.high_db)


def _neighbours(power: np.ndarray, same_file: np.ndarray):
  """(bins, their neighbours) in the next band, then in the next frame of
  the same file."""
  return ((power[1:], power[:-1]),
          (power[:, 1:][:, same_file], power[:, :-1][:, same_file]))


def _loud_differences(a: np.ndarray, b: np.ndarray,
                      window: _Window) -> np.ndarray:
  """dB differences of the pairs whose mean power is loud: chosen by the
  pair's mean, not by each bin, so that a gain's jitter is not selected
  away."""
  loud = (a + b) / 2 >= 10.0 ** (window.loud_db / 10)
  return _log_power(a[loud], window) - _log_power(b[loud], window)


class _Histograms:
  """Cumulative histograms of log power (per band group), of its
  differences between neighbouring bands and frames, and of those
  differences among loud bins alone, on fixed dB grids."""

  def __init__(self, window: _Window, step: float, n_mels: int):
    self._window, self._step = window, step
    self._span = window.high_db - window.low_db
    self._bins = max(1, int(round(self._span / step)))
    self._groups = (np.arange(n_mels) * _BAND_GROUPS // n_mels)[:, None]

  def __call__(self, power: np.ndarray,
               segments: np.ndarray) -> List[np.ndarray]:
    """CDFs: one per band group, then band and frame differences, then the
    same among loud bins; segments numbers the file of each frame (no
    difference across two files)."""
    db = _log_power(power, self._window)
    level = self._count(db - self._window.low_db, self._groups, self._bins)
    same_file = segments[1:] == segments[:-1]
    differences, loud = [], []
    for a, b in _neighbours(power, same_file):
      differences.append(self._differences(_log_power(a, self._window)
                                           - _log_power(b, self._window)))
      loud.append(self._differences(_loud_differences(a, b, self._window)))
    return list(level) + differences + loud

  def _differences(self, values: np.ndarray) -> np.ndarray:
    return self._count(values + self._span, 0, 2 * self._bins)[0]

  def _count(self, values: np.ndarray, groups, bins: int) -> np.ndarray:
    """(groups, bins) normalised cumulative counts of values >= 0."""
    index = np.minimum((values / self._step).astype(np.int64), bins - 1)
    index = index + bins * np.broadcast_to(groups, np.shape(values))
    counts = np.bincount(index.ravel(), minlength=bins * (np.max(groups) + 1))
    cdf = np.cumsum(counts.reshape(-1, bins), axis=1, dtype=np.float64)
    return cdf / np.maximum(cdf[:, -1:], 1)

  def distance(self, a: List[np.ndarray], b: List[np.ndarray]) -> float:
    """Sum of 1-Wasserstein distances (dB): band groups averaged, then the
    four difference histograms."""
    w1 = [float(np.abs(x - y).sum() * self._step) for x, y in zip(a, b)]
    return float(np.mean(w1[:_BAND_GROUPS]) + sum(w1[_BAND_GROUPS:]))


def _check(mels: Sequence[np.ndarray], source: str, noise_config) -> None:
  """Refuses, in one line, files that no fit can learn anything from."""
  frames = sum(m.shape[1] for m in mels)
  if frames < noise_config.model_min_frames:
    raise NoiseModelError(
        f'noise model: {source}: {frames} frames in all, the fit needs at '
        f'least {noise_config.model_min_frames} (noise.model_min_frames)')
  if not any(np.any(m > 0) for m in mels):
    raise NoiseModelError(
        f'noise model: {source}: every value is 0, nothing to fit')


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


class _Simulation:
  """Clean crops, the draws that corrupt them and, for each crop, the floor
  of a random noisy file: one random sample, so that every candidate sees
  the same (common random numbers)."""

  def __init__(self, clean: Sequence[np.ndarray], file_floors: np.ndarray,
               dof: np.ndarray, rng: np.random.Generator):
    self.sample, self.segments = _pool(_crops(clean, _SIM_CROPS,
                                              _SIM_CROP_FRAMES, rng))
    self._draws = _draw(rng, self.sample.shape, dof, self.segments)
    # Every file's floor as often as the crops allow, in random order.
    picks = rng.permutation(np.resize(np.arange(len(file_floors)),
                                      self.segments[-1] + 1))
    self._floors = file_floors[picks[self.segments]].T

  def __call__(self, model: NoiseModel, floor_scale: float) -> np.ndarray:
    """The sample through the model, its floor the noisy files' own, times
    floor_scale (none where the model has none)."""
    return _corrupt(model, self.sample, self._draws,
                    floor_scale * model.additive * self._floors)


def _mean_power(mels: Sequence[np.ndarray]) -> float:
  return (sum(float(np.sum(m, dtype=np.float64)) for m in mels)
          / sum(m.size for m in mels))


def _quiet_bins(mels: Sequence[np.ndarray], fraction: float) -> np.ndarray:
  """(files, n_mels): per file and band, the `fraction` quantile of its
  frames, the level of the band's quiet bins."""
  return np.stack([np.quantile(np.asarray(m, np.float64), fraction, axis=1)
                   for m in mels])


class _Candidates:
  """(hypothesis, search point) -> NoiseModel. Each noisy file's floor is
  the excess of its quiet bins over the clean files' (band by band, so loud
  noise in a few bands does not pick speech frames as quiet), over the
  quantile that Gaussian noise's fluctuation has there: its colour and
  level, which the search scales; the model holds their median and their
  level's spread. The mean gain follows from the mean powers (noisy = E[g]
  clean + floor)."""

  def __init__(self, clean, noisy, quiet_fraction: float, dof: np.ndarray,
               window: _Window):
    self._clean_mean, self._noisy_mean = _mean_power(clean), _mean_power(noisy)
    clean_quiet = np.median(_quiet_bins(clean, quiet_fraction), axis=0)
    excess = (_quiet_bins(noisy, quiet_fraction)
              - self._noisy_mean / self._clean_mean * clean_quiet)
    self.file_floors = (np.maximum(excess, 0.0)
                        / (special.gammaincinv(dof, quiet_fraction) / dof))
    levels = self.file_floors.mean(axis=1)
    self._file_std_db = float(np.std(_DB * np.log(levels[levels > 0]))
                              if np.any(levels > 0) else 0.0)
    quiet = np.median([quiet_frames(np.asarray(m, np.float64),
                                    quiet_fraction).mean(1) for m in clean],
                      axis=0)
    self._clean_floor_db = float(_DB * np.log(max(quiet.mean(), 1e-300)))
    self._loud_db = window.reference_db
    self._dof = tuple(float(d) for d in dof)

  def __call__(self, hypothesis: str, point: Dict) -> NoiseModel:
    with_floor = hypothesis in _WITH_FLOOR
    floors = point['floor_scale'] * with_floor * self.file_floors
    spread = (point['frame_std_db'] / _DB) ** 2
    mean_gain = max(self._noisy_mean - floors.mean() * np.exp(spread / 2),
                    _MIN_GAIN * self._noisy_mean) / self._clean_mean
    gain_range = (_range_with_mean(point['gain_distribution'], point['ratio'],
                                   mean_gain)
                  if hypothesis in _WITH_GAIN else (1.0, 1.0))
    no_floor = 10.0 ** ((self._loud_db + _NO_FLOOR_DB) / 10)
    floor = np.maximum(_typical_floor(floors), no_floor)
    return NoiseModel(
        point['gain_distribution'], gain_range,
        tuple(float(x) for x in _DB * np.log(floor)),
        self._dof, self._file_std_db * with_floor,
        float(point['frame_std_db']) * with_floor, self._clean_floor_db,
        self._loud_db, hypothesis)


def _typical_floor(floors: np.ndarray) -> np.ndarray:
  """(n_mels,) of (files, n_mels) floors: the median file's level in the
  files' median colour; a band-by-band median over files of several
  colours lies below most of them."""
  levels = floors.mean(axis=1)
  heard = levels > 0
  if not heard.any():
    return np.zeros(floors.shape[1])
  shapes = floors[heard] / levels[heard, None]  # each of mean 1
  colour = np.median(shapes, axis=0)
  if not colour.any():  # Most files without a floor in most bands.
    colour = shapes.mean(axis=0)
  return colour / colour.mean() * np.median(levels)


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


def _fit_hypotheses(distance, steady_distance) -> Dict[str, Dict]:
  """Each hypothesis' best search point: the floor alone, the gain alone
  and both together from where those ended, with each gain distribution
  searched on its own (coordinate descent rarely crosses from one to the
  other) and the two ends compared by `steady_distance` (over more draws:
  on one, a uniform gain on true zeros tied with a log-uniform one of
  another spread). `distance(hypothesis, point)`, the same signature."""

  def search(hypothesis, start, grids):
    cost = lambda point: distance(hypothesis, point)
    ends = [_search(cost, {**start, 'gain_distribution': name}, grids)
            for name in (GAIN_DISTRIBUTIONS if 'ratio' in grids else
                         (start['gain_distribution'],))]
    return min(ends, key=lambda point: steady_distance(hypothesis, point))

  gain_grids = {'ratio': _RATIO_GRID}
  points = {'none': _START,
            'additive': search('additive', _START, _FLOOR_GRIDS),
            'gain': search('gain', _START, gain_grids)}
  start = {**points['additive'], 'ratio': points['gain']['ratio']}
  points['both'] = search('both', start, {**gain_grids, **_FLOOR_GRIDS})
  return points


def _choose(distances: Dict[str, float], resolution: float,
            tolerance: float) -> Tuple[str, Tuple[str, ...]]:
  """(chosen hypothesis, those within `tolerance` resolutions of the best):
  the simplest of them; additive and gain alike: both, which holds either."""
  best = min(distances.values())
  explaining = tuple(h for h in HYPOTHESES
                     if distances[h] <= best + tolerance * resolution)
  if explaining[0] == 'none' or len(explaining) == 1:
    return explaining[0], explaining
  if explaining[:2] == ('additive', 'gain'):
    return 'both', explaining
  return explaining[0], explaining


def fit(clean: Sequence[np.ndarray], noisy: Sequence[np.ndarray], noise_config,
        spec: audio.MelSpec, seed: int,
        source: str = 'the unpaired noisy files') -> NoiseModel:
  """The simplest hypothesis whose simulation of the clean files looks like
  `noisy` within the fit's resolution, with the evidence.

  Raises NoiseModelError (a ValueError) naming `source` when the noisy or
  clean files hold too little to fit.
  """
  _check(noisy, source, noise_config)
  _check(clean, 'the clean training files', noise_config)
  rng = np.random.default_rng([seed, _SEED_TAG])
  window = _window(clean, noisy, noise_config)
  histograms = _Histograms(window, noise_config.model_db_step, spec.n_mels)
  target = histograms(*_pool(_subset(noisy, _MAX_NOISY_FRAMES, rng)))
  dof = band_dof(spec)
  candidates = _Candidates(clean, noisy, noise_config.quiet_fraction, dof,
                           window)
  simulations = [_Simulation(clean, candidates.file_floors, dof, rng)
                 for _ in range(_STEADY_SIMULATIONS)]
  statistics = lambda hypothesis, point, sim=simulations[0]: histograms(
      sim(candidates(hypothesis, point), point['floor_scale']), sim.segments)
  distance = lambda hypothesis, point, sim=simulations[0]: (
      histograms.distance(statistics(hypothesis, point, sim), target))
  steady = lambda hypothesis, point: np.mean(
      [distance(hypothesis, point, sim) for sim in simulations])
  points = _fit_hypotheses(distance, steady)
  distances = {h: distance(h, points[h]) for h in HYPOTHESES}
  best = min(distances, key=distances.get)
  resolution = histograms.distance(
      statistics(best, points[best]),
      statistics(best, points[best], simulations[1]))
  chosen, explaining = _choose(distances, resolution,
                               noise_config.model_tolerance)
  return dataclasses.replace(candidates(chosen, points[chosen]),
                             distances=distances, resolution=resolution,
                             explaining=explaining)


def histogram_distance(a: Sequence[np.ndarray], b: Sequence[np.ndarray],
                       noise_config) -> float:
  """The fit's distance (dB) between the statistics of two sets of mels,
  on the window that `a` as the clean files and `b` as the noisy give."""
  histograms = _Histograms(_window(a, b, noise_config),
                           noise_config.model_db_step, a[0].shape[0])
  return histograms.distance(histograms(*_pool(a)), histograms(*_pool(b)))


def plot(path: str, model: NoiseModel, clean: Sequence[np.ndarray],
         noisy: Sequence[np.ndarray], noise_config, seed: int,
         simulate=None) -> None:
  """The fit's histograms of the noisy files, the clean files and the clean
  files through the model (or through `simulate(clean, rng)`, what training
  draws from it) as a PNG at `path`, titled with the decision in words, so
  that a bad fit shows at a glance."""
  rng = np.random.default_rng([seed, _SEED_TAG, 1])
  sets = {'noisy files': noisy, 'clean files': clean,
          f'clean + fitted {_WORDS[model.hypothesis]}': [
              (simulate or model.simulate)(c, rng) for c in clean]}
  _plot(path, sets, _window(clean, noisy, noise_config),
        noise_config.model_db_step, _title(model))


def _title(model: NoiseModel) -> str:
  """Two lines: the decision against its rival, and the parameters."""
  if model.undecided:
    first = f'Cannot tell {_WORDS["additive"]} from {_WORDS["gain"]}'
  else:
    first = (f'Chosen: {_WORDS[model.hypothesis]}; its rival, '
             f'{_WORDS[model.rival]}, fits {model.margin:.2f} dB worse')
  return (f'{first} (histogram distance, resolution '
          f'{model.resolution:.2f} dB)\n{model.parameters()}')


def _plot(path: str, sets: Dict[str, Sequence[np.ndarray]], window: _Window,
          step: float, title: str) -> None:
  """Log-power, band- and frame-difference histograms per set, the last of
  loud pairs of frames alone."""
  span = window.high_db - window.low_db
  db = lambda p: _log_power(p, window)
  panels = (
      ('mel power (dB)', db, window.low_db, window.high_db),
      ('level difference to the next band (dB)',
       lambda p: np.diff(db(p), axis=0), -span / 2, span / 2),
      ('level difference to the next frame (dB)',
       lambda p: np.diff(db(p), axis=1), -span / 2, span / 2),
      (f'the same, pairs above {window.loud_db:.0f} dB (loud)',
       lambda p: _loud_differences(p[:, 1:], p[:, :-1], window), -20.0,
       20.0))
  fig, axes = plots.subplots(1, len(panels), figsize=(16, 4.4))
  for ax, (label, statistic, start, stop) in zip(axes, panels):
    for name, mels in sets.items():
      values = [statistic(np.asarray(m, np.float64)).ravel() for m in mels]
      ax.hist(np.concatenate(values), np.arange(start, stop + step / 2, step),
              density=True, histtype='step', label=name)
    ax.set_xlabel(label)
    ax.set_yscale('log')
  axes[0].set_ylabel('share of bins per dB (log scale)')
  axes[0].axvline(window.low_db, color='grey', lw=0.8, ls=':',
                  label='floor of the window')
  axes[0].legend(fontsize=8)
  fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  plots.save(fig, path)
