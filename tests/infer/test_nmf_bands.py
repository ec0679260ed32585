"""NMF spectral smoothing (w_band): W made of raised-cosine bands. The basis is a partition of unity, both M-steps
stay monotone and keep W in the bands' span, the band-weight update is the IS-NMF majorise-minimise step of the
linear model V = B A H (its oracle, written out here), w_band = 1 is the paper's update, and a comb finer than the
bands cannot be drawn by W (what the regulariser is for)."""

import pytest
import torch

from pyro_minvae.noise import NMFNoise, NMFState
from pyro_minvae.noise.nmf import band_basis, band_count


def _data(seed, n=23, f=40, r=3):
    gen = torch.Generator().manual_seed(seed)
    power = torch.rand(n, f, generator=gen, dtype=torch.float64) ** 3 * 10
    speech_var = torch.rand(r, n, f, generator=gen, dtype=torch.float64) ** 2
    return gen, power, speech_var


@pytest.mark.parametrize("n_freq, width", [(513, 16), (40, 3), (7, 8), (9, 1)])
def test_bands_are_a_partition_of_unity(n_freq, width):
    basis = band_basis(n_freq, width, dtype=torch.float64)
    assert basis.shape == (n_freq, band_count(n_freq, width))
    assert basis[-1].nonzero().numel() >= 1 and (width == 1 or basis[:, -1].argmax() >= n_freq - 1 - width)
    assert (basis >= 0).all()
    torch.testing.assert_close(basis.sum(1), torch.ones(n_freq, dtype=torch.float64))
    if width == 1:
        assert torch.equal(basis, torch.eye(n_freq, dtype=torch.float64))


@pytest.mark.parametrize("w_band, h_block", [(4, 1), (8, 5)])
def test_both_costs_are_monotone_and_w_stays_in_the_bands(w_band, h_block):
    gen, power, speech_var = _data(0)
    nmf = NMFNoise(rank=4, h_block=h_block, w_band=w_band)
    state = nmf.init(power.shape[1], power.shape[0], gen, dtype=torch.float64)
    basis = band_basis(power.shape[1], w_band, dtype=torch.float64)

    def in_span(st):
        return st.bands.shape == (basis.shape[1], 4) and torch.allclose(st.W, basis @ st.bands)

    assert in_span(state)
    prev = nmf.sampled_objective(state, power, speech_var)
    for _ in range(20):
        state = nmf.update_sampled(state, power, speech_var)
        cost = nmf.sampled_objective(state, power, speech_var)
        assert cost <= prev + 1e-12 * abs(prev) and in_span(state)
        prev = cost
    prev = nmf.expected_power_objective(state, power)
    for _ in range(10):
        state = nmf.update_expected_power(state, power, exponent=0.5)
        cost = nmf.expected_power_objective(state, power)
        assert cost <= prev + 1e-9 * abs(prev) and in_span(state)
        prev = cost


def test_band_update_is_the_mm_step_of_the_linear_model():
    """With V = B A H and Vx = V + g s2 (one sample), the MM step of A is A * sqrt(B^T (P Vx^-2 H^T) / B^T (Vx^-1
    H^T)) (Fevotte & Idier 2011, exponent 1/2 for IS), written here from the definitions."""
    gen, power, speech_var = _data(1, n=9, f=13, r=1)
    nmf = NMFNoise(rank=2, w_band=4)
    st = nmf.init(13, 9, gen, dtype=torch.float64)
    st = st._replace(g=torch.rand(9, generator=gen, dtype=torch.float64) + 0.5)
    new = nmf.update_sampled(st, power, speech_var, update_gain=False)
    basis = band_basis(13, 4, dtype=torch.float64)
    vx = (basis @ st.bands @ st.H).T + st.g.unsqueeze(-1) * speech_var[0]  # (N, F)
    num = basis.T @ (power / vx.square()).T @ st.H.T
    den = basis.T @ vx.reciprocal().T @ st.H.T
    torch.testing.assert_close(new.bands, st.bands * (num / den).sqrt())
    torch.testing.assert_close(new.W, basis @ new.bands)


def test_band_of_one_is_the_paper_update():
    gen, power, speech_var = _data(2)
    a = NMFNoise(rank=3).init(40, 23, torch.Generator().manual_seed(4), dtype=torch.float64)
    b = NMFNoise(rank=3, w_band=1).init(40, 23, torch.Generator().manual_seed(4), dtype=torch.float64)
    assert b.bands is None and all(torch.equal(x, y) for x, y in zip(a[:3], b[:3]))
    ua = NMFNoise(rank=3).update_sampled(a, power, speech_var)
    ub = NMFNoise(rank=3, w_band=1).update_sampled(b, power, speech_var)
    assert ub.bands is None and all(torch.equal(x, y) for x, y in zip(ua[:3], ub[:3]))


def test_smooth_w_cannot_take_a_harmonic_comb():
    """Noise power = a flat floor plus a comb every 5 bins (a voiced speech harmonic pattern). A free rank-1 W fits
    the comb; W made of 16-bin bands keeps its ripple far below the comb's, and still fits the floor's level."""
    f, n = 160, 30
    comb = torch.zeros(f, dtype=torch.float64)
    comb[::5] = 20.0
    power = (1.0 + comb).expand(n, f).contiguous()
    zero = torch.zeros(1, n, f, dtype=torch.float64)
    ripple = {}
    for w_band in (1, 16):
        nmf = NMFNoise(rank=1, w_band=w_band)
        st = nmf.init(f, n, torch.Generator().manual_seed(0), dtype=torch.float64)
        for _ in range(200):
            st = nmf.update_sampled(st, power, zero + 1e-9, update_gain=False)
        v = st.variance[0]
        ripple[w_band] = float(v[::5].mean() / v[2::5].mean())
    assert ripple[1] > 10.0 and ripple[16] < 1.2


def test_bad_band():
    with pytest.raises(ValueError, match="w_band"):
        NMFNoise(w_band=0)
    banded = NMFState(torch.ones(4, 2), torch.ones(2, 3), torch.ones(3), torch.ones(2, 2))
    with pytest.raises(ValueError, match=r"w_band=1\) needs none"):
        NMFNoise(rank=2).validate(banded, torch.ones(3, 4))
    with pytest.raises(ValueError, match=r"has no band weights; .* needs band weights \(2, 2\)"):
        NMFNoise(rank=2, w_band=3).validate(banded._replace(bands=None), torch.ones(3, 4))
    with pytest.raises(ValueError, match=r"band weights \(5, 2\); .* needs band weights \(2, 2\)"):
        NMFNoise(rank=2, w_band=3).validate(banded._replace(bands=torch.ones(5, 2)), torch.ones(3, 4))
    NMFNoise(rank=2, w_band=3).validate(banded, torch.ones(3, 4))  # 4 bins, bands at 0 and 3
