"""Visual streams: alignment of video-rate frames to STFT frames and flattening into model features.

Shapes: lip ROIs ``(N_v, H, W)`` uint8 or float in [0, 1] at ``fps``; landmarks ``(N_v, P, 2)`` float.
After :func:`align_to_stft` every stream has N = number of STFT frames rows.
"""

from __future__ import annotations

import numpy as np

from ..errors import UserInputError
from .config import FeatureConfig

# Frame-count mismatch (video duration vs audio duration) tolerated before rejecting, in seconds.
DURATION_TOLERANCE_S = 0.25


def check_duration(n_video: int, n_samples: int, cfg: FeatureConfig, fps: float | None = None,
                   source: str = "video", tolerance_s: float = DURATION_TOLERANCE_S) -> None:
    """Raise ``UserInputError`` when the video and the audio durations differ by more than ``tolerance_s``."""
    fps = fps or cfg.video_fps
    dv = n_video / fps
    da = n_samples / cfg.sample_rate
    if abs(dv - da) > tolerance_s:
        raise UserInputError(
            f"{source}: {n_video} frames at {fps:g} fps = {dv:.2f} s but the audio lasts {da:.2f} s "
            f"(tolerance {tolerance_s:g} s); give the lip array that belongs to this recording")


def align_to_stft(frames: np.ndarray, n_stft: int, cfg: FeatureConfig, fps: float | None = None) -> np.ndarray:
    """Resample a video-rate stream ``(N_v, ...)`` to ``(n_stft, ...)`` by nearest frame in time.

    STFT frame n is centred at ``n * hop / sr`` seconds; video frame k covers ``[k / fps, (k + 1) / fps)``.
    Past the end of the video the last frame is repeated (as the published code intends).
    """
    if frames.ndim < 1 or frames.shape[0] == 0:
        raise ValueError("visual stream has no frames")
    fps = fps or cfg.video_fps
    t = np.arange(n_stft) * cfg.hop_length / cfg.sample_rate
    idx = np.clip(np.floor(t * fps + 1e-9).astype(np.int64), 0, frames.shape[0] - 1)
    return frames[idx]


def lips_to_features(frames: np.ndarray) -> np.ndarray:
    """Lip ROIs ``(N, H, W)`` (uint8 0..255 or float 0..1) -> ``(N, H*W)`` float32 in [0, 1]."""
    if frames.ndim != 3:
        raise ValueError(f"lip ROIs must have shape (N, H, W); got {frames.shape}")
    x = frames.astype(np.float32)
    if frames.dtype == np.uint8:
        x /= 255.0
    if not np.isfinite(x).all():
        raise ValueError("lip ROIs contain NaN or Inf")
    if x.size and (x.max() > 1.0 or x.min() < 0.0):  # e.g. float frames still in 0..255: silent garbage otherwise
        bound = f"up to {x.max():g}" if x.max() > 1.0 else f"down to {x.min():g}"
        raise ValueError(f"float lip ROIs must lie in [0, 1]; got values {bound} (uint8 frames may use 0..255)")
    return x.reshape(x.shape[0], -1)


def landmarks_to_features(points: np.ndarray) -> np.ndarray:
    """Landmarks ``(N, P, 2)`` in ROI pixel coordinates -> ``(N, 2P)`` float32, centred and scaled per clip."""
    if points.ndim != 3 or points.shape[-1] != 2:
        raise ValueError(f"landmarks must have shape (N, P, 2); got {points.shape}")
    p = points.astype(np.float32)
    if not np.isfinite(p).all():
        raise ValueError("landmarks contain NaN or Inf")
    centre = p.mean(axis=(0, 1), keepdims=True)
    scale = p.std() + 1e-6
    return ((p - centre) / scale).reshape(p.shape[0], -1)
