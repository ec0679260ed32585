"""What a run records after each epoch: the validation ELBO (:func:`evaluate`), the per-modality responsibility
report of mixtures (:func:`responsibility_report`) and the epoch log as CSV (:func:`write_csv`).

Units: ELBO values are nats per frame (summed over the F frequency bins, Itakura-Saito form without the
``-F log pi`` constant).
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import NamedTuple

import pyro
import torch

from ..atomic import write_text_atomic
from ..data.datasets import FrameDataset
from ..infer.objectives import frame_elbo_terms, marginalise_components


class EvalResult(NamedTuple):
    """Validation pass: ``elbo`` nats/frame, ``responsibilities`` ``(N, M)`` (mixtures) or ``None``."""

    elbo: float
    responsibilities: torch.Tensor | None


@torch.no_grad()
def evaluate(model, dataset: FrameDataset, batch_size: int = 1024, seed: int = 0) -> EvalResult:
    """Validation ELBO (nats/frame; single sample, eval mode, fixed seed) and q(c) for mixtures.

    For mixtures the ELBO uses the optimal q(c) per frame (``logsumexp`` of the per-component terms), i.e. the
    tightest ELBO over q(c); the returned responsibilities are that optimum.
    """
    was_training = model.training
    model.eval()
    total, resp = 0.0, []
    with torch.random.fork_rng(devices=[dataset.device] if dataset.device.type == "cuda" else []):
        pyro.set_rng_seed(seed)
        for idx in torch.arange(len(dataset), device=dataset.device).split(batch_size):
            batch = dataset.batch(idx, segments=not model.prior.frame_factorised)
            per_frame, r = marginalise_components(frame_elbo_terms(model.model, model.guide, batch))
            total += per_frame.sum().item()
            if r is not None:
                resp.append(r.cpu())
    model.train(was_training)
    return EvalResult(total / max(len(dataset), 1), torch.cat(resp) if resp else None)


def responsibility_report(model, dataset: FrameDataset, resp: torch.Tensor | None) -> dict:
    """Per modality: mean q(c), how often it wins (argmax), on speech and on silent frames (energy VAD)."""
    if resp is None or not model.is_mixture:
        return {}
    speech = dataset.speech_mask()
    win = resp.argmax(1)
    out = {
        "n_frames": int(len(dataset)),
        "n_speech": int(speech.sum()),
        "n_silence": int((~speech).sum()),
        "components": {},
    }
    for m, name in enumerate(model.prior.components):
        q = resp[:, m]
        w = (win == m).double()
        out["components"][name] = {
            "mean_q": float(q.mean()),
            "win_rate": float(w.mean()),
            "mean_q_speech": float(q[speech].mean()) if speech.any() else math.nan,
            "mean_q_silence": float(q[~speech].mean()) if (~speech).any() else math.nan,
            "win_rate_speech": float(w[speech].mean()) if speech.any() else math.nan,
            "win_rate_silence": float(w[~speech].mean()) if (~speech).any() else math.nan,
        }
    out["prior_weights"] = [float(v) for v in model.prior.log_weights().exp()]
    return out


def responsibility_line(name: str, r: dict) -> str:
    """One component of :func:`responsibility_report` as a sentence; a split with no frames (e.g. no silent frame
    in the data) says so instead of printing ``nan%``."""

    def pct(key: str) -> str:
        return "no frames" if math.isnan(r[key]) else f"{100 * r[key]:.1f}%"

    return (
        f"responsibility {name}: mean q {r['mean_q']:.3f}, wins {pct('win_rate')} of frames "
        f"(speech {pct('win_rate_speech')}, silence {pct('win_rate_silence')})"
    )


def write_csv(path: Path, history: list) -> None:
    """The per-epoch log as CSV (atomic rewrite)."""
    if not history:
        return
    cols = list(dict.fromkeys(k for row in history for k in row))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols)
    w.writeheader()
    for row in history:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    write_text_atomic(path, buf.getvalue())
