"""configs/general.py on both noise families: the additive bank and the 2020
per-bin gain U(0.001, 2), through the 'kernel' output that a gain needs
(the additive family's 'residual' output cannot undo a gain). Does one model
serve both, and does the gain family's speaker model start well from it?

  python -m mel_ae.main --config=experiments/voices/general_both.py \
      --workdir=runs/general_both
"""
from configs import general


def get_config():
  config = general.get_config()
  config.noise.kinds = config.noise.additive_kinds + ('gain',)
  config.model.output_mode = 'kernel'
  # The network alone: the blend with spectral subtraction was chosen for
  # the additive model and cannot undo a gain (the study's numbers are
  # without it).
  config.infer.spectral_subtraction_weight = 0.0
  return config
