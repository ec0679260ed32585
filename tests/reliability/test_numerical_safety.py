"""Reliability, numerical safety: extreme inputs give finite audio of the right length, a diverged model gives a
clear error instead of NaN audio, and no NaN/Inf reaches a results table."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch

from pyro_minvae.checkpoint import load_model, save_checkpoint
from reliability_helpers import (
    CFG,
    SR,
    api_call,
    assert_no_partial_files,
    assert_user_error,
    evaluate_args,
    lips,
    make_mixture_corpus,
    mix_at,
    run_cli,
    speech_like,
    white,
    write_wav,
)


def _signals():
    s, n = speech_like(1.0), white(1.0, seed=5, scale=1.0)
    impulse = np.zeros(SR, np.float32)
    impulse[SR // 2] = 0.9
    return {
        "pure_noise": (0.3 * n).astype(np.float32),
        "pure_silence": np.zeros(SR, np.float32),
        "snr_minus20": mix_at(s, n, -20.0),
        "snr_plus40": mix_at(s, n, 40.0),
        "tiny_amplitude": (1e-6 * n).astype(np.float32),  # 16-bit: a few LSBs
        "dc_offset": np.full(SR, 0.5, np.float32),
        "impulse": impulse,
        "full_scale_square": np.sign(np.sin(2 * np.pi * 100 * np.arange(SR) / SR)).astype(np.float32),
    }


SIGNALS = _signals()


@pytest.fixture(scope="module")
def files(tmp_path_factory, ckpts):
    d = tmp_path_factory.mktemp("num")
    out = {"avae": ckpts["avae"], "minvae": ckpts["minvae"], "lips": d / "lips.npy"}
    np.save(out["lips"], lips(30))
    for name, x in SIGNALS.items():
        out[name] = write_wav(d / f"{name}.wav", x, subtype="FLOAT")
    return out


@pytest.mark.parametrize("method", ["mcem", "fast"])
@pytest.mark.parametrize("signal", list(SIGNALS))
def test_extreme_inputs_give_finite_audio_of_the_right_length(files, tmp_path, signal, method):
    out = tmp_path / "o.wav"
    res = run_cli(
        "enhance",
        "--checkpoint",
        files["minvae"],
        files[signal],
        "--video",
        files["lips"],
        "-o",
        out,
        "--method",
        method,
        "--iterations",
        "2",
    )
    assert res.exit_code == 0, res.output
    y = sf.read(out, dtype="float32")[0]
    assert y.shape == (SR,) and np.isfinite(y).all()
    if signal == "pure_silence":
        assert np.all(y == 0)


@pytest.mark.parametrize("family", ["avae", "minvae"])
def test_api_returns_finite_waveforms_at_input_scale(files, family):
    """The Python API on the same extremes (no file round trip): finite, exact length, float32."""
    from pyro_minvae.infer.enhance import enhance_waveform

    model, cfg, _ = load_model(files[family])
    for name, x in SIGNALS.items():
        for method in ("mcem", "fast"):
            res = api_call(enhance_waveform, model, cfg, x, None, method=method, seed=1, iterations=2)
            w = res.waveform
            assert w.shape == (SR,) and w.dtype == torch.float32, name
            assert torch.isfinite(w).all(), (name, method)


@pytest.fixture(scope="module")
def diverged(tmp_path_factory):
    """A checkpoint whose decoder outputs NaN: what a blown-up training run leaves. (A huge but finite
    log-variance is clamped by the model and gives finite audio: tests/infer/test_enhance.py.)"""
    return _checkpoint_with_bias(tmp_path_factory.mktemp("div") / "diverged.pt", float("nan"))


@pytest.mark.parametrize("method", ["mcem", "fast"])
def test_diverged_model_is_a_clear_error_not_nan_audio(files, diverged, tmp_path, method):
    out = tmp_path / "o.wav"
    res = run_cli(
        "enhance", "--checkpoint", diverged, files["snr_plus40"], "-o", out, "--method", method, "--iterations", "1"
    )
    assert_user_error(
        res,
        "diverged.pt: the model produced NaN or Inf on snr_plus40.wav (diverged or damaged "
        "weights); re-train or use another checkpoint",
    )
    assert not out.exists()
    assert_no_partial_files(tmp_path)


def _strict_json(text: str):
    def refuse(token):
        raise ValueError(f"non-finite number {token} in JSON")

    return json.loads(text, parse_constant=refuse)


def _finite_cells(path):
    rows = list(csv.DictReader(path.read_text().splitlines()))
    for r in rows:
        for k, v in r.items():
            if v not in ("", None):
                try:
                    f = float(v)
                except ValueError:
                    continue
                assert math.isfinite(f), (k, v)
    return rows


def _checkpoint_with_bias(path, bias):
    from pyro_minvae.models import build_model

    torch.manual_seed(0)
    m = build_model("avae", input_dims={"audio": CFG.n_freq}, latent_dim=4)
    with torch.no_grad():
        m.decoder.out.bias.fill_(bias)
    save_checkpoint(path, m, CFG)
    return path


def test_no_nan_in_tables(diverged, tmp_path):
    """A silent clean reference (metrics undefined for the file), a model whose output is silent (every metric
    undefined) and a diverged model (NaN output): the failures are listed, undefined metrics are empty cells with
    their reason, and no NaN/Inf reaches results.csv, summary.json (strict JSON) or summary.md."""
    manifest = make_mixture_corpus(tmp_path / "c", n_good=3, bad=(), with_lips=False)
    write_wav(tmp_path / "c" / "good-00.clean.wav", np.zeros(SR, np.float32))  # silent reference
    silent = _checkpoint_with_bias(tmp_path / "silent.pt", -100.0)  # speech variance ~ 0: the output is silence
    out = tmp_path / "eval"
    res = run_cli(
        *evaluate_args(
            manifest,
            out,
            checkpoints={"d": diverged, "s": silent},
            methods="noisy,d-fast,s-fast",
            metrics="si_sdr,sdr,stoi,pesq_wb",
        )
    )
    assert res.exit_code == 1, res.output
    lines = res.output.splitlines()
    assert "5 failed (method, file) pair(s):" in lines
    for m in ("noisy", "d-fast", "s-fast"):
        assert (
            f"  {m} good-00: file: ValueError: reference is silent (RMS 0.00e+00); metrics need a reference "
            "with speech" in lines
        )
    for rid in ("good-01", "good-02"):
        line = next(ln for ln in lines if ln.startswith(f"  d-fast {rid}: "))
        assert "method: NonFiniteOutputError: the model produced NaN or Inf (diverged or damaged weights)" in line
    rows = _finite_cells(out / "results.csv")
    silent_rows = [r for r in rows if r["method"] == "s-fast" and r["status"] == "ok"]
    assert len(silent_rows) == 2
    for r in silent_rows:
        assert r["si_sdr"] == r["stoi"] == "" and "si_sdr: estimate is silent" in r["metric_errors"]
    _strict_json((out / "summary.json").read_text())
    cells = [
        c.strip().lower()
        for ln in (out / "summary.md").read_text().splitlines()
        if ln.startswith("|")
        for c in ln.split("|")
    ]
    assert not any(c.startswith(("nan", "inf", "-inf")) for c in cells), cells
    assert "Traceback" not in res.output
