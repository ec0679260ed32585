"""Mode-jumping MH: on a bimodal per-frame target with modes 12 standard deviations apart, chains started in
one mode end up in each mode with the target's weights (the plain random walk never leaves its start)."""

import math

import pytest
import torch

from pyro_minvae.infer.kernels import run_chain
from pyro_minvae.infer.mcem import mcem
from pyro_minvae.models.families import build_model
from pyro_minvae.registry import KERNELS

MEANS = torch.tensor([[-6.0, 0.0], [6.0, 0.0]])
WEIGHTS = torch.tensor([0.3, 0.7])


def bimodal(z):
    """t_n(z) = log sum_m w_m N(z_n; mu_m, I), per frame."""
    d = (z.unsqueeze(-2) - MEANS).square().sum(-1)  # (N, M)
    return torch.logsumexp(WEIGHTS.log() - 0.5 * d, -1), {"z": z}


@pytest.mark.parametrize("jump_every", [2, 5])
def test_jumps_recover_the_mode_weights(jump_every):
    n = 4000
    gen = torch.Generator().manual_seed(0)
    kernel = KERNELS.build(
        "frame-mh-jump", potential=bimodal, step_var=0.5, generator=gen, jump_every=jump_every, means=MEANS
    )
    out = run_chain(kernel, MEANS[0].expand(n, 2).clone(), 200, 199)
    z = out.z[-1]
    right = z[:, 0] > 0
    share = right.float().mean().item()
    assert abs(share - 0.7) < 4 * math.sqrt(0.21 / n)
    for mode, mu in ((right, MEANS[1]), (~right, MEANS[0])):  # within a mode: N(mu, I)
        zm = z[mode]
        assert (zm.mean(0) - mu).abs().max() < 4 / math.sqrt(len(zm))
        assert (zm.var(0) - 1).abs().max() < 4 * math.sqrt(2 / len(zm))
    torch.testing.assert_close(out.aux["z"], out.z)  # cached aux follows jumped frames too


def test_the_random_walk_alone_stays_in_its_mode():
    gen = torch.Generator().manual_seed(0)
    kernel = KERNELS.build("frame-mh", potential=bimodal, step_var=0.5, generator=gen)
    out = run_chain(kernel, MEANS[0].expand(500, 2).clone(), 200, 199)
    assert (out.z[-1][:, 0] > 0).sum() == 0


def test_a_jump_whose_reverse_is_impossible_is_rejected():
    """Means 0, 1, 10 and a flat target (every allowed jump is accepted). From 0.9 (nearest 1) both jumps land
    nearest their new mean. From 5.4 (nearest 1) the jump to 0 lands on 4.4, whose nearest mean is 1, not 0: the
    reverse jump could not be proposed, so it is rejected; the jump to 10 (landing on 14.4) is fine."""
    means = torch.tensor([[0.0], [1.0], [10.0]])
    flat = lambda z: (torch.zeros(z.shape[0]), {})  # noqa: E731
    kernel = KERNELS.build("frame-mh-jump", potential=flat, generator=torch.Generator().manual_seed(1), means=means)

    def landings(start):
        z = kernel.jump(kernel.score(torch.full((2000, 1), start))).z
        return set(torch.round(z.flatten() * 10).int().tolist())

    assert landings(0.9) == {-1, 99}
    assert landings(5.4) == {54, 144}


def test_jump_every_must_leave_room_for_the_walk():
    with pytest.raises(ValueError, match="jump_every must be >= 2"):
        KERNELS.build("frame-mh-jump", potential=bimodal, jump_every=1, means=MEANS)


def test_needs_a_mixture_prior():
    model = build_model("avae", input_dims={"audio": 33})
    spec = torch.randn(33, 12, dtype=torch.complex64)
    with pytest.raises(ValueError, match="frame-mh-jump needs a mixture prior"):
        mcem(model, spec, iterations=1, kernel="frame-mh-jump")


@pytest.mark.parametrize("loop", ["classic", "minvae"])
def test_minvae_mcem_runs_with_jumps(loop):
    model = build_model("minvae", input_dims={"audio": 33, "lips": 16 * 16})
    gen = torch.Generator().manual_seed(0)
    spec = torch.randn(33, 12, dtype=torch.complex64, generator=gen)
    lips = torch.rand(12, 16 * 16, generator=gen)
    res = mcem(
        model, spec, {"lips": lips}, loop=loop, iterations=2, kernel="frame-mh-jump", kernel_options={"jump_every": 2}
    )
    again = mcem(
        model, spec, {"lips": lips}, loop=loop, iterations=2, kernel="frame-mh-jump", kernel_options={"jump_every": 2}
    )
    assert torch.isfinite(res.estimate).all()
    torch.testing.assert_close(res.estimate, again.estimate)
