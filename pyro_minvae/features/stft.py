"""STFT analysis/synthesis and power spectra (torch, device-agnostic).

Shapes: a waveform is ``(T,)`` or ``(B, T)`` float in [-1, 1] at ``cfg.sample_rate``; its STFT is
``(F, N)`` or ``(B, F, N)`` complex with F = ``cfg.n_freq`` bins and N = ``cfg.n_frames(T)`` frames.
Models work on frame-major power spectra ``(N, F)``.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from .config import FeatureConfig


def analysis_window(cfg: FeatureConfig, device=None, dtype=torch.float32) -> torch.Tensor:
    """The analysis (= synthesis) window, shape ``(win_length,)``."""
    n = torch.arange(cfg.win_length, device=device, dtype=torch.float64)
    if cfg.window == "sine":
        w = torch.sin(math.pi * (n + 0.5) / cfg.win_length)
    else:
        w = torch.hann_window(cfg.win_length, periodic=True, dtype=torch.float64, device=device)
    return w.to(dtype)


def frame_window(cfg: FeatureConfig, device=None, dtype=torch.float32) -> torch.Tensor:
    """:func:`analysis_window` centred in ``n_fft`` samples (zeros around it), shape ``(n_fft,)``: the window a
    frame of ``n_fft`` samples is multiplied by, as :func:`torch.stft` pads it."""
    full = torch.zeros(cfg.n_fft, device=device, dtype=dtype)
    left = (cfg.n_fft - cfg.win_length) // 2
    full[left : left + cfg.win_length] = analysis_window(cfg, device=device, dtype=dtype)
    return full


def _as_tensor(x) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not torch.is_tensor(x):
        raise ValueError(f"expected a waveform array or tensor, got {type(x).__name__}")
    return x


def stft(wave, cfg: FeatureConfig) -> torch.Tensor:
    """Complex STFT of ``wave`` ``(T,)`` or ``(B, T)`` -> ``(F, N)`` or ``(B, F, N)`` (centred, zero-padded)."""
    x = _as_tensor(wave)
    if x.dim() not in (1, 2):
        raise ValueError(f"waveform must have shape (T,) or (B, T); got {tuple(x.shape)}")
    if x.shape[-1] == 0:
        raise ValueError("waveform is empty (0 samples)")
    x = x.to(torch.float32) if not x.is_floating_point() or x.dtype == torch.float16 else x
    win = analysis_window(cfg, device=x.device, dtype=x.dtype)
    return torch.stft(
        x,
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
        win_length=cfg.win_length,
        window=win,
        center=True,
        pad_mode="constant",
        return_complex=True,
    )


def istft(spec: torch.Tensor, cfg: FeatureConfig, length: int) -> torch.Tensor:
    """Inverse of :func:`stft`: ``(F, N)`` or ``(B, F, N)`` complex -> waveform of exactly ``length`` samples."""
    if not torch.is_complex(spec):
        raise ValueError("istft expects a complex STFT")
    if spec.shape[-2] != cfg.n_freq:
        raise ValueError(f"STFT has {spec.shape[-2]} bins, the feature config expects {cfg.n_freq}")
    win = analysis_window(cfg, device=spec.device, dtype=spec.real.dtype)
    with warnings.catch_warnings():
        # With N = 1 + T // hop centred frames the last frame's support ends at (N - 1) hop + n_fft / 2, which can
        # fall up to hop - n_fft / 2 - 1 samples (20 at hop 533) short of T; torch zero-fills that tail and warns.
        # That is the paper's framing (one frame per video frame), not an error.
        warnings.filterwarnings("ignore", message="The length of signal is shorter than the length parameter")
        return torch.istft(
            spec,
            n_fft=cfg.n_fft,
            hop_length=cfg.hop_length,
            win_length=cfg.win_length,
            window=win,
            center=True,
            length=length,
        )


def power(spec: torch.Tensor) -> torch.Tensor:
    """|X|^2 of a complex STFT, same shape, real."""
    return spec.real.square() + spec.imag.square()


def power_frames(wave, cfg: FeatureConfig) -> torch.Tensor:
    """Frame-major power spectrogram of a mono waveform: ``(T,)`` -> ``(N, F)``."""
    return power(stft(wave, cfg)).transpose(-1, -2).contiguous()


def peak_normalise(wave: np.ndarray, eps: float = 1e-8) -> tuple[np.ndarray, float]:
    """Scale a waveform to peak 1 (the paper's convention). Returns the scaled signal and the scale factor."""
    peak = float(np.max(np.abs(wave))) if wave.size else 0.0
    scale = 1.0 / peak if peak > eps else 1.0
    return (wave * scale).astype(np.float32), scale
