"""Noise models for enhancement (registered in ``NOISE_MODELS``)."""

from .nmf import NMFNoise, NMFState

__all__ = ["NMFNoise", "NMFState"]
