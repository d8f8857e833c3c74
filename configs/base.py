"""The 2020 seed autoencoder on the embedded corpus.

  python -m mel_ae.main --config=configs/base.py --workdir=runs/base
  python -m mel_ae.main --config=configs/base.py --workdir=runs/k3 \
      --config.model.kernel_size=3
"""
import os

import ml_collections

_CORPUS = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    'mel_ae', 'corpus')


def get_config() -> ml_collections.ConfigDict:
  """Seed hyperparameters; every number that matters lives here."""
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.distributed = False  # multi-host: jax.distributed.initialize()
  # A model to start from ('general': the shipped one, mel_ae/pretrained.py;
  # or a training workdir), wherever its shapes match; '': from scratch.
  config.init_from = ''
  # Compiled XLA programs are cached here, so a rerun or resume starts in
  # seconds; '' turns the cache off.
  config.compilation_cache_dir = '~/.cache/mel_ae/xla'

  config.audio = ml_collections.ConfigDict()
  config.audio.sr = 22050
  config.audio.n_fft = 2048
  config.audio.hop_length = 512
  config.audio.n_mels = 128
  config.audio.fmin = 0.0
  config.audio.fmax = -1.0  # -1: sr / 2.
  config.audio.power = 2.0
  config.audio.griffin_lim_iters = 32
  # How mels are made from audio (wav inputs, Griffin-Lim): librosa's
  # melspectrogram arguments. 'constant' pads the ends with zeros (librosa
  # >= 0.10); 'reflect' as librosa <= 0.9, which 2020-era mel files used.
  config.audio.pad_mode = 'constant'
  config.audio.htk = False  # True: HTK mel scale instead of Slaney's
  config.audio.norm = 'slaney'  # 'slaney': equal-area triangles; 'none'

  config.data = ml_collections.ConfigDict()
  config.data.train_dir = os.path.join(_CORPUS, 'train')  # clean files
  config.data.noisy_dir = os.path.join(_CORPUS, 'noisy')  # unpaired noisy; '' = none
  config.data.test_noisy_dir = os.path.join(_CORPUS, 'test', 'noisy')  # '' = none
  config.data.test_clean_dir = os.path.join(_CORPUS, 'test', 'clean')
  config.data.crop_frames = 128
  config.data.val_fraction = 0.1  # clean files held out for validation
  # 'root' (x ** (1/root)), 'db' or 'log' (ln(x + log_eps)); each then
  # scaled so the training files lie in [0, 1] (mel_ae/features.py).
  config.data.transform = 'root'
  config.data.root = 16.0
  config.data.top_db = 80.0  # dynamic range kept by transform='db'
  config.data.log_eps = 1e-6  # transform='log'
  config.data.time_flip = False  # each training crop reversed in time, p=1/2
  # Frames a training crop may reach past a file's ends, the file's own
  # frames mirrored there (as infer.edge_padding='reflect' pads at
  # inference); 0: crops lie inside the files.
  config.data.crop_past_ends = 0

  config.model = ml_collections.ConfigDict()
  config.model.name = 'autoencoder'  # or 'unet' (models.UNet)
  # 'unet': the channels of each level (each level halves the resolution).
  config.model.encoder_channels = (8, 16, 32)
  config.model.decoder_channels = (16, 8)
  config.model.kernel_size = 5
  config.model.output_kernel_size = 3
  config.model.pool = 2
  config.model.batch_norm = True
  config.model.bn_momentum = 0.99  # Keras' default, as in the seed
  config.model.bn_epsilon = 1e-3  # Keras' default, as in the seed
  config.model.output_activation = 'sigmoid'  # 'sigmoid', 'relu' or 'linear'
  # 'image' (seed), 'mask', 'residual' or 'subtract' (learned spectral
  # subtraction of a local noise estimate, models.subtract_noise)
  config.model.output_mode = 'image'
  config.model.mask_exponent = 1.0  # mask ** exponent; 1/root: gain on power
  # 'subtract': frames each side for the noise estimate; infer.margin_frames must
  # cover it plus the network's own radius (18 frames; measured 51 in all
  # for configs/denoise.py).
  config.model.noise_radius = 32
  # 'subtract': the noise estimate, 'minimum' (statistics: the least
  # noise_smooth-frame mean) or 'quiet' (mean of the noise_quiet_fraction
  # quietest frames, spectral subtraction's estimate), within noise_radius.
  config.model.noise_estimate = 'minimum'
  config.model.noise_smooth = 5  # 'minimum': frames averaged before it
  config.model.noise_quiet_fraction = 0.3
  config.model.max_subtraction = 4.0  # 'subtract': most noise floors taken
  config.model.skip_channels = 0  # > 0: full-resolution skip (small U-Net)
  # 'unet' with output_mode='kernel': the (bands, frames) of neighbouring
  # bins whose power each output bin is a learned weighted mean of.
  config.model.kernel_window = (3, 7)

  # How this run computes the model; not part of the model, so it may differ
  # between training, resuming and inference (same function, same params).
  config.runtime = ml_collections.ConfigDict()
  # 'onednn': oneDNN via XLA FFI (CPU, fastest here; the onednn extra);
  # 'matmul_grad': XLA's, with kernel gradients as patch matmuls (CPU);
  # 'xla': XLA's own (GPU); 'auto': 'onednn' on a 1-device CPU where it
  # builds, else one of the others.
  config.runtime.conv_impl = 'auto'
  config.runtime.phase_upsample = True  # exact low-resolution upsample+conv
  # Keep freed host memory for the next step instead of unmapping it
  # (glibc; mel_ae/backends/host_memory.py): ~1.5x faster steps on CPU.
  config.runtime.reuse_host_memory = True

  config.train = ml_collections.ConfigDict()
  config.train.mode = 'autoencoder'  # input = target = clean; or 'denoise'
  # > 0 weights the loss toward raw power (the competition metric): each
  # bin's squared error is scaled by 1 + w * (d power / d model value)^2.
  config.train.loss_power_weight = 0.0
  # 'model': MSE in the model domain (with loss_power_weight above);
  # 'power': MSE in raw power, the competition metric, plus loss_log_weight
  # times the MSE of ln power floored 80 dB below each target's peak (the
  # quiet bins LSD measures and a raw-power loss ignores).
  config.train.loss = 'model'
  config.train.loss_log_weight = 0.0
  # Frames at either end of each training crop left out of the loss (and of
  # validation): they see the convolutions' zero padding, which whole-file
  # inference never shows the model (windows with infer.margin_frames of
  # context). By model.output_mode where an output form has its own.
  config.train.loss_border_frames = 0
  config.train.output_loss_border_frames = ml_collections.ConfigDict()
  config.train.num_steps = 1000  # about 5.5 minutes on 2 CPU cores
  config.train.batch_size = 16
  config.train.learning_rate = 1e-3
  # Peak learning rates by model.output_mode, where an output form has its
  # own (configs/denoise.py: 'kernel'); others use train.learning_rate.
  config.train.output_learning_rates = ml_collections.ConfigDict()
  config.train.lr_schedule = 'constant'  # 'constant', 'cosine', 'one_cycle'
  config.train.weight_decay = 0.0  # > 0: AdamW
  config.train.warmup_steps = 0
  config.train.adam_eps = 1e-7  # Keras' default, as in the seed
  config.train.grad_clip_norm = 0.0  # 0: no clipping
  # 'bfloat16': convolutions, BatchNorm and activations in bf16 (the output
  # layer and the loss in float32); parameters, optimizer state and BatchNorm
  # statistics stay float32, so checkpoints are the same. A run-time choice:
  # a resume or `mel_ae.load` may use either. Where the back-end has no bf16
  # kernels (oneDNN on a CPU without AVX512_BF16/AMX) it runs float32 and
  # says so (mel_ae/backends).
  config.train.compute_dtype = 'float32'
  config.train.log_every = 100
  config.train.eval_every = 500
  config.train.checkpoint_every = 500
  config.train.keep_checkpoints = 3  # the newest; and the best, beside them
  # The validation metric (lower is better) that picks the best checkpoint
  # (`mel_ae.load(workdir, step='best')`): 'val_power_mse' or 'val_mse'.
  config.train.best_metric = 'val_power_mse'
  config.train.eval_batch_size = 16

  # Noise mixed into clean crops in train.mode='denoise'.
  config.noise = ml_collections.ConfigDict()
  config.noise.kinds = ('white', 'pink', 'brown', 'hum', 'babble', 'estimated')
  # Synthetic additive noise, the prior for environmental noise: drawn
  # beside 'fitted' when the fit finds an additive floor, and instead of
  # noise.kinds when none of those has a source (e.g. only 'fitted', and no
  # unpaired noisy files; training says so in one line).
  config.noise.additive_kinds = ('white', 'pink', 'brown', 'hum', 'babble')
  # How often 'fitted' (the data's own noise) is drawn against each other
  # kind in the bank (1 each: uniform over kinds).
  config.noise.fitted_weight = 1.0
  config.noise.snr_db = (0.0, 15.0)  # uniform range, per example
  # Std of the random speech x noise cross term 2 sqrt(S N) cos(phase) that
  # audio mixed in the waveform has, relative to 2 sqrt(S N), in every
  # additive mix; 0 = powers add (measured: noise.val_cross_std below).
  config.noise.cross_std = 0.0
  config.noise.seconds = 20.0  # length of each synthetic noise texture
  config.noise.babble_textures = 8
  config.noise.babble_talkers = 4
  config.noise.babble_frames = 512
  # Each babble talker's frequencies scaled by a log-uniform factor from this
  # range (other voices from our one speaker); (1, 1) = the speaker as is.
  config.noise.babble_freq_scale = (1.0, 1.0)
  config.noise.quiet_fraction = 0.3  # frames of a noisy file taken as noise
  # Clean crops' frequencies scaled by a factor drawn log-uniformly from this
  # range before mixing (pitch and formants together: other voices);
  # (1, 1) = off.
  config.noise.freq_scale = (1.0, 1.0)
  # Clean crops' level shifted by a uniform draw from this dB range before
  # mixing (the noise follows at its SNR); (0, 0) = off.
  config.noise.level_db = (0.0, 0.0)
  # 'gain' kind: noisy = clean * g, g i.i.d. per bin from this distribution
  # ('uniform' or 'loguniform') on this range (the 2020 competition's noise).
  config.noise.gain_distribution = 'uniform'
  config.noise.gain_range = (0.001, 2.0)
  # 'fitted' kind: a noise model (mel_ae/noise_model.py) fitted to the
  # unpaired noisy files by matching log-power histograms on this dB range
  # (-40: the embedded corpus' float16 floor, 1e-4) in steps of model_db_step;
  # fewer than model_min_frames noisy frames in all are refused.
  config.noise.model_db_range = (-40.0, 30.0)
  config.noise.model_db_step = 0.5
  config.noise.model_min_frames = 32
  # A fitted per-bin gain whose log-gain std is below this is taken as none
  # (g = 1): additive corpora fit 0.00-0.06 with a mean anywhere in
  # 0.82-1.04 as the fit's random stream goes; the competition's U(0.001, 2)
  # has 0.98.
  config.noise.model_min_log_gain_std = 0.1
  # 'fitted': where the fitted floor's mean lies more than this many dB above
  # the clean files' quiet frames, the noisy files' own quiet frames make the
  # floor (their colour and structure) at the fitted levels.
  config.noise.fitted_textures_above_db = 0.0
  # The levels those quiet frames are drawn at: 'fitted' (the model's
  # log-normal level, file to file) or 'own' (each at its own file's
  # quiet-frame power); validation draws its held-out frames alike.
  config.noise.texture_levels = 'fitted'
  # The last this fraction of each noisy file's quiet frames is held out of
  # training: the validation noise (the data's own, never trained on).
  config.noise.val_noise_fraction = 0.25
  config.noise.val_draws = 8  # noise draws per validation window
  # The cross term (as noise.cross_std) of the validation noise: real
  # additive noise is mixed in the waveform, whatever training assumes.
  # Speech with noise: 0.40-0.46 below 1 kHz, 0.25-0.34 above
  # (`python -m experiments.training_noise.cross_term`).
  config.noise.val_cross_std = 0.4

  # Denoising a whole file: windows of chunk_frames outputs, each with
  # margin_frames of context per side (>= the model's receptive radius).
  config.infer = ml_collections.ConfigDict()
  config.infer.chunk_frames = 512
  config.infer.margin_frames = 64
  config.infer.batch_size = 4
  # Past a file's ends: 'silence' (zero power) or 'reflect' (its frames
  # mirrored, as inside a training crop): mel_ae/inference.py.
  config.infer.edge_padding = 'silence'
  # Also denoise the time-reversed mel and average the two (in power).
  config.infer.flip_average = False
  return config
