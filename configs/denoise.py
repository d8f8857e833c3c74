"""Denoising whatever corrupts the data, learned in the domain it is scored in.

  python -m mel_ae.main --config=configs/denoise.py --workdir=runs/denoise \
      --config.data.train_dir=CLEAN --config.data.noisy_dir=NOISY

Training pairs are clean crops corrupted by a noise model fitted to the
unpaired noisy files (`noise.kinds=('fitted',)`, mel_ae/noise_model.py:
a per-bin gain, an additive floor, or both; fitted before training by
the noise stage, mel_ae/fit_noise.py, which writes it to
WORKDIR/noise_model.json; an additive floor is drawn as the noisy files'
own quiet frames at their own levels, mixed in with the random speech x
noise cross term of audio mixed in the waveform, in half the crops, the
synthetic prior in the rest); without noisy files,
the synthetic bank of noise.additive_kinds, said in one line. The
model is a U-Net on log power; the fitted noise also decides its output
(`output_mode='fitted'`, decided by the noise stage and saved beside
the config): where noise only adds power, a residual in log power (a
gain per bin); where it scales the power per bin (with added power or
not), a learned weighted mean of the neighbouring bins' power times a
gain ('kernel'). The loss is the MSE in raw power (the competition
metric) plus a weight times the MSE of log power, for the quiet bins
that raw power ignores (the log-spectral distance), both in units of the
training files' level so that any level trains alike; for the 'residual'
output, not on the 16 frames at either crop edge. Crops are flipped in time, and
inference averages the mel with its time reversal, each extended past
its ends by its own frames mirrored.
AdamW on a one-cycle schedule, whose peak the output form sets: 1.2e-2
for 'kernel', 1e-3 for 'residual' (each family's best on validation).
Recipe choices and their ablation: experiments/recipe/README.md and
experiments/training_noise/README.md.
"""
import ml_collections

from configs import base
from mel_ae import settings


def get_config():
  config = base.get_config()
  config.train.mode = 'denoise'
  config.train.num_steps = 2000  # about 9 minutes on 2 CPU cores

  # The noise bank and the noise model: every field, each explained in
  # mel_ae/settings.py, which gives the values this recipe does not change.
  config.noise = settings.fill('noise', None)
  config.noise.kinds = ('fitted',)
  # The data's own noise in half the crops, the prior's five kinds in the
  # rest (experiments/training_noise/sweeps/fitted_weight.py, on validation).
  config.noise.fitted_weight = 5.0
  # Additive noise: each noisy file's quiet frames at their own power
  # (experiments/training_noise/sweeps/texture_levels.py, on validation).
  config.noise.texture_levels = 'own'
  # Every additive mix with the speech x noise cross term that mixing in
  # the waveform gives (experiments/training_noise/sweeps/cross_term.py, on
  # validation).
  config.noise.cross_std = 0.4

  # A U-Net (mel_ae/models.py's UNet; its defaults and its output forms':
  # BatchNorm, a (3, 7) kernel window) whose output form the noise stage
  # decides.
  config.model = ml_collections.ConfigDict()
  config.model.name = 'unet'
  config.model.encoder_channels = (16, 32, 64)
  config.model.kernel_size = 3
  config.model.output_kernel_size = 1
  config.model.bn_momentum = 0.9
  config.model.bn_epsilon = 1e-5
  config.model.output_mode = 'fitted'

  config.data.transform = 'log'
  config.data.time_flip = True

  config.train.loss = 'power'
  # Power in units of the training files' mean power, so that the two terms
  # keep their balance at any level (a corpus 20 dB louder lost the log
  # term: experiments/noise_corpora/README.md).
  config.train.loss_power_unit = 'data'
  # 0.3 in the embedded corpus' absolute units (its mean power: 0.695),
  # where less weight left more to the raw-power MSE, where LSD has room
  # (experiments/training_noise/sweeps/log_weight_{additive,dev_voice}.py,
  # and a gain run at 2,000 steps: lower on validation everywhere).
  config.train.loss_log_weight = 0.62
  config.train.lr_schedule = 'one_cycle'
  config.train.weight_decay = 1e-2
  # What each output form the noise stage may decide trains with, over the
  # train fields: the 'kernel' output (the gain family) best at a higher
  # peak (experiments/recipe/sweeps/learning_rate_{gain,additive}.py, on
  # validation); the 'residual' output (additive noise) best with the 16
  # frames at either crop edge out of the loss, the 'kernel' output worst
  # (on validation, whole files: experiments/recipe/README.md).
  config.train.output_forms = ml_collections.ConfigDict()
  config.train.output_forms.kernel = ml_collections.ConfigDict(
      {'learning_rate': 1.2e-2})
  config.train.output_forms.residual = ml_collections.ConfigDict(
      {'loss_border_frames': 16})

  config.infer.flip_average = True
  # The U-Net's receptive radius is 26 frames (29 with the 'kernel' output's
  # 3x7 window): 32 frames of context give what one pass gives, at half the
  # margin's cost (measured: experiments/audio/README.md).
  config.infer.margin_frames = 32
  # A noisy file's ends mirrored, not silence, which no training crop has
  # (on validation, whole held-out files: experiments/recipe/README.md).
  config.infer.edge_padding = 'reflect'
  return config
