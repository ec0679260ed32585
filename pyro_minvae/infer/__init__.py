"""Inference: training objectives, E-step kernels and enhancement drivers."""

from . import kernels, mcem, vem  # noqa: F401  (register KERNELS "frame-mh", ESTEPS "mcem", "vem", "fast")
