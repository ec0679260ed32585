"""Batched MCEM: several utterances enhanced in one tensor pass, each exactly as :func:`~.mcem.mcem` alone.

::

    from pyro_minvae.infer.batched import mcem_batch
    results = mcem_batch(model, [spec_1, spec_2], [vis_1, vis_2], seeds=[0, 1], config=MCEMConfig(...))
    # results[b] equals mcem(model, spec_b, vis_b, config, seed=seeds[b]) up to float rounding

Inputs: ``specs`` B noisy STFTs ``(F, N_b)`` complex (ragged ``N_b``) on one device, ``visuals`` B dicts
``{name: (N_b, D)}`` with the same stream names (or ``None``), one seed per utterance. Output: one
:class:`~.estep_common.MCEMResult` per utterance.

Layout: the utterances' frames are concatenated along the frame axis (``N = sum_b N_b``; no padding, so nothing
is masked). Every per-frame computation of an EM iteration, which is where the time goes (40 MH steps, each one
decoder pass and one likelihood pass over all frames), runs once for the whole batch: the potentials of
:mod:`.potentials` score the concatenated frames against the concatenated noise variance ``(N, F)``, gain ``(N,)``
and per-frame mixture weights ``(M, N)``. What couples frames within one utterance runs per utterance on its
slice: the NMF state (W ``(F, K)``, H ``(K, N_b)``, g ``(N_b,)``) and its M-step, the mixture responsibilities
and weights, the tolerance test and the Wiener estimate. These are a few small matrix products per iteration.

Randomness: one ``torch.Generator`` per utterance (seeded with its seed on the device), drawing in the order
:func:`~.mcem.mcem` draws from its own generator: W0, H0, then per MH step ``randn(N_b, L)`` and ``rand(N_b)``.
The batch's draws are these per-utterance draws concatenated, so each utterance sees exactly the numbers of its
own one-by-one run, whatever else is in the batch. An utterance whose classic loop meets ``tol`` leaves the
batch (its chain and generator stop, as alone) and runs its final chain with the others.

Scope: the ``frame-mh`` kernel, ``scoring="direct"``, ``driver="loop"``; the minvae loop with
``marginal=False``. Anything else raises ``ValueError`` (use :func:`~.mcem.mcem` per utterance).
Same code path on every device (no host copies in the loop; tested on the meta device).
"""

from __future__ import annotations

import time
from typing import NamedTuple, Sequence

import numpy as np
import pyro
import torch

from ..models.likelihood import AdditiveNoise, speech_variance
from ..noise.nmf import NMFNoise, NMFState
from . import estep_common as ec
from .estep_common import EStepStart, MCEMResult
from .kernels import FrameMH, FrameState, run_chain
from .mcem import MCEMConfig, mcem
from .potentials import ExpectedPowerPotential, LikelihoodPotential


class Segments(NamedTuple):
    """Frame ranges of B utterances concatenated along the frame axis: ``lengths`` ``(N_1, ..., N_B)``."""

    lengths: tuple

    @property
    def total(self) -> int:
        return sum(self.lengths)

    def split(self, t: torch.Tensor, dim: int = 0) -> tuple:
        """``t`` with ``sum_b N_b`` along ``dim`` -> B views with ``N_b`` along ``dim``."""
        return torch.split(t, list(self.lengths), dim=dim)


