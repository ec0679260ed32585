"""Distortion budget: the gain decomposition against closed forms, the oracle gains' ranges and their NMF fits."""

from __future__ import annotations

import math

import pytest
import torch

from pyro_minvae.evaluation.distortion import (
    VARIANTS,
    absorbed_db,
    fit_nmf,
    gain_budget,
    known_noise_states,
    ml_gain,
    oracle_gains,
    power,
)
from pyro_minvae.models.families import build_model
from pyro_minvae.noise.nmf import NMFState

F, N = 16, 12


def _specs(seed=0):
    g = torch.Generator().manual_seed(seed)
    s = torch.complex(torch.randn(F, N, generator=g), torch.randn(F, N, generator=g))
    n = 0.5 * torch.complex(torch.randn(F, N, generator=g), torch.randn(F, N, generator=g))
    return s, n


def test_gain_budget_closed_forms():
    s, n = _specs()
    snr = 10 * math.log10(float(s.abs().square().sum() / n.abs().square().sum()))
    half = gain_budget(torch.full((F, N), 0.5), s, n)
    assert half["speech_loss_db"] == pytest.approx(10 * math.log10(4), abs=1e-4)
    assert half["noise_left_db"] == pytest.approx(snr + 10 * math.log10(4), abs=1e-4)
    assert half["over_suppressed"] == 0.0
    zero = gain_budget(torch.zeros(F, N), s, n)
    assert zero["speech_loss_db"] == pytest.approx(0.0, abs=1e-6)
    dominated = (s.abs() > n.abs()).float()
    assert zero["over_suppressed"] == pytest.approx(
        float((s.abs().square() * dominated).sum() / s.abs().square().sum()), rel=1e-5
    )


def test_absorbed_db_is_zero_for_the_true_noise_and_ml_gain_recovers_a_scale():
    s, n = _specs()
    n2 = power(n)  # (N, F): one rank-N factorisation that equals |N|^2 exactly
    state = NMFState(torch.eye(F)[:, :F], n2.T.contiguous(), torch.ones(N))
    assert absorbed_db(state, s, n) == pytest.approx(0.0, abs=1e-6)
    sv = torch.rand(N, F) + 0.1
    torch.testing.assert_close(ml_gain(3.0 * sv, sv), torch.full((N,), 3.0))


def test_oracle_gains_are_gains_and_the_wiener_oracle_beats_the_rest():
    torch.manual_seed(0)
    model = build_model("avae", input_dims={"audio": F}, latent_dim=3).double()
    s, n = _specs(1)
    s, n = s.to(torch.complex128), n.to(torch.complex128)
    gains = oracle_gains(model, s, n, iterations=5)
    diag = gains.pop("_nmf")
    assert set(gains) == set(VARIANTS) and set(diag) >= {"vae-oracle-nmf", "true-speech-nmf"}
    err = {}
    for k, g in gains.items():
        assert g.shape == (F, N) and float(g.min()) >= 0 and float(g.max()) <= 1
        err[k] = float((g * (s + n) - s).abs().square().sum())
    assert err["wiener-oracle"] == min(err.values())  # the per-bin MMSE gain given both powers


def test_fit_nmf_decreases_the_sampled_cost():
    s, n = _specs(2)
    x2 = power(s + n).double()
    sv = power(s).double().clamp_min(1e-9)
    short, long = fit_nmf(x2, sv, iterations=1), fit_nmf(x2, sv, iterations=20)
    from pyro_minvae.noise.nmf import NMFNoise

    cost = [float(NMFNoise().sampled_objective(st, x2, sv.unsqueeze(0))) for st in (short, long)]
    assert cost[1] < cost[0]


def test_known_noise_states_hold_the_noise():
    """``true-noise`` is the noise power itself; the NMFs of the noise alone come close to a low-rank noise (the
    rank-1 noise below, exactly representable), the 16-frame one with tied activations, and g = 1 in all."""
    g = torch.Generator().manual_seed(0)
    level = torch.rand(F, 1, generator=g) + 0.5
    n = level * torch.complex(torch.ones(F, 40), torch.zeros(F, 40))
    states = known_noise_states(n, iterations=300, rank=2)
    torch.testing.assert_close(states["true-noise"].variance, power(n).double())
    for name in ("noise-nmf", "noise-nmf16"):
        st = states[name]
        assert torch.equal(st.g, torch.ones(40, dtype=torch.float64))
        torch.testing.assert_close(st.variance, power(n).double(), rtol=0.02, atol=0)
    h = states["noise-nmf16"].H
    assert torch.equal(h[:, :16], h[:, :1].expand(-1, 16))
