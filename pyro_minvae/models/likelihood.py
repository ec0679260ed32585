"""The one likelihood of the project: power spectra under a zero-mean complex Gaussian.

If an STFT coefficient is ``x ~ CN(0, v)`` then its power ``p = |x|^2`` is exponential with mean ``v``:
``log p(p) = -log v - p / v`` (the Itakura-Saito form; the complex density of x differs by ``-log pi``, a constant).
It is written once, in :class:`PowerSpectrum`, and its variance is built once, in :func:`observation`, which
training (clean speech: ``v = sigma^2(z)``), enhancement (``v = g sigma^2(z) + V``) and evaluation all call.
Clean speech is parameterised by the decoder's log-variance (clamped to a safe range); with additive noise the
variance is formed directly (``exp`` once, ``log`` once), which is what an MH step pays per frame and frequency.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from pyro.distributions import TorchDistribution
from torch.distributions import constraints

LOG_VAR_MIN = -30.0
LOG_VAR_MAX = 30.0


class PowerSpectrum(TorchDistribution):
    """Elementwise exponential distribution over power ``|x|^2`` with variance (= mean) ``v``.

    Give exactly one of ``log_var`` (clamped to [LOG_VAR_MIN, LOG_VAR_MAX]) or ``variance`` (> 0); any shape:
    ``batch_shape`` is that shape, ``event_shape == ()``. Use ``.to_event(1)`` for the frequency axis.
    """

    arg_constraints = {"log_var": constraints.real}
    support = constraints.nonnegative
    has_rsample = False

    def __init__(
        self, log_var: torch.Tensor | None = None, validate_args=None, *, variance: torch.Tensor | None = None
    ):
        if (log_var is None) == (variance is None):
            raise ValueError("PowerSpectrum needs exactly one of log_var or variance")
        if variance is not None:
            self._variance = variance
            self.log_var = variance.log()
        else:
            self._variance = None
            self.log_var = log_var.clamp(LOG_VAR_MIN, LOG_VAR_MAX)
        super().__init__(self.log_var.shape, torch.Size(), validate_args=validate_args)

    @property
    def mean(self) -> torch.Tensor:
        return self.log_var.exp() if self._variance is None else self._variance

    @property
    def variance(self) -> torch.Tensor:
        return self.mean.square()

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(PowerSpectrum, _instance)
        new.log_var = self.log_var.expand(batch_shape)
        new._variance = None if self._variance is None else self._variance.expand(batch_shape)
        super(PowerSpectrum, new).__init__(torch.Size(batch_shape), torch.Size(), validate_args=False)
        new._validate_args = self._validate_args
        return new

    def sample(self, sample_shape=torch.Size()):
        shape = self._extended_shape(sample_shape)
        with torch.no_grad():
            e = torch.empty(shape, dtype=self.log_var.dtype, device=self.log_var.device).exponential_()
            return e * self.mean.expand(shape)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if self._validate_args:
            self._validate_sample(value)
        if self._variance is not None:  # -(log v + p / v), one fused pass (an MH step's hottest line)
            return torch.addcdiv(self.log_var, value, self._variance).neg_()
        return -self.log_var - value * torch.exp(-self.log_var)


class AdditiveNoise(NamedTuple):
    """Noise entering the observation model at enhancement time: ``v_x = g * sigma^2(z) + V``.

    ``variance``: ``(B, F)`` noise variance V >= 0 (e.g. NMF ``W H`` transposed to frame-major), or ``None`` for
    a gain-only observation (``v_x = g sigma^2(z)``, MIN-VAE's E-z target); ``gain``: ``(B,)`` per-frame speech
    gain g > 0; ``observed``: ``(F,)`` bool, the bins the recording holds (a telephone band leaves the rest out;
    :mod:`pyro_minvae.infer.recording_channel`), or ``None`` for all.
    """

    variance: torch.Tensor | None
    gain: torch.Tensor
    observed: torch.Tensor | None = None  # (F,) bool: bins that hold an observation (None: all); see observation


def speech_variance(speech_log_var: torch.Tensor) -> torch.Tensor:
    """The speech variance ``sigma^2(z)`` the model uses for a decoder log-variance (any shape): ``exp`` of the
    log-variance clamped to [LOG_VAR_MIN, LOG_VAR_MAX] (the likelihood, the M-steps and the Wiener filters all
    read it from here)."""
    return speech_log_var.clamp(LOG_VAR_MIN, LOG_VAR_MAX).exp()


def observation(speech_log_var: torch.Tensor, noise: AdditiveNoise | None = None) -> TorchDistribution:
    """The distribution of the observed power given the decoder's speech log-variance ``(..., B, F)``.

    Leading enumeration/sample dims are allowed. Without ``noise``: clean speech, ``PowerSpectrum(lv)``. With
    ``noise.observed``, the bins it leaves out contribute nothing (a masked distribution).
    """
    if noise is None:
        return PowerSpectrum(speech_log_var)
    if noise.variance is None:
        d = PowerSpectrum(speech_log_var + noise.gain.log().unsqueeze(-1))
    else:
        speech_var = speech_variance(speech_log_var)
        d = PowerSpectrum(variance=torch.addcmul(noise.variance, speech_var, noise.gain.unsqueeze(-1)))
    return d if noise.observed is None else d.mask(noise.observed)  # unobserved bins: log-density 0
