"""Noise for the demo corpus: city ambiences (lincity-ng-data), seeded white and pink noise, babble.

- ambiences: ``usr/share/games/lincity-ng/sounds/*.wav`` grouped by name into categories
  (:data:`AMBIENCE_CATEGORIES`), each file downmixed, resampled to 16 kHz (soxr), scaled to unit RMS and the
  files of a category concatenated with short cross-fades into one loop;
- white: i.i.d. Gaussian; pink: Gaussian with a 1/f power spectrum (shaped in the frequency domain);
- babble: the sum of 4-8 speech utterances of distinct speakers, each at unit active power, drawn from a pool
  the caller chooses (speakers outside the target's split);
- transient (not in the demo corpus; a stress test, ``scripts/remix_manifest.py``): knocks and clicks, see
  :func:`transient_noise`.

Every sample is ``(T,)`` float32 with unit mean power; the caller sets the level (see ``data.mixing``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...audio_io import resample
from ..mixing import active_speech_power, noise_segment
from .debian import PackageTree
from .sources import decode_clip

LINCITY = "lincity-ng-data"
LINCITY_SOUNDS = "usr/share/games/lincity-ng/sounds"
AMBIENCE_CATEGORIES: dict[str, tuple[str, ...]] = {
    "traffic": ("TraficHigh", "TraficLow", "DirtTrack"),
    "crowd": ("SportsCroud", "MarketFull", "MarketMed", "MarketLow"),
    "industry": ("IndustryHigh", "IndustryLight", "CoalMine", "OreMine", "Mill"),
    "rail": ("RailTrain",),
    "construction": ("MonumentConstruction", "Build"),
}
SYNTHETIC = ("white", "pink", "babble", "transient")
CROSSFADE_S = 0.05


def _unit_power(x: np.ndarray) -> np.ndarray:
    p = float(np.mean(x.astype(np.float64) ** 2))
    return (x / np.sqrt(p)).astype(np.float32) if p > 0 else x.astype(np.float32)


def _concat_crossfade(parts: list[np.ndarray], n_fade: int) -> np.ndarray:
    out = parts[0]
    ramp = np.linspace(0.0, 1.0, n_fade, dtype=np.float32)
    for p in parts[1:]:
        if len(out) > n_fade and len(p) > n_fade:
            mid = out[-n_fade:] * (1 - ramp) + p[:n_fade] * ramp
            out = np.concatenate([out[:-n_fade], mid, p[n_fade:]])
        else:
            out = np.concatenate([out, p])
    return out


def white_noise(length: int, rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal(length).astype(np.float32)


def pink_noise(length: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise whose power spectral density falls as 1/f (DC removed), unit power, ``(length,)``."""
    n = max(2, length)
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(spec.size, dtype=np.float64)
    f[0] = 1.0
    spec = spec / np.sqrt(f)
    spec[0] = 0.0
    return _unit_power(np.fft.irfft(spec, n)[:length])


def transient_noise(
    length: int,
    rng: np.random.Generator,
    sr: int = 16000,
    rate_hz: float = 4.0,
    decay_s: tuple[float, float] = (0.005, 0.040),
    level_db: float = 20.0,
    floor_db: float = -25.0,
) -> np.ndarray:
    """Knocks and clicks on a faint pink floor, unit power, ``(length,)``.

    Bursts start at Poisson times (``rate_hz`` per second). Each is white noise through a 2nd-order Butterworth
    band-pass (lower edge 150-3000 Hz, upper edge 2-8 times that, at most 7.8 kHz) under an exponential decay whose
    time constant is drawn from ``decay_s`` (seconds), cut after three time constants; burst powers are spread
    uniformly over ``level_db`` dB. A pink floor ``floor_db`` dB below the bursts' mean power fills the gaps. A
    burst is shorter than one analysis frame (64 ms), like the knocks and breath bursts of real recordings.
    """
    from scipy import signal

    out = np.zeros(length, dtype=np.float64)
    t = float(rng.exponential(1.0 / rate_hz))
    while int(t * sr) < length:
        start = int(t * sr)
        tau = float(rng.uniform(*decay_s))
        n = max(1, int(3 * tau * sr))
        lo = float(rng.uniform(150.0, 3000.0))
        hi = min(lo * float(rng.uniform(2.0, 8.0)), 7800.0)
        b, a = signal.butter(2, [lo, hi], btype="band", fs=sr)
        burst = signal.lfilter(b, a, rng.standard_normal(n)) * np.exp(-np.arange(n) / (tau * sr))
        burst *= 10 ** (rng.uniform(-level_db / 2, level_db / 2) / 20) / (np.sqrt(np.mean(burst**2)) + 1e-12)
        stop = min(length, start + n)
        out[start:stop] += burst[: stop - start]
        t += float(rng.exponential(1.0 / rate_hz))
    power = float(np.mean(out**2)) if length else 0.0
    floor = pink_noise(length, rng).astype(np.float64)
    if power > 0:
        floor *= np.sqrt(power * 10 ** (floor_db / 10))
    return _unit_power(out + floor)


