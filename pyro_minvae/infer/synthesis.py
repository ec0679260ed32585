"""From an E-step's estimate to a waveform: its gain applied on a denser synthesis STFT (``synthesis_density``).

The E-step works on the model's STFT grid (the paper's hop of 533 samples, one frame per 30 fps video frame, so
consecutive 1024-sample frames overlap by only 48%). Its estimate is a gain ``G = estimate / X`` ``(F, N)`` on the
noisy STFT ``X``. With ``density = 1`` the estimate itself is inverted (the paper). With ``density = D > 1`` the
gain, linearly interpolated in time between the model frames' centres, is applied to the noisy STFT taken with hop
``round(hop / D)`` and the same window, and that STFT is inverted: the same gain trajectory, applied by more
overlapping frames, so a gain that changes from one model frame to the next changes gradually instead of at the
48%-overlap seams. The model, the E-step and the gain on the model grid are unchanged; the choice (D = 2) was
made on the validation mixtures (docs/algorithms.md, "Synthesis on a denser STFT").

Frame ``n`` of a centred STFT with hop ``h`` is centred on sample ``n h``, so a synthesis frame ``m`` (hop ``h_s``)
sits at model frame ``t_m = m h_s / h``; past the last model frame the gain is held.

Two implementations of one rule: :func:`synthesise` (a whole recording, torch's STFT and inverse) and
:class:`StreamingSynthesis` (chunk by chunk, memory bounded by the chunk: ``enhance_waveform``'s chunked path);
``tests/infer/test_synthesis.py`` checks them against each other and against perfect reconstruction.
"""

from __future__ import annotations

import dataclasses

import torch

from ..features.config import FeatureConfig
from ..features.stft import frame_window, istft, stft


def valid_density(density) -> bool:
    """Whether ``density`` is a synthesis density: an integer >= 1 (not a bool)."""
    return isinstance(density, int) and not isinstance(density, bool) and density >= 1


def synthesis_config(cfg: FeatureConfig, density: int) -> FeatureConfig:
    """``cfg`` with the synthesis hop ``max(1, round(hop / density))`` (``density`` >= 1)."""
    if not valid_density(density):
        raise ValueError(f"synthesis_density must be an integer >= 1; got {density!r}")
    return dataclasses.replace(cfg, hop_length=max(1, round(cfg.hop_length / density)))


