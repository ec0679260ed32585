"""The one likelihood of the project: power spectra under a zero-mean complex Gaussian.

If an STFT coefficient is ``x ~ CN(0, v)`` then its power ``p = |x|^2`` is exponential with mean ``v``:
``log p(p) = -log v - p / v`` (the Itakura-Saito form; the complex density of x differs by ``-log pi``, a constant).
It is written once, in log-variance form ``-lv - p * exp(-lv)`` with ``lv`` clamped to a safe range, and used by
training, enhancement and evaluation alike.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from pyro.distributions import TorchDistribution
from torch.distributions import constraints

LOG_VAR_MIN = -30.0
LOG_VAR_MAX = 30.0


class PowerSpectrum(TorchDistribution):
    """Elementwise exponential distribution over power ``|x|^2`` parameterised by log-variance.

    ``log_var``: any shape; ``batch_shape == log_var.shape``, ``event_shape == ()``. Use ``.to_event(1)`` for
    the frequency axis.
    """

    arg_constraints = {"log_var": constraints.real}
    support = constraints.nonnegative
    has_rsample = False

    def __init__(self, log_var: torch.Tensor, validate_args=None):
        self.log_var = log_var.clamp(LOG_VAR_MIN, LOG_VAR_MAX)
        super().__init__(self.log_var.shape, torch.Size(), validate_args=validate_args)

    @property
    def mean(self) -> torch.Tensor:
        return self.log_var.exp()

    @property
    def variance(self) -> torch.Tensor:
        return self.log_var.exp().square()

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(PowerSpectrum, _instance)
        new.log_var = self.log_var.expand(batch_shape)
        super(PowerSpectrum, new).__init__(torch.Size(batch_shape), torch.Size(), validate_args=False)
        new._validate_args = self._validate_args
        return new

    def sample(self, sample_shape=torch.Size()):
        shape = self._extended_shape(sample_shape)
        with torch.no_grad():
            e = torch.empty(shape, dtype=self.log_var.dtype, device=self.log_var.device).exponential_()
            return e * self.log_var.exp().expand(shape)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if self._validate_args:
            self._validate_sample(value)
        return -self.log_var - value * torch.exp(-self.log_var)


class AdditiveNoise(NamedTuple):
    """Noise entering the observation model at enhancement time: ``v_x = g * sigma^2(z) + v_noise``.

    ``log_var``: ``(B, F)`` log of the noise variance (e.g. NMF ``W H`` transposed to frame-major);
    ``log_gain``: ``(B,)`` log of the per-frame speech gain g.
    """

    log_var: torch.Tensor
    log_gain: torch.Tensor


def observation_log_var(speech_log_var: torch.Tensor, noise: AdditiveNoise | None) -> torch.Tensor:
    """Log-variance of the observed power: ``log(g e^{lv} + v_noise)``, or ``lv`` itself without noise.

    ``speech_log_var`` is ``(..., B, F)`` (leading enumeration/sample dims allowed).
    """
    if noise is None:
        return speech_log_var
    return torch.logaddexp(speech_log_var + noise.log_gain.unsqueeze(-1), noise.log_var)
