"""Registries: lookup, duplicate names, and the contracts checked at registration (pyro_minvae.contracts)."""

import pytest
import torch

import pyro_minvae.infer  # noqa: F401  (registers kernels and E-steps)
import pyro_minvae.models  # noqa: F401  (registers priors, decoders, guides, encoders)
from pyro_minvae.contracts import Decoder, EStep, EStepKernel, Guide, MixturePrior, Prior
from pyro_minvae.registry import CONDITIONERS, DECODERS, ENCODERS, ESTEPS, GUIDES, KERNELS, PRIORS, Registry


def test_register_and_build():
    reg = Registry("widget")

    @reg.register("box")
    class Box:
        def __init__(self, size=1):
            self.size = size

    assert reg.build("box", size=3).size == 3
    assert "box" in reg and reg.names() == ["box"] and Box.registry_name == "box"


def test_unknown_name_lists_valid_ones():
    reg = Registry("widget")
    reg.register("a", dict)
    reg.register("b", dict)
    with pytest.raises(ValueError, match="unknown widget 'c'; valid widgets: a, b"):
        reg.get("c")


def test_duplicate_registration_rejected():
    reg = Registry("widget")
    reg.register("a", dict)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a", list)


def test_shipped_components_satisfy_their_contracts():
    for reg, contract in ((PRIORS, Prior), (DECODERS, Decoder), (GUIDES, Guide), (KERNELS, EStepKernel)):
        for name in reg:
            assert issubclass(reg.get(name), contract), (reg.kind, name)
    for name in ESTEPS:
        assert isinstance(ESTEPS.get(name), EStep)
    assert issubclass(PRIORS.get("mixture"), MixturePrior)


def test_encoders_hold_modalities_and_conditioners_apart():
    assert {"audio", "lips", "landmarks"} <= set(ENCODERS.names())
    assert "embedding" not in ENCODERS and "mlp" not in ENCODERS
    assert CONDITIONERS.names() == ["embedding", "normalised-embedding"]


def test_contract_names_the_missing_method():
    class HalfMixture(MixturePrior):  # forward and log_weights, but no component_log_prob / component_means
        def forward(self, batch, cond=None):
            return torch.zeros(())

        def log_weights(self):
            return torch.zeros(2)

    with pytest.raises(TypeError, match="does not implement component_log_prob, component_means"):
        PRIORS.register("_half", HalfMixture)
    assert "_half" not in PRIORS


def test_contract_requires_the_base_class():
    class NotAPrior(torch.nn.Module):
        def forward(self, batch, cond=None):
            return torch.zeros(())

    with pytest.raises(TypeError, match="must subclass pyro_minvae.contracts.Prior"):
        PRIORS.register("_not_a_prior", NotAPrior)
    with pytest.raises(TypeError, match="must subclass pyro_minvae.contracts.EStepKernel"):
        KERNELS.register("_not_a_kernel", dict)
    with pytest.raises(TypeError, match="instance of pyro_minvae.contracts.EStep"):
        ESTEPS.register("_fn", lambda model, spec: None)


def test_capabilities_the_core_asks_for():
    from pyro_minvae.models.families import build_model

    minvae = build_model("minvae", input_dims={"audio": 9, "lips": 4})
    assert minvae.is_mixture and not minvae.prior.weights_learned
    assert build_model("minvae", input_dims={"audio": 9, "lips": 4}, learn_weights=True).prior.weights_learned
    assert [e.modality for e in minvae.guide_net.encoder_modules()] == ["audio", "lips"]
    avae = build_model("avae", input_dims={"audio": 9})
    assert not avae.is_mixture and [e.modality for e in avae.guide_net.encoder_modules()] == ["audio"]
    assert minvae.prior.component_means().shape == (2, 32)


@pytest.mark.parametrize(
    "option,value,kind",
    [("--method", "nope", "E-step method"), ("--kernel", "nope", "kernel"), ("--loop", "nope", "MCEM loop")],
)
def test_cli_choices_come_from_the_registries(option, value, kind):
    from click.testing import CliRunner

    from pyro_minvae.cli.main import cli

    res = CliRunner().invoke(cli, ["enhance", "-c", "x.pt", option, value, "a.wav", "-o", "b.wav"])
    assert res.exit_code == 2
    assert res.output.strip() == (
        f"error: {option} {value}: unknown {kind} {value!r}; valid {kind}s: "
        f"{', '.join(n for n in _registry(option).names())} (a plugin registers more: "
        "pyro-minvae --plugin FILE.py ...)"
    )


def _registry(option):
    from pyro_minvae.infer.mcem import MCEM_LOOPS

    return {"--method": ESTEPS, "--kernel": KERNELS, "--loop": MCEM_LOOPS}[option]