class SegmentedFrameMH(FrameMH):
    """:class:`FrameMH` over concatenated utterances, drawing each utterance's numbers from its own generator.

    ``generators``: one per segment of ``segments``. The proposal noise is ``cat_b randn(N_b, L, gen_b)`` and the
    accept draws ``cat_b rand(N_b, gen_b)``, so every segment's chain is the one :class:`FrameMH` runs on that
    utterance alone with ``gen_b``. ``frame_accepts`` ``(N,)`` counts accepted moves per frame since ``setup``.
    """

    def __init__(self, potential, segments: Segments, generators: Sequence[torch.Generator], step_var: float = 0.01):
        if len(generators) != len(segments.lengths):
            raise ValueError(f"{len(generators)} generators for {len(segments.lengths)} segments")
        super().__init__(potential, step_var=step_var, generator=None)
        self.segments = segments
        self.generators = list(generators)
        self.frame_accepts: torch.Tensor | None = None

    def setup(self, warmup_steps, *args, **kwargs):
        super().setup(warmup_steps, *args, **kwargs)
        self.frame_accepts = None

    def standard_normal(self, like: torch.Tensor) -> torch.Tensor:
        width = like.shape[1:]
        return torch.cat(
            [
                torch.randn((n,) + width, generator=g, device=like.device, dtype=like.dtype)
                for n, g in zip(self.segments.lengths, self.generators)
            ]
        )

    def uniform(self, n: int, like: torch.Tensor) -> torch.Tensor:
        if n != self.segments.total:
            raise ValueError(f"{n} frames for segments of {self.segments.total}")
        return torch.cat(
            [
                torch.rand(m, generator=g, device=like.device, dtype=like.dtype)
                for m, g in zip(self.segments.lengths, self.generators)
            ]
        )

    def accept_or_reject(self, state: FrameState, prop: FrameState, allowed: torch.Tensor | None = None) -> FrameState:
        new = super().accept_or_reject(state, prop, allowed)
        moved = (new.z != state.z).any(-1)  # accepted (a Gaussian proposal equals z with probability 0)
        self.frame_accepts = (
            moved.to(new.log_target.dtype) if self.frame_accepts is None else self.frame_accepts.add_(moved)
        )
        return new

    def segment_accept_rates(self) -> list:
        """Mean per-frame acceptance of each segment since ``setup`` (0-dim tensors, on the device)."""
        return [a.sum() / (a.numel() * self._n_steps) for a in self.segments.split(self.frame_accepts)]


class _Utterance:
    """Per-utterance state of the batched loops (everything that couples the frames of one utterance)."""

    def __init__(self, start: EStepStart, log_w, resp):
        self.spec, self.batch, self.power, self.gen = start.spec, start.batch, start.power, start.generator
        self.state = start.state  # the utterance's current NMF state (W, H, g)
        self.log_w, self.resp = log_w, resp
        self.acc: list = []
        self.obj: list = []
        self.prev = None
        self.done = False


def batch_refusal(method: str, options: dict | None = None, n_models: int = 1) -> str | None:
    """Why ``method`` with E-step ``options`` (on an ensemble of ``n_models`` models) cannot run batched (one line),
    or ``None`` when it can."""
    if n_models > 1:
        return "an ensemble enhances each record with its models in turn"
    if method != "mcem":
        return f"only --method mcem is batched, not {method}"
    try:
        _check_supported(mcem.make_config(None, **(options or {})))
    except ValueError as exc:
        return str(exc)
    return None


def _check_supported(config: MCEMConfig) -> None:
    unsupported = {
        "kernel": (config.kernel, "frame-mh"),
        "scoring": (config.scoring, "direct"),
        "driver": (config.driver, "loop"),
        "marginal": (config.marginal, False),
        "restarts": (config.restarts, 1),
        "restart_starts": (config.restart_starts, None),
        "restart_inits": (config.restart_inits, None),
    }
    for name, (value, ok) in unsupported.items():
        if value != ok:
            raise ValueError(f"mcem_batch supports {name}={ok!r} only; got {value!r} (use mcem per utterance)")


def _concat_batches(batches: Sequence[dict]) -> dict:
    keys = list(batches[0])
    for b in batches[1:]:
        if list(b) != keys:
            raise ValueError(f"every utterance needs the same streams; got {keys} and {list(b)}")
    return {k: torch.cat([b[k] for b in batches]) for k in keys}


def _per_frame(values: Sequence[torch.Tensor], segments: Segments) -> torch.Tensor:
    """Per-utterance ``(M,)`` vectors -> per-frame ``(M, N)``."""
    return torch.cat([v.unsqueeze(-1).expand(v.shape[0], n) for v, n in zip(values, segments.lengths)], dim=1)


