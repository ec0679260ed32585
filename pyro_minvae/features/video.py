"""Visual streams: alignment of video-rate frames to STFT frames and flattening into model features.

Shapes: lip ROIs ``(N_v, H, W)`` at ``fps`` frames per second, integers in 0..255 (any integer dtype) or floats in
[0, 1]; landmarks ``(N_v, P, 2)`` real numbers (pixels). After :func:`align_to_stft` every stream has N = number of
STFT frames rows. The ``check_*`` functions raise ``ValueError`` with a message that ends in the fix; callers that
know the file prefix its name (:meth:`pyro_minvae.data.modalities.Modality.from_array`).
"""

from __future__ import annotations

import numpy as np

from ..errors import UserInputError
from .config import FeatureConfig

# Frame-count mismatch (video duration vs audio duration) tolerated before rejecting, in seconds.
DURATION_TOLERANCE_S = 0.25
# Frame rates accepted for a visual stream (frames per second); beyond them the number is a mistake, not a camera.
MIN_FPS, MAX_FPS = 1.0, 1000.0


def check_fps(fps, source: str = "video") -> float:
    """``fps`` as a float, or ``UserInputError`` naming ``source`` unless ``MIN_FPS <= fps <= MAX_FPS`` (0, NaN,
    Inf, negative and non-numbers are refused rather than replaced by a default)."""
    try:
        value = float(fps)
    except (TypeError, ValueError):
        value = float("nan")
    if not MIN_FPS <= value <= MAX_FPS:  # also False for NaN
        raise UserInputError(
            f"{source}: frame rate {fps!r} is not a usable fps; give the video's frame rate "
            f"(between {MIN_FPS:g} and {MAX_FPS:g}, e.g. 25 or 30)"
        )
    return value


def _check_real(arr: np.ndarray, what: str) -> None:
    """Refuse complex, boolean, text and object arrays before any conversion (no numpy ComplexWarning)."""
    if arr.dtype.kind not in "uif":
        kind = {"c": "complex numbers", "b": "booleans", "O": "Python objects", "U": "text", "S": "bytes"}.get(
            arr.dtype.kind, f"dtype {arr.dtype}"
        )
        raise ValueError(f"{what} hold {kind}; store real numbers (uint8 0..255 or float 0..1 for lip ROIs)")


def lip_frames(arr: np.ndarray, size: int) -> np.ndarray:
    """Lip ROIs in any layout this package reads -> ``(N, size, size)``, values untouched: ``(N, S, S)`` as it is,
    ``(S, S, N)`` frames last (MATLAB), ``(S*S, N)`` one column-major frame per column (NTCD-TIMIT's ``*Raw.npy``
    files, as the MIN-VAE authors store them) and ``(N, S*S)`` one row-major frame per row (``S = size``). Any
    other shape is returned as it is, for :func:`check_lips` to refuse."""
    s2 = size * size
    if arr.ndim == 3 and arr.shape[1:] == (size, size):
        return arr
    if arr.ndim == 3 and arr.shape[:2] == (size, size):
        return np.transpose(arr, (2, 0, 1))
    if arr.ndim == 2 and arr.shape[0] == s2:
        return arr.T.reshape(-1, size, size).transpose(0, 2, 1)  # column-major frames
    if arr.ndim == 2 and arr.shape[1] == s2:
        return arr.reshape(-1, size, size)
    return arr


