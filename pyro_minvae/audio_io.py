"""Reading and writing audio with clear one-line errors.

``load_audio`` returns mono float32 ``(T,)`` at the requested rate; it downmixes and resamples when
needed and says so through the ``pyro_minvae`` logger (the CLI prints those lines).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np
import soundfile as sf

from .atomic import atomic_path
from .errors import UserInputError

log = logging.getLogger("pyro_minvae")

MIN_DURATION_S = 0.25
# Sample rates a recording may have; outside, the header is damaged (1 Hz would turn 1 s of samples into hours).
MIN_RATE, MAX_RATE = 4000, 768000


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Band-limited resampling (soxr, high quality); ``x`` is ``(T,)``."""
    if sr_in == sr_out:
        return x.astype(np.float32, copy=False)
    import soxr

    return soxr.resample(x.astype(np.float32), sr_in, sr_out, quality="HQ").astype(np.float32)


def load_audio(path: str | os.PathLike, sample_rate: int = 16000, min_duration_s: float = MIN_DURATION_S) -> np.ndarray:
    """Read an audio file as mono float32 ``(T,)`` at ``sample_rate`` Hz.

    Raises ``UserInputError`` (one line naming the file and the fix) for missing, unreadable, empty,
    too short or non-finite audio. Multichannel audio is averaged to mono and other rates are resampled,
    each with an INFO message.
    """
    p = Path(path)
    if not p.exists():
        raise UserInputError(
            f"{p}: file not found; check the path"
            if not p.is_symlink()
            else f"{p}: broken symbolic link (its target is missing or loops); fix or remove the link"
        )
    if p.is_dir():
        raise UserInputError(f"{p}: is a folder; give an audio file")
    if not p.is_file():  # a FIFO or device would block or never end
        raise UserInputError(f"{p}: not a regular file (a pipe or device); give an audio file")
    if not os.access(p, os.R_OK):
        raise UserInputError(f"{p}: cannot read it (Permission denied); check the file's permissions")
    if p.stat().st_size == 0:
        raise UserInputError(f"{p}: file is empty (0 bytes); re-export the recording")
    try:
        data, sr = sf.read(os.fsencode(p), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises LibsndfileError / RuntimeError for corrupt files
        data, sr = _read_with_av(p, exc)
    if not MIN_RATE <= sr <= MAX_RATE:
        raise UserInputError(
            f"{p}: the file says its sample rate is {sr} Hz, not a usable rate ({MIN_RATE}-"
            f"{MAX_RATE} Hz; damaged header?); re-export the recording"
        )
    if data.shape[0] == 0:
        raise UserInputError(f"{p}: audio has no samples; re-export the recording")
    _warn_if_truncated(p, data.shape[0])
    if not np.isfinite(data).all():
        raise UserInputError(f"{p}: audio contains NaN or Inf samples; re-export it as 16-bit PCM wav")
    if data.shape[1] > 1:
        log.info("%s: %d channels, downmixed to mono", p, data.shape[1])
    return resample_checked(data.mean(axis=1).astype(np.float32), sr, sample_rate, p, min_duration_s)


def resample_checked(
    x: np.ndarray,
    rate: int,
    sample_rate: int,
    source: str | os.PathLike,
    min_duration_s: float = MIN_DURATION_S,
    longer: str = "recording",
) -> np.ndarray:
    """Mono ``x`` ``(T,)`` at ``rate`` Hz resampled to ``sample_rate`` (with an INFO message naming ``source``);
    ``UserInputError`` ("give a longer ``longer``") when less than ``min_duration_s`` seconds are left."""
    if rate != sample_rate:
        log.info("%s: resampled from %d Hz to %d Hz", source, rate, sample_rate)
        x = resample(x, rate, sample_rate)
    if x.shape[0] < min_duration_s * sample_rate:
        raise UserInputError(
            f"{source}: only {x.shape[0] / sample_rate:.3f} s of audio, at least {min_duration_s:g} s "
            f"is needed; give a longer {longer}"
        )
    return x


def _warn_if_truncated(p: Path, n_present: int) -> None:
    """Warn when a wav's header announces more data than the file holds (e.g. an interrupted recording)."""
    try:
        info = sf.info(os.fsencode(p)).extra_info
    except Exception:
        return
    m = re.search(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", info, re.M)
    if m is None or int(m.group(2)) >= int(m.group(1)):
        return
    align = re.search(r"Block Align\s*:\s*(\d+)", info)
    announced = int(m.group(1)) // int(align.group(1)) if align and int(align.group(1)) > 0 else None
    what = (
        f"its header announces {announced} samples, {n_present} are present"
        if announced
        else f"{n_present} samples are present"
    )
    log.warning("%s: file is truncated (%s); using those", p, what)


def decode_audio_stream(container, stream) -> tuple[np.ndarray, int]:
    """Every frame of the audio ``stream`` of an open PyAV ``container`` as float32 ``(channels, T)`` at the
    stream's own rate, which is returned too. Any codec and sample format, planar or packed: FFmpeg converts
    each frame to planar float. Decoding errors (``av.error.FFmpegError``) propagate."""
    import av

    rate = int(stream.rate or stream.codec_context.sample_rate)
    planar = av.AudioResampler(format="fltp", rate=rate)  # (channels, n) float frames, layout kept
    chunks = []
    for frame in container.decode(stream):
        chunks += [f.to_ndarray() for f in planar.resample(frame)]
    chunks += [f.to_ndarray() for f in planar.resample(None)]
    if not chunks:
        return np.zeros((max(stream.channels, 1), 0), np.float32), rate
    return np.concatenate(chunks, axis=1).astype(np.float32, copy=False), rate


def _read_with_av(p: Path, first_error: Exception) -> tuple[np.ndarray, int]:
    """Fallback decoder (PyAV/FFmpeg) for formats libsndfile does not read (e.g. mp3, m4a, mp4 audio)."""
    try:
        import av

        with av.open(str(p)) as container:
            stream = next(s for s in container.streams if s.type == "audio")
            arr, sr = decode_audio_stream(container, stream)
        if arr.shape[1] == 0:
            raise ValueError("no audio frames")
        return arr.T, sr
    except Exception:
        raise UserInputError(
            f"{p}: not a readable audio file ({type(first_error).__name__}); convert it to a wav file"
        ) from None


def write_audio(path: str | os.PathLike, wave: np.ndarray, sample_rate: int = 16000) -> None:
    """Write float audio ``(T,)`` as 16-bit PCM wav atomically; non-finite samples are a bug and raise."""
    w = np.asarray(wave, dtype=np.float32)
    if not np.isfinite(w).all():
        raise ValueError(f"refusing to write non-finite audio to {path}")
    over = int(np.count_nonzero(np.abs(w) > 1.0))
    if over:  # 16-bit PCM holds [-1, 1]: say so rather than clip silently
        log.warning(
            "%s: %d sample(s) beyond [-1, 1] (peak %.2f) were clipped in the 16-bit wav",
            path,
            over,
            float(np.abs(w).max()),
        )
    with atomic_path(path) as tmp:
        sf.write(os.fsencode(tmp), np.clip(w, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")
