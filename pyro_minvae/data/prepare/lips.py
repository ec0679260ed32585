"""Reading users' lip-ROI arrays (``.npy`` or MATLAB ``.mat``) into ``(N, 67, 67)`` uint8.

Accepted layouts (``S = 67``):

- ``(N, S, S)`` frames first (this package's own format);
- ``(S, S, N)`` frames last (MATLAB habit);
- ``(S*S, N)``: one flattened frame per column in MATLAB (column-major) order - the ``*Raw.npy`` files used
  with NTCD-TIMIT by the MIN-VAE authors;
- ``(N, S*S)``: one row-major flattened frame per row.

Values: uint8, or float in [0, 1] (scaled by 255), or float in [0, 255]. Anything else is a one-line
``UserInputError`` naming the file.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ...errors import UserInputError
from ...features.video import lip_frames

LIP_SIZE = 67


def load_lips(path: str | os.PathLike, size: int = LIP_SIZE) -> np.ndarray:
    """Load a lip-ROI array as ``(N, size, size)`` uint8; raises ``UserInputError`` on bad content."""
    p = Path(path)
    if not p.exists():
        raise UserInputError(f"{p}: lip array not found; check the path")
    if not p.is_file():  # a folder, or a pipe that would block the reader
        raise UserInputError(f"{p}: not a regular file; give a lip array (.npy or .mat)")
    try:
        if p.suffix.lower() == ".mat":
            arr = _load_mat(p, size)
        else:
            arr = np.load(p, allow_pickle=False)
    except UserInputError:
        raise
    except Exception as exc:
        raise UserInputError(
            f"{p}: not a readable lip array ({type(exc).__name__}); save it with numpy.save "
            f"as (N, {size}, {size}) uint8"
        ) from None
    return to_frames(np.asarray(arr), size, source=str(p))


def _load_mat(p: Path, size: int) -> np.ndarray:
    from scipy.io import loadmat

    try:
        mat = loadmat(str(p))
    except NotImplementedError:
        raise UserInputError(
            f"{p}: MATLAB v7.3 (HDF5) files are not supported; re-save with save(..., '-v7') or convert to .npy"
        ) from None
    arrays = [
        v
        for k, v in sorted(mat.items())
        if not k.startswith("__")
        and isinstance(v, np.ndarray)
        and v.dtype.kind in "uif"
        and v.size
        and v.size % (size * size) == 0
    ]
    if not arrays:
        raise UserInputError(
            f"{p}: no numeric variable with {size}x{size} frames found; store the lip ROIs "
            f"as one (N, {size}, {size}) or ({size * size}, N) array"
        )
    return max(arrays, key=lambda a: a.size)


def to_frames(arr: np.ndarray, size: int = LIP_SIZE, source: str = "lip array") -> np.ndarray:
    """Any accepted layout (module docstring) -> ``(N, size, size)`` uint8."""
    frames = lip_frames(arr, size)
    if frames.ndim != 3 or frames.shape[1:] != (size, size):
        s2 = size * size
        raise UserInputError(
            f"{source}: lip array has shape {arr.shape}; expected (N, {size}, {size}) frames "
            f"(or ({s2}, N) / (N, {s2}) flattened); crop/resize the mouth to {size}x{size}"
        )
    if frames.shape[0] == 0:
        raise UserInputError(f"{source}: lip array has no frames; give the ROIs of the whole recording")
    if frames.dtype == np.uint8:
        return np.ascontiguousarray(frames)
    if frames.dtype.kind not in "uif":
        raise UserInputError(f"{source}: lip array has dtype {frames.dtype}; use uint8 or float")
    f = frames.astype(np.float64)
    if not np.isfinite(f).all():
        raise UserInputError(f"{source}: lip array contains NaN or Inf; re-extract the mouth ROIs")
    lo, hi = float(f.min()), float(f.max())
    if lo < 0 or hi > 255:
        raise UserInputError(f"{source}: lip pixel values span [{lo:g}, {hi:g}]; expected [0, 1] or [0, 255]")
    if hi <= 1.0 and frames.dtype.kind == "f":
        f = f * 255.0
    return np.ascontiguousarray(np.round(f).astype(np.uint8))