def check_lips(frames: np.ndarray) -> None:
    """``ValueError`` unless ``frames`` are ``(N, H, W)`` real lip ROIs: integers in 0..255 or floats in [0, 1]."""
    _check_real(frames, "lip ROIs")
    if frames.ndim != 3:
        raise ValueError(
            f"lip frames must have shape (N, H, W); got {frames.shape}; give grayscale mouth ROIs, one frame per "
            "row (or flattened: (H*W, N) column-major as NTCD-TIMIT stores them, or (N, H*W))"
        )
    if not frames.size:
        return
    if frames.dtype.kind == "f" and not np.isfinite(frames).all():
        raise ValueError("lip ROIs contain NaN or Inf; re-extract the mouth ROIs")
    top, low = float(frames.max()), float(frames.min())
    if frames.dtype.kind in "ui":
        if top > 255 or low < 0:
            raise ValueError(
                f"integer lip ROIs must lie in 0..255; got values from {low:g} to {top:g}; store "
                "grayscale pixels (uint8)"
            )
    elif top > 1.0 or low < 0.0:  # e.g. float frames still in 0..255: silent garbage otherwise
        bound = f"up to {top:g}" if top > 1.0 else f"down to {low:g}"
        raise ValueError(f"float lip ROIs must lie in [0, 1]; got values {bound} (store uint8 0..255 or divide by 255)")


def check_landmarks(points: np.ndarray) -> None:
    """``ValueError`` unless ``points`` are ``(N, P, 2)`` finite real coordinates."""
    _check_real(points, "landmarks")
    if points.ndim != 3 or points.shape[-1] != 2:
        raise ValueError(f"landmarks must have shape (N, P, 2); got {points.shape}")
    if points.dtype.kind == "f" and not np.isfinite(points).all():
        raise ValueError("landmarks contain NaN or Inf; re-extract the landmarks")


def check_duration(
    n_video: int,
    n_samples: int,
    cfg: FeatureConfig,
    fps: float | None = None,
    source: str = "video",
    tolerance_s: float = DURATION_TOLERANCE_S,
) -> None:
    """Raise ``UserInputError`` when the video and the audio durations differ by more than ``tolerance_s``."""
    fps = cfg.video_fps if fps is None else check_fps(fps, source)
    dv = n_video / fps
    da = n_samples / cfg.sample_rate
    if abs(dv - da) > tolerance_s:
        raise UserInputError(
            f"{source}: {n_video} frames at {fps:g} fps = {dv:.2f} s but the audio lasts {da:.2f} s "
            f"(tolerance {tolerance_s:g} s); give the lip array that belongs to this recording"
        )


def align_to_stft(frames: np.ndarray, n_stft: int, cfg: FeatureConfig, fps: float | None = None) -> np.ndarray:
    """Resample a video-rate stream ``(N_v, ...)`` to ``(n_stft, ...)`` by nearest frame in time.

    STFT frame n is centred at ``n * hop / sr`` seconds; video frame k covers ``[k / fps, (k + 1) / fps)``.
    Past the end of the video the last frame is repeated (as the published code intends).
    """
    if frames.ndim < 1 or frames.shape[0] == 0:
        raise ValueError("visual stream has no frames")
    fps = cfg.video_fps if fps is None else check_fps(fps)
    t = np.arange(n_stft) * cfg.hop_length / cfg.sample_rate
    idx = np.clip(np.floor(t * fps + 1e-9).astype(np.int64), 0, frames.shape[0] - 1)
    return frames[idx]


def lips_to_features(frames: np.ndarray) -> np.ndarray:
    """Lip ROIs ``(N, H, W)`` (integers 0..255 or floats 0..1, see :func:`check_lips`) -> ``(N, H*W)`` float32 in
    [0, 1]."""
    check_lips(frames)
    x = frames.astype(np.float32)
    if frames.dtype.kind in "ui":
        x /= 255.0
    return x.reshape(x.shape[0], -1)


def landmarks_to_features(points: np.ndarray) -> np.ndarray:
    """Landmarks ``(N, P, 2)`` in ROI pixel coordinates -> ``(N, 2P)`` float32, centred and scaled per clip."""
    check_landmarks(points)
    p = points.astype(np.float32)
    if not np.isfinite(p).all():  # float64 coordinates beyond float32's range
        raise ValueError("landmarks contain NaN or Inf; re-extract the landmarks")
    centre = p.mean(axis=(0, 1), keepdims=True)
    scale = p.std() + 1e-6
    return ((p - centre) / scale).reshape(p.shape[0], -1)
