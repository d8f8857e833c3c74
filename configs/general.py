"""A general denoiser: many voices, no training on the user's speaker.

  python -m experiments.voices.make_voices   # the voices, once (Debian's
                                             # espeak-ng and Festival)
  python -m mel_ae.main --config=configs/general.py --workdir=runs/general

configs/denoise.py's U-Net and loss, trained on the clean speech of 26
synthetic voices (18 espeak-ng, 8 Festival; 12 languages, both sexes;
experiments/voices/) corrupted by the synthetic additive bank (white, pink,
brown, hum, and babble of those voices) at SNR U(0, 15) dB and at a level
shifted by U(-20, 20) dB, since a user's files come at any loudness. The
shipped model (`mel_ae.load_pretrained('general')`, mel_ae/pretrained_models/)
is this run's best checkpoint; configs/denoise.py fine-tunes from it
(`--config.init_from=general`).
"""
import os

from configs import denoise

VOICES = os.path.expanduser('~/.cache/mel_ae/voices')


def get_config():
  config = denoise.get_config()
  config.data.train_dir = os.path.join(VOICES, 'train')
  config.data.noisy_dir = ''
  config.noise.kinds = config.noise.additive_kinds
  config.noise.level_db = (-20.0, 20.0)
  config.model.output_mode = 'residual'
  config.train.num_steps = 3000
  # The shipped model's loss: absolute power, each crop's level draw divided
  # out (mel_ae/recipes.py).
  config.train.loss_power_unit = 'absolute'
  config.train.loss_log_weight = 0.3
  # Inference only: the output's log power averaged half and half with
  # spectral subtraction's, whose file-long noise estimate the network's
  # 26 frames either side lack (validation voices 1.320 against 1.429 alone
  # and spectral subtraction's 1.554; weights 0.3-0.7 and over-subtraction
  # 1-3 within 1.30-1.39: experiments/voices/README.md).
  config.infer.spectral_subtraction_weight = 0.5
  return config
