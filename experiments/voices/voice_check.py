"""Does the voice check flag the files a speaker model harms, and only those?

  python -m experiments.voices.voice_check --workdir=runs/speaker \
      --sets=own:mel_ae/corpus/test,heldout:experiments/data/heldout,val:~/.cache/mel_ae/voices/val

Each set is a folder with noisy/ and clean/ (paired by stem). Per set: the
model's and the noisy input's competition MSE, how many files the model
makes worse than its input, and how many files the check flags
(`Denoiser.speech_losses`: the file's clear speech loses more than all but
5 % of the model's own validation windows lost, plus a margin). Right
where it flags the other voices' files the model harms and not its own
voice's.

--calibrate recomputes that limit from the run's validation split as
training does (for a run saved before the check; the clean references of
the sets are never read for it); with --write it is saved into the step's
meta (how the shipped general model got its own).
"""
import json
import os

from absl import app
from absl import flags
import jax
import numpy as np

from mel_ae import checkpointing
from mel_ae import fit_noise
from mel_ae import inference
from mel_ae import input_pipeline
from mel_ae import mel_io
from mel_ae import metrics
from mel_ae import recipes
from mel_ae import pretrained
from mel_ae import train
from mel_ae import training_data

_WORKDIR = flags.DEFINE_string('workdir', None,
                               'Model workdir or shipped model name.')
_SETS = flags.DEFINE_list('sets', [], 'name:folder with noisy/ and clean/.')
_CALIBRATE = flags.DEFINE_bool('calibrate', False,
                               "Recompute the limit from the run's validation.")
_WRITE = flags.DEFINE_bool('write', False,
                           'With --calibrate: save it in the meta of the step.')
_OUT = flags.DEFINE_string('out', None, 'Markdown file for the table.')


def _pairs(folder: str):
  clean_paths = mel_io.list_files(os.path.join(folder, 'clean'))
  noisy_paths = mel_io.match_by_stem(
      mel_io.list_files(os.path.join(folder, 'noisy')), clean_paths)
  return ([mel_io.load_mel(p) for p in noisy_paths],
          [mel_io.load_mel(p) for p in clean_paths])


def calibration(denoiser: inference.Denoiser, workdir: str) -> float:
  """The voice check's limit as training computes it: its validation split
  (the same files, noise draws and seed) denoised by this model."""
  config = denoiser.config
  data = training_data.load_data(config).with_normalizer(denoiser.normalizer)
  noise = None
  if fit_noise.needed(config):  # The run's own fit, whatever mel_ae made it.
    with open(os.path.join(workdir, fit_noise.FILE)) as f:
      noise = fit_noise.NoiseFit.from_dict(json.load(f))
  bank = training_data.make_noise_bank(config, data, noise)
  recipe = recipes.Recipe.of(config, noise.output_mode if noise else None)
  val = training_data.make_validation(config, data, bank,
                                      recipe.train.loss_border_frames)
  model = denoiser.model
  apply = jax.jit(lambda v, x: model.apply(v, x, train=False))
  recon = np.concatenate([
      np.asarray(apply(denoiser.variables, w)) for (w,) in
      input_pipeline.batches([val.inputs], config.train.batch_size)
  ])[:len(val.inputs)]
  return train._validation_metrics(  # pylint: disable=protected-access
      recon, val, denoiser.normalizer)[checkpointing.VOICE_CHECK_KEY]


def write_limit(workdir: str, step: int, limit: float) -> None:
  """Saves `limit` in the meta of `step` (not part of any digest)."""
  path = os.path.join(checkpointing.checkpoint_dir(workdir), str(step),
                      'meta', 'metadata')
  with open(path) as f:
    meta = json.load(f)
  meta[checkpointing.VOICE_CHECK_KEY] = limit
  with open(path, 'w') as f:
    json.dump(meta, f)


def rows(denoiser: inference.Denoiser, sets):
  """One dict per set: MSEs, files harmed, files flagged and of those
  harmed."""
  out = []
  for name, folder in sets:
    noisy, clean = _pairs(os.path.expanduser(folder))
    denoised = denoiser.denoise_batch(noisy, warn=False)
    losses = np.array([metrics.clear_speech_loss_db(n, d)
                       for n, d in zip(noisy, denoised)])
    model = np.array([metrics.competition_mse(d, c)
                      for d, c in zip(denoised, clean)])
    before = np.array([metrics.competition_mse(n, c)
                       for n, c in zip(noisy, clean)])
    harmed = model > before
    flagged = losses > denoiser.voice_check_limit_db
    out.append({'set': name, 'files': len(noisy), 'noisy MSE': before.mean(),
                'model MSE': model.mean(), 'harmed': int(harmed.sum()),
                'clear speech loss dB (median/max)':
                    f'{np.median(losses):.2f} / {losses.max():.2f}',
                'flagged': int(flagged.sum()),
                'flagged harmed': int((flagged & harmed).sum()),
                'flagged not harmed': int((flagged & ~harmed).sum())})
  return out


def markdown(table, denoiser) -> str:
  head = list(table[0])
  lines = ['On its validation, 95 % of windows lost at most '
           f'{denoiser.val_clear_speech_loss_db:.3f} dB of clear speech; '
           f'the check flags over {denoiser.voice_check_limit_db:.3f} dB.', '',
           '| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for row in table:
    lines.append('| ' + ' | '.join(
        f'{v:.4g}' if isinstance(v, float) else str(v)
        for v in row.values()) + ' |')
  return '\n'.join(lines) + '\n'


def main(argv):
  del argv
  workdir = pretrained.workdir(_WORKDIR.value)
  denoiser = inference.load(workdir, 'best')
  if _CALIBRATE.value:
    denoiser.val_clear_speech_loss_db = calibration(denoiser, workdir)
    print(f'{checkpointing.VOICE_CHECK_KEY} '
          f'{denoiser.val_clear_speech_loss_db!r} (step {denoiser.step})')
    if _WRITE.value:
      write_limit(workdir, denoiser.step, denoiser.val_clear_speech_loss_db)
  if denoiser.val_clear_speech_loss_db is None:
    raise app.UsageError(f'{_WORKDIR.value}: trained before the voice check '
                         '(--calibrate computes its limit)')
  if not _SETS.value:
    return
  sets = [tuple(s.split(':', 1)) for s in _SETS.value]
  text = markdown(rows(denoiser, sets), denoiser)
  print(text)
  if _OUT.value:
    with open(_OUT.value, 'w') as f:
      f.write(text)


if __name__ == '__main__':
  flags.mark_flags_as_required(['workdir'])
  app.run(main)
