"""What kind of picture a video holds: an already-cropped mouth (88x88 LRS3/TCD-TIMIT style, 67x67 NTCD style) or
a scene with a face in it, so that ``--crop auto`` knows whether to find the mouth.

Rule (``auto``): a small, nearly square picture (both sides <= :data:`MOUTH_MAX_SIDE` pixels, aspect within
:data:`MOUTH_ASPECT`) that has some content (pixel standard deviation above :data:`FLAT_STD` grey levels: a blank
picture is no mouth) and in which the face detector finds no face in most of :data:`PROBE_FRAMES` frames spread
over the clip is a mouth crop; everything else is a face video (whose mouth is then found frame by frame, and
which is refused when no frame has a face).
"""

from __future__ import annotations

import os
from typing import Optional

import numpy as np

from .container import VideoInfo, iter_frames, probe
from .faces import FaceDetector, default_detector

CROPS = ("auto", "face", "none")
MOUTH_MAX_SIDE = 160
MOUTH_ASPECT = (0.8, 1.25)
PROBE_FRAMES = 8
FLAT_STD = 4.0


def looks_like_mouth_crop(info: VideoInfo) -> bool:
    """Small and nearly square: the shape of a mouth-ROI video."""
    w, h = info.width, info.height
    return max(w, h) <= MOUTH_MAX_SIDE and MOUTH_ASPECT[0] <= w / max(h, 1) <= MOUTH_ASPECT[1]


def sample_frames(path: str | os.PathLike, info: VideoInfo, n: int = PROBE_FRAMES) -> list:
    """Up to ``n`` RGB frames spread evenly over the clip."""
    total = info.n_frames or int(round(info.duration * info.fps)) or n
    wanted = {int((k + 0.5) * total / n) for k in range(n)}
    return [rgb for i, rgb in enumerate(iter_frames(path)) if i in wanted]


def is_mouth_crop(frames: list, detector: FaceDetector) -> bool:
    """Sampled frames of a small square video: not blank, and no face in most of them."""
    if not frames or float(np.median([f.std() for f in frames])) <= FLAT_STD:
        return False
    return sum(detector.find(f) is not None for f in frames) < 0.5 * len(frames)


def resolve_crop(
    crop: str, path: str | os.PathLike, info: Optional[VideoInfo] = None, detector: Optional[FaceDetector] = None
) -> str:
    """``"face"`` (find the mouth in each frame) or ``"none"`` (the frames are the mouth) for ``--crop crop``."""
    if crop not in CROPS:
        raise ValueError(f"crop must be one of {CROPS}; got {crop!r}")
    if crop != "auto":
        return crop
    info = info or probe(path)
    if not looks_like_mouth_crop(info):
        return "face"
    return "none" if is_mouth_crop(sample_frames(path, info), detector or default_detector()) else "face"
