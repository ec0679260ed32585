"""Priors: the cached-normaliser Gaussian is torch's Normal density, under expand and broadcasting too."""

import pyro.distributions as dist
import torch

from pyro_minvae.models.priors import DiagonalNormal


def test_diagonal_normal_matches_torch_normal():
    gen = torch.Generator().manual_seed(0)
    loc = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    scale = torch.rand(5, 3, generator=gen, dtype=torch.float64) * 3 + 0.05
    value = torch.randn(7, 5, 3, generator=gen, dtype=torch.float64) * 2
    ours, ref = DiagonalNormal(loc, scale), dist.Normal(loc, scale)
    torch.testing.assert_close(ours.log_prob(value), ref.log_prob(value), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ours.log_prob(value), ours.log_prob(value))  # cached terms reused, unchanged
    wide = ours.expand((2, 5, 3))
    assert type(wide) is DiagonalNormal
    torch.testing.assert_close(wide.log_prob(value[:2]), ref.log_prob(value[:2]), rtol=1e-12, atol=1e-12)


def test_diagonal_normal_gradients_match():
    loc = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)
    log_scale = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)
    value = torch.randn(4, 2, dtype=torch.float64)
    grads = []
    for cls in (DiagonalNormal, dist.Normal):
        lp = cls(loc, log_scale.exp()).to_event(1).log_prob(value).sum()
        grads.append(torch.autograd.grad(lp, (loc, log_scale)))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)
