"""Denoising autoencoder for power mel spectrograms."""
