"""Enhance a waveform with a trained speech model: the Python API behind ``pyro-minvae enhance``.

::

    from pyro_minvae.infer.enhance import enhance_waveform
    res = enhance_waveform(model, cfg, noisy, visual={"lips": feats}, method="mcem", seed=0, device="cpu")
    res.waveform  # (T,) float32 torch tensor on the CPU, same length and scale as ``noisy``

``noisy``: mono waveform ``(T,)`` (numpy or torch) at ``cfg.sample_rate``. ``visual``: frame-aligned model features
``{name: (N, D)}`` with ``N = cfg.n_frames(T)`` (see :func:`pyro_minvae.features.video.align_to_stft` and the
modality loaders); without them MIN-VAE starts from its audio encoder (logged). ``method``: a name in ``ESTEPS``
(``"mcem"`` = the paper's MCEM; ``"fast"`` = variational EM); its options are ``config=`` (the method's
``config_class``, e.g. :class:`~pyro_minvae.infer.mcem.MCEMConfig`) and/or ``**opts`` naming its fields (e.g.
``iterations``), built into one config before any work.

The waveform is peak-normalised as in the paper, enhanced, and scaled back. Long recordings are processed in
chunks of ``chunk_seconds`` STFT frames overlapping by ``overlap_seconds``, each chunk with its own noise model
and seed ``seed + k``; the chunk estimates are cross-faded linearly over the overlap in the STFT domain and
overlap-added into the output chunk by chunk (the same result as one inverse STFT of the stitched estimate), so
the output has exactly T samples and memory is bounded by the chunk size plus a few copies of the waveform (a
30-minute recording: under 1.2 GB in all; the recording's full STFT is never held).
"""

from __future__ import annotations

import logging
import time
from typing import NamedTuple, Protocol

import numpy as np
import torch

from ..features import FeatureConfig, stft
from ..features.stft import analysis_window, frame_window
from ..registry import ESTEPS
from . import mcem as _mcem  # noqa: F401  (registers "mcem")
from . import vem as _vem  # noqa: F401  (registers "vem", "fast")
from .estep_common import MCEMResult
from .synthesis import StreamingSynthesis, applied_gain, overlap_add, synthesise

log = logging.getLogger("pyro_minvae")


class NonFiniteOutputError(ValueError):
    """The enhanced waveform has NaN/Inf samples: the model (or its checkpoint) diverged or is damaged."""


class EnhanceResult(NamedTuple):
    """``waveform`` ``(T,)`` float32 CPU tensor (input scale); ``estimate`` ``(F, N)`` complex speech STFT of the
    peak-normalised input (on ``device``), or ``None`` when the recording took several chunks (memory);
    ``chunks``: one :class:`MCEMResult` per chunk with its frame range ``(start, stop)`` (for several chunks
    without their ``estimate``); ``method``; ``init`` the encoder used to initialise z; ``seconds`` wall time."""

    waveform: torch.Tensor
    estimate: torch.Tensor | None
    chunks: tuple
    method: str
    init: str
    seconds: float

    @property
    def result(self) -> MCEMResult:
        """The single chunk's :class:`MCEMResult` (W, H, g, acceptance, objective, responsibilities)."""
        if len(self.chunks) != 1:
            raise ValueError(f"the recording was enhanced in {len(self.chunks)} chunks; use .chunks")
        return self.chunks[0][1]


def chunk_bounds(n_frames: int, chunk: int, overlap: int) -> list[tuple[int, int]]:
    """Frame ranges ``[(start, stop), ...]`` covering ``n_frames`` with ``overlap`` frames between neighbours."""
    if chunk <= 0 or not 0 <= overlap < chunk:
        raise ValueError(f"need chunk > 0 and 0 <= overlap < chunk; got chunk={chunk}, overlap={overlap}")
    if n_frames <= chunk:
        return [(0, n_frames)]
    hop = chunk - overlap
    starts = list(range(0, n_frames - chunk, hop)) + [n_frames - chunk]
    bounds = []
    for s in starts:
        if bounds and s <= bounds[-1][0]:
            continue
        bounds.append((s, s + chunk))
    return bounds


def crossfade_weights(
    bounds: list[tuple[int, int]], n_frames: int, device=None, dtype=torch.float32
) -> list[torch.Tensor]:
    """Per-chunk frame weights that sum to 1 over the recording (linear ramps across each overlap)."""
    ws = []
    for k, (s, e) in enumerate(bounds):
        w = torch.ones(e - s, device=device, dtype=dtype)
        if k > 0:
            ov = bounds[k - 1][1] - s
            if ov > 0:
                w[:ov] = torch.arange(1, ov + 1, device=device, dtype=dtype) / (ov + 1)
        if k + 1 < len(bounds):
            ov = e - bounds[k + 1][0]
            if ov > 0:
                w[e - s - ov :] = torch.minimum(
                    w[e - s - ov :], 1 - torch.arange(1, ov + 1, device=device, dtype=dtype) / (ov + 1)
                )
        ws.append(w)
    total = torch.zeros(n_frames, device=device, dtype=dtype)
    for (s, e), w in zip(bounds, ws):
        total[s:e] += w
    return [w / total[s:e] for (s, e), w in zip(bounds, ws)]


