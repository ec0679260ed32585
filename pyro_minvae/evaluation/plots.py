"""Figures (matplotlib, Agg canvas, no pyplot state), each written atomically as PNG.

- :func:`plot_metric_vs_snr`: one metric against SNR, a line per method with 95% CI error bars;
- :func:`plot_spectrograms`: clean, noisy and each method's estimate of one file, stacked;
- :func:`plot_responsibilities`: mixture responsibilities over time (``(N,)`` or ``(N, M)``) above a
  mouth-opening trace (``(N_v,)``), e.g. from :func:`mouth_opening_from_landmarks`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..atomic import atomic_path
from .summary import ALL, LABELS, lookup


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    return path


def plot_metric_vs_snr(summary: dict, metric: str, path: str | Path, noise: str = ALL) -> Path:
    """Metric (mean ± 95% CI) against SNR, one line per method, for ``noise`` (default: all noise types)."""
    fig = _figure(6.0, 4.0)
    ax = fig.add_subplot(1, 1, 1)
    snrs = summary["snrs"]
    for k, method in enumerate(summary["methods"]):
        xs, ys, es = [], [], []
        for snr in snrs:
            g = lookup(summary, method, snr, noise)
            st = g["stats"].get(metric) if g else None
            if st and st["mean"] is not None:
                xs.append(snr + 0.15 * (k - len(summary["methods"]) / 2))  # small dodge so bars do not overlap
                ys.append(st["mean"])
                es.append(st["ci95"] or 0.0)
        if xs:
            ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=method)
    ax.set_xlabel("input SNR (dB)")
    ax.set_ylabel(LABELS.get(metric, metric))
    ax.set_xticks(snrs)
    ax.grid(True, alpha=0.3)
    ax.set_title(f"{LABELS.get(metric, metric)} vs SNR" + ("" if noise == ALL else f" ({noise})"))
    if summary["methods"]:
        ax.legend(fontsize=8)
    return _save(fig, path)


def _log_spec(x: np.ndarray, sr: int, n_fft: int = 512, hop: int = 128) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from scipy.signal import stft as _stft

    f, t, z = _stft(x, fs=sr, nperseg=n_fft, noverlap=n_fft - hop)
    return f, t, 10 * np.log10(np.abs(z) ** 2 + 1e-10)


def plot_spectrograms(
    path: str | Path,
    clean: np.ndarray,
    noisy: np.ndarray,
    estimates: Mapping[str, np.ndarray],
    sample_rate: int,
    title: str = "",
) -> Path:
    """Log-power spectrograms (dB, common colour scale) of clean, noisy and each estimate, all ``(T,)``."""
    panels = [("clean", clean), ("noisy", noisy)] + [(k, v) for k, v in estimates.items()]
    fig = _figure(8.0, 1.8 * len(panels) + 0.6)
    specs = [(_log_spec(np.asarray(x, np.float64), sample_rate), name) for name, x in panels]
    vmax = max(float(s[2].max()) for s, _ in specs)
    im = None
    axes = [fig.add_subplot(len(panels), 1, 1)]
    axes += [fig.add_subplot(len(panels), 1, i + 1, sharex=axes[0]) for i in range(1, len(panels))]
    for ax, ((f, t, db), name) in zip(axes, specs):
        im = ax.pcolormesh(t, f / 1000.0, db, vmin=vmax - 80, vmax=vmax, shading="auto", cmap="magma")
        ax.set_ylabel("kHz")
        ax.set_title(name, fontsize=9, loc="left")
        if ax is not axes[-1]:
            ax.tick_params(labelbottom=False)
    axes[-1].set_xlabel("time (s)")
    if title:
        fig.suptitle(title, fontsize=10)
    if im is not None:
        fig.colorbar(im, ax=axes, label="dB", fraction=0.03)
    return _save(fig, path)


def mouth_opening_from_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """Mouth opening per video frame ``(N_v,)``: vertical extent of the lip contour ``(N_v, P, 2)`` (pixels)."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.ndim != 3 or lm.shape[-1] != 2:
        raise ValueError(f"landmarks must have shape (N_v, P, 2); got {lm.shape}")
    return lm[..., 1].max(axis=1) - lm[..., 1].min(axis=1)


def plot_responsibilities(
    path: str | Path,
    responsibilities: np.ndarray,
    frame_rate: float,
    mouth_opening: np.ndarray,
    fps: float,
    component_names: Sequence[str] | None = None,
    title: str = "",
) -> Path:
    """Responsibilities over time above the mouth-opening trace.

    ``responsibilities``: ``(N,)`` (probability of the first, e.g. audio, component) or ``(N, M)`` (rows sum to
    1) at ``frame_rate`` frames/s; ``mouth_opening``: ``(N_v,)`` at ``fps``. Component names default to
    ``audio``/``visual`` for ``(N,)`` input and ``c0..c{M-1}`` otherwise.
    """
    r = np.asarray(responsibilities, dtype=np.float64)
    if r.ndim == 1:
        r = np.stack([r, 1.0 - r], axis=1)
        names = list(component_names or ("audio", "visual"))
    elif r.ndim == 2:
        names = list(component_names or [f"c{i}" for i in range(r.shape[1])])
    else:
        raise ValueError(f"responsibilities must be (N,) or (N, M); got {r.shape}")
    if len(names) != r.shape[1]:
        raise ValueError(f"{len(names)} component names for {r.shape[1]} components")
    if not np.isfinite(r).all() or r.min() < -1e-6 or r.max() > 1 + 1e-6:
        raise ValueError("responsibilities must be finite probabilities in [0, 1]")
    mo = np.asarray(mouth_opening, dtype=np.float64)
    if mo.ndim != 1:
        raise ValueError(f"mouth opening must be (N_v,); got {mo.shape}")
    if frame_rate <= 0 or fps <= 0:
        raise ValueError("frame_rate and fps must be positive")
    fig = _figure(8.0, 4.0)
    ax1 = fig.add_subplot(2, 1, 1)
    ax2 = fig.add_subplot(2, 1, 2, sharex=ax1)
    t = np.arange(r.shape[0]) / frame_rate
    ax1.stackplot(t, r.T, labels=names, alpha=0.8, step="mid")
    ax1.set_ylim(0, 1)
    ax1.set_ylabel("responsibility")
    ax1.legend(fontsize=8, loc="upper right")
    ax2.plot(np.arange(mo.size) / fps, mo, color="k")
    ax2.set_ylabel("mouth opening (px)")
    ax2.set_xlabel("time (s)")
    if title:
        ax1.set_title(title, fontsize=10)
    return _save(fig, path)
