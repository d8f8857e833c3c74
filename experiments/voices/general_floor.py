"""configs/general.py with the 'floor_residual' output form
(experiments/voices/floor_form.py): each band's quiet level beside the input.

  python -m mel_ae.main --config=experiments/voices/general_floor.py \
      --workdir=runs/general_floor
"""
from configs import general
# Registers the 'floor_residual' form.
from experiments.voices import floor_form  # pylint: disable=unused-import


def get_config():
  config = general.get_config()
  config.model.output_mode = 'floor_residual'
  return config
