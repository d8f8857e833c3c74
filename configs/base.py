"""The 2020 seed autoencoder on the embedded corpus; what every recipe shares.

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
  """Seed hyperparameters. A recipe adds its own fields and sections
  (mel_ae/settings.py lists them, each with the value that leaves it off:
  the seed's)."""
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.distributed = False  # multi-host: jax.distributed.initialize()
  # A model to start from ('general': the shipped one, mel_ae/pretrained.py;
  # or a training workdir), wherever its shapes match; '': from scratch.
  config.init_from = ''
  # Compiled XLA programs are cached here, so a rerun or resume starts in
  # seconds; '' turns the cache off.
  config.compilation_cache_dir = '~/.cache/mel_ae/xla'

  # How mels relate to audio (wav inputs, Griffin-Lim): librosa's
  # melspectrogram arguments (mel_ae/audio.py's MelSpec, whose defaults
  # give what this section leaves out: 32 Griffin-Lim iterations,
  # 'constant' edge padding, Slaney's mel scale and area norm).
  config.audio = ml_collections.ConfigDict()
  config.audio.sr = 22050
  config.audio.n_fft = 2048
  config.audio.hop_length = 512
  config.audio.n_mels = 128
  config.audio.fmin = 0.0
  config.audio.fmax = -1.0  # -1: sr / 2.
  config.audio.power = 2.0

  config.data = ml_collections.ConfigDict()
  config.data.train_dir = os.path.join(_CORPUS, 'train')  # clean files
  # Unpaired noisy files, for train.mode='denoise'; '' = none.
  config.data.noisy_dir = os.path.join(_CORPUS, 'noisy')
  config.data.test_noisy_dir = os.path.join(_CORPUS, 'test', 'noisy')  # '' = none
  config.data.test_clean_dir = os.path.join(_CORPUS, 'test', 'clean')
  config.data.crop_frames = 128
  config.data.val_fraction = 0.1  # clean files held out for validation
  # 'root' (x ** (1/root)), 'db' (the top 80 dB) or 'log' (ln(x + 1e-6));
  # each then scaled so the training files lie in [0, 1] (mel_ae/features.py).
  config.data.transform = 'root'
  config.data.root = 16.0

  # The model's fields (mel_ae/models.py) and its output form's
  # (mel_ae/output_forms.py): name picks the module ('autoencoder' or
  # 'unet'), and a field left out takes its default.
  config.model = ml_collections.ConfigDict()
  config.model.name = 'autoencoder'
  config.model.encoder_channels = (8, 16, 32)
  config.model.decoder_channels = (16, 8)
  config.model.kernel_size = 5
  config.model.output_kernel_size = 3
  config.model.pool = 2
  config.model.batch_norm = True
  config.model.bn_momentum = 0.99  # Keras' default, as in the seed
  config.model.bn_epsilon = 1e-3  # Keras' default, as in the seed
  # The output form (mel_ae/output_forms.py): 'image' (seed), 'mask' or
  # 'residual'; the U-Net's 'residual', 'image', 'kernel' or 'fitted'
  # (configs/denoise.py). A study may register its own (experiments/subtract).
  config.model.output_mode = 'image'

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
  # 'autoencoder': input = target = clean; 'denoise': clean crops with
  # noise mixed in (the noise settings: a recipe's config.noise over
  # mel_ae/settings.py's, e.g. configs/denoise.py).
  config.train.mode = 'autoencoder'
  config.train.num_steps = 1000  # about 5.5 minutes on 2 CPU cores
  config.train.batch_size = 16  # also validation's
  config.train.learning_rate = 1e-3  # Adam, eps 1e-7 (Keras', as the seed)
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

  # Denoising a whole file: windows of chunk_frames outputs, each with
  # margin_frames of context per side (>= the model's receptive radius).
  config.infer = ml_collections.ConfigDict()
  config.infer.chunk_frames = 512
  config.infer.margin_frames = 64
  config.infer.batch_size = 4
  return config
