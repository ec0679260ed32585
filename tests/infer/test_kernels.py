"""Frame-wise MH kernel: analytic conjugate posterior, per-frame independence, cached aux, Pyro MCMC driver."""

import math

import pyro
import pytest
import torch

from pyro_minvae.infer.kernels import FrameMH, run_chain
from pyro_minvae.registry import KERNELS


def conjugate_potential(y, noise_var):
    """Prior N(0, I), likelihood y_n ~ N(z_n, noise_var I): t_n(z) = log N(z_n; 0, 1) + log N(y_n; z_n, s2)."""

    def potential(z):
        t = -0.5 * z.square().sum(-1) - 0.5 * (y - z).square().sum(-1) / noise_var
        return t, {"twice": 2 * z}

    return potential


def test_matches_analytic_posterior():
    n_half, dim, s2 = 1500, 2, 0.5
    y = torch.cat([torch.full((n_half, dim), 2.0), torch.full((n_half, dim), -1.0)])
    gen = torch.Generator().manual_seed(3)
    kernel = KERNELS.get("frame-mh")(conjugate_potential(y, s2), step_var=0.5, generator=gen)
    out = run_chain(kernel, torch.zeros_like(y), 300, 299)
    z = out.z[-1]  # one draw per independent frame chain
    post_var = 1.0 / (1.0 + 1.0 / s2)
    for group, yv in ((slice(0, n_half), 2.0), (slice(n_half, None), -1.0)):
        zg = z[group].reshape(-1)
        mean = post_var * yv / s2
        se = math.sqrt(post_var / zg.numel())
        assert abs(zg.mean().item() - mean) < 4 * se
        assert abs(zg.var().item() / post_var - 1) < 4 * math.sqrt(2 / zg.numel())
    assert 0.2 < out.accept_rate < 0.9
    torch.testing.assert_close(out.state.aux["twice"], 2 * out.state.z)  # cached aux follows accepted frames
    torch.testing.assert_close(out.aux["twice"], 2 * out.z)


def test_frames_accept_independently():
    def potential(z):
        t = torch.zeros(z.shape[0])
        t[0] = -1e6 * z[0].square().sum()  # frame 0: essentially never leaves 0
        return t, {}

    kernel = FrameMH(potential, step_var=0.01, generator=torch.Generator().manual_seed(0))
    out = run_chain(kernel, torch.zeros(4, 3), 50, 0)
    assert torch.equal(out.z[:, 0], torch.zeros(50, 3))
    assert (out.z[1:, 1:] != out.z[:-1, 1:]).all()  # flat frames move at every step
    assert out.accept_rate == pytest.approx(0.75)


def test_other_frames_unaffected_by_one_frames_target():
    y = torch.randn(6, 2)

    def make(shift):
        base = conjugate_potential(y, 1.0)

        def potential(z):
            t, aux = base(z)
            t = t.clone()
            t[0] = t[0] - shift * z[0].sum()
            return t, aux

        return potential

    runs = []
    for shift in (0.0, 5.0):
        kernel = FrameMH(make(shift), generator=torch.Generator().manual_seed(1))
        runs.append(run_chain(kernel, torch.zeros(6, 2), 30, 0).z)
    assert torch.equal(runs[0][:, 1:], runs[1][:, 1:])
    assert not torch.equal(runs[0][:, 0], runs[1][:, 0])


def test_pyro_mcmc_driver_gives_same_draws():
    y = torch.randn(20, 2)
    z0 = torch.zeros(20, 2)
    k1 = FrameMH(conjugate_potential(y, 1.0), generator=torch.Generator().manual_seed(5))
    ours = run_chain(k1, z0, 12, 4)
    k2 = FrameMH(conjugate_potential(y, 1.0), generator=torch.Generator().manual_seed(5))
    mcmc = pyro.infer.MCMC(k2, num_samples=8, warmup_steps=4, initial_params={"z": z0}, disable_progbar=True)
    mcmc.run()
    torch.testing.assert_close(mcmc.get_samples()["z"], ours.z)
    assert k2.accept_rate == pytest.approx(ours.accept_rate)


def test_setup_rescores_current_state():
    """A changed target (new noise/gain) is scored afresh: no stale cached log target."""
    calls = []

    def potential(z, offset):
        calls.append(offset)
        return -(z - offset).square().sum(-1), {}

    kernel = FrameMH(potential, generator=torch.Generator().manual_seed(0))
    out = run_chain(kernel, torch.zeros(3, 1), 2, 0, 0.0)
    run_chain(kernel, out.state.z, 2, 0, 1.0)
    assert calls == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]


def test_bad_arguments():
    with pytest.raises(ValueError, match="variance"):
        FrameMH(lambda z: (z.sum(-1), {}), step_var=0.0)
    kernel = FrameMH(lambda z: (z.sum(), {}))
    with pytest.raises(ValueError, match="per-frame"):
        run_chain(kernel, torch.zeros(3, 2), 2, 0)
    with pytest.raises(ValueError, match="burn_in"):
        run_chain(kernel, torch.zeros(3, 2), 2, 2)


def test_vem_gaussian_fits_conjugate_posterior():
    """The VEM E-step's per-frame Gaussian converges to the exact posterior of a conjugate model."""
    from pyro_minvae.infer.vem import FrameGaussian

    y = torch.tensor([[2.0, -1.0], [0.5, 3.0], [-2.0, 0.0]])
    s2 = 0.5
    base = conjugate_potential(y, s2)
    q = FrameGaussian(torch.zeros_like(y), init_scale=1.0, lr=0.01)
    gen = torch.Generator().manual_seed(0)
    for _ in range(10):
        q.refine(lambda z: base(z), 100, 64, gen)
    post_var = 1.0 / (1.0 + 1.0 / s2)
    torch.testing.assert_close(q.loc, post_var * y / s2, atol=0.05, rtol=0)
    torch.testing.assert_close(q.scale, torch.full_like(y, post_var**0.5), atol=0.05, rtol=0)
