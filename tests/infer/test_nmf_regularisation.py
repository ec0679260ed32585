"""NMF temporal tying (h_block): H shared by blocks of frames, both M-steps stay monotone, B = 1 is the paper's
update, and the tied update equals the free update of the block-summed problem (its oracle)."""

import pytest
import torch

from pyro_minvae.noise import NMFNoise, NMFState


def _data(seed, n=23, f=17, r=3):
    gen = torch.Generator().manual_seed(seed)
    power = torch.rand(n, f, generator=gen, dtype=torch.float64) ** 3 * 10
    speech_var = torch.rand(r, n, f, generator=gen, dtype=torch.float64) ** 2
    return gen, power, speech_var


def _same(a, b):
    """Two NMF states hold equal tensors (and both lack, or both have, band weights)."""
    return all(x is y is None or (x is not None and y is not None and torch.equal(x, y)) for x, y in zip(a, b))


def _tied(h, b):
    blocks = [h[:, i : i + b] for i in range(0, h.shape[1], b)]
    return all(torch.equal(x, x[:, :1].expand_as(x)) for x in blocks)


@pytest.mark.parametrize("b", [2, 5])
def test_tied_h_stays_tied_and_both_costs_are_monotone(b):
    gen, power, speech_var = _data(0)
    nmf = NMFNoise(rank=4, h_block=b)
    state = nmf.init(power.shape[1], power.shape[0], gen, dtype=torch.float64)
    assert _tied(state.H, b)
    prev = nmf.sampled_objective(state, power, speech_var)
    for _ in range(20):
        state = nmf.update_sampled(state, power, speech_var)
        cost = nmf.sampled_objective(state, power, speech_var)
        assert cost <= prev + 1e-12 * abs(prev) and _tied(state.H, b)
        prev = cost
    prev = nmf.expected_power_objective(state, power)
    for _ in range(10):
        state = nmf.update_expected_power(state, power, exponent=0.5)
        cost = nmf.expected_power_objective(state, power)
        assert cost <= prev + 1e-9 * abs(prev) and _tied(state.H, b)
        prev = cost


def test_block_of_one_is_the_paper_update():
    gen, power, speech_var = _data(1)
    a = NMFNoise(rank=3).init(power.shape[1], power.shape[0], torch.Generator().manual_seed(4), dtype=torch.float64)
    b = NMFNoise(rank=3, h_block=1).init(
        power.shape[1], power.shape[0], torch.Generator().manual_seed(4), dtype=torch.float64
    )
    assert _same(a, b)
    ua = NMFNoise(rank=3).update_sampled(a, power, speech_var)
    ub = NMFNoise(rank=3, h_block=1).update_sampled(b, power, speech_var)
    assert _same(ua, ub)


def test_tied_update_equals_the_free_update_on_stacked_blocks():
    """With g = 1 and B frames per block, the tied H update equals a free H update of one 'frame' whose F*B bins
    are the block's bins side by side, with W repeated B times (the oracle of the shared parameter)."""
    b, k = 3, 2
    gen, power, speech_var = _data(2, n=6, f=5, r=1)
    nmf = NMFNoise(rank=k, h_block=b)
    st = nmf.init(5, 6, gen, dtype=torch.float64)
    st = NMFState(st.W, st.H, torch.ones(6, dtype=torch.float64))
    tied = nmf.update_sampled(st, power, speech_var, update_gain=False)
    stack_p = power.reshape(2, b * 5)  # (blocks, B*F)
    stack_s = speech_var.reshape(1, 2, b * 5)
    # W first (identical in both problems), then H of the stacked problem with the updated W repeated
    w_rep = tied.W.repeat(b, 1)
    st2 = NMFState(w_rep, st.H[:, ::b].contiguous(), torch.ones(2, dtype=torch.float64))
    num = stack_p / (st2.variance + stack_s[0]).square()
    den = 1.0 / (st2.variance + stack_s[0])
    h_oracle = st2.H * ((num @ w_rep).T / (den @ w_rep).T).sqrt()
    torch.testing.assert_close(tied.H[:, ::b], h_oracle)


def test_bad_block():
    with pytest.raises(ValueError, match="h_block"):
        NMFNoise(h_block=0)


@pytest.mark.parametrize("estep", ["mcem", "fast"])
def test_h_block_and_w_band_are_estep_options_the_paper_preset_frees_both(estep):
    from pyro_minvae.infer import enhance  # noqa: F401  (registers the E-steps)
    from pyro_minvae.infer.presets import preset_options
    from pyro_minvae.models.families import build_model
    from pyro_minvae.noise.nmf import band_basis
    from pyro_minvae.registry import ESTEPS

    torch.manual_seed(0)
    model = build_model("avae", input_dims={"audio": 24}, latent_dim=3).double()
    g = torch.Generator().manual_seed(1)
    x = torch.complex(
        torch.randn(24, 10, generator=g, dtype=torch.float64), torch.randn(24, 10, generator=g, dtype=torch.float64)
    )
    res = ESTEPS.get(estep)(model, x, None, iterations=2, h_block=4, w_band=8, seed=0)
    assert _tied(res.nmf.H, 4) and torch.allclose(res.W, band_basis(24, 8, dtype=torch.float64) @ res.nmf.bands)
    paper = {**preset_options("paper", estep), "iterations": 2}
    free = ESTEPS.get(estep)(model, x, None, seed=0, **paper)
    assert not _tied(free.nmf.H, 4) and free.nmf.bands is None


def test_defaults_tie_over_16_frames_the_paper_preset_frees_them():
    from pyro_minvae.infer.mcem import MCEMConfig
    from pyro_minvae.infer.presets import preset_options
    from pyro_minvae.infer.vem import VEMConfig

    assert VEMConfig().h_block == 16 and MCEMConfig().h_block == 16
    assert VEMConfig.build(**preset_options("paper", "fast")).h_block == 1
    assert MCEMConfig.build(**preset_options("paper", "mcem")).h_block == 1
