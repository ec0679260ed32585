"""Several speech models enhancing together (``ModelEnsemble``): the estimate is the noisy STFT times the pooled
(geometric or arithmetic) mean of the members' own Wiener gains, with the gain rule applied once."""

import pytest
import torch

from pyro_minvae.errors import UserInputError
from pyro_minvae.infer.ensemble import RESTART_STARTS, ModelEnsemble, members, pool_gains
from pyro_minvae.infer.estep_common import make_generator, scheduled_config
from pyro_minvae.models.families import build_model
from pyro_minvae.registry import ESTEPS

F, N, D = 12, 9, 5
SMALL = {
    "mcem": dict(iterations=2, mh_steps=4, burn_in=2, final_mh_steps=4, final_burn_in=2),
    "fast": dict(iterations=2, restarts=2),
}


def _models():
    torch.manual_seed(1)
    a = build_model("avae", input_dims={"audio": F}, latent_dim=3).double()
    b = build_model("avae", input_dims={"audio": F}, latent_dim=2).double()
    c = build_model("avcvae", input_dims={"audio": F, "lips": D}, latent_dim=3).double()
    return a, b, c


def _inputs():
    g = torch.Generator().manual_seed(0)
    spec = torch.complex(torch.randn(F, N, generator=g), torch.randn(F, N, generator=g)).to(torch.complex128)
    return spec, {"lips": torch.randn(N, D, generator=g, dtype=torch.float64)}


def _gain(res, spec):
    return (res.estimate / spec).real


@pytest.mark.parametrize("method", ["mcem", "fast"])
def test_the_estimate_is_the_geometric_mean_of_the_members_gains(method):
    team, (spec, visual) = ModelEnsemble(_models()), _inputs()
    estep = ESTEPS.get(method)
    config = scheduled_config(estep.make_config(**SMALL[method]), team)  # each member alone, as the ensemble runs it
    singles = [estep(m, spec, visual, config, seed=4) for m in team.members]
    res = estep(team, spec, visual, seed=4, **SMALL[method])
    gains = torch.stack([_gain(s, spec) for s in singles])
    torch.testing.assert_close(_gain(res, spec), gains.log().mean(0).exp())
    assert torch.equal(res.W, singles[0].W) and res.responsibilities is None  # the first member's, no mixture
    assert res.init == " / ".join(s.init for s in singles) == "audio / audio / audio"  # every member's start
    assert not torch.allclose(gains[0], gains[1])  # the members do differ


def test_the_arithmetic_pool_is_the_mean_of_the_members_estimates():
    models, (spec, visual) = _models(), _inputs()
    fast = ESTEPS.get("fast")
    singles = [fast(m, spec, visual, seed=2, iterations=2, restart_starts=RESTART_STARTS) for m in models]
    res = fast(ModelEnsemble(models, pool="arithmetic"), spec, visual, seed=2, iterations=2)
    torch.testing.assert_close(res.estimate, torch.stack([s.estimate for s in singles]).mean(0))


def test_the_members_restart_from_the_ensembles_schedule_unless_the_call_sets_a_start():
    fast, mcem = ESTEPS.get("fast"), ESTEPS.get("mcem")
    team = ModelEnsemble(_models())
    schedule = scheduled_config(fast.make_config(), team)  # the fast E-step's defaults run 4 restarts
    assert schedule.restart_starts == RESTART_STARTS == (None, 0.25, 0.5, 1.0)
    assert scheduled_config(fast.make_config(restart_starts=[0.5]), team).restart_starts == (0.5,)  # the caller's
    assert scheduled_config(fast.make_config(noise_start=0.5), team).restart_starts is None  # every restart at 0.5
    assert scheduled_config(fast.make_config(restarts=1), team).restart_starts is None  # one run: as alone
    assert scheduled_config(mcem.make_config(), team).restart_starts is None  # MCEM runs once by default
    off_team = ModelEnsemble(_models(), restart_starts=None)
    assert scheduled_config(fast.make_config(), off_team) == fast.make_config()

    models, (spec, visual) = _models(), _inputs()
    off = fast(ModelEnsemble(models, restart_starts=None), spec, visual, seed=5, iterations=2, restarts=2)
    alone = [fast(m, spec, visual, seed=5, iterations=2, restarts=2) for m in models]  # each with its own schedule
    torch.testing.assert_close(_gain(off, spec), torch.stack([_gain(r, spec) for r in alone]).log().mean(0).exp())
    on = fast(ModelEnsemble(models), spec, visual, seed=5, iterations=2, restarts=2)
    assert not torch.allclose(on.estimate, off.estimate)  # AV-CVAE alone restarts from raw draws, in the team not


