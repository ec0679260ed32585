"""`pyro-minvae enhance` through click's CliRunner: single file (audio / lips .npy / mp4), manifest mode
(resumable, sharded, 2 processes), one-line errors."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner

from pyro_minvae.checkpoint import save_checkpoint
from pyro_minvae.cli.main import cli
from pyro_minvae.features import FeatureConfig
from pyro_minvae.models import build_model

CFG = FeatureConfig(n_fft=128, win_length=128, hop_length=64)
SR = CFG.sample_rate
FAST = ["--method", "fast", "--iterations", "1"]


def _ckpt(path, family="avae"):
    torch.manual_seed(0)
    dims = {"audio": CFG.n_freq} if family == "avae" else {"audio": CFG.n_freq, "lips": 67 * 67}
    save_checkpoint(path, build_model(family, input_dims=dims, latent_dim=4), CFG)
    return path


def _wav(path, seconds=1.0, seed=0):
    x = 0.3 * np.random.default_rng(seed).standard_normal(int(seconds * SR))
    sf.write(path, x.astype(np.float32), SR, subtype="PCM_16")
    return path


def _run(*args, catch_exceptions=False):
    return CliRunner().invoke(cli, ["enhance", *map(str, args)], catch_exceptions=catch_exceptions)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("enh")
    return {
        "avae": _ckpt(d / "avae.pt"),
        "minvae": _ckpt(d / "minvae.pt", "minvae"),
        "dir": d,
        "noisy": _wav(d / "noisy.wav", 1.3),
    }


def test_single_file_exact_length_and_deterministic(files, tmp_path):
    outs = []
    for name in ("a.wav", "b.wav"):
        res = _run("--checkpoint", files["avae"], files["noisy"], "-o", tmp_path / name, *FAST, "--seed", "4")
        assert res.exit_code == 0, res.output
        outs.append(sf.read(tmp_path / name)[0])
    assert outs[0].shape == sf.read(files["noisy"])[0].shape
    np.testing.assert_array_equal(outs[0], outs[1])
    assert not list(tmp_path.glob(".*"))  # atomic write left no temporary file


def test_minvae_with_lips_npy_and_without(files, tmp_path, caplog):
    def enhance(*args):
        res = _run("--checkpoint", files["minvae"], files["noisy"], *args)
        assert res.exit_code == 0, res.output

    lips = files["dir"] / "lips.npy"
    np.save(lips, np.random.default_rng(0).integers(0, 255, size=(39, 67, 67), dtype=np.uint8))
    enhance("--video", lips, "-o", tmp_path / "v.wav", *FAST)
    with caplog.at_level(logging.INFO, logger="pyro_minvae"):
        enhance("-o", tmp_path / "a.wav", *FAST)
    assert "no visual input" in caplog.text
    assert not np.array_equal(sf.read(tmp_path / "v.wav")[0], sf.read(tmp_path / "a.wav")[0])
    enhance("--video", lips, "--init", "audio", "-o", tmp_path / "va.wav", *FAST)
    np.testing.assert_array_equal(sf.read(tmp_path / "va.wav")[0], sf.read(tmp_path / "a.wav")[0])
    # --loop minvae: the published variational loop, a different estimate from the same start
    for loop in ("classic", "minvae"):
        enhance("--video", lips, "--loop", loop, "-o", tmp_path / f"{loop}.wav", "--method", "mcem", "--iterations", 1)
    assert not np.array_equal(sf.read(tmp_path / "minvae.wav")[0], sf.read(tmp_path / "classic.wav")[0])


def test_minvae_with_mp4_video(files, tmp_path):
    av = pytest.importorskip("av")
    mp4 = tmp_path / "lips.mp4"
    with av.open(str(mp4), "w") as c:
        s = c.add_stream("mpeg4", rate=30)
        s.width = s.height = 64
        s.pix_fmt = "yuv420p"
        for i in range(39):
            img = np.random.default_rng(i).integers(0, 256, (64, 64, 3), dtype=np.uint8)  # blank is no mouth
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    res = _run("--checkpoint", files["minvae"], files["noisy"], "--video", mp4, "-o", tmp_path / "m.wav", *FAST)
    assert res.exit_code == 0, res.output
    assert (tmp_path / "m.wav").exists()


def _manifest(root, n=3):
    recs = []
    for i in range(n):
        _wav(root / f"mix{i}.wav", 1.0, seed=i)
        np.save(root / f"lips{i}.npy", np.zeros((30, 67, 67), np.uint8))
        recs.append(
            {
                "id": f"m{i}",
                "split": "test",
                "kind": "mixture",
                "audio": f"mix{i}.wav",
                "lips": f"lips{i}.npy",
                "fps": 30.0,
            }
        )
    recs.append({"id": "c0", "split": "test", "kind": "clean", "audio": "mix0.wav"})
    recs.append({"id": "v0", "split": "valid", "kind": "mixture", "audio": "mix0.wav"})
    path = root / "manifest.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return path


def test_manifest_mode_resumable_and_sharded(files, tmp_path):
    m = _manifest(tmp_path)
    out = tmp_path / "out"
    res = _run(
        "--checkpoint", files["minvae"], "--manifest", m, "--out-dir", out, "--shard", "2/2", "--jobs", "1", *FAST
    )
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.glob("*.wav")) == ["m1.wav"]
    res = _run("--checkpoint", files["minvae"], "--manifest", m, "--out-dir", out, "--jobs", "1", *FAST)
    assert "enhanced 2 file(s)" in res.output
    assert sorted(p.name for p in out.glob("*.wav")) == ["m0.wav", "m1.wav", "m2.wav"]
    stamp = (out / "m1.wav").stat().st_mtime_ns
    res = _run("--checkpoint", files["minvae"], "--manifest", m, "--out-dir", out, "--jobs", "1", *FAST)
    assert "enhanced 0 file(s)" in res.output
    assert (out / "m1.wav").stat().st_mtime_ns == stamp


def test_manifest_mode_two_processes_match_one(files, tmp_path):
    m = _manifest(tmp_path, n=2)
    for jobs in ("1", "2"):
        res = _run("--checkpoint", files["avae"], "--manifest", m, "--out-dir", tmp_path / jobs, "--jobs", jobs, *FAST)
        assert res.exit_code == 0, res.output
    for name in ("m0.wav", "m1.wav"):
        np.testing.assert_array_equal(sf.read(tmp_path / "1" / name)[0], sf.read(tmp_path / "2" / name)[0])


@pytest.mark.parametrize(
    "extra, message",
    [
        (["missing.wav", "-o", "x.wav"], "missing.wav: file not found"),
        (["NOISY", "-o", "x.wav", "--video", "nolips.npy"], "nolips.npy: file not found"),
        (["NOISY"], "missing input"),
        (["--manifest", "m.jsonl"], "--out-dir"),
        (["--manifest", "m.jsonl", "--out-dir", "o", "--shard", "3/2"], "--shard '3/2'"),
        (["NOISY", "-o", "x.wav", "--threads", "0"], "--threads 0"),
        (["NOISY", "-o", "x.wav", "--init", "landmarks"], "--init landmarks"),
        (
            ["NOISY", "-o", "x.wav", "--method", "fast", "--option", 'restart_inits=[null,"mouth"]'],
            "restart_inits: no 'mouth' encoder; this checkpoint's encoders are audio, lips",
        ),
        (["NOISY", "-o", "x.wav", "--method", "fast", "--loop", "minvae"], "--loop applies to --method mcem only"),
    ],
)
def test_user_errors_are_one_line(files, tmp_path, extra, message, monkeypatch):
    monkeypatch.chdir(tmp_path)
    extra = [str(files["noisy"]) if e == "NOISY" else e for e in extra]
    if "--manifest" in extra:
        _manifest(tmp_path)
        extra[extra.index("m.jsonl")] = str(tmp_path / "manifest.jsonl")
    res = _run("--checkpoint", files["minvae"], *extra, catch_exceptions=True)
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "x.wav").exists()


def test_bad_checkpoint_and_short_video(files, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"nope")
    res = _run("--checkpoint", bad, files["noisy"], "-o", "x.wav", catch_exceptions=True)
    assert res.exit_code == 2 and "bad.pt" in res.output
    lips = tmp_path / "short.npy"
    np.save(lips, np.zeros((5, 67, 67), np.uint8))
    args = ("--checkpoint", files["minvae"], files["noisy"], "--video", lips, "-o", tmp_path / "x.wav")
    res = _run(*args, catch_exceptions=True)
    assert res.exit_code == 2 and "short.npy" in res.output


def test_preset_paper_gives_the_published_options_and_flags_win(files, tmp_path, monkeypatch):
    """``--preset paper`` hands the E-step the published configuration; an option given next to it wins."""
    from pyro_minvae.enhancement import enhancer as enhancer_module

    seen = []
    real = enhancer_module.Enhancer.from_checkpoint

    def spy(path, **kwargs):
        seen.append({k: v for k, v in kwargs.items() if k in ("iterations", "h_block", "gain_exponent", "rank")})
        kwargs["iterations"] = 1  # keep the run short; what the CLI asked for is recorded above
        return real(path, **kwargs)

    monkeypatch.setattr(enhancer_module.Enhancer, "from_checkpoint", staticmethod(spy))
    for extra, out in (([], "a.wav"), (["--iterations", "7"], "b.wav")):
        res = _run("--checkpoint", files["avae"], files["noisy"], "-o", tmp_path / out, "--preset", "paper", *extra)
        assert res.exit_code == 0, res.output
    assert seen[0] == {"iterations": 100, "h_block": 1, "gain_exponent": 1.0, "rank": 10}
    assert seen[1]["iterations"] == 7 and seen[1]["h_block"] == 1
    res = _run("--checkpoint", files["avae"], files["noisy"], "-o", tmp_path / "c.wav", "--preset", "nope")
    assert res.exit_code == 2 and "unknown preset 'nope'; valid presets: paper" in res.output


def test_any_estep_option_by_name_reaches_the_estep(files, tmp_path, monkeypatch):
    """``--option KEY=VALUE`` gives any field of the E-step's config (over --preset); the output is the Python
    API's with the same option."""
    from pyro_minvae.enhancement import enhancer as enhancer_module

    seen = []
    real = enhancer_module.Enhancer.from_checkpoint

    def spy(path, **kwargs):
        seen.append({k: kwargs.get(k) for k in ("noise_start", "band_floor_db", "h_block", "iterations")})
        return real(path, **kwargs)

    monkeypatch.setattr(enhancer_module.Enhancer, "from_checkpoint", staticmethod(spy))
    opts = ["--option", "noise_start=0.5", "--option", "band_floor_db=null"]
    res = _run("--checkpoint", files["avae"], files["noisy"], "-o", tmp_path / "a.wav", *FAST, *opts)
    assert res.exit_code == 0, res.output
    res = _run("--checkpoint", files["avae"], files["noisy"], "-o", tmp_path / "b.wav", "--preset", "paper",
               "--method", "fast", "--option", "h_block=4", "--option", "iterations=2")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert seen == [
        {"noise_start": 0.5, "band_floor_db": None, "h_block": None, "iterations": 1},
        {"noise_start": None, "band_floor_db": None, "h_block": 4, "iterations": 2},
    ]
    res = _run("--checkpoint", files["avae"], files["noisy"], "-o", tmp_path / "c.wav", *FAST)
    assert res.exit_code == 0, res.output
    assert not np.array_equal(sf.read(tmp_path / "a.wav")[0], sf.read(tmp_path / "c.wav")[0])