@torch.no_grad()
def mcem_batch(
    model,
    specs: Sequence[torch.Tensor],
    visuals: Sequence[dict | None] | None = None,
    seeds: Sequence[int] | None = None,
    config: MCEMConfig | None = None,
    **options,
) -> list:
    """Enhance B spectrograms in one pass; ``results[b]`` equals ``mcem(model, specs[b], visuals[b], config,
    seed=seeds[b])`` up to float rounding (see module docstring). ``options``: :class:`MCEMConfig` fields."""
    config = mcem.make_config(config, **options)
    mcem.check(model, config)
    _check_supported(config)
    specs = list(specs)
    if not specs:
        return []
    visuals = list(visuals) if visuals is not None else [None] * len(specs)
    seeds = list(seeds) if seeds is not None else list(range(len(specs)))
    if not len(visuals) == len(seeds) == len(specs):
        raise ValueError(
            f"need one visual dict and one seed per spectrogram; got {len(specs)} spectrograms, "
            f"{len(visuals)} visual dicts, {len(seeds)} seeds"
        )
    device = specs[0].device
    for spec, vis in zip(specs, visuals):
        ec.check_inputs(model, spec, vis)
        if spec.device != device:
            raise ValueError(f"every spectrogram must be on one device; got {device} and {spec.device}")
    model.eval()
    # a recording with stop bands has its own set of scored bins (band_floor_db): it is enhanced alone, exactly as
    # mcem() would; the others share the batch
    alone = [config.observed_bins(s) is not None for s in specs]
    results: list = [
        mcem(model, s, v, config, seed=k) if a else None for s, v, k, a in zip(specs, visuals, seeds, alone)
    ]
    rest = [i for i, a in enumerate(alone) if not a]
    if rest:
        with pyro.validation_enabled(False):
            batch = _run(
                model, [specs[i] for i in rest], [visuals[i] for i in rest], [seeds[i] for i in rest], config, device
            )
        for i, r in zip(rest, batch):
            results[i] = r
    return results


def _run(model, specs, visuals, seeds, config: MCEMConfig, device) -> list:
    starts = [ec.start_estep(model, s, v, config, seed) for s, v, seed in zip(specs, visuals, seeds)]
    dtype, nmf = starts[0].dtype, starts[0].nmf
    segments = Segments(tuple(s.power.shape[0] for s in starts))
    batch = _concat_batches([s.batch for s in starts])
    z, used = ec.initial_latents(model, batch, config.init)  # encoders are frame-wise: one pass for all
    weights = "model" if config.scoring == "trace" else config.weights
    utts = [_Utterance(s, *ec.initial_weights(model, weights, s.power.shape[0], device, dtype)) for s in starts]
    loop = _classic if config.resolved_loop == "classic" else _minvae
    return loop(model, utts, batch, segments, z, used, nmf, config, config.gain_rule(), dtype)


def _subset(utts, batch: dict, segments: Segments, keep: list) -> tuple:
    """The concatenated batch and segments of the utterances ``keep`` (indices)."""
    if len(keep) == len(utts):
        return batch, segments
    return _concat_batches([utts[i].batch for i in keep]), Segments(tuple(segments.lengths[i] for i in keep))


