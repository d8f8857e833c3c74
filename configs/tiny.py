"""A seconds-long config for tests and smoke runs: the seed model shrunk.

  python -m mel_ae.main --config=configs/tiny.py --workdir=/tmp/tiny
"""
from configs import base


def get_config():
  config = base.get_config()
  config.model.encoder_channels = (4, 8)
  config.model.decoder_channels = (4,)
  config.data.crop_frames = 32
  config.data.val_fraction = 0.2
  config.train.num_steps = 6
  config.train.batch_size = 4
  config.train.log_every = 2
  config.train.eval_every = 3
  config.train.checkpoint_every = 3
  config.infer.chunk_frames = 64
  config.infer.margin_frames = 16
  return config