@dataclass
class NoiseBank:
    """Noise sources at ``sample_rate``: ambience loops by category and a babble pool of speech by speaker."""

    sample_rate: int = 16000
    ambiences: dict[str, np.ndarray] = field(default_factory=dict)
    ambience_files: dict[str, list[str]] = field(default_factory=dict)
    package: str | None = None
    version: str | None = None

    @property
    def types(self) -> tuple[str, ...]:
        return SYNTHETIC + tuple(sorted(self.ambiences))

    def sample(
        self,
        noise_type: str,
        length: int,
        rng: np.random.Generator,
        babble_pool: dict[str, list[np.ndarray]] | None = None,
    ) -> np.ndarray:
        """A unit-power ``(length,)`` noise signal of ``noise_type``.

        ``babble_pool`` (``{speaker: [utterance (T,)]}``, at least 4 speakers) is needed for ``"babble"``.
        """
        if noise_type == "white":
            return white_noise(length, rng)
        if noise_type == "pink":
            return pink_noise(length, rng)
        if noise_type == "transient":
            return transient_noise(length, rng, self.sample_rate)
        if noise_type == "babble":
            if not babble_pool or len(babble_pool) < 4:
                raise ValueError("babble needs a pool of utterances from at least 4 speakers")
            return babble(length, babble_pool, rng)
        if noise_type not in self.ambiences:
            raise KeyError(f"unknown noise type {noise_type!r}; known: {', '.join(self.types)}")
        return _unit_power(noise_segment(self.ambiences[noise_type], length, rng))

    def source(self, noise_type: str) -> dict:
        """Provenance of a noise type for the manifest."""
        if noise_type in self.ambiences:
            return {"package": self.package, "version": self.version, "files": self.ambience_files[noise_type]}
        return {"generated": noise_type}


def babble(
    length: int,
    pool: dict[str, list[np.ndarray]],
    rng: np.random.Generator,
    n_min: int = 4,
    n_max: int = 8,
    sr: int = 16000,
) -> np.ndarray:
    """Sum of ``n_min..n_max`` utterances of distinct speakers from ``pool``, looped to ``length``, unit power."""
    speakers = sorted(pool)
    k = int(rng.integers(n_min, min(n_max, len(speakers)) + 1))
    chosen = rng.choice(len(speakers), size=k, replace=False)
    out = np.zeros(length, dtype=np.float64)
    for i in chosen:
        utts = pool[speakers[int(i)]]
        u = utts[int(rng.integers(0, len(utts)))]
        p = active_speech_power(u, sr)
        if p <= 0:
            continue
        out += noise_segment(u / np.sqrt(p), length, rng)
    return _unit_power(out)


def load_ambiences(
    pkg: PackageTree, sample_rate: int = 16000, categories: dict[str, tuple[str, ...]] = AMBIENCE_CATEGORIES
) -> NoiseBank:
    """Build the ambience loops from an extracted ``lincity-ng-data`` package."""
    base = Path(pkg.root) / LINCITY_SOUNDS
    bank = NoiseBank(sample_rate=sample_rate, package=pkg.name, version=pkg.version)
    files = sorted(base.glob("*.wav")) if base.is_dir() else []
    n_fade = int(CROSSFADE_S * sample_rate)
    for cat, prefixes in categories.items():
        chosen = [f for f in files if f.stem.rstrip("0123456789") in prefixes]
        parts = []
        for f in chosen:
            x, sr = decode_clip(f)
            x = resample(x - np.float32(x.mean()), sr, sample_rate)
            if np.mean(x.astype(np.float64) ** 2) > 0:
                parts.append(_unit_power(x))
        if parts:
            bank.ambiences[cat] = _unit_power(_concat_crossfade(parts, n_fade))
            bank.ambience_files[cat] = [f.relative_to(pkg.root).as_posix() for f in chosen]
    return bank