def _as_wave(noisy) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(noisy) if not torch.is_tensor(noisy) else noisy)
    if x.dim() != 1:
        raise ValueError(f"noisy waveform must be mono (T,); got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError("noisy waveform is empty")
    if not torch.isfinite(x).all():
        raise ValueError("noisy waveform contains NaN or Inf")
    return x.to(torch.float32)


class EnhanceProgress(Protocol):
    """Progress hooks of :func:`enhance_waveform` (e.g. a terminal bar): ``start(n_chunks)`` once, then per chunk
    ``iteration(chunk, it, info)`` after each EM iteration (the E-step's ``callback``) and ``chunk_done(chunk)``;
    ``close()`` at the end, also on error."""

    def start(self, n_chunks: int) -> None: ...

    def iteration(self, chunk: int, it: int, info: dict) -> None: ...

    def chunk_done(self, chunk: int) -> None: ...

    def close(self) -> None: ...


def enhance_waveform(
    model,
    cfg: FeatureConfig,
    noisy,
    visual: dict | None = None,
    method: str = "mcem",
    seed: int = 0,
    device="cpu",
    chunk_seconds: float = 30.0,
    overlap_seconds: float = 2.0,
    progress: EnhanceProgress | None = None,
    **opts,
) -> EnhanceResult:
    """Enhance ``noisy`` ``(T,)`` with ``model`` (moved to ``device``, eval mode); see module docstring.

    ``progress``: optional :class:`EnhanceProgress` hooks (they receive the E-step's ``callback``).
    Raises :class:`NonFiniteOutputError` (a ``ValueError``) instead of returning NaN/Inf audio.
    """
    if progress is None:
        return _enhance_waveform(
            model, cfg, noisy, visual, method, seed, device, chunk_seconds, overlap_seconds, None, **opts
        )
    try:
        return _enhance_waveform(
            model, cfg, noisy, visual, method, seed, device, chunk_seconds, overlap_seconds, progress, **opts
        )
    finally:
        progress.close()


def _with_progress(estep, progress: EnhanceProgress | None, chunk: int):
    """``estep`` with its per-iteration ``callback`` also reporting to ``progress`` (unchanged without one)."""
    if progress is None:
        return estep

    def run(*args, callback=None, **kwargs):
        def report(it, info):
            progress.iteration(chunk, it, info)
            if callback is not None:
                callback(it, info)

        res = estep(*args, callback=report, **kwargs)
        progress.chunk_done(chunk)
        return res

    return run


def _enhance_waveform(
    model, cfg, noisy, visual, method, seed, device, chunk_seconds, overlap_seconds, progress, **opts
) -> EnhanceResult:
    t0 = time.perf_counter()
    estep = ESTEPS.get(method)
    callback = opts.pop("callback", None)  # the E-step's per-iteration hook is not a config field
    opts = {"config": estep.make_config(opts.pop("config", None), **opts)}  # bad options fail before any work
    if callback is not None:
        opts["callback"] = callback
    device = torch.device(device)
    if model.n_freq != cfg.n_freq:
        raise ValueError(f"the model has {model.n_freq} bins, the feature config {cfg.n_freq}")
    x = _as_wave(noisy)
    peak = float(x.abs().max())
    scale = 1.0 / peak if peak > 1e-8 else 1.0
    n_samples = x.shape[0]
    n = cfg.n_frames(n_samples)  # = the number of frames of stft(x)
    vis = {}
    for k, v in (visual or {}).items():
        if k not in model.modalities:
            log.info("ignoring visual stream %r: the model reads %s", k, ", ".join(model.modalities))
            continue
        if v.shape[0] != n:
            raise ValueError(
                f"visual[{k!r}] has {v.shape[0]} frames; the STFT of this waveform has {n} "
                "(align it with pyro_minvae.features.video.align_to_stft)"
            )
        vis[k] = v
    model.to(device)
    chunk = max(2, int(round(chunk_seconds * cfg.frame_rate)))
    overlap = min(int(round(overlap_seconds * cfg.frame_rate)), chunk - 1)
    bounds = chunk_bounds(n, chunk, overlap)
    if progress is not None:
        progress.start(len(bounds))

    def visual_chunk(s: int, e: int) -> dict:
        return {
            name: torch.as_tensor(np.asarray(v[s:e]) if not torch.is_tensor(v) else v[s:e]).to(device)
            for name, v in vis.items()
        }

    once = _SayOnce()  # the E-step's notes (e.g. "no visual input") once per recording: not per chunk or restart
    log.addFilter(once)
    try:
        if len(bounds) == 1:  # one chunk: the whole STFT at once
            spec = stft((x * scale).to(device), cfg)  # (F, N)
            res = _with_progress(estep, progress, 0)(model, spec, visual_chunk(0, n), seed=seed, **opts)
            _check_finite(res.estimate)
            density = opts["config"].synthesis_density
            wave = synthesise((x * scale).to(device), spec, res.estimate, cfg, density) / scale
            seconds = time.perf_counter() - t0
            return EnhanceResult(
                wave.to("cpu", torch.float32), res.estimate, (((0, n), res),), method, res.init, seconds
            )
        wave, results = _enhance_chunked(
            estep, model, cfg, x, scale, bounds, visual_chunk, seed, device, opts, progress
        )
    finally:
        log.removeFilter(once)
    return EnhanceResult(wave, None, tuple(results), method, results[0][1].init, time.perf_counter() - t0)


def _check_finite(estimate: torch.Tensor) -> None:
    if not bool(torch.isfinite(torch.view_as_real(estimate)).all()):
        raise NonFiniteOutputError("the model produced NaN or Inf (diverged or damaged weights)")


def _enhance_chunked(
    estep,
    model,
    cfg: FeatureConfig,
    x: torch.Tensor,
    scale: float,
    bounds,
    visual_chunk,
    seed: int,
    device,
    opts: dict,
    progress: EnhanceProgress | None = None,
) -> tuple[torch.Tensor, list]:
    """Chunk by chunk, with memory bounded by the chunk size plus a few copies of the waveform: each chunk's STFT
    frames are cut from the zero-padded signal (the frames ``s..e-1`` of ``stft(x)``), enhanced, weighted by the
    cross-fade and overlap-added straight into the output; the output is then divided by the summed squared
    window of all frames, as :func:`istft` does. With ``synthesis_density`` > 1 the chunks' cross-faded gains go to
    a :class:`~pyro_minvae.infer.synthesis.StreamingSynthesis` instead. Per-chunk results are kept without their
    ``estimate``."""
    n_samples, hop, n_fft = x.shape[0], cfg.hop_length, cfg.n_fft
    n = cfg.n_frames(n_samples)
    pad = n_fft // 2
    xp = torch.zeros(n_samples + 2 * pad, device=device)
    xp[pad : pad + n_samples] = x.to(device)
    xp.mul_(scale)
    win = analysis_window(cfg, device=device, dtype=xp.dtype)
    win_full = frame_window(cfg, device=device, dtype=xp.dtype)
    weights = crossfade_weights(bounds, n, device=device, dtype=xp.dtype)
    density = opts["config"].synthesis_density
    dense = None if density == 1 else StreamingSynthesis(xp, n_samples, n, cfg, density)
    out = torch.zeros_like(xp) if dense is None else None
    pending = None  # with ``dense``: the summed gains of the frames after the last one pushed, (F, frames)
    results = []
    for k, ((s, e), w) in enumerate(zip(bounds, weights)):
        spec = torch.stft(
            xp[s * hop : (e - 1) * hop + n_fft],
            n_fft=n_fft,
            hop_length=hop,
            win_length=cfg.win_length,
            window=win,
            center=False,
            return_complex=True,
        )  # (F, e - s)
        res = _with_progress(estep, progress, k)(model, spec, visual_chunk(s, e), seed=seed + k, **opts)
        _check_finite(res.estimate)
        if dense is None:
            overlap_add(out, torch.fft.irfft(res.estimate * w, n=n_fft, dim=0) * win_full[:, None], s * hop, hop)
        else:  # chunks start in order and end in order: frames before the next chunk's start are final
            gain = applied_gain(spec, res.estimate) * w
            if pending is not None:
                gain[:, : pending.shape[1]] += pending
            final = (bounds[k + 1][0] if k + 1 < len(bounds) else n) - s
            dense.push(gain[:, :final])
            pending = gain[:, final:]
        results.append(((s, e), res._replace(estimate=None)))
        log.debug("chunk %d/%d done (frames %d-%d)", k + 1, len(bounds), s, e)
    if dense is not None:
        return dense.finish().div_(scale).to("cpu", torch.float32), results
    del xp
    env = torch.zeros_like(out)
    for b in range(0, n, 4096):  # squared window summed over all frames, 4096 frames at a time
        overlap_add(env, (win_full**2)[:, None].expand(n_fft, min(4096, n - b)), b * hop, hop)
    wave = out[pad : pad + n_samples]
    wave.div_(env[pad : pad + n_samples]).div_(scale)
    return wave.to("cpu", torch.float32), results


class _SayOnce(logging.Filter):
    """Lets each distinct INFO/DEBUG message through once; warnings and errors always pass."""

    def __init__(self):
        super().__init__()
        self.seen: set = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING or record.msg == "chunk %d/%d done (frames %d-%d)":
            return True
        key = record.getMessage()
        if key in self.seen:
            return False
        self.seen.add(key)
        return True


__all__ = [
    "enhance_waveform",
    "EnhanceResult",
    "EnhanceProgress",
    "NonFiniteOutputError",
    "chunk_bounds",
    "crossfade_weights",
]
