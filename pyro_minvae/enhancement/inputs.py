"""What one enhancement reads: the noisy waveform and the raw visual streams, from files or a manifest record.

An :class:`EnhanceInput` holds the noisy waveform ``(T,)`` float32 at ``cfg.sample_rate`` and the visual streams
at video rate (:class:`Stream`: ``(N_v, ...)`` array, its fps, the file it came from). Turning the streams into
frame-aligned model features is :func:`pyro_minvae.enhancement.visual.visual_features`'s job.

Readers are pluggable by the noisy file's suffix (``INPUT_READERS``): a reader is
``reader(path, cfg, *, streams, fps, wanted) -> EnhanceInput`` (see :func:`read_audio_input`). The default reads
any audio file (:func:`pyro_minvae.audio_io.load_audio`) and the stream files given in ``streams``
(``{"lips": "lips.npy" | "mouth.mp4", "landmarks": "pts.npy"}``); a video container reader (audio track + mouth
found in the frames) registers itself for ``.mp4`` etc. the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..audio_io import load_audio
from ..data import modalities as _modalities  # noqa: F401  (registers "lips", "landmarks")
from ..data.manifest import resolve
from ..data.modalities import record_fps
from ..errors import UserInputError
from ..features import FeatureConfig
from ..features.video import check_fps
from ..registry import MODALITIES, Registry

log = logging.getLogger("pyro_minvae")


@dataclass(frozen=True)
class Stream:
    """One visual stream at video rate: ``array`` ``(N_v, ...)``, ``fps`` (frames per second; ``None``: the
    checkpoint's ``video_fps``), ``source`` (the file or description used in messages)."""

    array: np.ndarray
    fps: float | None
    source: str


@dataclass(frozen=True)
class EnhanceInput:
    """``wave`` ``(T,)`` float32 at ``sample_rate`` Hz; ``streams`` ``{modality: Stream}``; ``source`` the noisy file
    (or record) for messages; ``paths`` every file read (an output must not replace any of them)."""

    wave: np.ndarray
    sample_rate: int
    streams: dict = field(default_factory=dict)
    source: str = "noisy"
    paths: tuple = ()


InputReader = Callable[..., EnhanceInput]
INPUT_READERS: Registry = Registry("input reader")  # lower-case suffix of the noisy file (".mp4") -> reader


def read_stream_file(name: str, path: str | Path, cfg: FeatureConfig, fps: float | None = None) -> Stream:
    """The ``name`` stream (a registered modality) from a ``.npy`` array or, for lips, a mouth-ROI video.

    Frame rate: ``fps`` when given, else the one the video file states, else ``cfg.video_fps`` (``.npy``).
    """
    mod = MODALITIES.get(name)
    arr, file_fps = mod.read_file(path, cfg)
    if fps is not None:
        rate = check_fps(fps, f"{path}: --fps")
    elif file_fps is not None:
        rate = file_fps
    elif Path(path).suffix.lower() == ".npy":
        rate = float(cfg.video_fps)
    else:
        raise UserInputError(f"{path}: the video does not state its frame rate; give it with --fps")
    return Stream(arr, rate, str(path))


def read_audio_input(
    noisy: str | Path,
    cfg: FeatureConfig,
    *,
    streams: Mapping[str, str | Path | None] = {},
    fps: float | None = None,
    wanted: Collection[str] | None = None,
) -> EnhanceInput:
    """The default reader: an audio file (resampled to ``cfg.sample_rate``, downmixed) plus the stream files in
    ``streams`` that the model reads (``wanted``; ``None``: all); the others are logged as ignored."""
    if fps is not None:  # a bad --fps is refused even when no stream uses it
        check_fps(fps, "--fps")
    wave = load_audio(noisy, cfg.sample_rate)
    out, paths = {}, [Path(noisy)]
    for name, path in streams.items():
        if path is None:
            continue
        if wanted is not None and name not in wanted:
            log.info("the model does not read the %s stream; %s ignored", name, path)
            continue
        out[name] = read_stream_file(name, path, cfg, fps)
        paths.append(Path(path))
    return EnhanceInput(wave, cfg.sample_rate, out, str(noisy), tuple(paths))


def read_input(
    noisy: str | Path,
    cfg: FeatureConfig,
    *,
    streams: Mapping[str, str | Path | None] = {},
    fps: float | None = None,
    wanted: Collection[str] | None = None,
    reader_options: Mapping | None = None,
) -> EnhanceInput:
    """Read ``noisy`` (and its stream files) with the reader registered for its suffix, else
    :func:`read_audio_input`; ``reader_options``: extra keyword arguments for that reader (e.g.
    ``{"video": VideoOptions(crop="none")}`` for the video reader of :mod:`pyro_minvae.video.enhance_io`)."""
    suffix = Path(noisy).suffix.lower()
    reader = INPUT_READERS.get(suffix) if suffix in INPUT_READERS else read_audio_input
    return reader(noisy, cfg, streams=streams, fps=fps, wanted=wanted, **(reader_options or {}))


def record_input(
    record: dict, manifest: str | Path, cfg: FeatureConfig, wanted: Collection[str] | None = None
) -> EnhanceInput:
    """A manifest record's noisy audio (``record["audio"]``) and the streams of ``wanted`` it has, at the record's
    ``fps`` (absent: ``cfg.video_fps``; 0/NaN/negative: refused)."""
    noisy = resolve(manifest, record["audio"])
    wave = load_audio(noisy, cfg.sample_rate)
    out, paths = {}, [Path(noisy)]
    for name in wanted if wanted is not None else MODALITIES.names():
        if name == "audio" or name not in MODALITIES:
            continue
        mod = MODALITIES.get(name)
        if record.get(mod.field) is None:
            continue
        path = resolve(manifest, record[mod.field])
        out[name] = Stream(mod.load_array(record, manifest), record_fps(record, cfg, manifest), str(path))
        paths.append(Path(path))
    return EnhanceInput(wave, cfg.sample_rate, out, str(noisy), tuple(paths))
