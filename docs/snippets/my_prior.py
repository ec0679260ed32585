"""A new prior: heavy-tailed z ~ StudentT(df, 0, 1) per latent dimension (pyro-minvae --plugin my_prior.py ...)."""

import pyro
import pyro.distributions as dist
import torch

from pyro_minvae.contracts import Prior
from pyro_minvae.registry import PRIORS


@PRIORS.register("student-t")
class StudentTPrior(Prior):
    """No closed form needed: enhancement scores ``forward``'s traced program."""

    def __init__(self, latent_dim: int = 32, df: float = 4.0):
        super().__init__()
        self.latent_dim, self.df = latent_dim, df

    def forward(self, batch: dict, cond=None) -> torch.Tensor:
        zero = batch["audio"].new_zeros(batch["audio"].shape[0], self.latent_dim)  # (B, L)
        return pyro.sample("z", dist.StudentT(self.df, zero, torch.ones_like(zero)).to_event(1))
