"""Inference: training objectives, E-step kernels and enhancement drivers."""

from . import kernels, mcem, mode_jump, odd_even, vem  # noqa: F401  (register KERNELS and ESTEPS)
