"""Classical enhancement baselines, registered in ``pyro_minvae.registry.BASELINES``.

Build one with ``BASELINES.build("spectral-gating")``; every method follows
:class:`pyro_minvae.baselines.base.Enhancer`'s call signature.
"""

from .base import Enhancer, check_waveform
from .classical import NoisyInput, OracleWiener, SpectralGating, SpectralGatingStationary

__all__ = ["Enhancer", "check_waveform", "NoisyInput", "SpectralGating", "SpectralGatingStationary", "OracleWiener"]
