"""Raw visual streams -> frame-aligned model features, with every check, for one model and one waveform.

The one path used by ``enhance`` (file and manifest), the Python :class:`~pyro_minvae.enhancement.Enhancer` and
``evaluate``: each stream goes through its modality's :meth:`~pyro_minvae.data.modalities.Modality.from_array`
(fps, dtype, shape, finiteness, range, duration against the audio, alignment to the STFT frames), then its
feature size is checked against the size the checkpoint was trained on, and a model that cannot run without a
stream (AV-CVAE's conditioner) gets a one-line error when it is missing.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping

import numpy as np

from ..errors import UserInputError
from ..features import FeatureConfig
from ..registry import MODALITIES
from .inputs import Stream

log = logging.getLogger("pyro_minvae")


def visual_features(
    model,
    cfg: FeatureConfig,
    streams: Mapping[str, Stream],
    n_samples: int,
    missing_fix: str = "give it with --video/--landmarks",
) -> dict:
    """``{name: (N, D) float32}`` with ``N = cfg.n_frames(n_samples)`` for the streams ``model`` reads.

    Streams the model does not read are logged and skipped. Raises ``UserInputError`` (naming the stream's file)
    for unusable streams and, with ``missing_fix`` as the fix, when a stream the model needs is absent.
    """
    n = cfg.n_frames(n_samples)
    expected = model.spec.get("kwargs", {}).get("input_dims", {}) if model.spec else {}
    out = {}
    for name, stream in streams.items():
        if name not in model.modalities or name == "audio":
            log.info("the model does not read the %s stream; %s ignored", name, stream.source)
            continue
        feats = MODALITIES.get(name).from_array(
            stream.array, n, cfg, stream.fps, n_samples=n_samples, source=stream.source
        )
        want = expected.get(name)
        if want is not None and feats.shape[1] != want:
            raise UserInputError(f"{stream.source}: {_size_mismatch(name, stream.array, feats.shape[1], want)}")
        out[name] = np.ascontiguousarray(feats, dtype=np.float32)
    require_streams(model, out, missing_fix)
    return out


def _size_mismatch(name: str, arr: np.ndarray, got: int, want: int) -> str:
    side = math.isqrt(want)
    if name == "lips" and arr.ndim == 3 and side * side == want:
        return f"lip frames are {arr.shape[1]}x{arr.shape[2]} pixels; this checkpoint expects {side}x{side} mouth ROIs"
    return f"{name} features have {got} values per frame; this checkpoint was trained on {want}"


def require_streams(model, visual: Mapping[str, object], fix: str) -> None:
    """Models with a visual conditioner (AV-CVAE) cannot run without it; MIN-VAE can (audio initialisation). An
    ensemble names the member that needs it."""
    from ..infer.ensemble import members

    for member in members(model):
        cond = member.conditioner
        if cond is not None and cond.modality not in visual:
            raise UserInputError(
                f"this {member.spec.get('family', 'model')} checkpoint needs the {cond.modality!r} stream; {fix}"
            )
