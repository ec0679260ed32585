"""A sanity check on real audio-visual recordings (never used to choose anything): enhance the clips of a folder
laid out like ``../shared/real_av`` and score them where a clean reference exists.

A clip is a sub-folder with ``noisy.wav`` (16 kHz mono), ``lips.npy`` (any layout
:func:`~pyro_minvae.data.prepare.lips.load_lips` reads, e.g. NTCD-TIMIT's ``(4489, N)`` column-major frames) and,
optionally, ``clean.wav``. :func:`score_clips` returns one row per (clip, method): the metrics of
:mod:`pyro_minvae.metrics` with input and delta columns when ``clean.wav`` exists, otherwise only the output's
level change (``out_in_db``: output RMS over input RMS, dB).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np

from ..metrics import DEFAULT_METRICS, score, score_input

REAL_FPS = 30.0


def clip_dirs(root: str | Path) -> list[Path]:
    """Sub-folders of ``root`` that hold ``noisy.wav`` and ``lips.npy`` (sorted); ``[]`` if ``root`` is absent."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if (p / "noisy.wav").exists() and (p / "lips.npy").exists())


def score_clips(
    root: str | Path,
    methods: Mapping[str, object],
    metrics: Sequence[str] = DEFAULT_METRICS,
    sample_rate: int = 16000,
    seed: int = 0,
) -> Iterator[dict]:
    """Rows ``{"clip", "method", "has_reference", <metric>, input_<m>, delta_<m> | "out_in_db"}`` per clip and
    method (``methods`` as in :func:`~pyro_minvae.evaluation.methods.resolve_methods`)."""
    from ..audio_io import load_audio
    from ..data.prepare.lips import load_lips

    for d in clip_dirs(root):
        noisy = load_audio(d / "noisy.wav", sample_rate)
        clean = load_audio(d / "clean.wav", sample_rate) if (d / "clean.wav").exists() else None
        n = min(noisy.size, clean.size) if clean is not None else noisy.size
        noisy = noisy[:n]
        video = {"lips": load_lips(d / "lips.npy"), "fps": REAL_FPS}
        inp = score_input(clean[:n], noisy, sample_rate, metrics) if clean is not None else None
        for name, method in methods.items():
            ref = clean[:n] if clean is not None and method.needs_clean else None
            est = np.asarray(method(noisy.copy(), sample_rate, clean=ref, video=video, seed=seed), dtype=np.float32)
            row = {"clip": d.name, "method": name, "has_reference": clean is not None}
            if clean is not None:
                row.update(score(clean[:n], est, noisy, sample_rate, metrics, input_scores=inp))
            else:
                rms = lambda x: math.sqrt(float(np.mean(np.square(x, dtype=np.float64)))) + 1e-12  # noqa: E731
                row["out_in_db"] = 20 * math.log10(rms(est) / rms(noisy))
            yield row


__all__ = ["clip_dirs", "score_clips", "REAL_FPS"]
