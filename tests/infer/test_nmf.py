"""NMF noise model: every shipped update rule never increases its objective (random data, float64)."""

import pytest
import torch

from pyro_minvae.models.likelihood import AdditiveNoise
from pyro_minvae.noise import NMFNoise, NMFState
from pyro_minvae.noise.nmf import band_basis


def _data(seed, n=40, f=30, r=5):
    gen = torch.Generator().manual_seed(seed)
    power = torch.rand(n, f, generator=gen, dtype=torch.float64) ** 3 * 10
    speech_var = torch.rand(r, n, f, generator=gen, dtype=torch.float64) ** 2
    return gen, power, speech_var


@pytest.mark.parametrize("exponent", [0.5, 1.0])
@pytest.mark.parametrize("update_gain", [True, False])
def test_sampled_updates_monotone(exponent, update_gain):
    for seed in range(3):
        gen, power, speech_var = _data(seed)
        nmf = NMFNoise(rank=4)
        state = nmf.init(power.shape[1], power.shape[0], gen, dtype=torch.float64)
        prev = nmf.sampled_objective(state, power, speech_var)
        first = prev
        for _ in range(30):
            state = nmf.update_sampled(state, power, speech_var, exponent=exponent, update_gain=update_gain)
            cost = nmf.sampled_objective(state, power, speech_var)
            assert cost <= prev + 1e-12 * abs(prev)
            prev = cost
        assert cost < first  # it actually moves


@pytest.mark.parametrize("exponent", [0.5, 1.0])
def test_expected_power_updates_monotone_and_normalised(exponent):
    for seed in range(3):
        gen, power, _ = _data(seed)
        nmf = NMFNoise(rank=4)
        state = nmf.init(power.shape[1], power.shape[0], gen, dtype=torch.float64)
        prev = nmf.expected_power_objective(state, power)
        first = prev
        for _ in range(30):
            state = nmf.update_expected_power(state, power, exponent=exponent)
            cost = nmf.expected_power_objective(state, power)
            assert cost <= prev + 1e-12 * abs(prev)
            prev = cost
            torch.testing.assert_close(state.W.sum(0), torch.ones(4, dtype=torch.float64))
        assert cost < first


def test_single_update_matches_formula():
    """One W update with exponent 1/2 against an explicit (F, N) double loop-free formula in the paper layout."""
    gen, power, sv = _data(0, n=6, f=5, r=3)
    nmf = NMFNoise(rank=2)
    s = nmf.init(5, 6, gen, dtype=torch.float64)
    s = NMFState(s.W, s.H, torch.rand(6, generator=gen, dtype=torch.float64) + 0.5)
    new = nmf.update_sampled(s, power, sv, exponent=0.5, update_gain=False)
    v = s.W @ s.H  # (F, N)
    vx = v.unsqueeze(0) + s.g * sv.transpose(1, 2)  # (R, F, N)
    p = power.T
    w = s.W * (((p * (vx**-2).sum(0)) @ s.H.T) / ((vx**-1).sum(0) @ s.H.T)) ** 0.5
    torch.testing.assert_close(new.W, w)


def test_init_and_additive():
    nmf = NMFNoise(rank=3)
    gen = torch.Generator().manual_seed(1)
    s = nmf.init(7, 5, gen)
    assert s.W.shape == (7, 3) and s.H.shape == (3, 5) and s.g.shape == (5,)
    assert (s.W > 0).all() and (s.H > 0).all() and (s.g == 1).all()
    noise = nmf.additive(s)
    assert isinstance(noise, AdditiveNoise)
    assert noise.variance.shape == (5, 7) and noise.gain.shape == (5,)
    torch.testing.assert_close(noise.variance, (s.W @ s.H).T)
    s2 = nmf.init(7, 5, torch.Generator().manual_seed(1))
    assert torch.equal(s.W, s2.W) and torch.equal(s.H, s2.H)


@pytest.mark.parametrize("h_block", [1, 4])
def test_init_at_a_level_per_bin(h_block):
    """The start's mean noise variance over frames is the requested level in every bin; the draws (and H) are the
    raw start's, only W's rows are scaled."""
    level = torch.tensor([1e-6, 0.5, 3.0, 40.0, 1e3, 2.0, 0.0])  # a 0 (digital silence) is floored
    nmf = NMFNoise(rank=3, h_block=h_block)
    raw = nmf.init(7, 9, torch.Generator().manual_seed(1))
    s = nmf.init(7, 9, torch.Generator().manual_seed(1), level=level)
    torch.testing.assert_close(s.variance.mean(0)[:-1], level[:-1])
    assert 0 < s.variance.mean(0)[-1] < 1e-5
    assert torch.equal(s.H, raw.H) and torch.equal(s.g, raw.g)
    torch.testing.assert_close(s.W / raw.W, (s.W / raw.W)[:, :1].expand(-1, 3))  # one factor per row
    with pytest.raises(ValueError, match=r"level must be \(7,\)"):
        nmf.init(7, 9, level=level[:3])


def test_init_at_a_level_with_bands():
    """Band weights are scaled by each band's mean ratio: W stays made of bands, and the level holds up to the
    bands' smoothing (within a factor 2 of a flat level here; the raw draws are ~K/4 = 0.5)."""
    nmf = NMFNoise(rank=2, w_band=4)
    s = nmf.init(17, 6, torch.Generator().manual_seed(0), level=torch.full((17,), 50.0))
    torch.testing.assert_close(s.W, band_basis(17, 4) @ s.bands)
    ratio = s.variance.mean(0) / 50.0
    assert float(ratio.min()) > 0.5 and float(ratio.max()) < 2.0


def test_bad_arguments():
    nmf = NMFNoise(rank=2)
    s = nmf.init(4, 3)
    with pytest.raises(ValueError, match="exponent"):
        nmf.update_sampled(s, torch.rand(3, 4), torch.rand(2, 3, 4), exponent=2.0)
    with pytest.raises(ValueError, match="speech_var"):
        nmf.update_sampled(s, torch.rand(3, 4), torch.rand(3, 4))
    with pytest.raises(ValueError, match="rank"):
        NMFNoise(rank=0)
