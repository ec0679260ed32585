"""Classical baselines: the noisy input itself, spectral gating (noisereduce) and the oracle Wiener mask.

All follow :mod:`pyro_minvae.baselines.base`: ``(T,)`` in, ``(T,)`` out, registered in
``pyro_minvae.registry.BASELINES``.
"""

from __future__ import annotations

import numpy as np
import torch

from ..features import FeatureConfig, istft, power, stft
from ..registry import BASELINES
from .base import Enhancer


@BASELINES.register("noisy")
class NoisyInput(Enhancer):
    """Identity: the unprocessed mixture (the "input" row of every table)."""

    def enhance(self, noisy, sample_rate, *, clean=None, video=None, seed=0):
        return noisy.copy()


class _SpectralGating(Enhancer):
    stationary: bool = False

    def __init__(self, prop_decrease: float = 1.0, n_fft: int = 1024):
        if not 0.0 <= prop_decrease <= 1.0:
            raise ValueError(f"prop_decrease must be in [0, 1]; got {prop_decrease}")
        self.prop_decrease = float(prop_decrease)
        self.n_fft = int(n_fft)

    def enhance(self, noisy, sample_rate, *, clean=None, video=None, seed=0):
        import noisereduce

        y = noisereduce.reduce_noise(
            y=noisy,
            sr=sample_rate,
            stationary=self.stationary,
            prop_decrease=self.prop_decrease,
            n_fft=self.n_fft,
            use_tqdm=False,
            n_jobs=1,
        )
        y = np.asarray(y, dtype=np.float32)
        out = np.zeros_like(noisy)  # noisereduce keeps the length; guard anyway
        out[: min(y.size, out.size)] = y[: out.size]
        return out

    def __repr__(self):
        return f"{type(self).__name__}(prop_decrease={self.prop_decrease}, n_fft={self.n_fft})"


@BASELINES.register("spectral-gating")
class SpectralGating(_SpectralGating):
    """noisereduce's non-stationary spectral gating (noise floor tracked over time; library default)."""

    stationary = False


@BASELINES.register("spectral-gating-stationary")
class SpectralGatingStationary(_SpectralGating):
    """noisereduce's stationary spectral gating (one noise threshold per frequency from the whole clip)."""

    stationary = True


@BASELINES.register("wiener-oracle")
class OracleWiener(Enhancer):
    """Oracle Wiener mask ``|S|^2 / (|S|^2 + |N|^2)`` per STFT bin, with ``N = X - S`` from the clean
    reference: an upper bound for any masking method on the paper's STFT (``FeatureConfig`` defaults)."""

    needs_clean = True

    def __init__(self, n_fft: int = 1024, hop_length: int = 533, window: str = "sine"):
        self.n_fft, self.hop_length, self.window = int(n_fft), int(hop_length), window

    def enhance(self, noisy, sample_rate, *, clean=None, video=None, seed=0):
        cfg = FeatureConfig(
            sample_rate=sample_rate,
            n_fft=self.n_fft,
            win_length=self.n_fft,
            hop_length=self.hop_length,
            window=self.window,
        )
        x = stft(torch.from_numpy(noisy.astype(np.float64)), cfg)
        s = stft(torch.from_numpy(clean.astype(np.float64)), cfg)
        ps, pn = power(s), power(x - s)
        mask = ps / (ps + pn).clamp_min(1e-20)
        return istft(mask * x, cfg, length=noisy.shape[0]).numpy().astype(np.float32)

    def __repr__(self):
        return f"OracleWiener(n_fft={self.n_fft}, hop_length={self.hop_length}, window={self.window!r})"
