"""``--save-lips DIR``: the mouth ROIs a model sees, as an array and as a contact-sheet picture.

``DIR/<stem>.lips.npy``: ``(N, size, size)`` float32 in [0, 1], one ROI per video frame;
``DIR/<stem>.lips.png``: up to :data:`SHEET_TILES` ROIs evenly spread over the clip, in rows of
:data:`SHEET_COLUMNS`, each 2x enlarged; a frame whose box was interpolated (no face found) has a red frame.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np

from ..atomic import atomic_path

SHEET_TILES = 48
SHEET_COLUMNS = 12
ZOOM = 2
GAP = 2


def contact_sheet(
    rois: np.ndarray, found: Optional[np.ndarray] = None, tiles: int = SHEET_TILES, columns: int = SHEET_COLUMNS
) -> np.ndarray:
    """RGB uint8 picture ``(H, W, 3)`` of up to ``tiles`` ROIs ``(N, s, s)`` in [0, 1] spread evenly over N."""
    n = rois.shape[0]
    idx = np.unique(np.linspace(0, n - 1, min(tiles, n)).round().astype(int))
    s = rois.shape[1] * ZOOM
    cols = min(columns, len(idx))
    rows = -(-len(idx) // cols)
    sheet = np.full((rows * (s + GAP) + GAP, cols * (s + GAP) + GAP, 3), 255, np.uint8)
    for k, i in enumerate(idx):
        tile = np.kron(np.clip(rois[i], 0, 1), np.ones((ZOOM, ZOOM)))
        y, x = GAP + (k // cols) * (s + GAP), GAP + (k % cols) * (s + GAP)
        sheet[y : y + s, x : x + s] = (tile[..., None] * 255).round().astype(np.uint8)
        if found is not None and not found[i]:
            sheet[y : y + s, x : x + 2] = sheet[y : y + s, x + s - 2 : x + s] = (220, 30, 30)
            sheet[y : y + 2, x : x + s] = sheet[y + s - 2 : y + s, x : x + s] = (220, 30, 30)
    return sheet


def save_lips(
    folder: str | os.PathLike, stem: str, rois: np.ndarray, found: Optional[np.ndarray] = None
) -> tuple[Path, Path]:
    """Write ``<stem>.lips.npy`` and ``<stem>.lips.png`` into ``folder`` (created; atomic writes); returns both."""
    from PIL import Image

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    npy, png = out / f"{stem}.lips.npy", out / f"{stem}.lips.png"
    with atomic_path(npy, suffix=".npy") as tmp:
        np.save(tmp, np.asarray(rois, dtype=np.float32))
    with atomic_path(png, suffix=".png") as tmp:
        Image.fromarray(contact_sheet(rois, found)).save(tmp, format="PNG")
    return npy, png
