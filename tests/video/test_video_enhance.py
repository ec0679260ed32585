"""A real talking-face video enhanced end to end through the library: audio read from the container, mouth found,
enhanced audio muxed back (video stream copied) or written alone; faces missing in part or in whole."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import soundfile as sf
import torch
from video_fixtures import SR, read_frames, write_video

from pyro_minvae.checkpoint import load_model, save_checkpoint
from pyro_minvae.enhancement.file import enhance_file
from pyro_minvae.errors import UserInputError
from pyro_minvae.features import FeatureConfig
from pyro_minvae.models import build_model
from pyro_minvae.video import VideoOptions, probe, read_audio_track, read_video
from pyro_minvae.video import enhance_io  # noqa: F401  (registers the video reader and writers)

CFG = FeatureConfig()
FAST = {"method": "fast", "iterations": 1}


def _model(tmp_path, family):
    torch.manual_seed(0)
    dims = {"audio": CFG.n_freq}
    if family != "avae":
        dims["lips"] = CFG.lip_size**2
    path = tmp_path / f"{family}.pt"
    save_checkpoint(path, build_model(family, input_dims=dims, latent_dim=4), CFG)
    model, cfg, _ = load_model(path, "cpu")
    return model, cfg, path


@pytest.fixture(scope="module")
def minvae(tmp_path_factory):
    return _model(tmp_path_factory.mktemp("ck"), "minvae")


def test_video_in_video_out_keeps_frames_and_duration(talk_mp4, minvae, tmp_path):
    import av

    path, wave = talk_mp4
    model, cfg, ckpt = minvae
    res = enhance_file(model, cfg, path, tmp_path / "talk_clean.mp4", checkpoint=str(ckpt), progress=False, **FAST)
    assert res.result.init == "lips"  # the mouth was found and used
    out = res.output
    src, got = probe(path), probe(out)
    assert got.has_audio and got.fps == src.fps and got.duration == pytest.approx(src.duration, abs=1e-6)
    assert read_frames(out, "gray").shape == read_frames(path, "gray").shape == (120, 144, 176)
    with av.open(str(path)) as a, av.open(str(out)) as b:
        assert [bytes(p) for p in a.demux(a.streams.video[0]) if p.size] == [
            bytes(p) for p in b.demux(b.streams.video[0]) if p.size
        ]
    enhanced = res.result.waveform.numpy()
    assert np.isfinite(enhanced).all()


def test_wav_output_has_the_exact_input_length(talk_mp4, minvae, tmp_path):
    path, wave = talk_mp4
    model, cfg, ckpt = minvae
    noisy = read_audio_track(path, cfg.sample_rate)
    out = enhance_file(model, cfg, path, tmp_path / "talk_clean.wav", progress=False, **FAST).output
    x, sr = sf.read(out, dtype="float32")
    assert sr == SR and x.shape == noisy.shape and np.isfinite(x).all()
    assert abs(noisy.shape[0] - wave.shape[0]) < 0.05 * SR  # the track decoded ~ what was muxed (AAC)


def test_save_lips_writes_rois_and_a_contact_sheet(talk_mp4, tmp_path):
    path, _ = talk_mp4
    read = read_video(path, CFG, wanted={"audio", "lips"}, options=VideoOptions(save_lips=str(tmp_path / "lips")))
    rois = np.load(tmp_path / "lips" / "talk.lips.npy")
    np.testing.assert_array_equal(rois, read.visual["lips"])
    from PIL import Image

    sheet = np.asarray(Image.open(tmp_path / "lips" / "talk.lips.png"))
    assert sheet.ndim == 3 and sheet.shape[1] > 12 * 67
    assert read.info.lips_used and read.visual["lips"].shape == (120, 67, 67)


def test_audio_only_model_does_not_look_for_faces(talk_mp4, tmp_path, monkeypatch):
    from pyro_minvae.video import track

    monkeypatch.setattr(track, "track_mouth", lambda *a, **k: pytest.fail("face search for an audio-only model"))
    model, cfg, _ = _model(tmp_path, "avae")
    out = enhance_file(model, cfg, talk_mp4[0], tmp_path / "a.wav", progress=False, **FAST).output
    assert sf.info(str(out)).frames == read_video(talk_mp4[0], cfg, wanted={"audio"}).wave.shape[0]


@pytest.fixture(scope="module")
def part_face_mp4(carphone, tmp_path_factory):
    """1 s of carphone then 3 s without a face (a grey wall), with sound: a face in 25% of the frames."""
    from video_fixtures import noisy_speech

    face = read_frames(carphone)[:30]
    wall = np.full((90, 144, 176, 3), 128, np.uint8)
    return write_video(
        tmp_path_factory.mktemp("part") / "part.mp4", np.concatenate([face, wall]), 30, noisy_speech(4 * SR)
    )


def test_mostly_faceless_video_minvae_falls_back_to_audio_and_says_so(part_face_mp4, minvae, tmp_path, caplog):
    model, cfg, _ = minvae
    with caplog.at_level(logging.INFO, logger="pyro_minvae"):
        res = enhance_file(model, cfg, part_face_mp4, tmp_path / "p.wav", progress=False, **FAST)
    assert res.result.init == "audio"
    assert "a face was found in only 30 of 120 frames (< 50%); the lips are not used" in caplog.text


def test_faceless_video_is_refused_for_av_models_in_one_line(tmp_path):
    from video_fixtures import noisy_speech

    wall = write_video(tmp_path / "wall.mp4", np.full((30, 144, 176, 3), 90, np.uint8), 30, noisy_speech(SR))
    for family in ("minvae", "avcvae"):
        model, cfg, _ = _model(tmp_path, family)
        with pytest.raises(UserInputError) as err:
            enhance_file(model, cfg, wall, tmp_path / f"{family}.wav", progress=False, **FAST)
        assert str(err.value) == (
            f"{wall}: no face found in any of its 30 frames; give a video with a frontal "
            "face (or --crop none if it is already a mouth crop)"
        )
        assert not (tmp_path / f"{family}.wav").exists()


def test_lips_of_a_25_fps_video_are_aligned_at_25_fps(carphone_track, minvae, tmp_path):
    """A 25 fps mouth-crop video with sound: STFT frame n gets the ROI of video frame floor(n * hop / sr * 25)."""
    from pyro_minvae.enhancement.inputs import read_input
    from pyro_minvae.enhancement.visual import visual_features
    from video_fixtures import noisy_speech

    model, cfg, _ = minvae
    rois = (carphone_track.rois[:100] * 255).round().astype(np.uint8)  # 4.0 s at 25 fps
    rois = np.pad(rois, ((0, 0), (0, 1), (0, 1)), mode="edge")  # 68x68: H.264 4:2:0 needs even sides
    path = write_video(tmp_path / "mouth25.mp4", rois, 25, noisy_speech(4 * SR))
    inp = read_input(path, cfg, wanted=model.modalities)
    lips = inp.streams["lips"]
    assert lips.fps == 25.0 and lips.array.shape == (100, 67, 67)
    feats = visual_features(model, cfg, inp.streams, inp.wave.shape[0])["lips"]
    n = cfg.n_frames(inp.wave.shape[0])
    idx = np.minimum(np.floor(np.arange(n) * cfg.hop_length / cfg.sample_rate * 25 + 1e-9).astype(int), 99)
    np.testing.assert_allclose(feats, lips.array[idx].reshape(n, -1), atol=1e-6)


def test_silent_face_video_gets_the_enhanced_sound_of_a_wav(carphone, minvae, tmp_path):
    """noisy.wav --video face.mp4 -o out.mp4: the face video (no sound) with the enhanced wav as its sound."""
    from video_fixtures import noisy_speech

    model, cfg, ckpt = minvae
    sf.write(tmp_path / "noisy.wav", noisy_speech(int(round(probe(carphone).duration * SR))), SR)
    res = enhance_file(
        model, cfg, tmp_path / "noisy.wav", tmp_path / "out.mp4", streams={"lips": carphone}, progress=False, **FAST
    )
    assert res.result.init == "lips"
    got = probe(res.output)
    assert got.has_audio and got.duration == pytest.approx(probe(carphone).duration, abs=1e-6)
