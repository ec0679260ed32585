"""`pyro-minvae enhance talk.mp4 -o talk_clean.mp4` (and .wav, --crop, --save-lips) through click's CliRunner."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner
from video_fixtures import SR, read_frames

from pyro_minvae.checkpoint import save_checkpoint
from pyro_minvae.cli.main import cli
from pyro_minvae.features import FeatureConfig
from pyro_minvae.models import build_model
from pyro_minvae.video import probe, read_audio_track

CFG = FeatureConfig()
FAST = ["--method", "fast", "--iterations", "1"]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ck") / "minvae.pt"
    model = build_model("minvae", input_dims={"audio": CFG.n_freq, "lips": CFG.lip_size**2}, latent_dim=4)
    save_checkpoint(path, model, CFG)
    return path


def _run(*args):
    return CliRunner().invoke(cli, ["enhance", *map(str, args)], catch_exceptions=False)


def test_enhance_talk_mp4_to_mp4_and_wav(talk_mp4, ckpt, tmp_path):
    talk, _ = talk_mp4
    res = _run(talk, "-c", ckpt, "-o", tmp_path / "talk_clean.mp4", "--save-lips", tmp_path / "lips", *FAST)
    assert res.exit_code == 0, res.output
    assert probe(tmp_path / "talk_clean.mp4").duration == pytest.approx(probe(talk).duration, abs=1e-6)
    assert read_frames(tmp_path / "talk_clean.mp4", "gray").shape == (120, 144, 176)
    assert np.load(tmp_path / "lips" / "talk.lips.npy").shape == (120, 67, 67)
    assert (tmp_path / "lips" / "talk.lips.png").stat().st_size > 0
    res = _run(talk, "-c", ckpt, "-o", tmp_path / "talk_clean.wav", "--crop", "face", *FAST)
    assert res.exit_code == 0, res.output
    x, sr = sf.read(tmp_path / "talk_clean.wav")
    assert sr == SR and x.shape == read_audio_track(talk, SR).shape and np.isfinite(x).all()


def test_crop_options_need_a_video_input(ckpt, tmp_path):
    sf.write(tmp_path / "n.wav", np.zeros(SR, np.float32), SR)
    res = CliRunner().invoke(
        cli, ["enhance", str(tmp_path / "n.wav"), "-c", str(ckpt), "-o", str(tmp_path / "o.wav"), "--crop", "none"]
    )
    assert res.exit_code == 2 and "--crop/--save-lips apply to a video input" in res.output
    assert len([ln for ln in res.output.splitlines() if ln.startswith("error:")]) == 1


def test_video_output_needs_a_video_input(ckpt, tmp_path):
    sf.write(tmp_path / "n.wav", 0.1 * np.random.default_rng(0).standard_normal(SR).astype(np.float32), SR)
    res = CliRunner().invoke(
        cli, ["enhance", str(tmp_path / "n.wav"), "-c", str(ckpt), "-o", str(tmp_path / "o.mp4"), *FAST]
    )
    assert res.exit_code == 2 and "a video output needs a video input" in res.output, res.output
    assert not (tmp_path / "o.mp4").exists()
