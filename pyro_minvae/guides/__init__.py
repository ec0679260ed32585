"""Guides: amortised Gaussian and MIN-VAE's mixture of inference networks."""

from .amortized import GaussianGuide
from .mixture import MixtureGuide

__all__ = ["GaussianGuide", "MixtureGuide"]
