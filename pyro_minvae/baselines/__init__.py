"""Classical enhancement baselines, registered in ``pyro_minvae.registry.BASELINES``.

Build one with ``BASELINES.build("spectral-gating")``; every method satisfies
:class:`pyro_minvae.contracts.EvaluationMethod` (here through :class:`pyro_minvae.baselines.base.Enhancer`).
"""

from ..contracts import EvaluationMethod
from .base import Enhancer, check_waveform
from .classical import NoisyInput, OracleWiener, SpectralGating, SpectralGatingStationary

__all__ = [
    "EvaluationMethod",
    "Enhancer",
    "check_waveform",
    "NoisyInput",
    "SpectralGating",
    "SpectralGatingStationary",
    "OracleWiener",
]
