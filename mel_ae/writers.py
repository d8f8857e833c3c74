"""Metric logs: WORKDIR/metrics.jsonl (one JSON object per line) and
TensorBoard event files in WORKDIR/tensorboard, written by tensorboardX (no
TensorFlow needed): the same scalars, the config as text, and at each
evaluation a few fixed examples as pictures and one as sound."""
import json
import os
import time
from typing import Any, Dict, Sequence

import numpy as np

from mel_ae import audio
from mel_ae import plots

EXAMPLES = 3  # fixed examples pictured at each evaluation
CLIP_SECONDS = 3.0  # of each example pictured, and of the audio clips


def _plain(value: Any) -> Any:
  return value.item() if isinstance(value, np.generic) else value


def _config_text(config) -> str:
  """The config as a Markdown code block (TensorBoard's text tab)."""
  text = (config.to_json_best_effort(indent=2)
          if hasattr(config, 'to_json_best_effort')
          else json.dumps(config, indent=2, default=str))
  return '\n'.join('    ' + line for line in text.splitlines())


class MetricWriter:
  """Appends metrics; on resume, drops what the interrupted run logged past
  the restored step, so the logs of an interrupted run match an
  uninterrupted one: lines of metrics.jsonl are removed, and TensorBoard
  hides the older event files' points from the next step on (purge_step)."""

  def __init__(self, workdir: str, resume_step: int, config=None):
    self._path = os.path.join(workdir, 'metrics.jsonl')
    self._truncate_after(resume_step)
    from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
    # Also on a fresh start (step 0): a run that crashed before its first
    # checkpoint may have left points behind.
    # The sub-second suffix: tensorboardX names files by the second and
    # overwrites an existing one, e.g. that of a run interrupted at once.
    self._tb = SummaryWriter(os.path.join(workdir, 'tensorboard'),
                             purge_step=resume_step + 1,
                             filename_suffix=f'.{time.time_ns() % 10**9:09d}')
    self._spec = None
    self._references_written = False
    if config is not None:
      self._spec = audio.MelSpec.from_config(config.audio)
      self._tb.add_text('config', _config_text(config), resume_step)
      self._tb.flush()

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

  def write_examples(self, step: int, noisy: Sequence[np.ndarray],
                     denoised: Sequence[np.ndarray],
                     clean: Sequence[np.ndarray]) -> None:
    """At an evaluation: power mels of the same fixed examples each time.

    Pictures 'noisy_denoised_clean/<i>' (the three side by side, the first
    CLIP_SECONDS of the first EXAMPLES examples) and the audio clip
    'audio/denoised' of the first one (Griffin-Lim); the clips 'audio/noisy'
    and 'audio/clean' once per run, as references. In autoencoder mode,
    'noisy' is the clean input. Needs the config given to the constructor.
    """
    if not len(denoised):
      return  # Neither a validation nor a test set.
    spec = self._spec
    frames = max(1, int(CLIP_SECONDS * spec.sr / spec.hop_length))
    for i, mels in enumerate(zip(noisy, denoised, clean)):
      if i == EXAMPLES:
        break
      self._tb.add_image(
          f'noisy_denoised_clean/{i}',
          plots.spectrogram_strip([m[:, :frames] for m in mels]), step,
          dataformats='HWC')
    self._add_audio('audio/denoised', denoised[0][:, :frames], step)
    if not self._references_written:
      self._add_audio('audio/noisy', noisy[0][:, :frames], step)
      self._add_audio('audio/clean', clean[0][:, :frames], step)
      self._references_written = True
    self._tb.flush()

  def _add_audio(self, tag: str, mel: np.ndarray, step: int) -> None:
    wave = audio.mel_to_audio(np.asarray(mel, np.float32), self._spec)
    self._tb.add_audio(tag, np.clip(wave, -1.0, 1.0), step,
                       sample_rate=self._spec.sr)

  def close(self) -> None:
    self._tb.close()


def read_metrics(workdir: str):
  """The rows of WORKDIR/metrics.jsonl, for notebooks and reports."""
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return [json.loads(l) for l in f if l.strip()]
