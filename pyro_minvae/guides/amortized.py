"""Amortised Gaussian guides (registered in ``GUIDES``).

A guide is a torch module called inside the guide's ``frames`` plate as ``guide(batch, cond)``; it samples
``"z"`` ``(B, L)`` (and ``"c"`` for mixtures). ``init_loc(batch, cond, prefer)`` returns the posterior mean
``(B, L)`` used to initialise enhancement.
"""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from torch import nn

from ..contracts import Guide
from ..registry import GUIDES


@GUIDES.register("gaussian")
class GaussianGuide(Guide):
    """q(z | one modality [, cond]) = N(mu(x), diag sigma^2(x)) from a single encoder (A-VAE, V-VAE, AV-CVAE)."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    @property
    def modalities(self) -> list[str]:
        return [self.encoder.modality]

    def posterior(self, batch: dict, cond: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(batch[self.encoder.modality], cond)

    def forward(self, batch: dict, cond: torch.Tensor | None = None) -> torch.Tensor:
        loc, scale = self.posterior(batch, cond)
        return pyro.sample("z", dist.Normal(loc, scale).to_event(1))

    def init_loc(self, batch: dict, cond: torch.Tensor | None = None, prefer: str | None = None) -> torch.Tensor:
        if prefer is not None and prefer != self.encoder.modality:
            raise ValueError(
                f"this guide has only the {self.encoder.modality!r} encoder; cannot initialise from {prefer!r}"
            )
        return self.posterior(batch, cond)[0]
