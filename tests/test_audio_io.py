"""audio_io's PyAV fallback: packed (interleaved) and planar multi-channel tracks decode to the right length and
downmix, against the samples that were encoded."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from pyro_minvae.audio_io import load_audio

av = pytest.importorskip("av")


def _write_stereo(path, codec: str, fmt: str, left: np.ndarray, right: np.ndarray, sr: int = 16000) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=sr, layout="stereo")
        for i in range(0, len(left), 1024):
            lo, hi = left[i : i + 1024], right[i : i + 1024]
            if fmt == "s16":  # packed: (1, 2 * n) interleaved L R L R ...
                data = (np.stack([lo, hi], 1).reshape(1, -1) * 32767).astype(np.int16)
            else:  # planar: (2, n)
                data = np.stack([lo, hi]).astype(np.float32)
            frame = av.AudioFrame.from_ndarray(data, format=fmt, layout="stereo")
            frame.sample_rate, frame.pts, frame.time_base = sr, i, Fraction(1, sr)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def test_packed_stereo_is_not_read_as_a_mono_track_twice_as_long(tmp_path):
    t = np.arange(16000) / 16000
    left, right = 0.3 * np.sin(2 * np.pi * 440 * t), np.zeros_like(t)
    path = tmp_path / "packed.mkv"
    _write_stereo(path, "pcm_s16le", "s16", left, right)
    x = load_audio(path, 16000)
    assert x.shape == (16000,)
    np.testing.assert_allclose(x, (left + right) / 2, atol=1e-3)


def test_planar_stereo_keeps_its_length(tmp_path):
    t = np.arange(16000) / 16000
    left = 0.3 * np.sin(2 * np.pi * 440 * t)
    path = tmp_path / "planar.mkv"
    _write_stereo(path, "pcm_f32le", "fltp", left, left)
    x = load_audio(path, 16000)
    assert x.shape == (16000,)
    np.testing.assert_allclose(x, left, atol=1e-5)
