"""Per-frame log targets for the E-step kernels, built from the one speech model.

A potential is ``potential(z (N, L), *args) -> (log_target (N,), {"speech_log_var": (N, F)})``. With
``scoring="direct"``, :class:`LikelihoodPotential` also accepts leading sample dims: ``z (S, N, L) -> (S, N)``.
Two scoring paths give the same numbers (tested):

``scoring="trace"``
    :func:`pyro_minvae.models.scoring.frame_log_probs` on ``model.model`` conditioned on ``z`` (the house
    path: Pyro traces the model, mixture sites enumerated). About 2 ms of tracing overhead per call on CPU.
``scoring="direct"`` (default)
    The same components called without tracing the whole model: ``model.decoder.bind`` -> ``observation`` ->
    ``PowerSpectrum.log_prob``, and the prior's ``closed_form`` where the prior offers one (the shipped priors;
    tested equal to the trace), else its own Pyro program traced with ``"z"`` observed and ``"c"`` enumerated
    (:func:`~pyro_minvae.models.scoring.traced_prior_score`): any prior that gives ``log_prob`` works. The
    conditioning tensor (AV-CVAE's visual embedding) and the prior's scorer are built once per potential.

Targets:

:class:`LikelihoodPotential` (classic MCEM, every family)
    ``log p(x_n | z_n, noise) + log p(z_n [| v_n])`` with ``x`` the noisy power and ``noise`` an
    :class:`~pyro_minvae.models.likelihood.AdditiveNoise`. Mixture priors are marginalised over c, with the
    prior's weights or the ``log_weights`` given (MCEM re-estimates them).
:class:`ExpectedPowerPotential` (MIN-VAE's variational loop)
    ``log p(P_n | z_n, g_n) + sum_m r_nm log p(z_n | c=m)`` with ``P = |mu_s|^2 + Sigma_s`` the expected speech
    power and ``r`` the responsibilities ``(N, M)`` (the paper's weighted prior), or, with ``marginal=True``,
    ``log sum_m pi_m p(z_n | c=m)``. Non-mixture priors use ``log p(z_n)``.
"""

from __future__ import annotations

import torch

from ..contracts import MixturePrior
from ..models.likelihood import AdditiveNoise, observation
from ..models.scoring import frame_log_probs, traced_prior_score

SCORINGS = ("direct", "trace")


def _check_scoring(scoring: str) -> str:
    if scoring not in SCORINGS:
        raise ValueError(f"scoring must be one of {SCORINGS}; got {scoring!r}")
    return scoring


class FramePotential:
    """Shared set-up of the per-frame targets: the conditioning, the bound decoder and the prior's scorer
    (``prior_score(z (..., N, L))``: ``(..., N)``, or ``(M, ..., N)`` component log densities for a mixture)."""

    def __init__(self, model, batch: dict, scoring: str = "direct"):
        self.model = model
        self.batch = batch
        self.scoring = _check_scoring(scoring)
        self.n_frames = model.validate_batch(batch)
        self.is_mixture = isinstance(model.prior, MixturePrior)
        with torch.no_grad():  # fixed for the whole E-step: no gradients into the network's weights
            self.cond = model.condition(batch)
            closed = model.prior.closed_form(self.n_frames, self.cond)
            self.prior_score = closed if closed is not None else traced_prior_score(model.prior, batch, self.cond)
            self.decode = model.decoder.bind(self.cond)

    def _trace(self, batch: dict, z: torch.Tensor, noise):
        captured = []
        hook = self.model.decoder.register_forward_hook(lambda mod, inp, out: captured.append(out))
        try:
            out = frame_log_probs(self.model.model, batch, {"z": z}, noise)
        finally:
            hook.remove()
        return out, captured[-1]

    def component_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """``(M, ..., N)`` per-component prior log densities (mixture priors only)."""
        return self.prior_score(z)


class LikelihoodPotential(FramePotential):
    """``log p(x | z, noise) + log p(z)`` per frame; ``batch["audio"]`` is the noisy power ``(N, F)``."""

    def __call__(self, z: torch.Tensor, noise: AdditiveNoise | None, log_weights: torch.Tensor | None = None):
        """``log_weights`` ``(M,)`` or per frame ``(M, N)``: mixture weights to marginalise c with (default: the
        prior's own)."""
        if self.scoring == "trace" and log_weights is not None:
            raise ValueError("scoring='trace' uses the prior's own weights; pass log_weights with scoring='direct'")
        if self.scoring == "trace":
            out, lv = self._trace(self.batch, z, noise)
            prior = out["z"]
            if "c" in out:
                prior = torch.logsumexp(out["c"] + prior, dim=0)
            return out["x"] + prior, {"speech_log_var": lv}
        lv = self.decode(z)
        lik = observation(lv, noise).log_prob(self.batch["audio"]).sum(-1)
        if self.is_mixture:
            comp = self.component_log_prob(z)  # (M, ..., N)
            lw = log_weights if log_weights is not None else self.model.prior.log_weights()
            lw = lw.reshape(lw.shape[:1] + (1,) * (comp.dim() - lw.dim()) + lw.shape[1:])  # (M,) or per frame (M, N)
            prior = torch.logsumexp(lw + comp, 0)
        else:
            prior = self.prior_score(z)
        return lik + prior, {"speech_log_var": lv}


class ExpectedPowerPotential(FramePotential):
    """MIN-VAE's E-z target: ``log p(P | z, g) + sum_m r_nm log p(z | c=m)`` per frame.

    ``batch`` holds the visual features (and any ``"audio"`` placeholder ``(N, F)``); the expected speech power
    is passed at call time. ``marginal=True`` uses ``logsumexp_m (log pi_m + log p(z|c=m))`` instead.
    """

    def __init__(self, model, batch: dict, scoring: str = "direct", marginal: bool = False):
        super().__init__(model, batch, scoring)
        self.marginal = bool(marginal)

    def __call__(
        self,
        z: torch.Tensor,
        power: torch.Tensor,
        gain: torch.Tensor | None = None,
        responsibilities: torch.Tensor | None = None,
        log_weights: torch.Tensor | None = None,
    ):
        noise = None if gain is None else AdditiveNoise(None, gain)
        if self.scoring == "trace":
            out, lv = self._trace({**self.batch, "audio": power}, z, noise)
            lik, comp = out["x"], out["z"]
        else:
            lv = self.decode(z)
            lik = observation(lv, noise).log_prob(power).sum(-1)
            comp = self.prior_score(z)
        if not self.is_mixture:
            return lik + comp, {"speech_log_var": lv}
        comp = comp.expand(comp.shape[0], z.shape[0])
        if self.marginal:
            lw = log_weights if log_weights is not None else self.model.prior.log_weights()
            prior = torch.logsumexp(lw.unsqueeze(-1) + comp, dim=0)
        else:
            if responsibilities is None:
                raise ValueError("the weighted-prior potential needs responsibilities (N, M)")
            prior = (responsibilities.transpose(0, 1) * comp).sum(0)
        return lik + prior, {"speech_log_var": lv}


__all__ = ["FramePotential", "LikelihoodPotential", "ExpectedPowerPotential", "SCORINGS"]
