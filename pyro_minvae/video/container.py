"""Video containers through PyAV (any format FFmpeg decodes): facts, audio track, frames, and re-muxing a new audio
track next to the untouched video stream.

Frames come one at a time (``iter_frames``) so that long HD videos never sit in memory whole.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from ..atomic import atomic_path
from ..errors import UserInputError


# Suffixes read as video containers, and the audio codec written into each when muxing.
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi")
AUDIO_CODECS = {".mp4": "aac", ".m4v": "aac", ".mov": "aac", ".mkv": "aac", ".webm": "libopus"}


@dataclass(frozen=True)
class VideoInfo:
    """What a container holds: ``width`` x ``height`` pixels, ``fps`` (frames per second), ``n_frames`` (as stated
    by the container, 0 when unknown), ``duration`` seconds of video, ``has_audio``."""

    path: str
    width: int
    height: int
    fps: float
    n_frames: int
    duration: float
    has_audio: bool


def _open(path: str | os.PathLike):
    import av

    p = Path(path)
    if not p.is_file():
        raise UserInputError(
            f"{p}: file not found; check the path" if not p.exists() else f"{p}: not a regular file; give a video file"
        )
    try:
        return av.open(str(p))
    except Exception as exc:
        raise UserInputError(f"{p}: not a readable video ({type(exc).__name__}); re-encode it as H.264 mp4") from None


def _video_stream(container, path):
    if not container.streams.video:
        raise UserInputError(f"{path}: has no video stream; give a video file, or a wav for audio-only models")
    return container.streams.video[0]


def probe(path: str | os.PathLike) -> VideoInfo:
    """The container's :class:`VideoInfo`; ``UserInputError`` for unreadable files or files without video."""
    with _open(path) as c:
        s = _video_stream(c, path)
        rate = s.average_rate or s.guessed_rate or s.base_rate
        fps = float(rate) if rate else 0.0
        dur = (
            float(s.duration * s.time_base)
            if s.duration is not None and s.time_base
            else (c.duration / 1e6 if c.duration else 0.0)
        )
        if not fps > 0:
            raise UserInputError(f"{path}: the video does not state its frame rate; re-encode it (e.g. ffmpeg -r 25)")
        return VideoInfo(
            str(path),
            s.codec_context.width,
            s.codec_context.height,
            fps,
            int(s.frames or 0),
            dur,
            bool(c.streams.audio),
        )


def iter_frames(path: str | os.PathLike, fmt: str = "rgb24") -> Iterator[np.ndarray]:
    """Decoded frames in display order: ``(H, W, 3)`` uint8 for ``rgb24``, ``(H, W)`` for ``gray``."""
    import av

    with _open(path) as c:
        s = _video_stream(c, path)
        s.thread_type = "AUTO"
        try:
            for frame in c.decode(s):
                yield frame.to_ndarray(format=fmt)
        except av.error.FFmpegError as exc:  # e.g. InvalidDataError mid-stream
            raise UserInputError(f"{path}: the video stream is damaged ({type(exc).__name__}); re-encode it") from None


def read_audio_track(path: str | os.PathLike, sample_rate: int) -> np.ndarray:
    """The container's first audio track as mono float32 ``(T,)`` at ``sample_rate`` Hz: decoded by FFmpeg (any
    codec, planar or packed), channels averaged (as :func:`pyro_minvae.audio_io.load_audio` does), then
    resampled with soxr.

    ``UserInputError`` when the container has no audio track, a damaged one, or less than
    :data:`pyro_minvae.audio_io.MIN_DURATION_S` of sound.
    """
    import av

    from ..audio_io import decode_audio_stream, resample_checked

    with _open(path) as c:
        if not c.streams.audio:
            raise UserInputError(
                f"{path}: the video has no audio track; nothing to enhance (give a video with "
                "sound, or the wav with --video)"
            )
        try:
            channels, rate = decode_audio_stream(c, c.streams.audio[0])
        except av.error.FFmpegError as exc:
            raise UserInputError(
                f"{path}: the audio track is damaged ({type(exc).__name__}); re-encode the video"
            ) from None
    x = channels.mean(axis=0)
    if not np.isfinite(x).all():
        raise UserInputError(f"{path}: the audio track contains NaN or Inf samples; re-encode the video")
    return resample_checked(x, rate, sample_rate, path, longer="video")


def mux_audio(src: str | os.PathLike, wave: np.ndarray, sample_rate: int, dst: str | os.PathLike) -> None:
    """Write ``dst`` (atomically): the video stream of ``src`` copied packet by packet (not re-encoded) and
    ``wave`` ``(T,)`` float in [-1, 1] at ``sample_rate`` Hz as its only audio track (codec by ``dst``'s suffix:
    :data:`AUDIO_CODECS`). Other streams of ``src`` (its old audio, subtitles) are dropped."""
    import av

    suffix = Path(dst).suffix.lower()
    codec = AUDIO_CODECS.get(suffix)
    if codec is None:
        raise UserInputError(f"{dst}: cannot write {suffix!r} video; name it .mp4, .mkv, .mov or .webm")
    w = np.clip(np.asarray(wave, dtype=np.float32), -1.0, 1.0)
    if not np.isfinite(w).all():
        raise ValueError(f"refusing to write non-finite audio to {dst}")
    with _open(src) as inp, atomic_path(dst, suffix=suffix) as tmp:
        vin = _video_stream(inp, src)
        with av.open(str(tmp), mode="w", format=_format_of(suffix)) as out:
            try:
                vout = out.add_stream_from_template(vin)
            except ValueError:
                raise UserInputError(
                    f"{dst}: a {suffix} file cannot hold the {vin.codec_context.name} video of "
                    f"{src}; name the output .mkv (holds any codec) or .mp4"
                ) from None
            aout = out.add_stream(codec, rate=_codec_rate(codec, sample_rate), layout="mono")
            for packet in inp.demux(vin):
                if packet.dts is None:  # the demuxer's flush packet
                    continue
                packet.stream = vout
                out.mux(packet)
            _encode(out, aout, w, sample_rate)


def _format_of(suffix: str) -> Optional[str]:
    return {".mkv": "matroska", ".m4v": "mp4"}.get(suffix)


def _codec_rate(codec: str, sample_rate: int) -> int:
    return 48000 if codec == "libopus" else sample_rate


def _encode(out, stream, w: np.ndarray, sample_rate: int) -> None:
    """Encode mono float audio into ``stream`` in frames of the codec's size, resampling when the codec needs
    another rate (Opus: 48 kHz)."""
    import av

    if stream.rate != sample_rate:
        from ..audio_io import resample

        w = resample(w, sample_rate, stream.rate)
    resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=stream.rate)
    block = stream.codec_context.frame_size or 1024
    pts = 0
    for start in range(0, w.shape[0], block):
        chunk = w[None, start : start + block]
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="flt", layout="mono")
        frame.sample_rate = stream.rate
        frame.pts = pts
        frame.time_base = Fraction(1, stream.rate)
        pts += chunk.shape[1]
        for f in resampler.resample(frame):
            for packet in stream.encode(f):
                out.mux(packet)
    for f in resampler.resample(None):
        for packet in stream.encode(f):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)
