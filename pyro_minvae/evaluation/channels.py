"""Recording channels for robustness checks: the same linear filter applied to a mixture and to its clean
reference, as if the scene had been recorded through another microphone, line or room.

``RECORDING_CHANNELS.build(name, sample_rate=16000)`` gives a callable ``(T,) float32 -> (T,) float32`` (same
length, causal). Registered:

- ``phone``:  300-3400 Hz band (6th-order Butterworth band-pass), a telephone line;
- ``dull``:   -3 dB per octave about 1 kHz (flat below 250 Hz), a muffled microphone or a distant talker;
- ``bright``: +3 dB per octave about 1 kHz, a thin close-talking microphone;
- ``reverb``: a fixed synthetic room (exponentially decaying noise, RT60 0.4 s, direct path 8x the tail's peak);
  the reference is the reverberant clean speech, so the scores measure noise removal, not dereverberation.

Enhancement never sees which channel was used. ``scripts/channel_robustness.py`` runs a checkpoint's E-step
through each channel on the validation mixtures.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from ..registry import Registry

RECORDING_CHANNELS: Registry = Registry("recording channel")


class _Filter:
    """A causal linear channel; ``__call__`` keeps the input's length and dtype."""

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.apply(np.asarray(x, dtype=np.float64)).astype(np.float32)

    def apply(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError


@RECORDING_CHANNELS.register("phone")
class TelephoneBand(_Filter):
    def __init__(self, sample_rate: int = 16000, low_hz: float = 300.0, high_hz: float = 3400.0):
        self.sos = signal.butter(6, [low_hz, high_hz], "bandpass", fs=sample_rate, output="sos")

    def apply(self, x: np.ndarray) -> np.ndarray:
        return signal.sosfilt(self.sos, x)


class _FIR(_Filter):
    taps: np.ndarray

    def apply(self, x: np.ndarray) -> np.ndarray:
        return signal.fftconvolve(x, self.taps)[: len(x)]


class SpectralTilt(_FIR):
    """``db_per_octave`` dB per octave about 1 kHz, flat below 250 Hz (a 257-tap linear-phase FIR)."""

    def __init__(self, sample_rate: int = 16000, db_per_octave: float = 0.0):
        f = np.linspace(0.0, sample_rate / 2, 1025)
        gain_db = db_per_octave * np.log2(np.maximum(f, 250.0) / 1000.0)
        self.taps = signal.firwin2(257, f / (sample_rate / 2), 10 ** (gain_db / 20))


@RECORDING_CHANNELS.register("dull")
def dull(sample_rate: int = 16000) -> SpectralTilt:
    return SpectralTilt(sample_rate, -3.0)


@RECORDING_CHANNELS.register("bright")
def bright(sample_rate: int = 16000) -> SpectralTilt:
    return SpectralTilt(sample_rate, 3.0)


@RECORDING_CHANNELS.register("reverb")
class SyntheticRoom(_FIR):
    """Exponentially decaying Gaussian noise with reverberation time ``rt60_s`` (60 dB of decay), after a direct
    path ``direct`` times the tail's peak; fixed by ``seed``, so every file meets the same room."""

    def __init__(self, sample_rate: int = 16000, rt60_s: float = 0.4, direct: float = 8.0, seed: int = 0):
        t = np.arange(int(1.5 * rt60_s * sample_rate)) / sample_rate
        tail = np.random.default_rng(seed).standard_normal(len(t)) * np.exp(-3.0 * np.log(10.0) * t / rt60_s)
        tail[0] = direct * np.abs(tail[1:]).max()
        self.taps = tail / np.abs(tail).max()
