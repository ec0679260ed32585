"""Random recording channels for the clean training frames (``train --augment tilt=6,band=0.3,warp=0.1``).

The speech VAE is trained on a few voices recorded through a few channels; a recording made through another
microphone, a telephone line or by another vocal tract then leaves speech that the prior does not cover, and the
NMF takes it as noise. Each training frame's power spectrum ``|S(f)|²`` is passed through a random channel drawn
per frame (the model is frame-wise, so per-frame channels are draws from the marginal it learns):

* ``tilt=T``: a spectral tilt of ``t`` dB per octave about 1 kHz (flat below 250 Hz), ``t ~ U(-T, T)``;
* ``band=P``: with probability ``P`` the frame is band-limited: above a cut-off ``c ~ U(3.4, 7.6)`` kHz the power
  falls by 50 dB over a 400 Hz raised-cosine edge (telephone, G.722 and low-rate codec bands);
* ``warp=W``: the frequency axis is scaled by ``a ~ U(1 - W, 1 + W)`` (vocal-tract length perturbation,
  ``|S'(f)|² = |S(f / a)|²``, linear interpolation between bins).

Validation frames are never augmented, so the checkpoint chosen by the validation ELBO is chosen on real speech.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

_BAND_CUTOFF_HZ = (3400.0, 7600.0)
_BAND_EDGE_HZ = 400.0
_BAND_DEPTH_DB = 50.0


@dataclass(frozen=True)
class ChannelAugment:
    """Ranges of the random channel; all zero (the default) leaves the frames as they are."""

    tilt: float = 0.0  # dB per octave, maximum magnitude
    band: float = 0.0  # probability of a band-limited frame
    warp: float = 0.0  # maximum relative frequency scaling

    def __post_init__(self):
        for name, value, high in (("tilt", self.tilt, 24.0), ("band", self.band, 1.0), ("warp", self.warp, 0.5)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= high:
                raise ValueError(f"--augment {name}={value!r}: must be a number from 0 to {high:g}")

    @classmethod
    def from_dict(cls, options: dict) -> "ChannelAugment":
        unknown = sorted(set(options) - {"tilt", "band", "warp"})
        if unknown:
            raise ValueError(f"--augment: unknown {', '.join(unknown)}; valid: tilt, band, warp")
        return cls(**options)

    @property
    def active(self) -> bool:
        return bool(self.tilt or self.band or self.warp)

    def __call__(self, power: torch.Tensor, freqs_hz: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``power`` ``(B, F)`` frames' power spectra at ``freqs_hz`` ``(F,)`` -> the same frames through random
        channels ``(B, F)``; draws from ``generator`` (on ``power``'s device) in a fixed order."""
        if not self.active:
            return power
        b = power.shape[0]

        def uniform(low: float, high: float) -> torch.Tensor:
            u = torch.rand(b, 1, generator=generator, device=power.device, dtype=power.dtype)
            return low + (high - low) * u

        out = power
        if self.warp:
            out = _warp(out, uniform(1.0 - self.warp, 1.0 + self.warp))
        log_gain = torch.zeros_like(out)
        if self.tilt:
            octaves = torch.log2(freqs_hz.clamp_min(250.0) / 1000.0).to(out)
            log_gain = log_gain + uniform(-self.tilt, self.tilt) * octaves * (math.log(10.0) / 10.0)
        if self.band:
            limited = uniform(0.0, 1.0) < self.band
            cutoff = uniform(*_BAND_CUTOFF_HZ)
            edge = ((freqs_hz.to(out) - cutoff) / _BAND_EDGE_HZ).clamp(0.0, 1.0)
            fall = 0.5 * (1.0 - torch.cos(math.pi * edge)) * (_BAND_DEPTH_DB * math.log(10.0) / 10.0)
            log_gain = log_gain - fall * limited
        return out * log_gain.exp()


def _warp(power: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``|S(f / a)|²`` per frame: bin ``k`` of the output reads bin ``k / a`` of the input (linear interpolation;
    beyond the last bin, the last bin). ``power`` ``(B, F)``, ``scale`` ``(B, 1)``."""
    n_freq = power.shape[-1]
    src = (torch.arange(n_freq, device=power.device, dtype=power.dtype) / scale).clamp(max=n_freq - 1)
    lo = src.floor().long().clamp(max=n_freq - 2)
    frac = src - lo
    return torch.lerp(power.gather(-1, lo), power.gather(-1, lo + 1), frac)
