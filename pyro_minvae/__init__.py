"""pyro-minvae: MIN-VAE audio-visual speech enhancement written as Pyro programs."""

__version__ = "0.2.0"
