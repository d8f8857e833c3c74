"""WORKDIR/report.md: the final model beside every classical baseline on the
paired test set, with example spectrograms and the training curves.

The stage after training: `python -m mel_ae.main` runs it on what
`train.run` returns (`write_after_training`); in a notebook,
`report.write_after_training(workdir, train.run(config, workdir), config)`.
"""
import os
from typing import Dict, List, Optional, Sequence

from absl import logging
import numpy as np

from mel_ae import audio
from mel_ae import audio_metrics
from mel_ae import baselines
from mel_ae import mel_io
from mel_ae import metrics
from mel_ae import plots
from mel_ae import waveform
from mel_ae import writers

_COLUMNS = ('competition_mse', 'normalized_mse', 'lsd_db', 'mse_improvement')
_EXAMPLES = 3
# Scored as recordings where the test set is audio (PESQ and STOI take ~0.5 s
# a file): the model beside the input and the strongest classical method.
_RECORDING_METHODS = ('noisy input', 'model', 'spectral_subtraction')
_RECORDING_COLUMNS = ('competition_mse', 'lsd_db', 'pesq_wb', 'stoi', 'si_sdr')


def method_table(outputs: Dict[str, Sequence[np.ndarray]],
                 noisy: Sequence[np.ndarray], clean: Sequence[np.ndarray],
                 normalizer) -> Dict[str, dict]:
  """Mean metrics per method over the test files."""
  return {name: metrics.summarize([
      metrics.file_metrics(p, c, normalizer, n)
      for p, c, n in zip(preds, clean, noisy)]) for name, preds in outputs.items()}


def markdown_table(table: Dict[str, dict]) -> List[str]:
  lines = ['| method | ' + ' | '.join(_COLUMNS) + ' |',
           '|---|' + '---:|' * len(_COLUMNS)]
  best = min(table, key=lambda m: table[m]['competition_mse'])
  for name, row in table.items():
    label = f'**{name}**' if name == best else name
    lines.append(f'| {label} | ' + ' | '.join(f'{row[c]:.4g}' for c in _COLUMNS)
                 + ' |')
  return lines


def kind_table(outputs: Dict[str, Sequence[np.ndarray]],
               clean: Sequence[np.ndarray], kinds: Sequence[str]) -> List[str]:
  """Markdown: mean competition MSE per method (rows) and noise kind."""
  kinds = np.asarray(kinds)
  names = sorted(set(kinds))
  lines = ['| method | ' + ' | '.join(f'{k} (n={np.sum(kinds == k)})'
                                      for k in names) + ' |',
           '|---|' + '---:|' * len(names)]
  for method, preds in outputs.items():
    errors = np.array([metrics.competition_mse(p, c)
                       for p, c in zip(preds, clean)])
    lines.append(f'| {method} | ' + ' | '.join(
        f'{errors[kinds == k].mean():.4g}' for k in names) + ' |')
  return lines


def recording_table(outputs: Dict[str, Sequence[np.ndarray]], test,
                    spec) -> List[str]:
  """Markdown: each method's mel gain applied to the noisy recordings
  (mel_ae/waveform.py), scored as recordings; none for a test set of mels."""
  noisy, clean = test
  if not all(p.lower().endswith(mel_io.AUDIO_SUFFIXES)
             for p in noisy.paths + clean.paths):
    return []
  noisy_waves = [audio.load_audio(p, spec.sr) for p in noisy.paths]
  clean_waves = [audio.load_audio(p, spec.sr) for p in clean.paths]
  skipped = audio_metrics.missing()
  lines = ['Recordings: the noisy STFT times each method\'s mel gain, '
           're-analysed for the mel metrics.' + (
               f' {", ".join(skipped)} skipped (pip install -e \'.[eval]\').'
               if skipped else ''), '',
           '| method | ' + ' | '.join(_RECORDING_COLUMNS) + ' |',
           '|---|' + '---:|' * len(_RECORDING_COLUMNS)]
  for name in _RECORDING_METHODS:
    rows = []
    for i, (x, ref) in enumerate(zip(noisy_waves, clean_waves)):
      out = x if name == 'noisy input' else waveform.denoise_wave(
          x, spec.sr, lambda _, i=i: [outputs[name][i]], spec)[0]
      rows.append(audio_metrics.score_recording(out, ref, spec))
    mean = metrics.summarize(rows)
    lines.append(f'| {name} | ' + ' | '.join(
        f'{mean.get(c, float("nan")):.4g}' for c in _RECORDING_COLUMNS) + ' |')
  return lines + ['']


def write_report(workdir: str, step: int, model_outputs: List[np.ndarray],
                 test, normalizer, spec, best: str = '') -> str:
  """Writes report.md (+ report/*.png) and returns its path; `best` says
  which step validation picks, if not this one."""
  noisy, clean = test
  outputs = {'model': model_outputs}
  outputs.update({name: [baselines.apply(name, m) for m in noisy.mels]
                  for name in baselines.METHODS})
  table = method_table(outputs, noisy.mels, clean.mels, normalizer)
  figures = os.path.join(workdir, 'report')
  os.makedirs(figures, exist_ok=True)
  lines = [f'# Test-set report, checkpoint step {step} (the last)', '',
           best, '',
           f'{len(clean.mels)} paired files; metrics are means over files '
           '(competition_mse: raw power domain; mse_improvement: 1 - mse / '
           'noisy input mse; baselines at their default parameters).', '']
  lines += markdown_table(table) + ['']
  lines += recording_table(outputs, test, spec)
  for i in range(min(_EXAMPLES, len(clean.mels))):
    name = os.path.basename(noisy.paths[i])
    png = f'example_{i}.png'
    plots.save(plots.spectrogram_panels(
        {'noisy': noisy.mels[i], 'model': model_outputs[i],
         'spectral_subtraction': outputs['spectral_subtraction'][i],
         'clean': clean.mels[i]}, spec, name), os.path.join(figures, png))
    lines.append(f'![{name}](report/{png})')
  plots.save(plots.training_curves(writers.read_metrics(workdir)),
             os.path.join(figures, 'curves.png'))
  lines += ['', '![training curves](report/curves.png)', '']
  path = os.path.join(workdir, 'report.md')
  with open(path + '.tmp', 'w') as f:
    f.write('\n'.join(lines))
  os.replace(path + '.tmp', path)
  return path


def write_after_training(workdir: str, trained, config) -> Optional[str]:
  """report.md of the run `trained` (a `train.Trained`) in `workdir`, with
  its `config`: its path, logged; None where the run has no test set, and
  on every process but 0, which denoised it."""
  if trained.test_outputs is None:
    return None
  best = trained.best_step
  path = write_report(
      workdir, int(trained.state.step), trained.test_outputs, trained.test,
      trained.normalizer, audio.MelSpec.from_config(config.audio),
      f'The best checkpoint by {config.train.best_metric} is step {best}: '
      f"`mel_ae.load(workdir, step='best')`." if best else '')
  logging.info('Test-set report: %s', path)
  return path
