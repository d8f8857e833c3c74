"""Scores for a denoised power mel against its clean reference.

The competition ranks by `competition_mse` in the raw power domain, which the
few loud bins dominate. `normalized_mse` is the same error in the model domain
(what training minimises) and `lsd_db` weighs quiet bins as the ear does, so
reporting all three shows what a change trades away.
"""
from typing import Mapping, Optional, Sequence

import numpy as np

from mel_ae.features import Normalizer

# LSD compares levels down to this many dB below the reference's peak; bins
# quieter than that (the clean files' near-silent floor) count as equal, so
# the distance measures audible content, not how a method rounds silence.
LSD_TOP_DB = 80.0
_ABS_FLOOR = 1e-10  # Keeps the log finite when the reference is all zeros.


def competition_mse(pred: np.ndarray, ref: np.ndarray) -> float:
  """Mean squared error in the raw power domain (the competition score)."""
  diff = np.asarray(pred, np.float64) - np.asarray(ref, np.float64)
  return float(np.mean(diff * diff))


def normalized_mse(pred: np.ndarray, ref: np.ndarray,
                   normalizer: Normalizer) -> float:
  """Mean squared error in the model domain given by `normalizer.forward`."""
  return competition_mse(normalizer.forward(pred), normalizer.forward(ref))


def lsd_db(pred: np.ndarray, ref: np.ndarray,
           top_db: float = LSD_TOP_DB) -> float:
  """Log-spectral distance in dB, averaged over frames.

  Both mels are clipped below `max(ref) * 10**(-top_db / 10)` before taking
  10 log10, a relative floor (like librosa's `power_to_db(top_db=80)`) that
  makes the distance independent of the file's loudness.

  Args:
    pred: power mel (n_mels, T).
    ref: clean power mel of the same shape.
    top_db: dynamic range below the reference's peak that is compared.

  Returns:
    Mean over frames of the RMS (over bands) dB difference.
  """
  ref = np.asarray(ref, np.float64)
  floor = max(float(np.max(ref)) * 10.0**(-top_db / 10.0), _ABS_FLOOR)
  def to_db(x):
    return 10.0 * np.log10(np.maximum(np.asarray(x, np.float64), floor))
  per_frame = np.sqrt(np.mean((to_db(pred) - to_db(ref))**2, axis=0))
  return float(np.mean(per_frame))


# `clear_speech_loss_db` reads the bins at least this many dB above their
# mel band's noise floor (the band's NOISE_FLOOR_QUANTILE over the file's
# frames): the floor accounts for under 0.3 % (0.014 dB) of their power.
CLEAR_MARGIN_DB = 25.0
NOISE_FLOOR_QUANTILE = 0.1


def clear_speech_loss_db(noisy: np.ndarray, denoised: np.ndarray) -> float:
  """dB of power a denoiser removed from the bins of `noisy` that stand
  CLEAR_MARGIN_DB above their band's noise floor (0 where none does).

  Noise the file's quiet frames show cannot account for what goes from
  those bins, so a model that knows the voice keeps them (what it removes
  there is noise louder than the floor, in the few files that have it),
  and one that takes the voice for noise removes speech there: a speaker
  model on another voice eats 5-30 % of it in frames of middling loudness,
  which harms a nearly clean file more than its noise did, while the power
  of the loudest bins of the loudest frames hardly moves (their summed
  change, the check before this one, missed it: experiments/voices/README.md).
  Power-weighted, as the competition's error is.
  """
  noisy = np.asarray(noisy, np.float64)
  denoised = np.asarray(denoised, np.float64)
  floor = np.quantile(noisy, NOISE_FLOOR_QUANTILE, axis=1, keepdims=True)
  clear = noisy > floor * 10.0**(CLEAR_MARGIN_DB / 10.0)
  if not clear.any():
    return 0.0
  return float(10 * np.log10((noisy[clear].sum() + _ABS_FLOOR)
                             / (denoised[clear].sum() + _ABS_FLOOR)))


def _scores(pred, ref, normalizer, prefix=''):
  return {
      prefix + 'competition_mse': competition_mse(pred, ref),
      prefix + 'normalized_mse': normalized_mse(pred, ref, normalizer),
      prefix + 'lsd_db': lsd_db(pred, ref),
  }


def _improvement(row: Mapping) -> float:
  noisy_mse = row['noisy_competition_mse']
  return (1.0 - row['competition_mse'] / noisy_mse if noisy_mse > 0
          else float('nan'))


def file_metrics(pred: np.ndarray, ref: np.ndarray, normalizer: Normalizer,
                 noisy: Optional[np.ndarray] = None) -> dict:
  """All metrics of one file; with `noisy`, also the input's and the gain.

  `mse_improvement` is the fraction of the noisy input's power-domain error
  that the prediction removes (1 = perfect, 0 = no better than the input,
  negative = worse; NaN when the input is already exact), and
  `lsd_improvement_db` is how many dB of LSD it removes.
  """
  row = _scores(pred, ref, normalizer)
  if noisy is not None:
    row.update(_scores(noisy, ref, normalizer, prefix='noisy_'))
    row['mse_improvement'] = _improvement(row)
    row['lsd_improvement_db'] = row['noisy_lsd_db'] - row['lsd_db']
  return row


def summarize(rows: Sequence[Mapping]) -> dict:
  """Unweighted mean over files of every numeric column (others dropped).

  Each file counts once whatever its length, as when files are scored one by
  one. The mean row's `mse_improvement` is that of the mean MSEs, not a mean
  of per-file ratios, which a few nearly clean inputs would dominate.
  """
  if not rows:
    raise ValueError('no rows to summarize')
  numeric = [k for k, v in rows[0].items()
             if isinstance(v, (int, float)) and not isinstance(v, bool)]
  summary = {k: float(np.mean([row[k] for row in rows])) for k in numeric}
  if 'mse_improvement' in summary:
    summary['mse_improvement'] = _improvement(summary)
  return summary
