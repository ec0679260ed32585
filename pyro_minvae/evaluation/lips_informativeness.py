"""How much a model's lips encoder knows about the speech: the figure that tells rendered from real mouths.

For one clip with clean speech ``s`` and its mouth ROIs, the lips encoder's posterior mean ``z_v`` (no audio
involved) is decoded to a speech variance ``sigma^2(z_v)`` ``(N, F)``. Two per-frame energy traces are
compared, both in dB:

- ``decoded``: ``10 log10 mean_f sigma^2_fn(z_v)``, the energy the model *expects* from the lips alone;
- ``envelope``: ``10 log10 mean_f |s_fn|^2``, the real speech energy.

Reported per clip (:class:`LipsFigure`):

- ``r``: Pearson correlation of the two traces over frames (the headline figure);
- ``r_shifted``: the same with the lips circularly shifted by half the clip, a chance reference that keeps
  the lips' own statistics; informative lips give ``r`` well above ``r_shifted``;
- ``auc``: how well ``decoded`` ranks speech frames above silent ones (energy VAD on the clean speech,
  frames within 30 dB of the loudest), 0.5 = chance;
- ``lips_responsibility``: for a mixture model, the mean posterior responsibility of the lips component on
  the clean audio + lips frames (how often the model would trust the lips), else NaN.

Frames are the checkpoint's STFT frames; the lips are aligned to them at the clip's own frame rate.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Iterable

import numpy as np
import torch

from ..features.config import FeatureConfig
from ..features.stft import peak_normalise, power_frames
from ..features.video import align_to_stft, lips_to_features
from ..models.speech_vae import as_batch

VAD_RANGE_DB = 30.0
_EPS = 1e-10


@dataclass(frozen=True)
class LipsFigure:
    """Lips informativeness of one clip (see module docstring)."""

    clip: str
    n_frames: int
    r: float
    r_shifted: float
    auc: float
    lips_responsibility: float

    def as_dict(self) -> dict:
        return asdict(self)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two 1-d arrays; NaN when either is constant."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    da, db = a - a.mean(), b - b.mean()
    den = math.sqrt(float((da * da).sum()) * float((db * db).sum()))
    return float((da * db).sum() / den) if den > 0 else math.nan


def rank_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for the boolean labels ``positive`` (ties count half)."""
    scores, positive = np.asarray(scores, np.float64), np.asarray(positive, bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):  # average ranks over ties
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = 0.5 * (i + j) + 1.0
        i = j + 1
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _energy_db(power: torch.Tensor) -> np.ndarray:
    return (10.0 * torch.log10(power.mean(-1) + _EPS)).double().cpu().numpy()


@torch.no_grad()
def _decoded_energy(model, audio: torch.Tensor, lips: torch.Tensor) -> np.ndarray:
    batch = as_batch(audio, {"lips": lips}, model.modalities)
    z = model.init_latents(batch, prefer="lips")
    return _energy_db(model.speech_log_var(z, batch).exp())


def _lips_responsibility(model, audio: torch.Tensor, lips: torch.Tensor) -> float:
    from ..infer.objectives import component_responsibilities

    if not model.is_mixture or "lips" not in model.guide_net.modalities:
        return math.nan
    names = list(model.guide_net.modalities)
    batch = as_batch(audio, {"lips": lips}, model.modalities)
    # the responsibilities are a Monte-Carlo estimate: a fixed seed makes the figure repeatable
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        resp = component_responsibilities(model.model, model.guide, batch)
    return float(resp[:, names.index("lips")].mean())


def lips_figure(
    model, cfg: FeatureConfig, clean: np.ndarray, lip_frames: np.ndarray, fps: float, clip: str = "clip"
) -> LipsFigure:
    """The figure for one clip: ``clean`` speech ``(T,)`` at ``cfg.sample_rate``; ``lip_frames`` ``(N_v, H, W)``
    mouth ROIs (uint8 0..255 or float in [0, 1]) at ``fps`` frames per second."""
    if "lips" not in model.modalities:
        raise ValueError("this checkpoint has no lips encoder")
    model.eval()
    wave, _ = peak_normalise(np.asarray(clean, np.float32))
    audio = power_frames(wave, cfg).float()
    n = audio.shape[0]
    lips_np = lips_to_features(align_to_stft(lip_frames, n, cfg, fps))
    lips = torch.from_numpy(lips_np)
    shifted = torch.from_numpy(np.roll(lips_np, n // 2, axis=0))
    envelope = _energy_db(audio)
    decoded = _decoded_energy(model, audio, lips)
    speech = envelope > envelope.max() - VAD_RANGE_DB
    return LipsFigure(
        clip=clip,
        n_frames=n,
        r=pearson(decoded, envelope),
        r_shifted=pearson(_decoded_energy(model, audio, shifted), envelope),
        auc=rank_auc(decoded, speech),
        lips_responsibility=_lips_responsibility(model, audio, lips),
    )


def summarise(figures: Iterable[LipsFigure]) -> dict:
    """Mean and 95% half-width (normal approximation) of each figure over clips; ``n`` clips."""
    figs = list(figures)
    out: dict = {"n": len(figs)}
    for key in ("r", "r_shifted", "auc", "lips_responsibility"):
        vals = np.array([getattr(f, key) for f in figs], np.float64)
        vals = vals[np.isfinite(vals)]
        mean = float(vals.mean()) if len(vals) else math.nan
        half = float(1.96 * vals.std(ddof=1) / math.sqrt(len(vals))) if len(vals) > 1 else math.nan
        out[key] = {"mean": mean, "ci95": half}
    return out


__all__ = ["LipsFigure", "lips_figure", "pearson", "rank_auc", "summarise", "VAD_RANGE_DB"]
