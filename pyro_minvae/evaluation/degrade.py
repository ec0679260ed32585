"""Visual-stream degradations for robustness experiments (the audio is left untouched).

A degradation maps the evaluation's ``video`` dict (``"lips"`` ``(N_v, H, W)`` uint8, ``"landmarks"``
``(N_v, P, 2)`` float32, ``"fps"``) to a degraded copy of the same shapes, given a seeded
``numpy.random.Generator``. Choose one with a spec string ``NAME:VALUE`` (see :func:`parse_degradation`):

- ``drop:P``     each frame is lost with probability P and the last received frame is shown instead (freeze);
- ``occlude:F``  a grey square covering fraction F of the mouth image hides the same place in every frame
                 (landmarks unchanged: a tracker would still report its last estimate);
- ``noise:S``    Gaussian sensor noise with standard deviation S grey levels on the lips, S/10 pixels on the
                 landmarks;
- ``shift:K``    the video lags the audio by K frames (K < 0: leads), edges padded with the first/last frame.

New degradations: ``VIDEO_DEGRADATIONS.register("name", factory)`` with ``factory(value: float)``.
"""

from __future__ import annotations

import numpy as np

from ..errors import UserInputError
from ..registry import Registry

VIDEO_DEGRADATIONS: Registry = Registry("video degradation")


def _copy(video: dict) -> dict:
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in video.items()}


@VIDEO_DEGRADATIONS.register("drop")
class DropFrames:
    def __init__(self, value: float):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"drop probability must be in [0, 1); got {value}")
        self.p = float(value)

    def __call__(self, video: dict, rng: np.random.Generator) -> dict:
        out = _copy(video)
        n = next((v.shape[0] for k, v in video.items() if isinstance(v, np.ndarray)), 0)
        lost = rng.random(n) < self.p
        lost[0] = False  # the first frame always arrives
        idx = np.arange(n)
        idx[lost] = 0
        idx = np.maximum.accumulate(idx)  # index of the last received frame
        for k in ("lips", "landmarks"):
            if k in out:
                out[k] = out[k][idx]
        return out


@VIDEO_DEGRADATIONS.register("occlude")
class Occlude:
    def __init__(self, value: float):
        if not 0.0 < value <= 1.0:
            raise ValueError(f"occluded fraction must be in (0, 1]; got {value}")
        self.f = float(value)

    def __call__(self, video: dict, rng: np.random.Generator) -> dict:
        out = _copy(video)
        if "lips" in out:
            lips = out["lips"]
            h, w = lips.shape[1:3]
            side_h, side_w = max(1, int(round(h * np.sqrt(self.f)))), max(1, int(round(w * np.sqrt(self.f))))
            y0 = int(rng.integers(0, h - side_h + 1))
            x0 = int(rng.integers(0, w - side_w + 1))
            lips[:, y0 : y0 + side_h, x0 : x0 + side_w] = 128 if lips.dtype == np.uint8 else 0.5
        return out


@VIDEO_DEGRADATIONS.register("noise")
class SensorNoise:
    def __init__(self, value: float):
        if value < 0:
            raise ValueError(f"noise standard deviation must be >= 0; got {value}")
        self.sigma = float(value)

    def __call__(self, video: dict, rng: np.random.Generator) -> dict:
        out = _copy(video)
        if "lips" in out:
            lips = out["lips"]
            scale = 1.0 if lips.dtype == np.uint8 else 1.0 / 255.0
            noisy = lips.astype(np.float64) + rng.normal(0.0, self.sigma * scale, lips.shape)
            hi = 255 if lips.dtype == np.uint8 else 1.0
            out["lips"] = np.clip(np.rint(noisy) if lips.dtype == np.uint8 else noisy, 0, hi).astype(lips.dtype)
        if "landmarks" in out:
            lm = out["landmarks"]
            out["landmarks"] = (lm + rng.normal(0.0, self.sigma / 10.0, lm.shape)).astype(lm.dtype)
        return out


@VIDEO_DEGRADATIONS.register("shift")
class TimeShift:
    def __init__(self, value: float):
        if value != int(value):
            raise ValueError(f"shift must be a whole number of frames; got {value}")
        self.k = int(value)

    def __call__(self, video: dict, rng: np.random.Generator) -> dict:
        out = _copy(video)
        for key in ("lips", "landmarks"):
            if key in out:
                x = out[key]
                idx = np.clip(np.arange(x.shape[0]) - self.k, 0, x.shape[0] - 1)
                out[key] = x[idx]
        return out


def parse_degradation(spec: str | None):
    """``"NAME:VALUE"`` -> degradation object (``None`` for ``None``/``""``/``"none"``); bad specs raise
    ``UserInputError`` listing the valid names."""
    if spec is None or spec in ("", "none"):
        return None
    name, sep, value = spec.partition(":")
    valid = ", ".join(VIDEO_DEGRADATIONS.names())
    if not sep or name not in VIDEO_DEGRADATIONS:
        raise UserInputError(
            f"video degradation {spec!r}: expected NAME:VALUE with NAME one of {valid} (e.g. drop:0.5)"
        )
    try:
        if not np.isfinite(float(value)):
            raise ValueError(f"the value must be a finite number; got {value}")
        deg = VIDEO_DEGRADATIONS.build(name, value=float(value))
    except ValueError as exc:
        raise UserInputError(f"video degradation {spec!r}: {exc}") from None
    deg.spec = spec
    return deg
