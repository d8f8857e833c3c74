"""Noise-aware training: noisy crops in, a gain on power out.

  python -m mel_ae.main --config=configs/denoise.py --workdir=runs/denoise

Inputs are clean training crops with noise from the bank mixed in (white,
pink, brown and hum noise, babble of other training utterances, and noise
estimated from the unpaired noisy files; see config.noise); the target is
the clean crop, and the test set's clean references are never read. The
model predicts a mask that acts as a gain on power (mask ** (1/16) in the
root-16 domain), so loud speech bins, which dominate the raw-power metric,
pass nearly unchanged; the loss is weighted toward raw power, and a
full-resolution skip keeps detail that the pooling would lose.
"""
from configs import base


def get_config():
  config = base.get_config()
  config.train.mode = 'denoise'
  config.train.num_steps = 1200
  config.train.loss_power_weight = 1e-5
  config.model.output_mode = 'mask'
  config.model.mask_exponent = 1.0 / config.data.root
  config.model.skip_channels = 8
  # Tracks the fast-changing early network; 0.99 leaves stale statistics.
  config.model.bn_momentum = 0.9
  return config
