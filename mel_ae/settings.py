"""The fields a recipe adds to configs/base.py, and the one way to read them.

configs/base.py holds what every recipe shares (the seed); a recipe's config
adds the fields and sections it needs (configs/denoise.py its noise, loss,
schedule and inference). Code reads a base field as `config.data.crop_frames`
and a recipe's field through `section(config, name)`: the config's own
values over `RECIPE_FIELDS[name]`, each the value that leaves it off (the
seed's behaviour). Fields of `config.model` are those of the model and of
its output forms (models.build_model), and those of `config.audio`
constructor arguments of audio.MelSpec: a missing one takes its default.
"""
from typing import Any, Dict, Optional

import ml_collections

# What a recipe may add, by section, with the value that leaves it off.
RECIPE_FIELDS = {
    'data': {
        'time_flip': False,  # each training crop reversed in time, p=1/2
    },
    'train': {
        # 'constant', or 'one_cycle' (optax.cosine_onecycle_schedule).
        'lr_schedule': 'constant',
        'weight_decay': 0.0,  # > 0: AdamW
        # 'model': MSE in the model domain, each bin's squared error scaled
        # by 1 + loss_power_weight * (d power / d model value)^2; 'power':
        # MSE in raw power (the competition metric) plus loss_log_weight
        # times the MSE of ln power floored 80 dB below each target's peak.
        'loss': 'model',
        'loss_power_weight': 0.0,
        'loss_log_weight': 0.0,
        # The unit of power in the 'power' loss: 'absolute', or 'data' (the
        # training files' mean power), so that a corpus 20 dB louder trains
        # as it would at its own level.
        'loss_power_unit': 'absolute',
        # Frames at either end of each training crop left out of the loss
        # (and of validation): they see the convolutions' zero padding.
        'loss_border_frames': 0,
        # Training settings by the output form the model is built with (the
        # noise stage decides it for model.output_mode='fitted'), each over
        # the train fields above, e.g. {'kernel': {'learning_rate': 1e-2}}.
        'output_forms': {},
    },
    'infer': {
        # Past a file's ends: 'silence' (zero power) or 'reflect' (its frames
        # mirrored, as inside a training crop): mel_ae/whole_file.py.
        'edge_padding': 'silence',
        # Also denoise the time-reversed mel and average the two (in power).
        'flip_average': False,
        # The output's log power averaged, with this weight, with that of
        # spectral subtraction of the same input (mel_ae/baselines.py): its
        # file-long noise estimate beside the network's few frames of
        # context; 0: the network alone. Training's test metrics include
        # it; its validation windows and the voice check's limit are the
        # network's alone.
        'spectral_subtraction_weight': 0.0,
        # That spectral subtraction's multiple of the noise floor taken away
        # (the rest of it: mel_ae/baselines.py's defaults).
        'spectral_subtraction_factor': 2.0,
    },
    # Noise mixed into clean crops in train.mode='denoise' (mel_ae/
    # noise_bank.py, noise_model.py); a recipe that denoises sets the fields
    # it changes and those its studies sweep.
    'noise': {
        'kinds': ('white', 'pink', 'brown', 'hum', 'babble', 'estimated'),
        # Synthetic additive noise, the prior for environmental noise: drawn
        # beside 'fitted' when the fit finds an additive floor, and instead
        # of noise.kinds when none of those has a source (e.g. only
        # 'fitted', and no unpaired noisy files; said in one line).
        'additive_kinds': ('white', 'pink', 'brown', 'hum', 'babble'),
        # How often 'fitted' is drawn against each other kind (1: uniform).
        'fitted_weight': 1.0,
        'snr_db': (0.0, 15.0),  # uniform range, per example
        # Std of the speech x noise cross term 2 sqrt(S N) cos(phase), relative
        # to 2 sqrt(S N), in every additive mix; 0 = powers add.
        'cross_std': 0.0,
        'seconds': 20.0,  # length of each synthetic noise texture
        'babble_textures': 8,
        'babble_talkers': 4,
        'babble_frames': 512,
        # Each babble talker's frequencies scaled by a log-uniform factor
        # from this range; (1, 1) = the speaker as is.
        'babble_freq_scale': (1.0, 1.0),
        'quiet_fraction': 0.3,  # frames of a noisy file taken as noise
        # Clean crops' level shifted by a uniform draw from this dB range
        # before mixing (the noise follows at its SNR); (0, 0) = off.
        'level_db': (0.0, 0.0),
        # 'gain' kind: noisy = clean * g, g i.i.d. per bin ('uniform' or
        # 'loguniform' on gain_range; the 2020 competition's noise).
        'gain_distribution': 'uniform',
        'gain_range': (0.001, 2.0),
        # 'fitted' kind: a noise model fitted to the unpaired noisy files by
        # matching log-power histograms on this window, dB around the clean
        # files' loud level (their 99th-percentile bin; the embedded corpus:
        # 11.7 dB, so -40.3 to 29.7 dB), clipped below at the floor either
        # set is stored at, in steps of model_db_step; fewer than
        # model_min_frames noisy frames in all are refused.
        'model_db_window': (-52.0, 18.0),
        'model_db_step': 0.5,
        'model_min_frames': 32,
        # Bins this many dB around the loud level and louder are loud: their
        # differences to the next band and frame tell a per-bin gain (which
        # widens them) from additive noise (which leaves them).
        'model_loud_db': -6.0,
        # A simpler hypothesis (none < additive, gain < both) is taken where
        # its histogram distance lies within this many resolutions (the
        # distance between two simulations of the best model) of the best.
        'model_tolerance': 1.0,
        # Where the chosen hypothesis has additive noise, the noisy files'
        # own quiet frames make the floor (their colour and structure).
        # Their levels: 'fitted' (the model's log-normal level) or 'own'
        # (each at its own file's quiet-frame power).
        'texture_levels': 'fitted',
        # The last this fraction of each noisy file's quiet frames is held
        # out of training: the validation noise.
        'val_noise_fraction': 0.25,
        'val_draws': 8,  # noise draws per validation window
        # The cross term of the validation noise: real additive noise is
        # mixed in the waveform (speech with noise: 0.25-0.46, `python -m
        # experiments.training_noise.cross_term`).
        'val_cross_std': 0.4,
    },
}


def fill(name: str, own: Optional[Any]) -> ml_collections.ConfigDict:
  """Section `name` (a ConfigDict, dict or None) over RECIPE_FIELDS[name]."""
  merged = ml_collections.ConfigDict(RECIPE_FIELDS[name])
  if own is not None:
    merged.update(own.to_dict() if hasattr(own, 'to_dict') else dict(own))
  return merged


def section(config: ml_collections.ConfigDict,
            name: str) -> ml_collections.ConfigDict:
  """config.<name> with what the recipe does not set filled in (`fill`)."""
  return fill(name, config.get(name))


def for_output_form(config: ml_collections.ConfigDict,
                    form: Optional[str]) -> ml_collections.ConfigDict:
  """The train section with train.output_forms[form] over it: what the
  model's output form (`recipes.Recipe.train`) trains with."""
  train = section(config, 'train')
  overrides: Dict[str, Any] = train.output_forms.to_dict().get(form, {})
  train.update(overrides)
  return train
