"""MIN-VAE's mixture of inference networks.

q(z, c | s, v) = q(c) q(z | c, ·) where component m is encoder m's Gaussian. The discrete site ``"c"`` is marked
for parallel enumeration, so ``TraceEnum_ELBO`` sums it exactly (never ``MixtureSameFamily``: it has no rsample).
q(c) per frame comes from ``batch["responsibilities"]`` ``(B, M)`` when present (the paper's closed form,
recomputed per epoch), else it is uniform; :class:`pyro_minvae.infer.objectives.MarginalMixtureELBO` instead uses
the optimal q(c) of each batch in closed form.

During training, ``audio_noise_fraction`` of the frames get uniform noise of amplitude ``audio_noise_scale``
added to the *audio encoder's input only* (the reconstruction target stays clean), so the audio encoder cannot
win every frame (the paper's recipe).
"""

from __future__ import annotations

from typing import Sequence

import pyro
import pyro.distributions as dist
import torch
from pyro.ops.indexing import Vindex
from torch import nn

from ..contracts import Guide
from ..registry import GUIDES


@GUIDES.register("mixture")
class MixtureGuide(Guide):
    """Mixture of M amortised Gaussian encoders, one per modality (order = mixture components)."""

    def __init__(
        self,
        encoders: Sequence[nn.Module],
        audio_noise_fraction: float = 0.5,
        audio_noise_scale: float = 50.0,
        noisy_modality: str = "audio",
    ):
        super().__init__()
        if len(encoders) < 2:
            raise ValueError("a mixture guide needs at least 2 encoders")
        self.encoders = nn.ModuleList(encoders)
        self.audio_noise_fraction = audio_noise_fraction
        self.audio_noise_scale = audio_noise_scale
        self.noisy_modality = noisy_modality

    @property
    def modalities(self) -> list[str]:
        return [e.modality for e in self.encoders]

    def _encoder_input(self, enc: nn.Module, batch: dict) -> torch.Tensor:
        x = batch[enc.modality]
        if self.training and enc.modality == self.noisy_modality and self.audio_noise_fraction > 0:
            mask = torch.rand(x.shape[0], 1, device=x.device) < self.audio_noise_fraction
            x = x + mask * self.audio_noise_scale * torch.rand_like(x)
        return x

    def posteriors(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Stacked encoder outputs: ``(loc, scale)`` each ``(M, B, L)``."""
        outs = [enc(self._encoder_input(enc, batch)) for enc in self.encoders]
        return torch.stack([o[0] for o in outs]), torch.stack([o[1] for o in outs])

    def forward(self, batch: dict, cond: torch.Tensor | None = None) -> torch.Tensor:
        locs, scales = self.posteriors(batch)
        m, b = locs.shape[0], locs.shape[1]
        probs = batch.get("responsibilities")
        if probs is None:
            probs = locs.new_full((b, m), 1.0 / m)
        elif probs.shape != (b, m):
            raise ValueError(f"responsibilities must be (B={b}, M={m}); got {tuple(probs.shape)}")
        c = pyro.sample("c", dist.Categorical(probs=probs), infer={"enumerate": "parallel"})
        frames = torch.arange(b, device=locs.device)
        loc = Vindex(locs)[c, frames, :]
        scale = Vindex(scales)[c, frames, :]
        return pyro.sample("z", dist.Normal(loc, scale).to_event(1))

    def init_loc(self, batch: dict, cond: torch.Tensor | None = None, prefer: str | None = None) -> torch.Tensor:
        """Posterior mean of the encoder for modality ``prefer`` (default: the first non-audio one present)."""
        names = self.modalities
        if prefer is None:
            prefer = next((n for n in names if n != self.noisy_modality and n in batch), names[0])
        if prefer not in names:
            raise ValueError(f"no encoder for modality {prefer!r}; this model has {', '.join(names)}")
        enc = self.encoders[names.index(prefer)]
        return enc(batch[enc.modality])[0]
