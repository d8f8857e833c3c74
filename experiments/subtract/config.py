"""A learned spectral subtraction for additive noise (an earlier recipe).

  python -m mel_ae.main --config=experiments/subtract/config.py \
      --workdir=runs/subtract

Inputs are clean training crops with noise from the bank mixed in (white,
pink, brown and hum noise, babble of other training utterances, and noise
estimated from the unpaired noisy files; see config.noise); the target is
the clean crop, and the test set's clean references are never read. The
network sees the noisy mel and a local noise-floor estimate (minimum
statistics) and predicts, per bin, how many noise floors to subtract from
the power and the least gain to keep (`output_mode='subtract'`, this
folder's output_form.py): a loud speech bin can lose at most
`max_subtraction` noise floors, so a voice the model never heard passes (a
free mask, `--config.model.output_mode=mask`, scores better on the
training voice and removes other voices; see README.md here). The loss is
weighted toward raw power, and a full-resolution skip keeps detail that the
pooling would lose. It knows additive noise only; configs/denoise.py learns
whatever the noisy files have.
"""
from configs import base
# Imported for its registration: the core knows no 'subtract' output form.
from experiments.subtract import output_form  # pylint: disable=unused-import
from mel_ae import settings


def get_config():
  config = base.get_config()
  config.train.mode = 'denoise'
  config.train.num_steps = 1200
  config.train.loss_power_weight = 1e-5
  # The noise bank (every field, each explained in mel_ae/settings.py, at
  # the values given there): synthetic noise, babble and the unpaired noisy
  # files' quiet frames.
  config.noise = settings.fill('noise', None)
  config.noise.kinds = ('white', 'pink', 'brown', 'hum', 'babble',
                        'estimated')
  config.model.output_mode = 'subtract'
  config.model.max_subtraction = 4.0
  config.model.mask_exponent = 1.0 / config.data.root
  # 'minimum' (minimum statistics) or 'quiet' (the quietest frames' mean;
  # README.md here), within 32 frames either side.
  config.model.noise_estimate = 'minimum'
  config.model.skip_channels = 8
  # Tracks the fast-changing early network; 0.99 leaves stale statistics.
  config.model.bn_momentum = 0.9
  return config
