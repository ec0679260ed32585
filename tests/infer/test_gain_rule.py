"""The final gain rule: identity by default (the paper's Wiener estimate), floor and exponent as documented,
threaded through both MCEM loops and the fast E-step."""

import pytest
import torch

from pyro_minvae.infer.gain_rule import GainRule
from pyro_minvae.infer.mcem import mcem
from pyro_minvae.infer.vem import vem
from pyro_minvae.models.families import build_model

F, N = 12, 9


def _spec(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.complex(
        torch.randn(F, N, generator=g, dtype=torch.float64), torch.randn(F, N, generator=g, dtype=torch.float64)
    )


def _model(family="avae"):
    torch.manual_seed(1)
    dims = {"audio": F, "lips": 10} if family == "minvae" else {"audio": F}
    return build_model(family, input_dims=dims, latent_dim=3).double()


def test_rule_oracle():
    g = torch.tensor([0.0, 0.01, 0.25, 0.81, 1.0])
    assert torch.equal(GainRule()(g), g)
    torch.testing.assert_close(GainRule(exponent=0.5)(g), torch.tensor([0.0, 0.1, 0.5, 0.9, 1.0]))
    torch.testing.assert_close(GainRule(floor=0.2)(g), torch.tensor([0.2, 0.2, 0.25, 0.81, 1.0]))
    torch.testing.assert_close(GainRule(exponent=2.0, floor=0.1)(g), torch.tensor([0.1, 0.1, 0.1, 0.6561, 1.0]))
    for bad in (dict(exponent=0.0), dict(floor=1.0), dict(floor=-0.1)):
        with pytest.raises(ValueError):
            GainRule(**bad)


@pytest.mark.parametrize(
    "run",
    [
        lambda m, x, **k: mcem(m, x, iterations=2, mh_steps=4, burn_in=2, final_mh_steps=4, final_burn_in=2, **k),
        lambda m, x, **k: mcem(m, x, loop="minvae", iterations=2, mh_steps=4, burn_in=2, **k),
        lambda m, x, **k: vem(m, x, iterations=2, grad_steps=1, final_samples=2, **k),
    ],
    ids=["classic", "minvae-loop", "fast"],
)
def test_rule_reshapes_the_estimate_of_every_estep(run):
    model, x = _model("minvae"), _spec()
    base = run(model, x, seed=3)
    same = run(model, x, seed=3, gain_floor=0.0, gain_exponent=1.0)
    assert torch.equal(base.estimate, same.estimate)
    gain = (base.estimate / x).real
    floored = run(model, x, seed=3, gain_floor=0.5)
    torch.testing.assert_close((floored.estimate / x).real, gain.clamp_min(0.5))
    squared = run(model, x, seed=3, gain_exponent=2.0)
    torch.testing.assert_close((squared.estimate / x).real, gain.square())
