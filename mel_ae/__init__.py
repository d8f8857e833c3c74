"""Denoising autoencoder for power mel spectrograms.

In a notebook: `d = mel_ae.load(workdir); clean = d.denoise(noisy_mel)`;
`mel_ae.load_pretrained('general')` for the shipped model (any voice).
"""
from mel_ae.inference import load  # noqa: F401
from mel_ae.inference import load_pretrained  # noqa: F401
