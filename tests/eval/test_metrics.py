"""Oracle tests for pyro_minvae.metrics."""

from __future__ import annotations

import numpy as np
import pytest

from eval_synth import SR, make_noise, make_speech, mix
from pyro_minvae import metrics as M


def _orthogonal_noise(s: np.ndarray, seed: int = 3) -> np.ndarray:
    """Zero-mean noise exactly orthogonal to zero-mean ``s`` (float64)."""
    n = np.random.default_rng(seed).standard_normal(s.size)
    n -= n.mean()
    n -= np.dot(n, s) / np.dot(s, s) * s
    return n


def test_si_sdr_matches_analytic_value():
    s = make_speech().astype(np.float64)
    s -= s.mean()
    n = _orthogonal_noise(s)
    for a, c in ((1.0, 0.1), (0.3, 0.05), (2.0, 1.0)):
        e = a * s + c * n
        expected = 10 * np.log10(a**2 * np.dot(s, s) / (c**2 * np.dot(n, n)))
        assert M.si_sdr(s, e, SR) == pytest.approx(expected, abs=1e-6)


def test_si_sdr_is_scale_invariant_and_sdr_allows_filtering():
    s = make_speech()
    x = mix(s, make_noise(s.size), 3.0)
    base = M.si_sdr(s, x, SR)
    for g in (0.1, 3.0):
        assert M.si_sdr(s, g * x, SR) == pytest.approx(base, abs=1e-6)
        assert M.si_sdr(g * s, x, SR) == pytest.approx(base, abs=1e-6)
    # a short FIR filter of the reference costs SI-SDR but not SDR (BSS-eval allows 512-tap filters)
    h = np.zeros(300)
    h[37], h[211] = 1.0, 0.5
    filt = np.convolve(s, h)[: s.size]
    assert M.si_sdr(s, filt, SR) < 10.0
    assert M.sdr(s, filt, SR) > 60.0


def test_sdr_equals_brute_force_projection():
    """Independent oracle: least squares on an explicit matrix of delayed references (small filter)."""
    rng = np.random.default_rng(0)
    s = rng.standard_normal(600)
    e = np.convolve(s, [0.5, 0.2])[:600] + 0.3 * rng.standard_normal(600)
    L = 8
    n_out = s.size + L - 1
    A = np.zeros((n_out, L))
    for k in range(L):
        A[k : k + s.size, k] = s
    e_pad = np.r_[e, np.zeros(L - 1)]
    coef, *_ = np.linalg.lstsq(A, e_pad, rcond=None)
    proj = A @ coef
    expected = 10 * np.log10(np.sum(proj**2) / np.sum((e_pad - proj) ** 2))
    assert M.sdr(s, e, SR, filter_length=L) == pytest.approx(expected, abs=1e-6)


def test_sdr_of_independent_noise_is_close_to_snr():
    s = make_speech()
    x = mix(s, make_noise(s.size), 5.0)
    assert M.sdr(s, x, SR) == pytest.approx(5.0, abs=0.3)
    assert M.sdr(s, x, SR) >= M.si_sdr(s, x, SR) - 1e-6


def test_identical_signals_score_at_maximum():
    s = make_speech()
    vals, reasons = M.compute_metrics(s, s, SR)
    assert reasons == {}
    assert vals["pesq_wb"] == pytest.approx(4.64, abs=0.01)
    assert vals["pesq_nb"] == pytest.approx(4.55, abs=0.01)
    assert vals["stoi"] == pytest.approx(1.0, abs=1e-6)
    assert vals["estoi"] == pytest.approx(1.0, abs=1e-6)
    assert vals["si_sdr"] >= 100 and vals["sdr"] >= 100


def test_metrics_decrease_monotonically_with_added_noise():
    s = make_speech()
    n = make_noise(s.size, "pink")
    rows = [M.compute_metrics(s, mix(s, n, snr), SR)[0] for snr in (30, 15, 5, -5)]
    for m in ("si_sdr", "sdr", "stoi", "estoi", "pesq_nb"):
        seq = [r[m] for r in rows]
        assert all(a > b for a, b in zip(seq, seq[1:])), (m, seq)
    wb = [r["pesq_wb"] for r in rows]  # wide-band PESQ floors at ~1.02 below ~5 dB
    assert wb[0] > wb[1] > wb[2] >= wb[3]


def test_score_reports_input_and_delta_side_by_side():
    s = make_speech()
    n = make_noise(s.size)
    noisy, est = mix(s, n, 0.0), mix(s, n, 10.0)
    out = M.score(s, est, noisy, SR, ["si_sdr", "stoi"])
    assert out["input_si_sdr"] == pytest.approx(0.0, abs=0.2)
    assert out["si_sdr"] == pytest.approx(10.0, abs=0.2)
    assert out["delta_si_sdr"] == pytest.approx(out["si_sdr"] - out["input_si_sdr"])
    assert out["delta_stoi"] > 0
    assert out["metric_errors"] == ""
    inp = M.score_input(s, noisy, SR, ["si_sdr", "stoi"])
    assert M.score(s, est, noisy, SR, ["si_sdr", "stoi"], input_scores=inp) == out


def test_length_mismatch_trimmed_within_tolerance_else_error():
    s = make_speech()
    x = mix(s, make_noise(s.size), 5.0)
    a = M.si_sdr(s, x, SR)
    assert M.si_sdr(s, np.r_[x, np.zeros(100, np.float32)], SR) == pytest.approx(a, abs=1e-6)
    with pytest.raises(ValueError, match="tolerance"):
        M.si_sdr(s, np.r_[x, np.zeros(SR, np.float32)], SR)


def test_bad_inputs_raise_clear_errors():
    s = make_speech()
    with pytest.raises(ValueError, match="silent"):
        M.score(np.zeros_like(s), s, s, SR)
    with pytest.raises(ValueError, match="NaN"):
        M.si_sdr(s, np.full_like(s, np.nan), SR)
    with pytest.raises(ValueError, match="1-D"):
        M.si_sdr(s, np.stack([s, s]), SR)
    with pytest.raises(ValueError, match="unknown metric"):
        M.compute_metrics(s, s, SR, ["nope"])


def test_undefined_metrics_are_left_out_with_a_reason_never_nan():
    s = make_speech()
    # silent estimate: no metric defined, each reason recorded
    out = M.score(s, np.zeros_like(s), mix(s, make_noise(s.size), 0.0), SR)
    for m in M.DEFAULT_METRICS:
        assert m not in out and f"delta_{m}" not in out and f"input_{m}" in out
        assert f"{m}: estimate is silent" in out["metric_errors"]
    # wide-band PESQ finds no utterance in a 20 Hz tone (below its band); the other metrics still score
    tone = (0.1 * np.sin(2 * np.pi * 20 * np.arange(SR) / SR)).astype(np.float32)
    vals, reasons = M.compute_metrics(tone, tone + 1e-3 * make_noise(SR), SR, ["pesq_wb", "si_sdr"])
    assert reasons == {"pesq_wb": "PESQ NoUtterancesError: No utterances detected"}
    assert set(vals) == {"si_sdr"} and np.isfinite(vals["si_sdr"])
    # STOI after removing silent frames: too little left (pystoi would warn and return 1e-5)
    click = np.zeros(SR, np.float32)
    click[100] = 0.5
    vals, reasons = M.compute_metrics(click, click, SR, ["stoi", "estoi"])
    assert vals == {} and "Not enough STFT frames" in reasons["stoi"]
