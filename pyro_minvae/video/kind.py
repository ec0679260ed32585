"""What kind of picture a video holds: an already-cropped mouth (88x88 LRS3/TCD-TIMIT style, 67x67 NTCD style) or
a scene with a face in it, so that ``--crop auto`` knows whether to find the mouth.

Rule (``auto``): a small, nearly square picture (both sides <= :data:`MOUTH_MAX_SIDE` pixels, aspect within
:data:`MOUTH_ASPECT`) in which the face detector finds no face in most of :data:`PROBE_FRAMES` frames spread over
the clip is a mouth crop; everything else is a face video (whose mouth is then found frame by frame).
"""

from __future__ import annotations

import os
from typing import Optional

from .container import VideoInfo, iter_frames, probe
from .faces import FaceDetector, default_detector

CROPS = ("auto", "face", "none")
MOUTH_MAX_SIDE = 160
MOUTH_ASPECT = (0.8, 1.25)
PROBE_FRAMES = 8


def looks_like_mouth_crop(info: VideoInfo) -> bool:
    """Small and nearly square: the shape of a mouth-ROI video."""
    w, h = info.width, info.height
    return max(w, h) <= MOUTH_MAX_SIDE and MOUTH_ASPECT[0] <= w / max(h, 1) <= MOUTH_ASPECT[1]


def faces_in_sample(path: str | os.PathLike, detector: FaceDetector, info: VideoInfo,
                    n: int = PROBE_FRAMES) -> float:
    """Fraction of ``n`` frames spread evenly over the clip in which ``detector`` finds a face."""
    total = info.n_frames or int(round(info.duration * info.fps)) or n
    wanted = {int(i) for i in (  # evenly spaced frame indices
        (k + 0.5) * total / n for k in range(n))}
    hits = seen = 0
    for i, rgb in enumerate(iter_frames(path)):
        if i in wanted:
            seen += 1
            hits += detector.find(rgb) is not None
    return hits / max(seen, 1)


def resolve_crop(crop: str, path: str | os.PathLike, info: Optional[VideoInfo] = None,
                 detector: Optional[FaceDetector] = None) -> str:
    """``"face"`` (find the mouth in each frame) or ``"none"`` (the frames are the mouth) for ``--crop crop``."""
    if crop not in CROPS:
        raise ValueError(f"crop must be one of {CROPS}; got {crop!r}")
    if crop != "auto":
        return crop
    info = info or probe(path)
    if not looks_like_mouth_crop(info):
        return "face"
    return "face" if faces_in_sample(path, detector or default_detector(), info) >= 0.5 else "none"
