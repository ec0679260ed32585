"""A family's restart schedule (``SpeechVAE.restart_starts``): A-VAE and MIN-VAE restart the fast E-step from the
NMF starts chosen for them on validation, AV-CVAE and the V-VAE from raw draws; a caller's start wins, one run is
unchanged, and the schedule is part of what ``evaluate`` and ``enhance`` record of a method."""

import json

import pytest
import torch

from pyro_minvae.infer.estep_common import RESTART_STARTS, scheduled_config
from pyro_minvae.models.families import build_model
from pyro_minvae.registry import ESTEPS

F, N, D = 12, 9, 5


def _model(family: str, **kwargs):
    torch.manual_seed(1)
    dims = {"audio": F, "lips": D}
    return build_model(family, input_dims=dims, latent_dim=3, **kwargs).double()


def _spec():
    g = torch.Generator().manual_seed(0)
    return torch.complex(torch.randn(F, N, generator=g), torch.randn(F, N, generator=g)).to(torch.complex128)


def test_each_family_carries_the_schedule_validation_chose_for_it():
    assert RESTART_STARTS == (None, 0.25, 0.5, 1.0)
    assert _model("avae").restart_starts == RESTART_STARTS
    assert _model("minvae").restart_starts == RESTART_STARTS
    assert _model("avcvae").restart_starts is None  # failed the rule alone (docs/algorithms.md)
    assert _model("vae", encoder="lips").restart_starts is None  # never measured


@pytest.mark.parametrize("family", ["avae", "minvae"])
def test_the_fast_e_step_restarts_from_the_familys_schedule_unless_the_call_sets_a_start(family):
    model, spec, fast = _model(family), _spec(), ESTEPS.get("fast")
    visual = {"lips": torch.randn(N, D, generator=torch.Generator().manual_seed(3), dtype=torch.float64)}

    def run(**options):
        return fast(model, spec, visual, seed=4, iterations=2, **options).estimate

    scheduled = run()
    torch.testing.assert_close(scheduled, run(restart_starts=list(RESTART_STARTS)), rtol=0, atol=0)
    assert not torch.allclose(scheduled, run(restart_starts=[None]))  # raw draws every restart: another estimate
    torch.testing.assert_close(run(noise_start=0.5), run(restart_starts=[0.5]), rtol=0, atol=0)  # caller's start
    torch.testing.assert_close(run(restarts=1), run(restarts=1, restart_starts=[None]), rtol=0, atol=0)  # one run


def test_a_family_without_a_schedule_and_mcem_run_as_before():
    fast, mcem, spec = ESTEPS.get("fast"), ESTEPS.get("mcem"), _spec()
    visual = {"lips": torch.randn(N, D, generator=torch.Generator().manual_seed(3), dtype=torch.float64)}
    avcvae = _model("avcvae")
    torch.testing.assert_close(
        fast(avcvae, spec, visual, seed=4, iterations=2).estimate,
        fast(avcvae, spec, visual, seed=4, iterations=2, restart_starts=[None]).estimate,
        rtol=0,
        atol=0,
    )
    config = mcem.make_config()
    assert scheduled_config(config, _model("avae")) is config  # MCEM runs once by default: nothing to schedule


def test_evaluate_and_enhance_record_the_schedule_a_method_runs(tmp_path):
    from pyro_minvae.checkpoint import save_checkpoint
    from pyro_minvae.enhancement.batch import BatchSettings, run_stamp
    from pyro_minvae.evaluation.vae_methods import CheckpointMethod
    from pyro_minvae.features import FeatureConfig

    cfg = FeatureConfig()
    for family in ("avae", "avcvae"):
        model = build_model(family, input_dims={"audio": cfg.n_freq, "lips": D}, latent_dim=3)
        save_checkpoint(tmp_path / f"{family}.pt", model, cfg)
    avae, avcvae = str(tmp_path / "avae.pt"), str(tmp_path / "avcvae.pt")
    assert CheckpointMethod(avae, "fast").effective_options()["restart_starts"] == RESTART_STARTS
    assert "restart_starts" not in CheckpointMethod(avcvae, "fast").effective_options()
    assert "restart_starts" not in CheckpointMethod("absent.pt", "mcem").effective_options()  # nothing loaded
    own = CheckpointMethod(avae, "fast", restart_starts=[0.5]).effective_options()["restart_starts"]
    assert own == (0.5,)
    stamp = json.loads(json.dumps(run_stamp(avae, BatchSettings(method="fast"))))
    assert stamp["config"]["restart_starts"] == [None, 0.25, 0.5, 1.0]
    assert "restart_starts" not in run_stamp(avcvae, BatchSettings(method="fast"))["config"]
