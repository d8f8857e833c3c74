"""Noise-aware training: clean crops with noise mixed in, predicting a mask.

  python -m mel_ae.main --config=configs/denoise.py --workdir=runs/denoise

The noise bank (configs/base.py, config.noise) holds white, pink, brown and
hum noise, babble of other training utterances, and noise estimated from the
unpaired noisy files; the test set's clean references are never read.
"""
from configs import base


def get_config():
  config = base.get_config()
  config.train.mode = 'denoise'
  config.model.output_mode = 'mask'
  config.model.skip_channels = 8
  return config
