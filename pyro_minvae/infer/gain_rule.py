"""The gain rule of the final estimate: how the posterior-mean Wiener gain becomes the applied gain.

The E-steps estimate the speech STFT as ``S = G X`` with the posterior-mean Wiener gain
``G = mean_r [g s2_r / (g s2_r + V)]`` ``(N, F)`` in [0, 1] (the MMSE estimate of the complex STFT under the model).
:class:`GainRule` reshapes it before it is applied: ``G' = max(G ** exponent, floor)``. ``exponent`` > 1 suppresses
more where the model is unsure (a parametric Wiener rule), < 1 less; ``floor`` (e.g. 0.1 = -20 dB) bounds the
attenuation, which leaves a little of the noise everywhere but keeps weak speech the model missed. The identity
rule (exponent 1, floor 0, the paper's estimate) is the default; other values are chosen on validation
(``pyro-minvae tune``, docs/algorithms.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class GainRule:
    """``G' = max(G ** exponent, floor)`` for a gain ``G`` in [0, 1]; the default is the identity."""

    exponent: float = 1.0
    floor: float = 0.0

    def __post_init__(self):
        if not (self.exponent > 0):
            raise ValueError(f"gain exponent must be > 0; got {self.exponent}")
        if not (0.0 <= self.floor < 1.0):
            raise ValueError(f"gain floor must be in [0, 1); got {self.floor}")

    @property
    def identity(self) -> bool:
        return self.exponent == 1.0 and self.floor == 0.0

    def __call__(self, gain: torch.Tensor) -> torch.Tensor:
        """The applied gain, same shape and device as ``gain``."""
        if self.identity:
            return gain
        out = gain if self.exponent == 1.0 else gain.pow(self.exponent)
        return out.clamp_min(self.floor) if self.floor > 0 else out


__all__ = ["GainRule"]
