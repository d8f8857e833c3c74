r"""Does averaging over time shifts help a trained model, on validation?

  python -m experiments.recipe.time_shifts --workdir=runs/denoise_gain

A U-Net with pooling is not shift-invariant: the same mel shifted by 1-3
frames (the stride is 4) gives another estimate, and averaging estimates
in power can lower the MSE, as averaging with the time reversal does
(`infer.flip_average`). Rebuilds the run's validation set (its held-out
training files with the fitted noise, the first draw as in training),
denoises each held-out file whole, as the test set is, and prints the
competition MSE and LSD of each combination of views.
"""
from typing import Tuple

from absl import app
from absl import flags
import numpy as np

from mel_ae import fit_noise
from mel_ae import inference
from mel_ae import logs
from mel_ae import metrics
from mel_ae import recipes
from mel_ae import settings
from mel_ae import training_data
from mel_ae import whole_file
from mel_ae.backends import host_memory

flags.DEFINE_string('workdir', None, 'Training workdir (denoise mode).')
FLAGS = flags.FLAGS

# name -> views (frames of silence put before the mel, time-reversed or not)
COMBINATIONS = {
    'plain': [(0, False)],
    'time reversal (infer.flip_average)': [(0, False), (0, True)],
    'shifts 0-3': [(s, False) for s in range(4)],
    'shifts 0-3 and reversal': [(s, r) for s in range(4) for r in (False, True)],
}


def noisy_validation_files(denoiser: inference.Denoiser):
  """The held-out files, corrupted window by window as training validates
  them (the first of noise.val_draws draws), joined back into whole files
  (model domain), and their clean power."""
  config = denoiser.config.copy_and_resolve_references()
  config.data.test_noisy_dir = ''  # The test set plays no part here.''
  data = training_data.load_data(config).with_normalizer(denoiser.normalizer)
  # The run's noise stage again (the same fit: it is deterministic).
  noise = fit_noise.decide(config, data.train_power, data.noisy)
  val = training_data.make_validation(
      config, data, training_data.make_noise_bank(config, data, noise),
      recipes.Recipe.of(config, denoiser.output_mode).train
      .loss_border_frames)
  crop, start, noisy = config.data.crop_frames, 0, []
  for clean in data.val_power:
    n = -(-clean.shape[1] // crop)
    windows = val.inputs[start:start + n, ..., 0]
    noisy.append(np.concatenate(list(windows), axis=1)[:, :clean.shape[1]])
    start += n
  return noisy, list(data.val_power)


def noisy_validation_power(denoiser: inference.Denoiser):
  """`noisy_validation_files` with the noisy mels as power, too."""
  noisy, clean = noisy_validation_files(denoiser)
  return [denoiser.normalizer.inverse(z) for z in noisy], clean


def load_with_validation(workdir: str):
  """A study's start: the run's latest checkpoint, and its validation files
  as power (noisy, clean), on a process set up as the trainer's."""
  host_memory.reuse_freed_memory()
  logs.quiet_library_logs()
  denoiser = inference.load(workdir)
  return (denoiser, *noisy_validation_power(denoiser))


def scores(preds, clean) -> Tuple[float, float]:
  """Mean competition MSE and LSD (dB) of power estimates over files."""
  return (float(np.mean([metrics.competition_mse(p, c)
                         for p, c in zip(preds, clean)])),
          float(np.mean([metrics.lsd_db(p, c) for p, c in zip(preds, clean)])))


def denoised_view(denoiser: inference.Denoiser, mels, shift: int,
                  reverse: bool):
  """Power estimates from the mels shifted by `shift` frames (and reversed),
  padded past their ends as the run's inference pads them."""
  flip = (lambda m: m[:, ::-1]) if reverse else (lambda m: m)
  silence = denoiser.normalizer.silence
  infer = settings.fill('infer', denoiser.config.infer)
  edge_padding = infer.edge_padding
  padded = [whole_file.extend_ends(flip(m), shift, 0, silence, edge_padding)
            for m in mels]
  outputs = whole_file.denoise_model_domain(
      denoiser.model, denoiser.variables, padded, infer.chunk_frames,
      infer.margin_frames, infer.batch_size, silence, edge_padding)
  return [flip(denoiser.normalizer.inverse(o[:, shift:])) for o in outputs]


def main(argv):
  del argv
  host_memory.reuse_freed_memory()
  logs.quiet_library_logs()
  denoiser = inference.load(FLAGS.workdir)
  noisy, clean = noisy_validation_files(denoiser)
  views = {}
  print('| views | val competition MSE | val LSD (dB) |\n|---|---:|---:|')
  for name, keys in COMBINATIONS.items():
    for key in keys:
      if key not in views:
        views[key] = denoised_view(denoiser, noisy, *key)
    preds = [np.mean(v, axis=0) for v in zip(*[views[k] for k in keys])]
    mse, lsd = scores(preds, clean)
    print(f'| {name} | {mse:.4f} | {lsd:.2f} |')


if __name__ == '__main__':
  flags.mark_flag_as_required('workdir')
  app.run(main)
