"""Figures (responsibility plot, mouth opening) and the method registry / checkpoint extension point."""

from __future__ import annotations

import numpy as np
import pytest

from pyro_minvae.contracts import EvaluationMethod
from pyro_minvae.errors import UserInputError
from pyro_minvae.evaluation import methods as M
from pyro_minvae.evaluation import mouth_opening_from_landmarks, plot_responsibilities


def test_mouth_opening_is_the_vertical_extent_of_the_contour():
    ang = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    opening = np.array([2.0, 6.0, 10.0])
    lm = np.zeros((3, 12, 2), np.float32)
    lm[..., 0] = 30 + 10 * np.cos(ang)
    lm[..., 1] = 40 + (opening[:, None] / 2) * np.sin(ang)
    got = mouth_opening_from_landmarks(lm)
    np.testing.assert_allclose(got, opening * np.sin(ang).max(), rtol=1e-5)
    with pytest.raises(ValueError, match=r"\(N_v, P, 2\)"):
        mouth_opening_from_landmarks(np.zeros((3, 12)))


def test_plot_responsibilities_two_and_three_components(tmp_path):
    n = 90
    pi = 0.5 + 0.4 * np.sin(np.linspace(0, 6, n))
    p = plot_responsibilities(tmp_path / "r2.png", pi, 30.0, np.abs(np.sin(np.linspace(0, 9, 60))), 30.0)
    assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    r3 = np.random.default_rng(0).dirichlet([1, 1, 1], size=n)
    plot_responsibilities(
        tmp_path / "r3.png", r3, 30.0, np.ones(60), 30.0, ["audio", "lips", "landmarks"], title="three encoders"
    )
    assert (tmp_path / "r3.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="component names"):
        plot_responsibilities(tmp_path / "x.png", r3, 30.0, np.ones(60), 30.0, ["a", "b"])
    with pytest.raises(ValueError, match="probabilities"):
        plot_responsibilities(tmp_path / "x.png", pi + 1.0, 30.0, np.ones(60), 30.0)
    assert not (tmp_path / "x.png").exists()


def test_resolve_methods_defaults_and_unknown_names():
    all_methods = M.resolve_methods()
    assert {"noisy", "spectral-gating", "spectral-gating-stationary", "wiener-oracle"} <= set(all_methods)
    assert list(M.resolve_methods(["wiener-oracle", "noisy"])) == ["wiener-oracle", "noisy"]
    with pytest.raises(UserInputError, match="unknown method.*available"):
        M.resolve_methods(["nope"])


class _Halver(EvaluationMethod):
    def __init__(self, path):
        self.path = path

    def __call__(self, noisy, sample_rate, *, clean=None, video=None, seed=0):
        return 0.5 * noisy


class _NoContract:  # a callable that does not declare the method contract
    def __call__(self, noisy, sample_rate, *, clean=None, video=None, seed=0):
        return noisy


@pytest.fixture
def fake_family(monkeypatch):
    """A checkpoint 'model' registered through the public extension point, undone after the test."""
    monkeypatch.setattr(M.CHECKPOINT_METHODS, "_items", dict(M.CHECKPOINT_METHODS._items))
    monkeypatch.setattr(M, "checkpoint_kind", lambda path: "fakevae")

    @M.register_checkpoint_methods("fakevae")
    def factory(label, path):
        return {label: _Halver(path), f"{label}-again": _Halver(path)}

    return factory


def test_checkpoint_methods_come_from_the_registry(fake_family, tmp_path):
    ckpt = tmp_path / "my.pt"
    ckpt.write_bytes(b"x")
    got = M.resolve_methods(None, {"mine": ckpt})
    assert {"mine", "mine-again", "noisy"} <= set(got)
    assert got["mine"].path == ckpt
    assert M.default_checkpoints(tmp_path) == {"my": ckpt}
    with pytest.raises(UserInputError, match="'noisy'.*clashes"):
        M.resolve_methods(None, {"noisy": ckpt})


def test_a_method_without_the_contract_is_refused_before_any_work(fake_family, monkeypatch, tmp_path):
    """Registering a baseline class that does not declare the contract, or lacks ``enhance``, fails at once, in
    one line; so does a checkpoint factory's method and a method handed to run_evaluation."""
    from pyro_minvae.baselines import Enhancer
    from pyro_minvae.evaluation import EvalConfig, run_evaluation
    from pyro_minvae.registry import BASELINES

    monkeypatch.setattr(BASELINES, "_items", dict(BASELINES._items))
    with pytest.raises(TypeError, match=r"baseline 'plain': _NoContract must subclass .*EvaluationMethod"):
        BASELINES.register("plain", _NoContract)

    class NoEnhance(Enhancer):
        pass

    with pytest.raises(TypeError, match="does not implement enhance"):
        BASELINES.register("half", NoEnhance)
    assert "plain" not in BASELINES and "half" not in BASELINES
    monkeypatch.setitem(M.CHECKPOINT_METHODS._items, "fakevae", lambda label, path: {label: _NoContract()})
    ckpt = tmp_path / "my.pt"
    ckpt.write_bytes(b"x")
    with pytest.raises(UserInputError, match=r"my.pt: the 'fakevae' factory's evaluation method 'mine': .*must be"):
        M.methods_from_checkpoint("mine", ckpt)
    with pytest.raises(TypeError, match="evaluation method 'm'"):
        run_evaluation(EvalConfig(manifest=tmp_path / "none.jsonl", out_dir=tmp_path / "out"), {"m": _NoContract()})
    assert not (tmp_path / "out").exists()


def test_the_contract_defaults():
    m = _Halver("p")
    assert (m.needs_clean, m.needs_video, m.reports_info, dict(m.last_info)) == (False, False, False, {})
    assert "one record per call" in m.batch_refusal()
    out = m.enhance_batch([np.ones(4, np.float32), "not audio"], 16000, seeds=[0, 1])  # one call per record
    np.testing.assert_array_equal(out[0], 0.5)
    assert isinstance(out[1], TypeError)  # the failing record's exception, the others' output


def test_unregistered_or_unreadable_checkpoints_are_user_errors(tmp_path, monkeypatch):
    with pytest.raises(UserInputError, match="not found"):
        M.methods_from_checkpoint("x", tmp_path / "missing.pt")
    (tmp_path / "a.pt").write_bytes(b"x")
    monkeypatch.setattr(M, "checkpoint_kind", lambda path: "unknown-model")
    with pytest.raises(UserInputError, match="no evaluation methods for model 'unknown-model'"):
        M.methods_from_checkpoint("x", tmp_path / "a.pt")


def test_checkpoint_kind_reads_the_model_family(tmp_path, monkeypatch):
    import torch

    from pyro_minvae.checkpoint import FORMAT_VERSION

    good = tmp_path / "good.pt"
    torch.save(
        {
            "format_version": FORMAT_VERSION,
            "model_spec": {"family": "minvae", "kwargs": {}},
            "model_state": {},
            "feature_config": {},
        },
        good,
    )
    assert M.checkpoint_kind(good) == "minvae"
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    with pytest.raises(UserInputError, match="bad.pt"):
        M.checkpoint_kind(bad)
    # the directory scan keeps checkpoints whose family has methods and skips unreadable files
    monkeypatch.setattr(M.CHECKPOINT_METHODS, "_items", {})
    assert M.default_checkpoints(tmp_path) == {}  # no family has methods registered
    monkeypatch.setattr(M.CHECKPOINT_METHODS, "_items", {"minvae": lambda label, path: {label: None}})
    assert M.default_checkpoints(tmp_path) == {"good": good}
    (tmp_path / "minvae").mkdir()
    run_best = tmp_path / "minvae" / "best.pt"
    run_best.write_bytes(good.read_bytes())
    assert M.default_checkpoints(tmp_path) == {"good": good, "minvae": run_best}


def test_a_markov_vae_checkpoint_gets_mcem_with_the_odd_even_kernel(tmp_path):
    """The frame-wise kernel refuses a prior that couples frames, so the family's MCEM method runs odd/even MH and
    enhances (a `<label>-mcem` from the standard set failed every file)."""
    import torch

    from pyro_minvae.checkpoint import save_checkpoint
    from pyro_minvae.features import FeatureConfig
    from pyro_minvae.models import build_model

    cfg = FeatureConfig(n_fft=128, win_length=128, hop_length=64)
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "m.pt", build_model("markov-vae", input_dims={"audio": cfg.n_freq}, latent_dim=4), cfg)
    got = M.methods_from_checkpoint("mv", tmp_path / "m.pt")
    assert {"mv-mcem", "mv-fast"} <= set(got) and got["mv-mcem"].opts == {"kernel": "odd-even-mh"}
    assert got["mv-mcem"].batch_refusal() is not None  # the batched MCEM runs the frame-wise kernel only
    noisy = 0.1 * np.random.default_rng(0).standard_normal(cfg.sample_rate // 2).astype(np.float32)
    for name in ("mv-mcem", "mv-fast"):
        method = got[name]
        method.opts = {**method.opts, "iterations": 1}
        out = method(noisy, cfg.sample_rate, seed=0)
        assert out.shape == noisy.shape and np.isfinite(out).all()
