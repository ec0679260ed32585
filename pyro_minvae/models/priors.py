"""Priors over the per-frame latent z (registered in ``PRIORS``).

A prior is a torch module called *inside* the model's ``frames`` plate as ``prior(batch, cond)``; it samples
the site ``"z"`` of shape ``(B, L)`` (event dim 1) and any auxiliary sites it needs (a mixture prior samples
the discrete site ``"c"`` first, marked for parallel enumeration). ``cond`` is the model's conditioning
tensor ``(B, C)`` or ``None``.

Contracts (:mod:`pyro_minvae.contracts`): :class:`~pyro_minvae.contracts.ExplicitPrior` (an explicit per-frame
distribution) and :class:`~pyro_minvae.contracts.MixturePrior` (``log_weights() -> (M,)``,
``component_log_prob(z) -> (M, ...)``, ``component_means() -> (M, L)``, so enhancement can re-weight the
components). Each prior here also offers ``closed_form``, the E-steps' fast path, tested equal to scoring its
traced Pyro program (tests/models/test_priors.py).
"""

from __future__ import annotations

import math
from typing import Sequence

import pyro
import pyro.distributions as dist
import torch
from torch import nn
from torch.distributions.utils import lazy_property

from ..contracts import ExplicitPrior, MixturePrior
from ..nn.encoders import mlp
from ..registry import PRIORS

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class DiagonalNormal(dist.Normal):
    """``pyro.distributions.Normal`` whose ``log_prob`` reuses its normaliser ``-log s - log(2 pi)/2`` and ``1/s``.

    The same density in 3 tensor operations instead of torch's 9; both are computed once per distribution object.
    An E-step builds the prior once and scores it at every MH proposal (a few thousand times per recording), where
    this is about 5% of a step. Every prior here uses it, in training and enhancement alike.
    """

    @lazy_property
    def _log_normaliser(self) -> torch.Tensor:
        return -(self.scale.log() + _HALF_LOG_2PI)

    @lazy_property
    def _inverse_scale(self) -> torch.Tensor:
        return self.scale.reciprocal()

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if self._validate_args:
            self._validate_sample(value)
        d = (value - self.loc) * self._inverse_scale
        return torch.addcmul(self._log_normaliser, d, d, value=-0.5)


@PRIORS.register("standard-normal")
class StandardNormalPrior(ExplicitPrior):
    """p(z) = N(0, I): the A-VAE prior."""

    def __init__(self, latent_dim: int = 32):
        super().__init__()
        self.latent_dim = latent_dim
        self.register_buffer("_zero", torch.zeros(()))

    def distribution(self, batch_size: int, cond: torch.Tensor | None = None) -> dist.Distribution:
        loc = self._zero.expand(batch_size, self.latent_dim)
        return DiagonalNormal(loc, torch.ones_like(loc)).to_event(1)


@PRIORS.register("conditional-gaussian")
class ConditionalGaussianPrior(ExplicitPrior):
    """p(z | v) = N(mu(v), diag sigma^2(v)) from the conditioning tensor: the AV-CVAE prior network."""

    def __init__(self, cond_dim: int = 32, latent_dim: int = 32, hidden: Sequence[int] = (64,)):
        super().__init__()
        self.latent_dim = latent_dim
        self.cond_dim = cond_dim
        self.body = mlp(cond_dim, hidden, ["tanh"] * len(hidden))
        self.loc = nn.Linear(hidden[-1], latent_dim)
        self.log_var = nn.Linear(hidden[-1], latent_dim)

    def distribution(self, batch_size: int, cond: torch.Tensor | None = None) -> dist.Distribution:
        if cond is None or cond.shape != (batch_size, self.cond_dim):
            raise ValueError(f"conditional prior expects cond (B={batch_size}, {self.cond_dim})")
        h = self.body(cond)
        return DiagonalNormal(self.loc(h), torch.exp(0.5 * self.log_var(h).clamp(-20.0, 10.0))).to_event(1)


@PRIORS.register("mixture")
class MixtureGaussianPrior(MixturePrior):
    """MIN-VAE prior: c ~ Categorical(pi), z | c ~ N(mu_c, s_c I) with learned means and scalar variances.

    ``components`` names one component per encoder (e.g. ``["audio", "lips"]``), in the guide's order.
    ``learn_weights=False`` keeps pi as a buffer updated in closed form (mean responsibility, as in the paper);
    ``True`` makes its logits a parameter trained by the ELBO.
    """

    def __init__(
        self, components: Sequence[str] = ("audio", "lips"), latent_dim: int = 32, learn_weights: bool = False
    ):
        super().__init__()
        self.components = list(components)
        self.latent_dim = latent_dim
        m = len(self.components)
        if m < 2:
            raise ValueError(f"a mixture prior needs at least 2 components; got {self.components}")
        self.loc = nn.Parameter(torch.zeros(m, latent_dim))
        self.log_var = nn.Parameter(torch.zeros(m))
        logits = torch.full((m,), -torch.log(torch.tensor(float(m))).item())
        if learn_weights:
            self.weight_logits = nn.Parameter(logits)
        else:
            self.register_buffer("weight_logits", logits)

    @property
    def weights_learned(self) -> bool:
        return self.weight_logits.requires_grad

    def log_weights(self) -> torch.Tensor:
        """log pi, shape ``(M,)``."""
        return torch.log_softmax(self.weight_logits, dim=-1)

    def set_weights(self, weights: torch.Tensor) -> None:
        """Closed-form update of pi (``(M,)``, positive, normalised here)."""
        w = weights.detach().clamp_min(1e-6)
        with torch.no_grad():
            self.weight_logits.copy_(torch.log(w / w.sum()))

    def component_distribution(self) -> dist.Distribution:
        """Batch shape ``(M,)``, event ``(L,)``."""
        scale = torch.exp(0.5 * self.log_var).unsqueeze(-1).expand(-1, self.latent_dim)
        return DiagonalNormal(self.loc, scale).to_event(1)

    def component_log_prob(self, z: torch.Tensor, components: dist.Distribution | None = None) -> torch.Tensor:
        """log N(z; mu_c, s_c I) for every component: ``z (..., L) -> (M, ...)``.

        ``components``: a :meth:`component_distribution` built earlier (an E-step scores thousands of proposals
        with fixed parameters and builds it once).
        """
        d = components if components is not None else self.component_distribution()
        zz = z.unsqueeze(-2)  # (..., 1, L) against (M, L)
        lp = d.log_prob(zz)  # (..., M)
        return lp.movedim(-1, 0)

    def component_means(self) -> torch.Tensor:
        return self.loc

    def closed_form(self, n_frames: int, cond: torch.Tensor | None = None):
        """Component log densities with the components built once: ``z (..., N, L) -> (M, ..., N)``. Offered only
        while the density is this class's own (a subclass overriding ``forward`` or ``component_log_prob`` is
        scored by tracing its program instead)."""
        own = (
            type(self).forward is MixtureGaussianPrior.forward
            and type(self).component_log_prob is MixtureGaussianPrior.component_log_prob
        )
        if not own:
            return None
        components = self.component_distribution()
        return lambda z: self.component_log_prob(z, components)

    def forward(self, batch: dict, cond: torch.Tensor | None = None) -> torch.Tensor:
        c = pyro.sample("c", dist.Categorical(logits=self.log_weights()), infer={"enumerate": "parallel"})
        scale = torch.exp(0.5 * self.log_var)[c].unsqueeze(-1).expand(*c.shape, self.latent_dim)
        return pyro.sample("z", DiagonalNormal(self.loc[c], scale).to_event(1))
