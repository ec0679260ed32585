"""A talking-face video file -> what enhancement needs: the noisy waveform from its audio track and the mouth ROIs
found in its frames, at the video's own frame rate.

::

    from pyro_minvae.video import read_video, VideoOptions
    wave, sr, visual, info = read_video("talk.mp4", cfg, wanted={"audio", "lips"})

``visual`` is ``{"lips": (N_v, size, size) float32 in [0, 1]}`` at ``info.fps`` (alignment to the STFT frames
happens downstream, :func:`pyro_minvae.features.video.align_to_stft`), or ``{}`` when the model reads no lips or
when fewer than ``MouthConfig.min_face_fraction`` of the frames show a face (said with a warning: MIN-VAE then
initialises from its audio encoder, a model that needs the lips refuses). No face at all in a video whose lips
are wanted is refused with one line (:class:`~pyro_minvae.video.track.NoFaceError`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Collection, NamedTuple, Optional

import numpy as np

from ..features import FeatureConfig
from .container import VideoInfo, probe, read_audio_track
from .faces import shared_detector
from .kind import CROPS
from .mouth import MouthConfig
from .sheet import save_lips
from .track import MouthTrack, track_mouth

log = logging.getLogger("pyro_minvae")


@dataclass(frozen=True)
class VideoOptions:
    """``crop``: ``auto`` | ``face`` | ``none`` (see :mod:`pyro_minvae.video.kind`); ``save_lips``: a folder that
    receives ``<stem>.lips.npy`` and ``<stem>.lips.png`` (``None``: nothing saved); ``detector``: a
    ``FACE_DETECTORS`` name; ``mouth``: the crop settings (its ``size`` is replaced by the checkpoint's)."""

    crop: str = "auto"
    save_lips: Optional[str] = None
    detector: str = "dlib"
    mouth: MouthConfig = field(default_factory=MouthConfig)

    def __post_init__(self):
        if self.crop not in CROPS:
            raise ValueError(f"crop must be one of {CROPS}; got {self.crop!r}")


class VideoDetails(NamedTuple):
    """What was read: the container's :class:`~pyro_minvae.video.container.VideoInfo`, the
    :class:`~pyro_minvae.video.track.MouthTrack` (``None`` when the model reads no lips and none were saved) and
    whether the lips are used."""

    video: VideoInfo
    track: Optional[MouthTrack]
    lips_used: bool


class VideoRead(NamedTuple):
    wave: np.ndarray
    sample_rate: int
    visual: dict
    info: VideoDetails


def read_video(
    path: str | os.PathLike,
    cfg: FeatureConfig,
    *,
    wanted: Optional[Collection[str]] = None,
    options: VideoOptions = VideoOptions(),
) -> VideoRead:
    """``(wave (T,) float32 at cfg.sample_rate, sample_rate, {"lips": (N_v, s, s)} or {}, VideoDetails)``.

    ``wanted``: the modalities the model reads (``None``: all). Raises ``UserInputError`` for unreadable files,
    videos without sound and, when lips are wanted, videos without any face.
    """
    info = probe(path)
    wave = read_audio_track(path, cfg.sample_rate)
    want_lips = wanted is None or "lips" in wanted
    if not want_lips and options.save_lips is None:
        return VideoRead(wave, cfg.sample_rate, {}, VideoDetails(info, None, False))
    mouth = replace(options.mouth, size=cfg.lip_size)
    detector = shared_detector(options.detector) if options.crop != "none" else None
    track = track_mouth(path, mouth, options.crop, detector, info)
    if options.save_lips is not None:
        npy, png = save_lips(options.save_lips, Path(path).stem, track.rois, track.found)
        log.info("mouth ROIs the model sees: %s, %s", npy, png)
    if not want_lips:
        return VideoRead(wave, cfg.sample_rate, {}, VideoDetails(info, track, False))
    n, k = track.found.size, int(track.found.sum())
    if track.face_fraction < mouth.min_face_fraction:
        log.warning(
            "%s: a face was found in only %d of %d frames (< %.0f%%); the lips are not used (MIN-VAE "
            "initialises from its audio encoder)",
            path,
            k,
            n,
            100 * mouth.min_face_fraction,
        )
        return VideoRead(wave, cfg.sample_rate, {}, VideoDetails(info, track, False))
    if track.crop == "face":
        log.info(
            "%s: mouth found in %d of %d frames at %.3g fps%s",
            path,
            k,
            n,
            track.fps,
            "" if k == n else "; the others use boxes interpolated between them",
        )
    else:
        log.info("%s: frames used as mouth ROIs as they are (--crop none or an already-cropped mouth video)", path)
    return VideoRead(wave, cfg.sample_rate, {"lips": track.rois}, VideoDetails(info, track, True))
