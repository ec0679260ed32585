"""The speech model, written once, and its guide: a facade composing injected components.

Generative model, per STFT frame n (plate ``"frames"``, dim -1, size B)::

    [c_n ~ Categorical(pi)]                    mixture priors only (enumerated)
    z_n ~ prior(· | c_n, cond_n)               (B, L)
    x_n ~ PowerSpectrum(log(g_n sigma^2(z_n, cond_n) + v_noise_n))   (B, F), observed

``batch["audio"]`` is the observed power ``(B, F)``: the clean speech power when training, the noisy mixture
power when enhancing (with ``noise`` given), or the posterior expected speech power in MIN-VAE's variational
E-step. Visual modalities are ``batch[name]`` ``(B, D_name)``. The same :meth:`model` runs under
``trace``/``replay``/``condition`` for training (SVI), enhancement (MCMC) and scoring.
"""

from __future__ import annotations

from typing import Sequence

import pyro
import pyro.distributions as dist
import torch
from torch import nn

from ..contracts import ExplicitPrior, IncompatibleComponentError, MixturePrior
from .likelihood import AdditiveNoise, observation


class SpeechVAE(nn.Module):
    """Prior + decoder + guide (+ an optional conditioning network shared by all three).

    ``spec`` records how the model was built (family name and constructor arguments) for checkpoints.
    ``restart_starts``: the NMF start of each restart the E-steps run for this model when the call sets none
    (:func:`~pyro_minvae.infer.estep_common.scheduled_config`); ``None`` (the default): the E-step's own. A family
    sets it where validation chose it (A-VAE and MIN-VAE: docs/algorithms.md); it is not saved in checkpoints.
    """

    restart_starts: tuple | None = None

    def __init__(
        self,
        prior: nn.Module,
        decoder: nn.Module,
        guide: nn.Module,
        conditioner: nn.Module | None = None,
        name: str = "speech_vae",
    ):
        super().__init__()
        self.prior = prior
        self.decoder = decoder
        self.guide_net = guide
        self.conditioner = conditioner
        self.name = name
        self.spec: dict = {}

    # ---- shapes -------------------------------------------------------------------------------------------------
    @property
    def latent_dim(self) -> int:
        return self.decoder.latent_dim

    @property
    def n_freq(self) -> int:
        return self.decoder.out_dim

    @property
    def modalities(self) -> list[str]:
        """Batch keys the model and guide read (always ``"audio"`` first)."""
        names = ["audio"] + [m for m in self.guide_net.modalities if m != "audio"]
        if self.conditioner is not None and self.conditioner.modality not in names:
            names.append(self.conditioner.modality)
        return names

    @property
    def is_mixture(self) -> bool:
        """The prior is a :class:`~pyro_minvae.contracts.MixturePrior` (MIN-VAE)."""
        return isinstance(self.prior, MixturePrior)

    def validate_batch(self, batch: dict) -> int:
        """Check shapes at the boundary; returns B."""
        if "audio" not in batch:
            raise ValueError("batch needs 'audio' (B, F) power spectra")
        a = batch["audio"]
        if a.dim() != 2 or a.shape[-1] != self.n_freq:
            raise ValueError(f"batch['audio'] must be (B, {self.n_freq}); got {tuple(a.shape)}")
        b = a.shape[0]
        for key, val in batch.items():
            if key != "responsibilities" and torch.is_tensor(val) and val.shape[0] != b:
                raise ValueError(f"batch[{key!r}] has {val.shape[0]} frames, batch['audio'] has {b}")
        return b

    def condition(self, batch: dict) -> torch.Tensor | None:
        """The conditioning tensor ``(B, C)`` (AV-CVAE's visual embedding) or ``None``."""
        if self.conditioner is None:
            return None
        return self.conditioner(batch[self.conditioner.modality])

    def speech_log_var(self, z: torch.Tensor, batch: dict) -> torch.Tensor:
        """Decoder output log sigma^2(z): ``z (..., B, L) -> (..., B, F)``."""
        return self.decoder(z, self.condition(batch))

    # ---- Pyro programs ------------------------------------------------------------------------------------------
    def model(self, batch: dict, noise: AdditiveNoise | None = None) -> None:
        """The generative model (see module docstring). ``noise``: NMF noise variance and gain at enhancement."""
        pyro.module(self.name, self)
        b = self.validate_batch(batch)
        cond = self.condition(batch)
        with pyro.plate("frames", b, dim=-1):
            z = self.prior(batch, cond)
            pyro.sample("x", observation(self.decoder(z, cond), noise).to_event(1), obs=batch["audio"])

    def guide(self, batch: dict, noise: AdditiveNoise | None = None) -> None:
        """Amortised posterior over the model's latent sites."""
        pyro.module(self.name, self)
        b = self.validate_batch(batch)
        cond = self.condition(batch)
        with pyro.plate("frames", b, dim=-1):
            self.guide_net(batch, cond)

    def prior_guide(self, batch: dict, noise: AdditiveNoise | None = None) -> None:
        """A guide that draws z from the (conditional) prior: AV-CVAE's extra reconstruction term."""
        if not isinstance(self.prior, ExplicitPrior):
            raise IncompatibleComponentError(
                f"the prior guide draws from an explicit prior distribution; "
                f"{type(self.prior).__name__} is not an ExplicitPrior"
            )
        pyro.module(self.name, self)
        b = self.validate_batch(batch)
        cond = self.condition(batch)
        with pyro.plate("frames", b, dim=-1):
            pyro.sample("z", self.prior.distribution(b, cond))

    # ---- enhancement helpers ------------------------------------------------------------------------------------
    @torch.no_grad()
    def init_latents(self, batch: dict, prefer: str | None = None) -> torch.Tensor:
        """Initial latents ``(B, L)`` for enhancement: the posterior mean of the preferred encoder."""
        self.validate_batch(batch)
        return self.guide_net.init_loc(batch, self.condition(batch), prefer)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, modalities={self.modalities}"


def as_batch(audio: torch.Tensor, visual: dict | None = None, modalities: Sequence[str] | None = None) -> dict:
    """Build a model batch from ``audio`` ``(B, F)`` power and visual features ``{name: (B, D)}``."""
    batch = {"audio": audio}
    for k, v in (visual or {}).items():
        if modalities is None or k in modalities:
            batch[k] = v
    return batch


__all__ = ["SpeechVAE", "as_batch", "AdditiveNoise", "dist"]
