"""Decoders: latent ``(B, L)`` (+ optional conditioning ``(B, C)``) -> speech log-variance ``(B, F)``."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..contracts import Decoder
from ..registry import DECODERS
from .encoders import mlp


@DECODERS.register("mlp")
class LogVarianceDecoder(Decoder):
    """The paper's decoder: z (32) -> 128 tanh -> 513 log-variance (exp gives sigma^2(z)).

    With ``cond_dim > 0`` the conditioning vector is concatenated to z (AV-CVAE's decoder).
    """

    def __init__(
        self,
        latent_dim: int = 32,
        out_dim: int = 513,
        hidden: Sequence[int] = (128,),
        activations: Sequence[str] | None = None,
        cond_dim: int = 0,
    ):
        super().__init__()
        activations = list(activations) if activations is not None else ["tanh"] * len(hidden)
        self.latent_dim = latent_dim
        self.out_dim = out_dim
        self.cond_dim = cond_dim
        self.body = mlp(latent_dim + cond_dim, hidden, activations)
        self.out = nn.Linear(hidden[-1] if len(hidden) else latent_dim + cond_dim, out_dim)

    def bind(self, cond: torch.Tensor | None):
        """``decode(z)`` equal to ``self(z, cond)`` for a fixed ``cond`` ``(B, C)``, cheaper when called many times.

        Used by the E-step potentials, which decode thousands of proposals per recording. The layers' ``forward``
        methods are called directly (no module-call dispatch: a few microseconds per layer and step; hooks on the
        sub-layers are therefore not run). With conditioning and a linear first layer, the conditioning's share
        ``W_c cond + b`` is computed once and each call costs only ``W_z z``.
        """
        layers = list(self.body) + [self.out]
        offset = w_z = None
        if self.cond_dim:
            if cond is None or cond.shape[-1] != self.cond_dim:
                raise ValueError(f"decoder expects conditioning (..., {self.cond_dim})")
            if not isinstance(layers[0], nn.Linear) or len(self.body) == 0:
                return lambda z: self(z, cond)
            first = layers.pop(0)
            w_z = first.weight[:, : self.latent_dim]
            offset = torch.nn.functional.linear(cond, first.weight[:, self.latent_dim :], first.bias)  # (B, H)
        steps = [layer.forward for layer in layers]

        def decode(z: torch.Tensor) -> torch.Tensor:
            if z.shape[-1] != self.latent_dim:
                raise ValueError(f"decoder expects latents (..., {self.latent_dim}); got {tuple(z.shape)}")
            h = z
            if offset is not None:
                h = torch.addmm(offset, z, w_z.t()) if z.dim() == 2 else z @ w_z.t() + offset
            for step in steps:
                h = step(h)
            return h

        return decode

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if z.shape[-1] != self.latent_dim:
            raise ValueError(f"decoder expects latents (..., {self.latent_dim}); got {tuple(z.shape)}")
        if self.cond_dim:
            if cond is None or cond.shape[-1] != self.cond_dim:
                raise ValueError(f"decoder expects conditioning (..., {self.cond_dim})")
            batch_shape = torch.broadcast_shapes(z.shape[:-1], cond.shape[:-1])
            z = torch.cat([z.expand(*batch_shape, z.shape[-1]), cond.expand(*batch_shape, cond.shape[-1])], dim=-1)
        return self.out(self.body(z))
