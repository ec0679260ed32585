"""Noise models for enhancement (the E-steps use :class:`NMFNoise`; its interface: ``contracts.NoiseModel``)."""

from .nmf import NMFNoise, NMFState

__all__ = ["NMFNoise", "NMFState"]
