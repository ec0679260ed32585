"""Stop bands left out of the E-step (infer/recording_channel.py, option band_floor_db): the bins follow the
input's long-term spectrum; the likelihood of the traced model and of the potentials leave them out alike; the NMF
updates stay monotone on the observed bins and leave the others' W rows alone; a full-band recording is enhanced
exactly as before; the batched MCEM enhances a band-limited utterance exactly as alone."""

import math

import pytest
import torch

from pyro_minvae.infer.batched import mcem_batch
from pyro_minvae.infer.estep_config import EStepConfig
from pyro_minvae.infer.mcem import MCEMConfig, mcem
from pyro_minvae.infer.potentials import LikelihoodPotential
from pyro_minvae.infer.recording_channel import observed_bins
from pyro_minvae.infer.vem import vem
from pyro_minvae.models.families import build_model
from pyro_minvae.models.likelihood import AdditiveNoise, observation
from pyro_minvae.models.scoring import frame_log_probs
from pyro_minvae.noise.nmf import NMFNoise

F = 16
SMALL = dict(iterations=2, mh_steps=4, burn_in=2, final_mh_steps=3, final_burn_in=1, rank=2)


def _spec(n_frames: int = 40, band: slice | None = None, seed: int = 0, stop_db: float = 60.0) -> torch.Tensor:
    """White complex noise ``(F, N)``; outside ``band`` attenuated by ``stop_db`` dB."""
    g = torch.Generator().manual_seed(seed)
    re, im = (torch.randn(F, n_frames, generator=g, dtype=torch.float64) for _ in range(2))
    x = torch.complex(re, im)
    if band is not None:
        gain = torch.full((F, 1), 10 ** (-stop_db / 20), dtype=torch.float64)
        gain[band] = 1.0
        x = x * gain
    return x


def _model():
    torch.manual_seed(1)
    return build_model("avae", input_dims={"audio": F}, latent_dim=3).double().eval()


def test_the_observed_bins_are_the_band():
    assert observed_bins(_spec(), 40.0) is None
    assert observed_bins(torch.zeros(F, 10, dtype=torch.complex128), 40.0) is None  # silence: nothing to tell
    bins = observed_bins(_spec(band=slice(2, 9), stop_db=60.0), 40.0)
    assert bins.tolist() == [False] * 2 + [True] * 7 + [False] * 7
    assert observed_bins(_spec(band=slice(2, 9), stop_db=20.0), 40.0) is None  # a 20 dB dip is a coloration


@pytest.mark.parametrize("floor", [0, -3, math.nan, math.inf, True, "40"])
def test_bad_floors_are_refused(floor):
    with pytest.raises(ValueError, match="band_floor_db must be"):
        EStepConfig(band_floor_db=floor)


def test_left_out_bins_count_nowhere_in_the_likelihood_traced_or_direct():
    model, spec = _model(), _spec(band=slice(0, 8))
    bins = observed_bins(spec, 40.0)
    power = spec.abs().square().transpose(0, 1)
    batch = {"audio": power}
    noise = AdditiveNoise(torch.full_like(power, 0.3), torch.full((power.shape[0],), 1.5, dtype=power.dtype), bins)
    z = torch.randn(power.shape[0], 3, dtype=torch.float64)
    direct, _ = LikelihoodPotential(model, batch)(z, noise)
    traced = frame_log_probs(model.model, batch, {"z": z}, noise)
    torch.testing.assert_close(direct, traced["x"] + traced["z"])
    full = observation(model.decoder(z), noise._replace(observed=None)).log_prob(power)
    torch.testing.assert_close(traced["x"], full[:, bins].sum(-1))


def test_nmf_updates_are_monotone_on_the_observed_bins_and_leave_the_others_alone():
    spec = _spec(band=slice(0, 10))
    power = spec.abs().square().transpose(0, 1)
    bins = observed_bins(spec, 40.0)
    nmf = NMFNoise(rank=3, observed=bins)
    state = nmf.init(F, power.shape[0], torch.Generator().manual_seed(0), dtype=torch.float64)
    speech = torch.rand(2, *power.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    costs = [nmf.sampled_objective(state, power, speech)]
    w0 = state.W.clone()
    for _ in range(20):
        state = nmf.update_sampled(state, power, speech)
        costs.append(nmf.sampled_objective(state, power, speech))
    assert all(b <= a + 1e-10 for a, b in zip(costs, costs[1:])) and costs[-1] < costs[0]
    assert torch.equal(state.W[~bins], w0[~bins]) and not torch.equal(state.W[bins], w0[bins])
    # the cost is the full-band cost restricted to the observed bins
    plain = NMFNoise(rank=3)
    restricted = plain.sampled_objective(state._replace(W=state.W[bins]), power[:, bins], speech[..., bins])
    torch.testing.assert_close(costs[-1] * F, restricted * int(bins.sum()))


@pytest.mark.parametrize("estep, options", [(mcem, SMALL), (vem, {"iterations": 2, "rank": 2})])
def test_a_full_band_recording_is_enhanced_as_before(estep, options):
    model, spec = _model(), _spec()
    a = estep(model, spec, seed=3, band_floor_db=None, **options)
    b = estep(model, spec, seed=3, band_floor_db=40.0, **options)
    assert torch.equal(a.estimate, b.estimate)


def test_batched_mcem_enhances_a_band_limited_utterance_as_alone():
    model = _model()
    specs = [_spec(30, seed=1), _spec(25, band=slice(0, 8), seed=2), _spec(20, seed=3)]
    options = {**SMALL, "band_floor_db": 40.0}
    alone = [mcem(model, s, seed=k, **options) for k, s in enumerate(specs)]
    batched = mcem_batch(model, specs, seeds=[0, 1, 2], **options)
    for b, a in zip(batched, alone):
        torch.testing.assert_close(b.estimate, a.estimate, rtol=1e-9, atol=1e-12)
    plain = mcem(model, specs[1], seed=1, **{**SMALL, "band_floor_db": None})
    assert not torch.allclose(plain.estimate, alone[1].estimate)


def test_the_default_leaves_stop_bands_out_and_the_paper_preset_scores_every_bin():
    from pyro_minvae.infer.presets import preset_options

    spec = _spec(band=slice(0, 8))
    assert MCEMConfig().observed_bins(spec) is not None
    assert MCEMConfig(**preset_options("paper", "mcem")).observed_bins(spec) is None


def test_the_published_variational_loop_scores_every_bin():
    spec = _spec(band=slice(0, 8))
    assert MCEMConfig(band_floor_db=40.0, loop="minvae").observed_bins(spec) is None
    assert MCEMConfig(band_floor_db=40.0).observed_bins(spec) is not None
