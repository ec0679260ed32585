"""Which videos get their mouth found and which are used as they are; containers read and re-muxed."""

from __future__ import annotations

import numpy as np
import pytest
from video_fixtures import SR, read_frames, speech_like, write_video

from pyro_minvae.errors import UserInputError
from pyro_minvae.video.container import mux_audio, probe, read_audio_track
from pyro_minvae.video.kind import resolve_crop
from pyro_minvae.video.track import NoFaceError, track_mouth


@pytest.fixture(scope="module")
def carphone_frames(carphone):
    return read_frames(carphone)


def test_full_face_video_is_cropped(carphone):
    assert resolve_crop("auto", carphone) == "face"


def test_1920x1080_video_is_cropped_and_the_mouth_found(carphone_frames, tmp_path):
    """carphone enlarged 5x (880x720) in the middle of a 1920x1080 picture, 1 s at 25 fps."""
    big = np.zeros((25, 1080, 1920, 3), np.uint8)
    up = np.kron(carphone_frames[:25], np.ones((1, 5, 5, 1), np.uint8))
    big[:, 180:900, 520:1400] = up
    path = write_video(tmp_path / "hd.mp4", big, 25)
    assert resolve_crop("auto", path) == "face"
    track = track_mouth(path)
    small = track_mouth(write_video(tmp_path / "small.mp4", carphone_frames[:25], 25))
    assert track.crop == "face" and track.rois.shape == (25, 67, 67) and track.face_fraction >= 0.9
    assert track.fps == 25.0
    # the same mouth, found at the same place of the picture (5x scale, offset 520, 180)
    np.testing.assert_allclose((track.boxes[:, :2] - [520, 180]) / 5, small.boxes[:, :2], atol=2.0)


def test_mouth_crop_video_at_25_fps_is_not_cropped(carphone, carphone_track, tmp_path):
    """88x88 mouth ROIs (LRS3/TCD-TIMIT style) written at 25 fps are used as they are, resized to 67x67."""
    mouths = carphone_track
    from pyro_minvae.video.mouth import MouthConfig

    m88 = track_mouth(carphone, MouthConfig(size=88), crop="face").rois
    path = write_video(tmp_path / "mouth88.mp4", (m88 * 255).round().astype(np.uint8), 25)
    assert resolve_crop("auto", path) == "none"
    track = track_mouth(path)
    assert track.crop == "none" and track.fps == 25.0 and track.found.all()
    assert track.rois.shape == (120, 67, 67)
    assert np.abs(track.rois.mean(axis=(1, 2)) - mouths.rois.mean(axis=(1, 2))).max() < 0.05
    assert resolve_crop("face", path) == "face" and resolve_crop("none", carphone) == "none"


def test_video_without_a_face_is_refused_in_one_line(tmp_path):
    rng = np.random.default_rng(0)
    ramp = np.broadcast_to(np.linspace(0, 200, 320)[None, None, :], (20, 240, 320))
    frames = (ramp + rng.integers(0, 20, ramp.shape)).astype(np.uint8)
    path = write_video(tmp_path / "wall.mp4", frames, 30)
    with pytest.raises(NoFaceError) as err:
        track_mouth(path)
    msg = str(err.value)
    assert "\n" not in msg and "no face found in any of its 20 frames" in msg


def test_mux_copies_the_video_stream_and_keeps_the_duration(carphone, tmp_path):
    import av

    info = probe(carphone)
    wave = speech_like(int(round(info.duration * SR)))
    out = tmp_path / "out.mp4"
    mux_audio(carphone, wave, SR, out)
    got = probe(out)
    assert got.has_audio and got.fps == info.fps and abs(got.duration - info.duration) < 1e-6
    with av.open(str(carphone)) as a, av.open(str(out)) as b:
        pa = [bytes(p) for p in a.demux(a.streams.video[0]) if p.size]
        pb = [bytes(p) for p in b.demux(b.streams.video[0]) if p.size]
    assert pa == pb  # copied packet for packet, not re-encoded
    back = read_audio_track(out, SR)
    assert abs(back.shape[0] - wave.shape[0]) < 0.05 * SR
    assert not list(tmp_path.glob(".*"))


def test_video_without_sound_or_unreadable_is_one_line(carphone, tmp_path):
    with pytest.raises(UserInputError, match="has no audio track"):
        read_audio_track(carphone, SR)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(UserInputError, match="not a readable video"):
        probe(bad)


def test_small_blank_video_is_not_taken_for_a_mouth_crop(tmp_path):
    """64x64 has the shape of a mouth crop, but a plain grey picture is no mouth: it is searched for a face."""
    frames = np.stack([np.full((64, 64, 3), 40 + i, np.uint8) for i in range(20)])
    path = write_video(tmp_path / "grey.mp4", frames, 30)
    assert resolve_crop("auto", path) == "face"
    with pytest.raises(NoFaceError):
        track_mouth(path)


def test_audio_track_of_packed_stereo_pcm_is_averaged_at_its_length(tmp_path):
    """Packed (interleaved) 16-bit stereo at 44.1 kHz in a .mov: one second of sound, channels averaged."""
    import av

    path = tmp_path / "pcm.mov"
    t = np.arange(44100) / 44100
    left = (0.5 * np.sin(2 * np.pi * 440 * t) * 32767).astype(np.int16)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=44100, layout="stereo")
        frame = av.AudioFrame.from_ndarray(
            np.stack([left, np.zeros_like(left)], 1).reshape(1, -1), format="s16", layout="stereo"
        )
        frame.sample_rate = 44100
        for pkt in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(pkt)
    x = read_audio_track(path, SR)
    assert x.shape == (SR,) and np.abs(x).max() == pytest.approx(0.25, abs=0.01)