def applied_gain(spec: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
    """The complex gain ``estimate / spec`` ``(F, N)`` an estimate applies to the noisy STFT (0 where ``spec`` is 0:
    a silent bin's estimate is 0 whatever the gain)."""
    nonzero = spec != 0
    return torch.where(nonzero, estimate / torch.where(nonzero, spec, torch.ones_like(spec)), torch.zeros_like(spec))


def frame_positions(first: int, count: int, synthesis_hop: int, model_hop: int, n_model: int) -> torch.Tensor:
    """Model-frame positions ``(count,)`` float64 of synthesis frames ``first .. first + count - 1``, held at the
    last model frame ``n_model - 1``."""
    m = torch.arange(first, first + count, dtype=torch.float64)
    return (m * synthesis_hop / model_hop).clamp(max=n_model - 1)


def interpolate_frames(gain: torch.Tensor, positions: torch.Tensor, offset: int = 0) -> torch.Tensor:
    """``gain`` ``(F, L)`` (model frames ``offset .. offset + L - 1``) linearly interpolated at ``positions``
    ``(M,)`` (model-frame units, inside that range) -> ``(F, M)``."""
    t = positions - offset
    i0 = t.floor().long().clamp(0, gain.shape[1] - 1)
    i1 = (i0 + 1).clamp(max=gain.shape[1] - 1)
    a = (t - i0).clamp(0, 1).to(device=gain.device, dtype=gain.real.dtype)
    i0, i1 = i0.to(gain.device), i1.to(gain.device)
    return gain[:, i0] * (1 - a) + gain[:, i1] * a


def synthesise(wave: torch.Tensor, spec: torch.Tensor, estimate: torch.Tensor, cfg: FeatureConfig, density: int):
    """The waveform ``(T,)`` of ``estimate`` ``(F, N)``, an estimate on ``cfg``'s grid of ``spec = stft(wave, cfg)``.

    ``density = 1``: ``istft(estimate)``; else its gain applied on the STFT of ``wave`` with ``density`` times as
    many frames (module docstring)."""
    n_samples = wave.shape[-1]
    if density == 1:
        return istft(estimate, cfg, length=n_samples)
    dense = synthesis_config(cfg, density)
    x = stft(wave, dense)
    pos = frame_positions(0, x.shape[1], dense.hop_length, cfg.hop_length, spec.shape[1])
    return istft(x * interpolate_frames(applied_gain(spec, estimate), pos), dense, length=n_samples)


class StreamingSynthesis:
    """:func:`synthesise` fed with final model-frame gains in order (``push``), then ``finish`` -> ``(T,)``.

    ``padded`` is the scaled waveform with ``n_fft // 2`` zeros on each side (the centred STFT's padding), ``n_model``
    the number of model frames. Each ``push(gains (F, L))`` takes the next L model frames' gains; synthesis frames
    are made as soon as the model frames around them are in. Memory: the waveform buffers and the gains of one push.
    """

    def __init__(self, padded: torch.Tensor, n_samples: int, n_model: int, cfg: FeatureConfig, density: int):
        self.cfg, self.dense = cfg, synthesis_config(cfg, density)
        self.padded, self.n_samples, self.n_model = padded, n_samples, n_model
        self.n_dense = self.dense.n_frames(n_samples)
        self.window = frame_window(cfg, device=padded.device, dtype=padded.dtype)
        self.out = torch.zeros_like(padded)
        self.envelope = torch.zeros_like(padded)
        self.kept = None  # the last model frame pushed (F, 1): the left neighbour of the next synthesis frames
        self.pushed = 0  # model frames pushed so far
        self.made = 0  # synthesis frames made so far

    def push(self, gains: torch.Tensor) -> None:
        """The gains ``(F, L)`` of model frames ``pushed .. pushed + L - 1`` (final: no later chunk changes them)."""
        start = self.pushed - (0 if self.kept is None else 1)
        block = gains if self.kept is None else torch.cat([self.kept, gains], dim=1)
        self.pushed += gains.shape[1]
        last = self.pushed - 1
        hop_s, hop = self.dense.hop_length, self.cfg.hop_length
        if self.pushed >= self.n_model:
            stop = self.n_dense
        else:  # the frames at or before the last model frame pushed (t_m = m hop_s / hop <= last): both neighbours in
            stop = max(self.made, min(self.n_dense, last * hop // hop_s + 1))
        if stop > self.made:
            pos = frame_positions(self.made, stop - self.made, hop_s, hop, self.n_model)
            self._add(self.made, interpolate_frames(block, pos, offset=start))
            self.made = stop
        self.kept = block[:, -1:]

    def _add(self, first: int, gain: torch.Tensor) -> None:
        n_fft, hop_s, count = self.cfg.n_fft, self.dense.hop_length, gain.shape[1]
        span = self.padded[first * hop_s : (first + count - 1) * hop_s + n_fft]
        frames = span.unfold(0, n_fft, hop_s)[:count] * self.window  # (count, n_fft)
        spec = torch.fft.rfft(frames, dim=1).transpose(0, 1) * gain
        shaped = torch.fft.irfft(spec, n=n_fft, dim=0) * self.window[:, None]
        overlap_add(self.out, shaped, first * hop_s, hop_s)
        overlap_add(self.envelope, (self.window**2)[:, None].expand(n_fft, count), first * hop_s, hop_s)

    def finish(self) -> torch.Tensor:
        """The waveform ``(T,)`` (still scaled as ``padded`` was); every model frame must have been pushed."""
        if self.pushed != self.n_model or self.made != self.n_dense:
            raise RuntimeError(f"{self.pushed} of {self.n_model} model frames pushed; push them all before finish")
        pad = self.cfg.n_fft // 2
        env = self.envelope[pad : pad + self.n_samples]
        wave = self.out[pad : pad + self.n_samples]
        return torch.where(env > 1e-11, wave / env.clamp_min(1e-11), torch.zeros_like(wave))


def overlap_add(buf: torch.Tensor, frames: torch.Tensor, start: int, hop: int) -> None:
    """``buf[start + j * hop + i] += frames[i, j]`` for ``frames`` ``(n_fft, L)``."""
    n_fft, m = frames.shape
    length = (m - 1) * hop + n_fft
    folded = torch.nn.functional.fold(
        frames.unsqueeze(0), output_size=(1, length), kernel_size=(1, n_fft), stride=(1, hop)
    )
    buf[start : start + length] += folded.reshape(-1)


__all__ = [
    "StreamingSynthesis",
    "applied_gain",
    "frame_positions",
    "interpolate_frames",
    "overlap_add",
    "synthesis_config",
    "synthesise",
    "valid_density",
]
