"""A dynamical prior over the latent frames, trained jointly with the VAE (registered in ``PRIORS`` as ``"markov"``).

The speech latents of consecutive STFT frames are a first-order Markov chain::

    z_1 ~ N(0, I)                                       (and every frame that starts a segment)
    z_n | z_{n-1} ~ N(a * z_{n-1} + f(z_{n-1}), diag exp(v(z_{n-1})))

with ``a`` a learned per-dimension coefficient and ``f``, ``v`` a small tanh network: the transition of a deep
Kalman filter's generative model (Krishnan et al. 2017; Bie et al. 2022 use it for unsupervised enhancement), with
the frame-wise encoder of the A-VAE as the guide. ``log p(z) = sum_n log p(z_n | z_{n-1})`` does not factorise
over frames (``frame_factorised = False``), so enhancement runs the fast E-step (its mean-field ELBO sums the
per-frame terms, exact for any such prior) or MCEM with a kernel exact for coupled frames (``odd-even-mh``).

Which frames start a chain: ``batch["segment_start"]`` ``(B,)`` bool when the batch holds several segments (the
training loop's contiguous segments, :meth:`~pyro_minvae.data.datasets.FrameDataset.batch` with ``segments=True``);
without it the batch is one chain (one utterance, as at enhancement).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import pyro
import torch
from pyro.distributions import TorchDistribution, constraints
from torch import nn

from ..contracts import Prior
from ..nn.encoders import mlp
from ..registry import PRIORS

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def chain_starts(batch: dict, n_frames: int, device: torch.device) -> torch.Tensor:
    """``(N,)`` bool: the frames that start a chain (``batch["segment_start"]``, or only the first frame)."""
    starts = batch.get("segment_start")
    if starts is not None:
        if starts.shape != (n_frames,) or starts.dtype != torch.bool:
            raise ValueError(f"batch['segment_start'] must be ({n_frames},) bool; got {tuple(starts.shape)}")
        return starts
    out = torch.zeros(n_frames, dtype=torch.bool, device=device)
    out[:1] = True
    return out


class MarkovGaussian(TorchDistribution):
    """The joint density of Gaussian Markov chains laid end to end, as one frame-plate site.

    Batch shape ``(N,)`` (frames), event ``(L,)``. ``log_prob(z (..., N, L)) -> (..., N)`` returns the per-frame
    terms ``log p(z_n | z_{n-1})`` (``log N(z_n; 0, I)`` where ``starts`` is true); their sum over frames is the
    chain's log density, which is all an ELBO or an E-step needs. ``sample`` draws the chains frame by frame.
    ``transition(z_prev (..., N, L)) -> (loc, scale)`` each ``(..., N, L)``.
    """

    arg_constraints: dict = {}
    support = constraints.real_vector
    has_rsample = False

    def __init__(self, transition: Callable, starts: torch.Tensor, latent_dim: int, validate_args=None):
        self.transition = transition
        self.starts = starts
        super().__init__(starts.shape, torch.Size([latent_dim]), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        if torch.Size(batch_shape) != self.batch_shape:
            raise ValueError(f"a Markov chain of {self.batch_shape} frames cannot be expanded to {batch_shape}")
        return self

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        prev = torch.cat([torch.zeros_like(value[..., :1, :]), value[..., :-1, :]], dim=-2)
        loc, scale = self.transition(prev)
        first = self.starts.unsqueeze(-1)
        loc = torch.where(first, torch.zeros_like(loc), loc)
        scale = torch.where(first, torch.ones_like(scale), scale)
        d = (value - loc) / scale
        return (-0.5 * d.square() - scale.log() - _HALF_LOG_2PI).sum(-1)

    @torch.no_grad()
    def sample(self, sample_shape=torch.Size()) -> torch.Tensor:
        n, dim = self.batch_shape[0], self.event_shape[0]
        eps = torch.randn(tuple(sample_shape) + (n, dim), device=self.starts.device)
        z = torch.empty_like(eps)
        prev = torch.zeros_like(eps[..., 0, :])
        for i in range(n):
            loc, scale = self.transition(prev)
            if bool(self.starts[i]):
                loc, scale = torch.zeros_like(loc), torch.ones_like(scale)
            z[..., i, :] = prev = loc + scale * eps[..., i, :]
        return z


@PRIORS.register("markov")
class MarkovPrior(Prior):
    """``p(z_n | z_{n-1}) = N(a * z_{n-1} + f(z_{n-1}), diag exp(v(z_{n-1})))``, ``z_1 ~ N(0, I)`` (module docstring).

    ``hidden``: the transition network's tanh layers; ``f`` and ``v`` start at 0 and ``a`` at ``init_coef``, so an
    untrained prior is the AR(1) chain ``z_n = a z_{n-1} + N(0, I)``.
    """

    frame_factorised = False

    def __init__(self, latent_dim: int = 32, hidden: Sequence[int] = (128, 128), init_coef: float = 0.5):
        super().__init__()
        self.latent_dim = latent_dim
        self.coef = nn.Parameter(torch.full((latent_dim,), float(init_coef)))
        self.body = mlp(latent_dim, hidden, ["tanh"] * len(hidden))
        self.shift = nn.Linear(hidden[-1], latent_dim)
        self.log_var = nn.Linear(hidden[-1], latent_dim)
        for layer in (self.shift, self.log_var):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def transition(self, z_prev: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``z_{n-1} (..., L) -> (loc, scale)`` of ``z_n``, each ``(..., L)``."""
        h = self.body(z_prev)
        scale = torch.exp(0.5 * self.log_var(h).clamp(-20.0, 10.0))
        return self.coef * z_prev + self.shift(h), scale

    def chain(self, starts: torch.Tensor) -> MarkovGaussian:
        return MarkovGaussian(self.transition, starts, self.latent_dim)

    def forward(self, batch: dict, cond: torch.Tensor | None = None) -> torch.Tensor:
        n = batch["audio"].shape[0]
        return pyro.sample("z", self.chain(chain_starts(batch, n, batch["audio"].device)))

    def closed_form(self, n_frames: int, cond: torch.Tensor | None = None):
        """Per-frame terms ``log p(z_n | z_{n-1})`` of one chain: ``z (..., N, L) -> (..., N)`` (the E-steps' fast
        path, tested equal to the traced program). Offered only while the program is this class's own (a subclass
        may change ``transition``: both paths call it)."""
        if type(self).forward is not MarkovPrior.forward or type(self).chain is not MarkovPrior.chain:
            return None
        return self.chain(chain_starts({}, n_frames, self.coef.device)).log_prob


__all__ = ["MarkovPrior", "MarkovGaussian", "chain_starts"]
