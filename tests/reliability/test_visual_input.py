"""Reliability, visual input: missing, mis-sized, mis-timed, non-finite and face-less lip streams.

Through `pyro-minvae enhance NOISY --video LIPS -o OUT` (and `prepare folder` for raw face videos); each case
asserts the exit code, the message and whether the output exists.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from pyro_minvae.data.modalities import MODALITIES
from reliability_helpers import (
    CFG,
    LIP,
    SR,
    api_call,
    assert_no_partial_files,
    assert_user_error,
    enhance_file,
    lips,
    run_cli,
    speech_like,
    write_wav,
)


@pytest.fixture(scope="module")
def files(ckpts, noisy_1s):
    return {"minvae": ckpts["minvae"], "avcvae": ckpts["avcvae"], "noisy": noisy_1s}


def _enhance(files, out, *extra, ckpt="minvae"):
    return enhance_file(files[ckpt], files["noisy"], out, *extra)


def _npy(path, arr):
    np.save(path, arr)
    return path


def test_missing_video_minvae_starts_from_the_audio_encoder(files, tmp_path):
    out = tmp_path / "o.wav"
    res = _enhance(files, out)
    assert res.exit_code == 0, res.output
    assert "no visual input: MIN-VAE initialises z from the audio encoder" in res.output
    assert "z initialised from the audio encoder" in res.output
    assert sf.read(out)[0].shape == (SR,)


def test_missing_video_note_is_printed_once_for_the_fast_e_steps_restarts(files, tmp_path):
    res = _enhance(files, tmp_path / "o.wav", "--method", "fast", "--iterations", "1")  # 4 restarts by default
    assert res.exit_code == 0, res.output
    assert res.output.count("no visual input: MIN-VAE initialises z from the audio encoder") == 1, res.output


def test_missing_video_note_is_printed_once_for_a_long_recording(files, tmp_path):
    """70 s = three 30-s chunks: the audio-initialisation note appears once, not once per chunk."""
    noisy = write_wav(tmp_path / "long.wav", np.tile(speech_like(1.0), 70))
    res = enhance_file(files["minvae"], noisy, tmp_path / "o.wav")
    assert res.exit_code == 0, res.output
    assert res.output.count("no visual input: MIN-VAE initialises z from the audio encoder") == 1, res.output
    assert sf.read(tmp_path / "o.wav")[0].shape == (70 * SR,)


def test_missing_video_for_a_model_that_needs_it_is_an_error(files, tmp_path):
    out = tmp_path / "o.wav"
    res = _enhance(files, out, ckpt="avcvae")
    assert_user_error(res, "this avcvae checkpoint needs the 'lips' stream; give it with --video/--landmarks")
    assert not out.exists()


def test_with_video_the_lips_initialise_z(files, tmp_path):
    out = tmp_path / "o.wav"
    res = _enhance(files, out, "--video", _npy(tmp_path / "lips.npy", lips(30)))
    assert res.exit_code == 0, res.output
    assert "z initialised from the lips encoder" in res.output


def test_flattened_and_frames_last_lip_layouts_enhance_as_frames_first(files, tmp_path):
    """NTCD-TIMIT's (4489, N) column-major files (as the MIN-VAE authors store them), (N, 4489) and (67, 67, N)
    give the same output as the (N, 67, 67) frames they hold."""
    frames = lips(30)
    layouts = {
        "frames": frames,
        "ntcd": frames.transpose(0, 2, 1).reshape(30, -1).T,  # column-major: frame t = a[:, t].reshape(67, 67, "F")
        "rows": frames.reshape(30, -1),
        "last": frames.transpose(1, 2, 0),
    }
    outputs = {}
    for name, arr in layouts.items():
        out = tmp_path / f"{name}.wav"
        res = _enhance(
            files, out, "--video", _npy(tmp_path / f"{name}.npy", arr), "--method", "fast", "--iterations", "1"
        )
        assert res.exit_code == 0, res.output
        assert "z initialised from the lips encoder" in res.output
        outputs[name] = sf.read(out)[0]
    for name in ("ntcd", "rows", "last"):
        np.testing.assert_array_equal(outputs[name], outputs["frames"])


BAD_SHAPES = [
    (
        "small_frames",
        lambda: lips(30, size=32),
        "small_frames.npy: lip frames are 32x32 pixels; this checkpoint expects 67x67 mouth ROIs",
    ),
    (
        "flat_wrong_size",
        lambda: lips(30, size=32).reshape(30, -1),
        "flat_wrong_size.npy: lip frames must have shape (N, H, W); got (30, 1024)",
    ),
    (
        "rgb",
        lambda: np.repeat(lips(30)[..., None], 3, -1),
        "rgb.npy: lip frames must have shape (N, H, W); got (30, 67, 67, 3)",
    ),
    (
        "nan_frames",
        lambda: np.where(np.arange(30)[:, None, None] == 7, np.nan, lips(30, dtype=np.float32)),
        "nan_frames.npy: lip ROIs contain NaN or Inf",
    ),
    (
        "inf_frames",
        lambda: np.where(np.arange(30)[:, None, None] == 3, np.inf, lips(30, dtype=np.float32)),
        "inf_frames.npy: lip ROIs contain NaN or Inf",
    ),
    (
        "float_0_255",
        lambda: lips(30).astype(np.float32),
        "float_0_255.npy: float lip ROIs must lie in [0, 1]; got values up to 254",
    ),
    (
        "empty",
        lambda: np.zeros((0, LIP, LIP), np.uint8),
        "empty.npy: 0 frames at 30 fps = 0.00 s but the audio lasts 1.00 s",
    ),
]


@pytest.mark.parametrize("name,make,message", BAD_SHAPES, ids=[b[0] for b in BAD_SHAPES])
def test_bad_lip_arrays_are_one_line_errors(files, tmp_path, name, make, message):
    out = tmp_path / "o.wav"
    res = _enhance(files, out, "--video", _npy(tmp_path / f"{name}.npy", make()))
    assert_user_error(res, message)
    assert not out.exists()
    assert_no_partial_files(tmp_path)


def test_unreadable_and_missing_lip_files(files, tmp_path):
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"\x93NUMPY garbage")
    res = _enhance(files, tmp_path / "o.wav", "--video", bad)
    assert_user_error(res, "bad.npy: not a readable .npy array")
    res = _enhance(files, tmp_path / "o.wav", "--video", tmp_path / "none.npy")
    assert_user_error(res, "none.npy: file not found")
    res = _enhance(files, tmp_path / "o.wav", "--video", tmp_path / "none.mp4")
    assert_user_error(res, "none.mp4: file not found; check the path")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    res = _enhance(files, tmp_path / "o.wav", "--video", junk)
    assert_user_error(res, "junk.mp4: not a readable video")
    assert not (tmp_path / "o.wav").exists()


@pytest.mark.parametrize("n_video", [24, 27, 33, 37])
def test_small_frame_count_offsets_are_aligned(files, tmp_path, n_video):
    """1 s of audio = 30 video frames; up to 0.25 s (7 frames) off is accepted and aligned to the STFT frames."""
    arr = lips(n_video)
    out = tmp_path / "o.wav"
    res = _enhance(files, out, "--video", _npy(tmp_path / "lips.npy", arr))
    assert res.exit_code == 0, res.output
    assert sf.read(out)[0].shape == (SR,)
    n_stft = CFG.n_frames(SR)
    feats = MODALITIES.get("lips").from_array(arr, n_stft, CFG, 30.0, n_samples=SR)
    assert feats.shape == (n_stft, LIP * LIP)
    # frame k of the STFT takes the video frame at the same time; past the video's end its last frame repeats
    t = np.arange(n_stft) * CFG.hop_length / SR
    idx = np.minimum(np.floor(t * 30.0 + 1e-9).astype(int), n_video - 1)
    np.testing.assert_array_equal(feats, arr[idx].reshape(n_stft, -1) / np.float32(255.0))


@pytest.mark.parametrize("n_video,seconds", [(22, "0.73"), (60, "2.00"), (300, "10.00")])
def test_large_frame_count_offsets_are_rejected(files, tmp_path, n_video, seconds):
    out = tmp_path / "o.wav"
    res = _enhance(files, out, "--video", _npy(tmp_path / "lips.npy", lips(n_video)))
    assert_user_error(
        res,
        f"lips.npy: {n_video} frames at 30 fps = {seconds} s but the audio lasts 1.00 s "
        "(tolerance 0.25 s); give the lip array that belongs to this recording",
    )
    assert not out.exists()


def test_fps_option_changes_the_duration_check(files, tmp_path):
    """60 frames are 2 s at 30 fps (rejected) but 1 s at 60 fps (accepted)."""
    arr = _npy(tmp_path / "lips.npy", lips(60))
    res = _enhance(files, tmp_path / "o.wav", "--video", arr, "--fps", "60")
    assert res.exit_code == 0, res.output


def _face_less_video(path, n=30):
    av = pytest.importorskip("av")
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=30)
        s.width = s.height = 64
        s.pix_fmt = "yuv420p"
        for i in range(n):
            img = np.full((64, 64, 3), 40 + i, np.uint8)  # a plain grey wall: no face anywhere
            for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return path


def test_video_without_a_detectable_face(tmp_path):
    """`prepare folder` finds the mouth with dlib (a default dependency): a video with no face is rejected and
    nothing is written."""
    root = tmp_path / "rec"
    root.mkdir()
    write_wav(root / "clip.wav", speech_like(1.0))
    _face_less_video(root / "clip.mp4")
    out = tmp_path / "corpus"
    res = run_cli("prepare", "folder", "--root", root, "--out", out)
    assert_user_error(res, "clip.mp4: no face found in any of its 30 frames")
    assert not out.exists()
    assert_no_partial_files(tmp_path)


def test_modality_loader_reports_the_file(tmp_path):
    """The manifest path (batch enhance, evaluation) names the bad lip file too."""
    bad = _npy(tmp_path / "lips.npy", np.full((30, LIP, LIP), np.nan, np.float32))
    rec = {"id": "x", "lips": "lips.npy", "fps": 30.0}
    err = api_call(MODALITIES.get("lips").load, rec, tmp_path / "manifest.jsonl", CFG.n_frames(SR), CFG, SR)
    assert type(err).__name__ == "UserInputError"
    assert str(err).startswith(f"{bad}: lip ROIs contain NaN or Inf")
