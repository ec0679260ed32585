"""A video file -> its mouth ROIs, one per video frame: faces found, boxes smoothed, mouths cropped.

Two passes over the file (find, then crop with the smoothed boxes), so memory stays at one frame plus the ROIs.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..errors import UserInputError
from .container import VideoInfo, iter_frames, probe
from .faces import FaceDetector, default_detector
from .kind import resolve_crop
from .mouth import MouthConfig, crop_resize, fill_and_smooth, lips_in_roi, raw_boxes

log = logging.getLogger("pyro_minvae")


class NoFaceError(UserInputError):
    """No frame of the video shows a face the detector can find."""


@dataclass(frozen=True)
class MouthTrack:
    """Mouth ROIs of a video.

    ``rois`` ``(N, size, size)`` float32 in [0, 1] (grayscale), one per video frame at ``fps``; ``found`` ``(N,)``
    bool, the frames where a face was found (the others use interpolated boxes; all True when ``crop`` is
    ``"none"``); ``boxes`` ``(N, 3)`` ``[cx, cy, side]`` frame pixels (``None`` without cropping); ``lips``
    ``(N, 20, 2)`` lip landmarks in ROI pixels, NaN where not found (``None`` without landmarks); ``crop``:
    ``"face"`` or ``"none"``.
    """

    rois: np.ndarray
    found: np.ndarray
    fps: float
    crop: str
    boxes: Optional[np.ndarray] = None
    lips: Optional[np.ndarray] = None

    @property
    def face_fraction(self) -> float:
        return float(self.found.mean()) if self.found.size else 0.0


def track_mouth(
    path: str | os.PathLike,
    config: MouthConfig = MouthConfig(),
    crop: str = "auto",
    detector: Optional[FaceDetector] = None,
    info: Optional[VideoInfo] = None,
) -> MouthTrack:
    """The :class:`MouthTrack` of the video ``path`` (``crop``: ``auto`` | ``face`` | ``none``, see
    :func:`~pyro_minvae.video.kind.resolve_crop`).

    Raises :class:`NoFaceError` (one line) when cropping is needed and no frame has a face.
    """
    info = info or probe(path)
    detector = detector or (default_detector() if crop != "none" else None)
    mode = resolve_crop(crop, path, info, detector)
    if mode == "none":
        rois = np.stack([_squash(g, config.size) for g in iter_frames(path, "gray")])
        return MouthTrack(rois, np.ones(rois.shape[0], bool), info.fps, "none")
    findings: list = []
    for rgb in iter_frames(path):
        prev = findings[-1] if findings else None
        findings.append(detector.find(rgb, near=None if prev is None else prev.box))
    if not findings:
        raise UserInputError(f"{path}: the video has no frames; give a talking-face video")
    raw = raw_boxes(findings, config.scale, config.lift)
    found = np.isfinite(raw).all(axis=1)
    if not found.any():
        raise NoFaceError(
            f"{path}: no face found in any of its {len(findings)} frames; give a video with a "
            "frontal face (or --crop none if it is already a mouth crop)"
        )
    boxes = fill_and_smooth(raw, config.smooth)
    rois = np.stack(
        [crop_resize(g, *boxes[i], config.size) for i, g in enumerate(iter_frames(path, "gray")) if i < len(boxes)]
    )
    np.clip(rois / 255.0, 0.0, 1.0, out=rois)
    return MouthTrack(
        rois.astype(np.float32), found, info.fps, "face", boxes, lips_in_roi(findings, boxes, config.size)
    )


def _squash(gray: np.ndarray, size: int) -> np.ndarray:
    """A whole (mouth-crop) frame resized to ``size`` x ``size``, float32 in [0, 1]."""
    if gray.shape == (size, size):
        return gray.astype(np.float32) / 255.0
    from PIL import Image

    img = Image.fromarray(gray).resize((size, size), Image.BILINEAR)
    return np.asarray(img, dtype=np.float32) / 255.0