def test_the_gain_rule_acts_once_on_the_pooled_gain():
    models, (spec, visual) = _models(), _inputs()
    fast = ESTEPS.get("fast")
    plain = fast(ModelEnsemble(models), spec, visual, seed=3, iterations=2)
    ruled = fast(ModelEnsemble(models), spec, visual, seed=3, iterations=2, gain_floor=0.3, gain_exponent=0.5)
    torch.testing.assert_close(_gain(ruled, spec), _gain(plain, spec).pow(0.5).clamp_min(0.3))


def test_with_a_generator_the_ensemble_is_reproducible():
    team, (spec, visual) = ModelEnsemble(_models()), _inputs()
    fast = ESTEPS.get("fast")
    a = fast(team, spec, visual, generator=make_generator(7, "cpu"), iterations=2)
    b = fast(team, spec, visual, generator=make_generator(7, "cpu"), iterations=2)
    assert torch.equal(a.estimate, b.estimate)


def test_pool_gains():
    g = torch.tensor([[[0.25, 1.0, 0.5]], [[1.0, 1.0, 0.0]]])  # (M=2, F=1, N=3)
    torch.testing.assert_close(pool_gains(g), torch.tensor([[0.5, 1.0, 0.0]]))  # a member's 0 gives 0
    torch.testing.assert_close(pool_gains(g, "arithmetic"), torch.tensor([[0.625, 1.0, 0.25]]))
    one = torch.rand(4, 5, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(pool_gains(one.expand(3, 4, 5)), one)  # agreeing members: their gain
    many = torch.rand(3, 4, 5, generator=torch.Generator().manual_seed(1))
    assert (pool_gains(many) <= pool_gains(many, "arithmetic") + 1e-7).all()  # geometric <= arithmetic


def test_the_ensemble_shows_the_enhancement_path_what_its_members_read():
    a, b, c = _models()
    team = ModelEnsemble([a, c])
    assert team.modalities == ["audio", "lips"] and team.n_freq == F
    assert team.conditioner is c.conditioner and team.spec["kwargs"]["input_dims"] == {"audio": F, "lips": D}
    assert members(team) == (a, c) and members(a) == (a,)
    assert ModelEnsemble([a, b]).conditioner is None


def test_an_ensemble_needing_lips_refuses_to_run_without_them():
    from pyro_minvae.enhancement.visual import require_streams

    a, _, c = _models()
    with pytest.raises(UserInputError, match="this avcvae checkpoint needs the 'lips' stream"):
        require_streams(ModelEnsemble([a, c]), {}, "give it with --video")


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda a, b, c: ModelEnsemble([a]), "at least 2 models"),
        (lambda a, b, c: ModelEnsemble([a, ModelEnsemble([b, c])]), "not ensembles"),
        (lambda a, b, c: ModelEnsemble([a, build_model("avae", input_dims={"audio": F + 1})]), "frequency bins"),
        (lambda a, b, c: ModelEnsemble([a, b], pool="median"), "pool must be one of"),
        (
            lambda a, b, c: ModelEnsemble([c, build_model("avcvae", input_dims={"audio": F, "lips": D + 1})]),
            "'lips' stream at different sizes",
        ),
    ],
)
def test_models_that_cannot_enhance_together_are_refused(build, message):
    with pytest.raises(ValueError, match=message):
        build(*_models())
