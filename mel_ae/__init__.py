"""Denoising autoencoder for power mel spectrograms.

In a notebook: `d = mel_ae.load(workdir); clean = d.denoise(noisy_mel)`.
"""
from mel_ae.inference import load  # noqa: F401
