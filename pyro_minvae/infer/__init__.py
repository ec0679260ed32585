"""Inference: training objectives, E-step kernels and enhancement drivers."""

from . import kernels, mcem, mode_jump, vem  # noqa: F401  (register KERNELS "frame-mh", "frame-mh-jump", ESTEPS)
