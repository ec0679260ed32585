"""E-step restarts (option ``restarts``): the estimate is the mean of independent runs' estimates."""

import pytest
import torch

from pyro_minvae.infer.batched import batch_refusal
from pyro_minvae.infer.estep_common import make_generator
from pyro_minvae.infer.mcem import MCEMConfig
from pyro_minvae.models.families import build_model
from pyro_minvae.registry import ESTEPS

F, N = 12, 9
SMALL = {
    "mcem": dict(iterations=2, mh_steps=4, burn_in=2, final_mh_steps=4, final_burn_in=2),
    "fast": dict(iterations=2),
}


def _setup():
    torch.manual_seed(1)
    model = build_model("avae", input_dims={"audio": F}, latent_dim=3).double()
    model.restart_starts = None  # every restart from raw draws; A-VAE's own schedule: test_restart_schedule.py
    g = torch.Generator().manual_seed(0)
    spec = torch.complex(torch.randn(F, N, generator=g), torch.randn(F, N, generator=g)).to(torch.complex128)
    return model, spec


@pytest.mark.parametrize("method", ["mcem", "fast"])
def test_restarts_average_independent_runs(method):
    model, spec = _setup()
    estep = ESTEPS.get(method)
    singles = [estep(model, spec, seed=5 + r, restarts=1, **SMALL[method]) for r in range(3)]
    res = estep(model, spec, seed=5, restarts=3, **SMALL[method])
    torch.testing.assert_close(res.estimate, torch.stack([s.estimate for s in singles]).mean(0))
    assert torch.equal(res.W, singles[0].W) and torch.equal(res.latents, singles[0].latents)  # the first run's
    assert not torch.allclose(singles[0].estimate, singles[1].estimate)  # the runs do differ


def test_with_a_generator_the_first_run_is_the_single_run_and_the_rest_follow_it():
    model, spec = _setup()
    fast = ESTEPS.get("fast")
    single = fast(model, spec, generator=make_generator(3, "cpu"), iterations=2, restarts=1)
    a = fast(model, spec, generator=make_generator(3, "cpu"), iterations=2, restarts=2)
    b = fast(model, spec, generator=make_generator(3, "cpu"), iterations=2, restarts=2)
    assert torch.equal(a.estimate, b.estimate) and torch.equal(a.W, single.W)
    assert not torch.allclose(a.estimate, single.estimate)


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "4"])
def test_bad_restarts_are_refused_in_one_line(bad):
    with pytest.raises(ValueError, match="restarts must be an integer >= 1") as info:
        MCEMConfig(restarts=bad)
    assert "\n" not in str(info.value)


def test_batched_mcem_refuses_restarts_so_records_run_one_by_one():
    assert batch_refusal("mcem", {"restarts": 1}) is None
    assert "restarts=1 only" in batch_refusal("mcem", {"restarts": 2})
    assert "restart_starts=None only" in batch_refusal("mcem", {"restart_starts": [0.5]})


def test_each_restart_can_start_its_noise_model_elsewhere():
    model, spec = _setup()
    fast = ESTEPS.get("fast")
    starts = (None, 0.25, 0.5)
    singles = [fast(model, spec, seed=2 + r, iterations=2, restarts=1, noise_start=starts[r]) for r in range(3)]
    res = fast(model, spec, seed=2, iterations=2, restarts=3, restart_starts=list(starts))  # a JSON list is taken
    torch.testing.assert_close(res.estimate, torch.stack([s.estimate for s in singles]).mean(0))
    one = fast(model, spec, seed=2, iterations=2, restarts=1, restart_starts=[0.25])  # one run, its start honoured
    assert torch.equal(one.estimate, fast(model, spec, seed=2, iterations=2, restarts=1, noise_start=0.25).estimate)


@pytest.mark.parametrize("bad", [[], [0.5, 0], ["a"], 0.5, [True]])
def test_bad_restart_starts_are_refused_in_one_line(bad):
    with pytest.raises(ValueError, match="restart_starts must be a non-empty list") as info:
        MCEMConfig(restart_starts=bad)
    assert "\n" not in str(info.value)


def test_restart_starts_are_part_of_a_methods_definition():
    from pyro_minvae.infer.vem import VEMConfig

    assert "restart_starts" not in VEMConfig().plain_options()  # None: nothing to show
    assert VEMConfig(restart_starts=[None, 0.5]).plain_options()["restart_starts"] == (None, 0.5)


def _minvae():
    torch.manual_seed(1)
    model = build_model("minvae", input_dims={"audio": F, "lips": 5}, latent_dim=3).double()
    model.restart_starts = None
    lips = torch.randn(N, 5, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    return model, {"lips": lips}


def test_each_restart_can_start_its_latents_from_another_encoder():
    model, visual = _minvae()
    _, spec = _setup()
    fast = ESTEPS.get("fast")
    inits = (None, "audio", None)  # None: the model's choice, the lips for MIN-VAE
    singles = [fast(model, spec, visual, seed=2 + r, iterations=2, restarts=1, init=inits[r]) for r in range(3)]
    assert [s.init for s in singles] == ["lips", "audio", "lips"]
    res = fast(model, spec, visual, seed=2, iterations=2, restarts=3, restart_inits=list(inits))
    torch.testing.assert_close(res.estimate, torch.stack([s.estimate for s in singles]).mean(0))
    assert not torch.allclose(singles[0].estimate, singles[1].estimate)  # the audio start does differ
    one = fast(model, spec, visual, seed=2, iterations=2, restarts=1, restart_inits=["audio"])  # one run, honoured
    audio = fast(model, spec, visual, seed=2, iterations=2, restarts=1, init="audio")
    assert one.init == "audio" and torch.equal(one.estimate, audio.estimate)
    same = fast(model, spec, visual, seed=2, iterations=2, restarts=3, restart_inits=[None])
    assert torch.equal(same.estimate, fast(model, spec, visual, seed=2, iterations=2, restarts=3).estimate)


@pytest.mark.parametrize("bad", [[], ["audio", ""], [3], "audio", [True]])
def test_bad_restart_inits_are_refused_in_one_line(bad):
    with pytest.raises(ValueError, match="restart_inits must be a non-empty list") as info:
        MCEMConfig(restart_inits=bad)
    assert "\n" not in str(info.value)


def test_batched_mcem_refuses_restart_inits():
    assert "restart_inits=None only" in batch_refusal("mcem", {"restart_inits": ["audio"]})
