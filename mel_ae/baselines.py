"""Classical denoisers that a learned model has to beat.

Each method maps a power mel (n_mels, T) to a power mel of the same shape and
dtype and is a pure function of its input and keyword parameters. `apply`
runs one by name and `define_flags` / `params_from_flags` expose their
parameters, so every CLI offers the same methods.

Defaults were tuned for the competition MSE on 10 of the 30 pairs of
mel_ae/corpus/test (speech, 23 ms frames). There any smoothing along time
costs more on speech onsets than it removes of noise, so `lowpass` and
`median` use the narrowest window; spectral subtraction is the strong one.
"""
import inspect
from typing import Callable, Dict, Tuple

from absl import flags
import numpy as np
from scipy import ndimage


def identity(mel: np.ndarray) -> np.ndarray:
  """Returns the noisy input unchanged: the score to beat."""
  return np.array(mel, copy=True)


def lowpass(mel: np.ndarray, width: int = 3) -> np.ndarray:
  """Moving average over `width` frames (odd, to stay centred) per band.

  Averaging power, not dB or roots, keeps the local mean, which is what
  power-domain MSE rewards; on the corpus it beat a Butterworth filtfilt
  (which rings below zero) and averaging square roots.
  """
  out = ndimage.uniform_filter1d(np.asarray(mel, np.float64), size=width,
                                 axis=1, mode='nearest')
  return out.astype(mel.dtype)


def median(mel: np.ndarray, size: Tuple[int, int] = (1, 3)) -> np.ndarray:
  """Median over a (bands, frames) window: removes clicks, keeps edges."""
  return ndimage.median_filter(mel, size=tuple(size), mode='nearest')


def spectral_subtraction(mel: np.ndarray, quiet_fraction: float = 0.3,
                         over_subtraction: float = 2.0,
                         floor: float = 0.05) -> np.ndarray:
  """Subtracts each band's noise floor, estimated from the quietest frames.

  The noise of a band is its mean over the `quiet_fraction` of frames with the
  least total energy; the result never falls below `floor` times the input
  (the spectral floor, which limits musical noise). Those frames hold less
  noise than average, hence subtracting twice their mean by default; a
  larger `floor` trades MSE for log-spectral distance.
  """
  x = np.asarray(mel, np.float64)
  n_quiet = max(1, int(round(quiet_fraction * x.shape[1])))
  quiet = np.argsort(x.sum(axis=0), kind='stable')[:n_quiet]
  noise = x[:, quiet].mean(axis=1, keepdims=True)
  return np.maximum(x - over_subtraction * noise, floor * x).astype(mel.dtype)


METHODS: Dict[str, Callable[..., np.ndarray]] = {
    'identity': identity,
    'lowpass': lowpass,
    'median': median,
    'spectral_subtraction': spectral_subtraction,
}

# Flag name -> (method, keyword, help). Defaults come from the signatures
# above, so each lives in one place.
_FLAG_PARAMS = {
    'lowpass_width': ('lowpass', 'width', 'lowpass: frames averaged (odd).'),
    'median_size': ('median', 'size', 'median: window as bands,frames.'),
    'ss_quiet_fraction': ('spectral_subtraction', 'quiet_fraction',
                          'spectral_subtraction: fraction of frames (the '
                          'quietest) that estimate the noise floor.'),
    'ss_over_subtraction': ('spectral_subtraction', 'over_subtraction',
                            'spectral_subtraction: multiple of the noise '
                            'floor subtracted.'),
    'ss_floor': ('spectral_subtraction', 'floor',
                 'spectral_subtraction: output >= floor * input.'),
}


def _default(method: str, keyword: str):
  return inspect.signature(METHODS[method]).parameters[keyword].default


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Defines one flag per method parameter (e.g. --lowpass_width)."""
  for name, (method, keyword, help_text) in _FLAG_PARAMS.items():
    default = _default(method, keyword)
    if isinstance(default, tuple):
      flags.DEFINE_list(name, [str(v) for v in default], help_text,
                        flag_values=flag_values)
      flags.register_validator(
          name, lambda v: len(v) == 2 and all(s.isdigit() and int(s) > 0
                                              for s in v),
          message=f'--{name} must be two positive integers, e.g. 1,5',
          flag_values=flag_values)
    elif isinstance(default, int):
      flags.DEFINE_integer(name, default, help_text, lower_bound=1,
                           flag_values=flag_values)
    else:
      flags.DEFINE_float(name, default, help_text, lower_bound=0.0,
                         flag_values=flag_values)


def params_from_flags(method: str,
                      flag_values: flags.FlagValues = flags.FLAGS) -> dict:
  """The keyword parameters of `method` as set by `define_flags` flags."""
  params = {}
  for name, (flag_method, keyword, _) in _FLAG_PARAMS.items():
    if flag_method == method:
      value = flag_values[name].value
      params[keyword] = (tuple(int(v) for v in value)
                         if isinstance(value, list) else value)
  return params


def apply(method: str, mel: np.ndarray, **params) -> np.ndarray:
  """Runs the baseline called `method` on one power mel."""
  if method not in METHODS:
    raise ValueError(f'unknown baseline {method!r}; one of {sorted(METHODS)}')
  return METHODS[method](mel, **params)
