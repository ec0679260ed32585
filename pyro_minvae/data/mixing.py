"""Mixing speech and noise at a target SNR without clipping.

Definitions (all signals ``(T,)`` float, same rate):

- active-speech power: mean power of the 20 ms frames whose energy is within ``threshold_db`` (40 dB) of the
  loudest frame (a simplified ITU-T P.56 level: pauses do not lower the speech level);
- noise power: mean power over the whole noise segment;
- ``SNR = 10 log10(P_active(clean) / P(noise))``.

:func:`mix` returns ``mixture = gain * (clean + k * noise)`` and the clean reference ``gain * clean``: ``k``
sets the SNR, ``gain <= 1`` keeps the mixture's peak at or below ``peak``. Both are scaled alike, so the SNR of
(reference, mixture - reference) is the target exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FRAME_S = 0.02
THRESHOLD_DB = 40.0


def active_speech_power(x: np.ndarray, sr: int, frame_s: float = FRAME_S, threshold_db: float = THRESHOLD_DB) -> float:
    """Mean power of the active frames of ``x`` ``(T,)``; 0.0 for digital silence."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"expected a mono signal (T,); got shape {x.shape}")
    n = max(1, int(round(frame_s * sr)))
    if x.size < n:
        return float(np.mean(x**2)) if x.size else 0.0
    usable = (x.size // n) * n
    p = np.mean(x[:usable].reshape(-1, n) ** 2, axis=1)
    if p.max() <= 0:
        return 0.0
    active = p > p.max() * 10 ** (-threshold_db / 10)
    return float(p[active].mean())


def snr_db(clean: np.ndarray, noise: np.ndarray, sr: int) -> float:
    """SNR in dB of ``clean`` (active-speech power) against ``noise`` (mean power)."""
    pn = float(np.mean(np.asarray(noise, dtype=np.float64) ** 2))
    return 10.0 * np.log10(active_speech_power(clean, sr) / max(pn, 1e-20))


@dataclass(frozen=True)
class Mixture:
    """``mixture = reference + noise``, all ``(T,)`` float32; ``gain`` was applied to all three."""

    mixture: np.ndarray
    reference: np.ndarray
    noise: np.ndarray
    gain: float
    noise_scale: float
    snr_db: float


def mix(clean: np.ndarray, noise: np.ndarray, target_snr_db: float, sr: int, peak: float = 0.99) -> Mixture:
    """Add ``noise`` to ``clean`` (both ``(T,)``) at ``target_snr_db``; scale down (gain <= 1) to avoid clipping."""
    clean = np.asarray(clean, dtype=np.float64)
    noise = np.asarray(noise, dtype=np.float64)
    if clean.shape != noise.shape or clean.ndim != 1:
        raise ValueError(f"clean and noise must both be (T,); got {clean.shape} and {noise.shape}")
    ps = active_speech_power(clean, sr)
    pn = float(np.mean(noise**2))
    if ps <= 0 or pn <= 0:
        raise ValueError("cannot mix: clean speech or noise is digital silence")
    k = np.sqrt(ps / (pn * 10 ** (target_snr_db / 10)))
    n = k * noise
    m = clean + n
    top = float(np.abs(m).max())
    gain = min(1.0, peak / top) if top > 0 else 1.0
    return Mixture(
        (gain * m).astype(np.float32),
        (gain * clean).astype(np.float32),
        (gain * n).astype(np.float32),
        float(gain),
        float(k),
        float(target_snr_db),
    )


def noise_segment(noise: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """A ``(length,)`` excerpt of ``noise`` at a random offset, wrapping around (looping) when it is too short."""
    if noise.size == 0:
        raise ValueError("empty noise signal")
    start = int(rng.integers(0, noise.size))
    idx = (start + np.arange(length)) % noise.size
    return noise[idx]