def _classic(model, utts, batch, segments, z, used, nmf: NMFNoise, config: MCEMConfig, rule, dtype) -> list:
    update_gain = True if config.update_gain is None else config.update_gain
    exponent = 0.5 if config.exponent is None else config.exponent
    mixture = utts[0].log_w is not None
    zs = list(segments.split(z))
    active = list(range(len(utts)))
    kernel = potential = None
    for _ in range(config.iterations):
        if kernel is None or len(active) != len(kernel.generators):  # first iteration, or some met tol
            sub_batch, sub_seg = _subset(utts, batch, segments, active)
            potential = LikelihoodPotential(model, sub_batch, "direct")
            kernel = SegmentedFrameMH(potential, sub_seg, [utts[i].gen for i in active], config.step_var)
        members = [utts[i] for i in active]
        out = run_chain(
            kernel,
            torch.cat([zs[i] for i in active]),
            config.mh_steps,
            config.burn_in,
            _noise(nmf, [u.state for u in members], dtype),
            *_weights(members, kernel.segments),
        )
        rates = kernel.segment_accept_rates()
        for k, (i, u, z_b, kept_b, lv_b) in enumerate(
            zip(
                active,
                members,
                kernel.segments.split(out.state.z),
                kernel.segments.split(out.z, 1),
                kernel.segments.split(out.aux["speech_log_var"], 1),
            )
        ):
            zs[i] = z_b
            if mixture:
                u.resp = ec.responsibilities(model, kept_b, u.log_w, potential.component_log_prob)
                if config.update_weights:
                    u.log_w = ec.mean_log_weights(u.resp)
            u.state, cost = ec.sampled_m_step(nmf, u.state, u.power, lv_b, exponent, update_gain)
            u.acc.append(rates[k])
            u.obj.append(cost)
            if config.tol is not None and u.prev is not None and abs(float(u.prev) - float(cost)) < config.tol:
                u.done = True
            u.prev = cost
        active = [i for i in active if not utts[i].done]
        if not active:
            break
    potential = LikelihoodPotential(model, batch, "direct")
    kernel = SegmentedFrameMH(potential, segments, [u.gen for u in utts], config.step_var)
    out = run_chain(
        kernel,
        torch.cat(zs),
        config.final_mh_steps,
        config.final_burn_in,
        _noise(nmf, [u.state for u in utts], dtype),
        *_weights(utts, segments),
    )
    results = []
    for u, z_b, kept_b, lv_b in zip(
        utts, segments.split(out.state.z), segments.split(out.z, 1), segments.split(out.aux["speech_log_var"], 1)
    ):
        estimate = ec.wiener_estimate(u.spec, u.state, lv_b, rule)
        if mixture:
            u.resp = ec.responsibilities(model, kept_b, u.log_w, potential.component_log_prob)
        results.append(_result(u, estimate, z_b, used))
    return results


def _noise(nmf: NMFNoise, states: Sequence[NMFState], dtype) -> AdditiveNoise:
    """The concatenated utterances' noise as the model sees it: variance ``(N, F)``, gain ``(N,)``."""
    parts = [nmf.additive(s, dtype) for s in states]
    return AdditiveNoise(torch.cat([p.variance for p in parts]), torch.cat([p.gain for p in parts]))


def _weights(utts, segments: Segments) -> tuple:
    """The classic potential's extra argument: per-frame mixture log-weights ``(M, N)`` (or nothing)."""
    if utts[0].log_w is None:
        return ()
    return (_per_frame([u.log_w for u in utts], segments),)


def _result(u: _Utterance, estimate, z_b, used) -> MCEMResult:
    acc = torch.stack(u.acc).cpu() if u.acc else torch.zeros(0)
    return MCEMResult(estimate, u.state, acc, torch.stack(u.obj).cpu(), u.resp, z_b, used)


def _minvae(model, utts, batch, segments, z, used, nmf: NMFNoise, config: MCEMConfig, rule, dtype) -> list:
    update_gain = False if config.update_gain is None else config.update_gain
    exponent = 1.0 if config.exponent is None else config.exponent
    potential = ExpectedPowerPotential(model, batch, "direct", marginal=False)
    kernel = SegmentedFrameMH(potential, segments, [u.gen for u in utts], config.step_var)
    speech_power = [u.power for u in utts]  # |mu_s|^2 + Sigma_s, starts at |x|^2 (mu_s = x, Sigma_s = 0)
    gams = [None] * len(utts)
    mixture = utts[0].log_w is not None
    for _ in range(config.iterations):
        gain = torch.cat([u.state.g.to(dtype) for u in utts]) if update_gain else None
        resp = torch.cat([u.resp for u in utts]) if mixture else None
        out = run_chain(kernel, z, config.mh_steps, config.burn_in, torch.cat(speech_power).to(dtype), gain, resp, None)
        z = out.state.z
        rates = kernel.segment_accept_rates()
        for b, (u, kept_b, lv_b) in enumerate(
            zip(utts, segments.split(out.z, 1), segments.split(out.aux["speech_log_var"], 1))
        ):
            inv_sv = speech_variance(lv_b.to(u.power.dtype)).reciprocal_().mean(0)  # mean_r 1/s2_r
            gams[b] = u.state.g.unsqueeze(-1) / inv_sv
            if mixture:
                u.resp = ec.responsibilities(model, kept_b, u.log_w, potential.component_log_prob)
                if config.update_weights:
                    u.log_w = ec.mean_log_weights(u.resp)
            v = u.state.variance  # previous V
            wiener = gams[b] / (v + gams[b])
            sigma_s = v * wiener
            speech_power[b] = wiener.square() * u.power + sigma_s
            noise_power = (v / (v + gams[b])).square() * u.power + sigma_s
            u.state = nmf.update_expected_power(u.state, noise_power, exponent=exponent)
            if update_gain:
                u.state = nmf.update_gain_expected(u.state, speech_power[b], inv_sv)
            u.acc.append(rates[b])
            u.obj.append(nmf.expected_power_objective(u.state, noise_power))
    results = []
    for u, gam, z_b in zip(utts, gams, segments.split(z)):
        gain = rule(gam / (u.state.variance + gam))
        results.append(_result(u, u.spec * gain.transpose(0, 1).to(u.spec.real.dtype), z_b, used))
    return results


