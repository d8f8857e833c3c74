"""Scores of a denoised recording against its clean reference.

What people who denoise speech compare tools by: PESQ (ITU-T P.862.2, wide
band, package `pesq`, at 16 kHz), STOI (package `pystoi`) and SI-SDR
(scale-invariant signal-to-distortion ratio, Le Roux et al. 2019, a few lines
of numpy). The first two come with the `eval` extra; without it they are
skipped and `missing()` names them.
"""
import importlib.util
from typing import Dict, List

import numpy as np

from mel_ae import audio
from mel_ae import metrics

PESQ_SR = 16000  # PESQ's wide-band mode takes 16 kHz only.
_PACKAGES = {'pesq_wb': 'pesq', 'stoi': 'pystoi'}


def missing() -> List[str]:
  """The metrics whose package is not installed."""
  return [name for name, package in _PACKAGES.items()
          if importlib.util.find_spec(package) is None]


def si_sdr(pred: np.ndarray, ref: np.ndarray) -> float:
  """Scale-invariant SDR in dB: the reference's share of the prediction,
  best scaled, over what is left; means removed."""
  ref = np.asarray(ref, np.float64) - np.mean(ref)
  pred = np.asarray(pred, np.float64) - np.mean(pred)
  target = ref * (pred @ ref) / max(ref @ ref, 1e-20)
  residual = pred - target
  return float(10 * np.log10(max(target @ target, 1e-20)
                             / max(residual @ residual, 1e-20)))


def pesq_wb(pred: np.ndarray, ref: np.ndarray, sr: int) -> float:
  """Wide-band PESQ (MOS-LQO, 1.0-4.6); NaN where PESQ finds no speech."""
  import pesq  # pylint: disable=g-import-not-at-top
  ref16, pred16 = (audio.resample(x, sr, PESQ_SR) for x in (ref, pred))
  try:
    return float(pesq.pesq(PESQ_SR, ref16, pred16, 'wb'))
  except pesq.PesqError:
    return float('nan')


def stoi(pred: np.ndarray, ref: np.ndarray, sr: int) -> float:
  """Short-time objective intelligibility, 0-1 (pystoi resamples to 10 kHz)."""
  import pystoi  # pylint: disable=g-import-not-at-top
  return float(pystoi.stoi(np.asarray(ref, np.float64),
                           np.asarray(pred, np.float64), sr, extended=False))


def waveform_scores(pred: np.ndarray, ref: np.ndarray, sr: int,
                    prefix: str = '') -> Dict[str, float]:
  """SI-SDR, and PESQ-WB and STOI where their packages are installed."""
  if len(pred) != len(ref):
    raise ValueError(f'{len(pred)} samples against the reference\'s '
                     f'{len(ref)}')
  scores = {prefix + 'si_sdr': si_sdr(pred, ref)}
  skipped = missing()
  for name, fn in (('pesq_wb', pesq_wb), ('stoi', stoi)):
    if name not in skipped:
      scores[prefix + name] = fn(pred, ref, sr)
  return scores


def score_recording(pred: np.ndarray, ref: np.ndarray,
                    spec: audio.MelSpec) -> Dict[str, float]:
  """The competition MSE and LSD of both recordings re-analysed into power
  mels by `spec` (at spec.sr, as the samples are), and the waveform scores."""
  pred_mel, ref_mel = (audio.audio_to_mel(x, spec) for x in (pred, ref))
  return {'competition_mse': metrics.competition_mse(pred_mel, ref_mel),
          'lsd_db': metrics.lsd_db(pred_mel, ref_mel),
          **waveform_scores(pred, ref, spec.sr)}