@pytest.mark.parametrize(
    "opts, message",
    [
        (["--option", "noise_start=abc"], "noise_start must be > 0 or None; got 'abc'"),
        (["--option", "speed=3"], "unknown option(s) speed"),
        (["--option", "novalue"], "--option 'novalue': expected KEY=VALUE"),
        (["--option", "iterations=3"], "--option iterations=... and --iterations: give iterations once"),
    ],
)
def test_bad_estep_options_are_one_line(files, tmp_path, opts, message):
    res = _run("--checkpoint", files["avae"], files["noisy"], "-o", tmp_path / "o.wav", *FAST, *opts)
    assert res.exit_code == 2 and message in res.output, res.output
    assert len(res.output.strip().splitlines()) == 1 and not (tmp_path / "o.wav").exists()


def test_a_dynamical_prior_enhances_with_fast_or_the_odd_even_kernel_and_refuses_frame_wise_mcem(files, tmp_path):
    torch.manual_seed(0)
    ckpt = tmp_path / "markov.pt"
    save_checkpoint(ckpt, build_model("markov-vae", input_dims={"audio": CFG.n_freq}, latent_dim=4), CFG)
    res = _run("-c", ckpt, files["noisy"], "-o", tmp_path / "a.wav", "--iterations", "1")
    assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
    assert "couples frames" in res.output and "--method fast" in res.output and not (tmp_path / "a.wav").exists()
    for extra in (FAST, ["--iterations", "1", "--kernel", "odd-even-mh"]):
        res = _run("-c", ckpt, files["noisy"], "-o", tmp_path / "b.wav", "--overwrite", *extra)
        assert res.exit_code == 0, res.output
        assert sf.read(tmp_path / "b.wav")[0].shape == sf.read(files["noisy"])[0].shape
