"""A one-clip visual check: spectrogram with phone labels, mouth-opening trace and a strip of mouth frames."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from ..atomic import atomic_path
from .align import PhoneSegment

N_STRIP = 12  # mouth frames shown in the strip


def _spectrogram_db(wave: np.ndarray, sample_rate: int, n_fft: int = 512, hop: int = 160) -> np.ndarray:
    """Log power spectrogram ``(n_fft // 2 + 1, frames)`` in dB (Hann window), clipped 80 dB below its peak."""
    x = np.asarray(wave, dtype=np.float64)
    if x.shape[0] < n_fft:
        x = np.pad(x, (0, n_fft - x.shape[0]))
    n = 1 + (x.shape[0] - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n)[:, None]
    spec = np.abs(np.fft.rfft(x[idx] * np.hanning(n_fft)[None], axis=1)) ** 2
    db = 10.0 * np.log10(spec.T + 1e-12)
    return np.maximum(db, db.max() - 80.0)


def write_preview(
    wave: np.ndarray,
    sample_rate: int,
    phones: Sequence[PhoneSegment],
    frames: np.ndarray,
    out_png: str | os.PathLike,
    landmarks: np.ndarray | None = None,
    fps: float = 30.0,
    title: str | None = None,
) -> None:
    """Write a PNG (atomically) showing one clip.

    wave ``(T,)`` at ``sample_rate`` Hz; phones in seconds; frames ``(N, H, W)`` uint8 at ``fps``;
    landmarks ``(N, 20, 2)`` optional: the mouth-opening trace uses them when given, otherwise the number
    of dark pixels in the central band of each frame (a proxy for the visible opening).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from .render import mouth_opening

    wave = np.asarray(wave)
    frames = np.asarray(frames)
    if wave.ndim != 1 or frames.ndim != 3 or frames.shape[0] == 0:
        raise ValueError(f"need wave (T,) and frames (N, H, W); got {wave.shape} and {frames.shape}")
    duration = wave.shape[0] / sample_rate
    n = frames.shape[0]
    t_frames = (np.arange(n) + 0.5) / fps
    if landmarks is not None:
        opening, ylabel = mouth_opening(landmarks), "inner-lip\nopening (px)"
    else:
        h = frames.shape[1]
        band = frames[:, h // 4 : 3 * h // 4, :].astype(np.float32)
        opening = (band < np.percentile(band, 5)).sum(axis=(1, 2)).astype(np.float64)
        ylabel = "dark pixels"

    fig = Figure(figsize=(12, 7.5))
    FigureCanvasAgg(fig)
    gs = fig.add_gridspec(3, N_STRIP, height_ratios=[2.2, 1.0, 1.1], hspace=0.35, wspace=0.05)
    ax_s = fig.add_subplot(gs[0, :])
    hop = 160
    db = _spectrogram_db(wave, sample_rate, hop=hop)
    ax_s.imshow(
        db,
        origin="lower",
        aspect="auto",
        cmap="magma",
        extent=(0.0, db.shape[1] * hop / sample_rate, 0.0, sample_rate / 2000.0),
    )
    ax_s.set_ylabel("kHz")
    ax_s.set_xlim(0.0, duration)
    for p in phones:
        ax_s.axvline(p.start, color="w", lw=0.4, alpha=0.6)
        if p.phone != "SIL" and p.end - p.start > 0.015:
            ax_s.text(
                (p.start + p.end) / 2,
                sample_rate / 2000.0 * 0.97,
                p.phone,
                color="w",
                fontsize=6,
                ha="center",
                va="top",
                rotation=90,
            )
    ax_s.set_title(title or f"{duration:.2f} s, {sum(p.phone != 'SIL' for p in phones)} phones")

    ax_o = fig.add_subplot(gs[1, :], sharex=ax_s)
    env_t = np.arange(0, wave.shape[0] - hop, hop) / sample_rate
    env = np.sqrt(np.convolve(wave.astype(np.float64) ** 2, np.ones(hop) / hop, mode="valid")[::hop])
    env = env[: env_t.shape[0]]
    ax_o.plot(t_frames, opening, color="C0", lw=1.2, label="mouth opening")
    ax_o.set_ylabel(ylabel, color="C0")
    for p in phones:
        if p.phone == "SIL":
            ax_o.axvspan(p.start, p.end, color="0.85", lw=0)
    ax_e = ax_o.twinx()
    ax_e.plot(env_t, env, color="C3", lw=0.8, alpha=0.7)
    ax_e.set_ylabel("speech RMS", color="C3")
    ax_o.set_xlabel("time (s); grey: silence")

    picks = np.linspace(0, n - 1, min(N_STRIP, n)).round().astype(int)
    for j, k in enumerate(picks):
        ax = fig.add_subplot(gs[2, j])
        ax.imshow(frames[k], cmap="gray", vmin=0, vmax=255)
        ph = next((p.phone for p in phones if p.start <= t_frames[k] < p.end), "SIL")
        ax.set_title(f"{t_frames[k]:.2f}s {ph}", fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
        ax_o.axvline(t_frames[k], color="0.5", lw=0.5, ls=":")

    with atomic_path(out_png, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
