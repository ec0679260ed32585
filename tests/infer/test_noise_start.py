"""The NMF's start relative to the recording (option ``noise_start``): level, scaling, defaults, refusals."""

import math

import pytest
import torch

from pyro_minvae.infer import estep_common as ec
from pyro_minvae.infer.mcem import MCEMConfig
from pyro_minvae.infer.presets import preset_options
from pyro_minvae.infer.vem import VEMConfig
from pyro_minvae.models.families import build_model
from pyro_minvae.noise import NMFNoise

F, N = 17, 12


def _spec(seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    tilt = torch.logspace(1, -2, F).unsqueeze(-1)  # a coloured recording: 30 dB from low to high bins
    return torch.complex(torch.randn(F, N, generator=g), torch.randn(F, N, generator=g)) * tilt.sqrt() * scale


def _start(spec, **options):
    options.setdefault("noise_start", 0.5)
    torch.manual_seed(0)
    model = build_model("avae", input_dims={"audio": F}, latent_dim=3)
    return ec.start_estep(model, spec, None, VEMConfig(**options), seed=4)


def test_the_start_is_a_fraction_of_each_bins_median_power():
    spec = _spec()
    start = _start(spec, noise_start=0.5, h_block=1)
    median = spec.abs().square().T.median(0).values  # (F,) lower median over frames
    torch.testing.assert_close(start.state.variance.mean(0), 0.5 * median)
    paper = _start(spec, noise_start=None, h_block=1)
    raw = NMFNoise(10).init(F, N, ec.make_generator(4, spec.device))
    assert torch.equal(paper.state.W, raw.W) and torch.equal(paper.state.H, raw.H)
    assert torch.equal(start.state.H, paper.state.H)  # only W's rows are scaled


def test_the_start_follows_the_recordings_level():
    """Louder by 20 dB: the start is 100x larger in every bin (the paper's start stays where it was)."""
    quiet, loud = _start(_spec()), _start(_spec(scale=10.0))
    torch.testing.assert_close(loud.state.variance, 100.0 * quiet.state.variance)
    paper_quiet, paper_loud = _start(_spec(), noise_start=None), _start(_spec(scale=10.0), noise_start=None)
    assert torch.equal(paper_quiet.state.variance, paper_loud.state.variance)


def test_defaults_and_the_paper_preset():
    assert MCEMConfig().noise_start is None and VEMConfig().noise_start is None  # measured, not adopted
    assert MCEMConfig(**preset_options("paper", "mcem")).noise_start is None
    assert VEMConfig(**preset_options("paper", "fast")).noise_start is None
    assert VEMConfig(noise_start=None).noise_start_level(torch.ones(N, F)) is None


@pytest.mark.parametrize("bad", [0, -1.0, math.nan, math.inf, True, "abc"])
def test_bad_values_are_refused_in_one_line(bad):
    with pytest.raises(ValueError, match="noise_start must be > 0 or None") as info:
        MCEMConfig(noise_start=bad)
    assert "\n" not in str(info.value)


def test_batched_mcem_starts_each_utterance_from_its_own_level():
    from pyro_minvae.infer.batched import mcem_batch
    from pyro_minvae.infer.mcem import mcem

    torch.manual_seed(0)
    model = build_model("avae", input_dims={"audio": F}, latent_dim=3).double()
    specs = [_spec(1).to(torch.complex128), 10.0 * _spec(2).to(torch.complex128)[:, :9]]
    options = dict(iterations=2, mh_steps=4, burn_in=2, final_mh_steps=4, final_burn_in=2, noise_start=0.5)
    alone = [mcem(model, s, seed=k, **options) for k, s in enumerate(specs)]
    for b, a in zip(mcem_batch(model, specs, seeds=[0, 1], **options), alone):
        torch.testing.assert_close(b.estimate, a.estimate, rtol=1e-9, atol=1e-12)
