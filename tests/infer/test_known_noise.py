"""Enhancement with a known noise model: ``noise=`` starts the E-step from a given NMF state and
``fix_noise=True`` keeps it. The state comes back unchanged, the estimate follows the noise level (nothing
passes under an overwhelming noise, everything under a negligible one), and the misuses fail with one line."""

import pytest
import torch

from pyro_minvae.infer import enhance  # noqa: F401  (registers the E-steps)
from pyro_minvae.models.families import build_model
from pyro_minvae.noise import NMFNoise
from pyro_minvae.registry import ESTEPS

F, N = 24, 12
FAMILIES = {"avae": ({"audio": F}, None), "minvae": ({"audio": F, "lips": 6}, {"lips": 6})}


def _setup(family):
    torch.manual_seed(0)
    dims, vis_dims = FAMILIES[family]
    model = build_model(family, input_dims=dims, latent_dim=3).double()
    g = torch.Generator().manual_seed(1)
    x = torch.complex(
        torch.randn(F, N, generator=g, dtype=torch.float64), torch.randn(F, N, generator=g, dtype=torch.float64)
    )
    visual = None if vis_dims is None else {k: torch.randn(N, d, dtype=torch.float64) for k, d in vis_dims.items()}
    return model, x, visual


def _noise(level):
    state = NMFNoise(rank=2).init(F, N, torch.Generator().manual_seed(3), dtype=torch.float64)
    return state._replace(W=state.W * level)


CASES = [("fast", "avae", {}), ("mcem", "avae", {}), ("mcem", "minvae", {"loop": "minvae"})]


@pytest.mark.parametrize("estep, family, extra", CASES)
def test_a_known_noise_stays_as_given(estep, family, extra):
    model, x, visual = _setup(family)
    given = _noise(1.0)
    res = ESTEPS.get(estep)(model, x, visual, iterations=2, seed=0, noise=given, fix_noise=True, **extra)
    assert all(torch.equal(a, b) for a, b in zip(res.nmf[:3], given[:3]))
    free = ESTEPS.get(estep)(model, x, visual, iterations=2, seed=0, noise=given, **extra)
    assert not torch.equal(free.nmf.W, given.W)  # without fix_noise it is only the starting point


@pytest.mark.parametrize("estep, family, extra", CASES)
def test_the_estimate_follows_the_known_noise_level(estep, family, extra):
    model, x, visual = _setup(family)

    def out(level):
        res = ESTEPS.get(estep)(model, x, visual, iterations=2, seed=0, noise=_noise(level), fix_noise=True, **extra)
        return float(res.estimate.abs().square().sum() / x.abs().square().sum())

    assert out(1e9) < 1e-3 and out(1e-9) > 0.999


def test_misuse_is_one_line():
    model, x, _ = _setup("avae")
    with pytest.raises(ValueError, match="pass noise=NMFState"):
        ESTEPS.get("fast")(model, x, None, iterations=1, fix_noise=True)
    wrong = NMFNoise(rank=2).init(F, N + 1, torch.Generator().manual_seed(0), dtype=torch.float64)
    with pytest.raises(ValueError, match="do not match power"):
        ESTEPS.get("fast")(model, x, None, iterations=1, noise=wrong)
    banded = NMFNoise(rank=2, w_band=8).init(F, N, torch.Generator().manual_seed(0), dtype=torch.float64)
    with pytest.raises(ValueError, match=r"w_band=1\) needs none"):  # the noise model and the options disagree
        ESTEPS.get("fast")(model, x, None, iterations=1, noise=banded)
    ESTEPS.get("fast")(model, x, None, iterations=1, noise=banded, w_band=8)
    with pytest.raises(ValueError, match="unknown option.*update_noise"):  # not an option: an argument of the call
        ESTEPS.get("fast")(model, x, None, iterations=1, update_noise=False)