# ---- waveforms -------------------------------------------------------------------------------------------------------
def enhance_waveforms(
    model,
    cfg,
    waves: Sequence,
    visuals: Sequence[dict | None] | None = None,
    seeds: Sequence[int] | None = None,
    device="cpu",
    chunk_seconds: float = 30.0,
    config: MCEMConfig | None = None,
    **options,
) -> list:
    """:func:`~pyro_minvae.infer.enhance.enhance_waveform` (``method="mcem"``) for B recordings in one batched
    E-step: ``results[b]`` equals ``enhance_waveform(model, cfg, waves[b], visuals[b], seed=seeds[b], ...)`` up to
    float rounding. ``waves``: mono ``(T_b,)``; ``visuals``: frame-aligned features ``{name: (N_b, D)}``.

    Each recording is peak-normalised, transformed, enhanced and scaled back as alone. Recordings longer than one
    chunk (``chunk_seconds``) are refused (``ValueError``): enhance those one by one, chunked. ``seconds`` of each
    result is the batch's wall time divided by B.
    """
    from ..features import stft
    from .enhance import EnhanceResult, _as_wave, _check_finite
    from .synthesis import synthesise

    t0 = time.perf_counter()
    device = torch.device(device)
    waves = [_as_wave(w) for w in waves]
    visuals = list(visuals) if visuals is not None else [None] * len(waves)
    seeds = list(seeds) if seeds is not None else [0] * len(waves)
    chunk = max(2, int(round(chunk_seconds * cfg.frame_rate)))
    specs, scales, vis = [], [], []
    for x, v in zip(waves, visuals):
        n = cfg.n_frames(x.shape[0])
        if n > chunk:
            raise ValueError(
                f"a recording of {n} frames is longer than one chunk ({chunk} frames): enhance it with "
                "enhance_waveform (chunked)"
            )
        peak = float(x.abs().max())
        scales.append(1.0 / peak if peak > 1e-8 else 1.0)
        specs.append(stft((x * scales[-1]).to(device), cfg))
        vis.append(
            {
                k: torch.as_tensor(np.asarray(f) if not torch.is_tensor(f) else f).to(device)
                for k, f in (v or {}).items()
                if k in model.modalities
            }
        )
    model.to(device)
    config = mcem.make_config(config, **options)
    results = mcem_batch(model, specs, vis, seeds, config)
    share = (time.perf_counter() - t0) / max(1, len(waves))
    out = []
    for x, scale, spec, res in zip(waves, scales, specs, results):
        _check_finite(res.estimate)
        wave = synthesise((x * scale).to(device), spec, res.estimate, cfg, config.synthesis_density) / scale
        n = res.estimate.shape[1]
        out.append(
            EnhanceResult(wave.to("cpu", torch.float32), res.estimate, (((0, n), res),), "mcem", res.init, share)
        )
    return out


__all__ = ["mcem_batch", "enhance_waveforms", "batch_refusal", "SegmentedFrameMH", "Segments"]
