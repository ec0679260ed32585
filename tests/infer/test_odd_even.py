"""The odd/even kernel against an exact Gaussian oracle: a stationary AR(1) prior over frames (coupled) with a
Gaussian per-frame likelihood has a Gaussian posterior with a tridiagonal precision, computed in closed form."""

import pytest
import torch

from pyro_minvae.contracts import IncompatibleComponentError, Prior
from pyro_minvae.infer.kernels import run_chain
from pyro_minvae.infer.mcem import mcem
from pyro_minvae.models.families import build_model
from pyro_minvae.registry import KERNELS

A, S2, N, REPS = 0.8, 0.5, 6, 1000  # AR coefficient, likelihood variance, frames per chain, independent chains
Y = torch.tensor([1.0, -0.5, 2.0, 0.0, 1.5, -1.0], dtype=torch.float64)


def markov_terms(z, length=None):
    """Per-frame log p(z_n | z_{n-1}) (N,) of stationary AR(1) chains of ``length`` frames laid end to end
    (default: one chain), summed over the latent dim; ``z`` ``(..., N, L)``."""
    n = z.shape[-2]
    first = (torch.arange(n) % (length or n)) == 0  # a chain starts: no predecessor, stationary variance 1
    prev = torch.cat([torch.zeros_like(z[..., :1, :]), z[..., :-1, :]], dim=-2)
    prev = torch.where(first.unsqueeze(-1), torch.zeros_like(prev), prev)
    var = torch.where(first, torch.tensor(1.0, dtype=z.dtype), torch.tensor(1 - A * A, dtype=z.dtype))
    return (-0.5 * (z - A * prev).square()).sum(-1) / var


def potential(z):
    lik = -0.5 * (z[..., 0] - Y.repeat(REPS)).square() / S2
    return lik + markov_terms(z, N), {"speech_log_var": z.clone()}


def oracle():
    q = torch.zeros(N, N, dtype=torch.float64)
    q[0, 0] = 1.0
    for n in range(1, N):  # prior precision of z_n | z_{n-1}
        b = torch.zeros(N, dtype=torch.float64)
        b[n], b[n - 1] = 1.0, -A
        q += torch.outer(b, b) / (1 - A * A)
    q += torch.eye(N, dtype=torch.float64) / S2
    cov = torch.linalg.inv(q)
    return cov @ (Y / S2), cov


def _moments(kernel_name):
    kernel = KERNELS.build(kernel_name, potential=potential, step_var=0.5, generator=torch.Generator().manual_seed(0))
    out = run_chain(kernel, torch.zeros(N * REPS, 1, dtype=torch.float64), 400, 100)
    x = out.z.reshape(-1, N)  # (samples * chains, N)
    assert torch.equal(out.aux["speech_log_var"], out.z)  # aux follows the accepted frames
    return x.mean(0), torch.cov(x.T), out.accept_rate


def test_odd_even_kernel_samples_the_exact_coupled_posterior():
    mean, cov = oracle()
    m, c, acc = _moments("odd-even-mh")
    assert 0.2 < acc < 0.95
    torch.testing.assert_close(m, mean, atol=0.015, rtol=0)  # measured: 0.005 (mean), 0.002 (covariance)
    torch.testing.assert_close(c, cov, atol=0.015, rtol=0)


def test_frame_wise_mh_is_not_exact_for_coupled_frames():
    """Why the odd/even kernel exists: frame-wise acceptance ignores each move's effect on the next frame."""
    mean, cov = oracle()
    m, c, _ = _moments("frame-mh")
    assert (m - mean).abs().max() > 0.2 and (c - cov).abs().max() > 0.05  # measured: 0.46 and 0.12


class AR1Prior(Prior):
    """A dynamical prior for enhancement only: per-frame terms log p(z_n | z_{n-1}) as its closed form."""

    frame_factorised = False

    def __init__(self, latent_dim=4):
        super().__init__()
        self.latent_dim = latent_dim

    def forward(self, batch, cond=None):  # pragma: no cover - enhancement scores the closed form only
        raise NotImplementedError

    def closed_form(self, n_frames, cond=None):
        return markov_terms


def test_mcem_enhances_a_coupled_prior_with_the_exact_kernel_only():
    model = build_model("avae", input_dims={"audio": 17}, latent_dim=4)
    model.prior = AR1Prior()
    spec = torch.randn(17, 9, dtype=torch.complex64, generator=torch.Generator().manual_seed(0))
    res = mcem(
        model, spec, iterations=2, mh_steps=4, burn_in=1, final_mh_steps=4, final_burn_in=1, kernel="odd-even-mh"
    )
    assert torch.isfinite(torch.view_as_real(res.estimate)).all() and res.latents.shape == (9, 4)
    with pytest.raises(IncompatibleComponentError, match="couples frames"):
        mcem(model, spec, iterations=1)
