"""Helpers shared by every E-step method (MCEM, the fast variational E-step, batched E-steps).

One copy of each: the result type, input checks, the model batch, the start every E-step shares
(:func:`start_estep`: checks, model batch, initial NMF state), encoder-mean initial latents, the mixture weights'
initialisation and M-step, the classic sampled NMF M-step and the Wiener estimate.

Shapes: ``spec`` ``(F, N)`` complex noisy STFT; latents ``(N, L)``; kept samples ``(R, N, L)``; decoder
log-variances ``(R, N, F)``; mixture weights ``(M,)``; responsibilities ``(N, M)``.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, NamedTuple

import torch

from ..models.likelihood import speech_variance
from ..models.speech_vae import as_batch
from ..noise.nmf import NMFNoise, NMFState
from .gain_rule import GainRule

if TYPE_CHECKING:  # estep_config imports this module
    from .estep_config import EStepConfig

log = logging.getLogger("pyro_minvae")

WEIGHTS = ("uniform", "model")
# the NMF start of each restart in turn (a noise_start each; None: the paper's raw draws): the schedule the fast
# E-step's restarts run for the families it was chosen for on validation, and for ensembles (docs/algorithms.md)
RESTART_STARTS = (None, 0.25, 0.5, 1.0)
RESP_CLIP = 30.0


class MCEMResult(NamedTuple):
    """Result of an E-step method on one spectrogram.

    ``estimate`` ``(F, N)`` complex speech STFT; ``nmf`` final :class:`NMFState` (W ``(F, K)``, H ``(K, N)``,
    g ``(N,)``); ``acceptance`` ``(I,)`` mean MH acceptance per EM iteration; ``objective`` ``(I,)`` the M-step
    objective after each iteration (classic: sampled IS cost; minvae: IS-NMF cost of the expected noise power);
    ``responsibilities`` ``(N, M)`` or ``None``; ``latents`` ``(N, L)`` final state; ``init`` the encoder used.
    """

    estimate: torch.Tensor
    nmf: NMFState
    acceptance: torch.Tensor
    objective: torch.Tensor
    responsibilities: torch.Tensor | None
    latents: torch.Tensor
    init: str

    @property
    def W(self) -> torch.Tensor:
        return self.nmf.W

    @property
    def H(self) -> torch.Tensor:
        return self.nmf.H

    @property
    def g(self) -> torch.Tensor:
        return self.nmf.g


EStepResult = MCEMResult  # the same type under the name that fits every E-step


def scheduled_config(config: "EStepConfig", model) -> "EStepConfig":
    """The config ``model`` runs: its restart schedule ``model.restart_starts`` (a ``SpeechVAE``'s or a
    ``ModelEnsemble``'s; ``None``: none) filled in as ``restart_starts`` when the config runs several restarts and
    sets neither ``restart_starts`` nor ``noise_start`` (a caller's option wins; one run is left as it is), else
    ``config`` itself."""
    starts = model.restart_starts
    given = config.restart_starts is not None or config.noise_start is not None
    if starts is None or config.restarts == 1 or given:
        return config
    return dataclasses.replace(config, restart_starts=tuple(starts))


def run_restarts(run, model, spec, visual, config, seed, generator, callback, known: dict) -> MCEMResult:
    """``config.restarts`` = R runs of an E-step's ``run`` from independent starts; the first run's result with
    ``estimate`` = ``rule(mean_r G_r) X``: the runs' posterior-mean Wiener gains averaged, then the config's gain
    rule applied once (so a floor or exponent means what it says for the average).

    Run 0 is the single run (same ``seed``/``generator``); run r > 0 uses ``seed + r``, or with a ``generator`` a
    seed drawn from it after run 0. With ``config.restart_starts``, run r starts its NMF at
    ``noise_start = restart_starts[r % len]``. The joint fit of speech and noise is local (docs/algorithms.md) and
    each start errs differently in the split: the mean gain is smoother than any one run's. With
    ``config.restart_inits``, run r initialises z from the encoder ``restart_inits[r % len]`` (``None``: ``init``).
    ``callback`` sees every run's iterations."""
    single = dataclasses.replace(
        config, restarts=1, restart_starts=None, restart_inits=None, gain_floor=0.0, gain_exponent=1.0
    )
    starts, inits = config.restart_starts, config.restart_inits

    def config_of(r: int):  # restart r's NMF start and encoder: restart_starts[r] and restart_inits[r] (cycled)
        start = {} if starts is None else {"noise_start": starts[r % len(starts)]}
        init = {} if inits is None or inits[r % len(inits)] is None else {"init": inits[r % len(inits)]}
        return dataclasses.replace(single, **start, **init)

    runs = [run(model, spec, visual, config_of(0), seed=seed, generator=generator, callback=callback, **known)]
    for r in range(1, config.restarts):
        seed_r = seed + r if generator is None else draw_seed(generator)
        runs.append(run(model, spec, visual, config_of(r), seed=seed_r, callback=callback, **known))
    estimate = torch.stack([r.estimate for r in runs]).mean(0)  # = spec * mean gain: the runs share spec
    rule = config.gain_rule()
    if not rule.identity:
        estimate = spec * rule(gain_of(estimate, spec))
    return runs[0]._replace(estimate=estimate)


def gain_of(estimate: torch.Tensor, spec: torch.Tensor) -> torch.Tensor:
    """The real gain ``G`` ``(F, N)`` of an estimate ``G * spec`` (0 where ``spec`` is 0: its output is 0 for any
    gain)."""
    zero = torch.zeros((), dtype=spec.real.dtype, device=spec.device)
    return torch.where(spec.abs() > 0, (estimate / spec).real, zero)


def draw_seed(generator: torch.Generator) -> int:
    """A seed in [0, 2**62) drawn from ``generator`` (a run that must follow a generator's stream)."""
    return int(torch.randint(2**62, (1,), generator=generator, device=generator.device))


def make_generator(seed: int, device) -> torch.Generator:
    """A generator on ``device`` seeded with ``seed``."""
    gen = torch.Generator(device=torch.device(device) if device is not None else "cpu")
    gen.manual_seed(int(seed))
    return gen


def check_inputs(model, spec: torch.Tensor, visual: dict | None) -> None:
    """``spec`` must be a complex ``(F, N)`` STFT with the model's F; every visual stream must have N frames."""
    if not torch.is_complex(spec) or spec.dim() != 2:
        raise ValueError(f"spec must be a complex STFT (F, N); got {tuple(spec.shape)} {spec.dtype}")
    if spec.shape[0] != model.n_freq:
        raise ValueError(f"spec has {spec.shape[0]} bins; the model expects {model.n_freq}")
    for k, v in (visual or {}).items():
        if v.shape[0] != spec.shape[1]:
            raise ValueError(f"visual[{k!r}] has {v.shape[0]} frames, the STFT has {spec.shape[1]}")


def model_batch(model, spec: torch.Tensor, visual: dict | None, dtype: torch.dtype) -> dict:
    """Frame-major noisy power ``(N, F)`` + the visual features the model reads, all on ``spec``'s device."""
    p = (spec.real.square() + spec.imag.square()).transpose(0, 1).to(dtype).contiguous()
    vis = {k: torch.as_tensor(v).to(device=spec.device, dtype=dtype) for k, v in (visual or {}).items()}
    return as_batch(p, vis, model.modalities)


class EStepStart(NamedTuple):
    """Where an E-step starts on one spectrogram (:func:`start_estep`).

    ``spec`` ``(F, N)`` complex noisy STFT; ``batch`` the model batch (noisy power ``(N, F)`` + visual features,
    in the model's dtype); ``power`` the noisy power ``(N, F)`` in the NMF dtype; ``nmf`` the noise model and
    ``state`` its initial :class:`NMFState` (W0 then H0 drawn from ``generator``, or given); ``dtype`` the model's
    dtype; ``update_noise`` False: the M-steps keep ``state`` (a known noise model).
    """

    spec: torch.Tensor
    batch: dict
    power: torch.Tensor
    nmf: NMFNoise
    state: NMFState
    generator: torch.Generator
    dtype: torch.dtype
    update_noise: bool = True


def start_estep(
    model,
    spec: torch.Tensor,
    visual: dict | None,
    config: "EStepConfig",
    seed: int = 0,
    generator=None,
    noise: NMFState | None = None,
    fix_noise: bool = False,
) -> EStepStart:
    """Check the inputs, put ``model`` in eval mode, build the model batch and draw the initial NMF state (of
    ``config.noise_model()`` in ``config.nmf_dtype``, default the model's) from ``generator`` (default: a new
    one seeded with ``seed`` on ``spec``'s device), or take ``noise`` (an :class:`NMFState` for this spectrogram)
    as it is; ``fix_noise`` keeps it so (``EStepStart.update_noise`` False). The initial latents are apart
    (:func:`initial_latents`): the batched E-step encodes all utterances in one pass."""
    check_inputs(model, spec, visual)
    model.eval()
    dtype = next(model.parameters()).dtype
    nmf_dtype = config.nmf_dtype or dtype
    gen = generator if generator is not None else make_generator(seed, spec.device)
    batch = model_batch(model, spec, visual, dtype)
    power = batch["audio"].to(nmf_dtype)
    nmf = config.noise_model(config.observed_bins(spec))  # a telephone band's stop band is left out
    state = nmf.init(
        model.n_freq, power.shape[0], gen, device=spec.device, dtype=nmf_dtype, level=config.noise_start_level(power)
    )
    if noise is not None:
        nmf.validate(noise, power)
        state = NMFState(*(None if t is None else t.to(device=spec.device, dtype=nmf_dtype) for t in noise))
    elif fix_noise:
        raise ValueError("fix_noise=True keeps the noise model as given: pass noise=NMFState(...)")
    return EStepStart(spec, batch, power, nmf, state, gen, dtype, not fix_noise)


def initial_latents(model, batch: dict, prefer: str | None = None) -> tuple[torch.Tensor, str]:
    """Encoder-mean initial latents ``(N, L)`` and the name of the encoder used.

    MIN-VAE: the visual encoder (first visual modality present); without visual input it falls back to the
    audio encoder on the noisy power and says so (log message). A-VAE: audio encoder; AV-CVAE: its encoder.
    """
    visual = [m for m in model.modalities if m != "audio" and m in batch]
    if model.is_mixture and prefer is None:
        if visual:
            prefer = visual[0]
        else:
            log.info(
                "no visual input: MIN-VAE initialises z from the audio encoder on the noisy spectrum "
                "(the paper initialises from the lips; expect lower quality)"
            )
            prefer = "audio"
    z = model.init_latents(batch, prefer=prefer)
    return z, prefer or model.guide_net.modalities[0]


def initial_weights(model, weights: str, n: int, device, dtype):
    """Mixture models: initial global log-weights ``(M,)`` (uniform, the paper's pi = 1/M, or the prior's
    trained ones) and per-frame responsibilities ``(N, M)`` equal to them; ``(None, None)`` otherwise."""
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {WEIGHTS}; got {weights!r}")
    if not model.is_mixture:
        return None, None
    m = len(model.prior.log_weights())
    if weights == "model":
        log_w = model.prior.log_weights().detach().to(device=device, dtype=dtype)
    else:
        log_w = torch.full((m,), 1.0 / m, device=device, dtype=dtype).log()
    return log_w, log_w.exp().expand(n, m).contiguous()


def mean_log_weights(resp: torch.Tensor) -> torch.Tensor:
    """The M-step of the mixture weights: ``log pi = log mean_n r_n`` ``(M,)`` from responsibilities ``(N, M)``."""
    return torch.log(resp.mean(0).clamp_min(torch.finfo(resp.dtype).tiny))


def responsibilities(model, zs: torch.Tensor, log_weights: torch.Tensor, components=None) -> torch.Tensor:
    """q(c_n = m) ``(N, M)`` from kept samples ``zs`` ``(R, N, L)``: softmax_m(log pi_m + mean_r log p(z_r|m)).

    Log-density differences between components are clipped at ``RESP_CLIP`` = 30 nats, as in the published code
    (so a component whose global weight collapsed can still win back frames that fit it much better).
    ``components``: a callable ``z (..., L) -> (M, ...)`` scoring every component (default: the prior's
    ``component_log_prob``).
    """
    score = components if components is not None else model.prior.component_log_prob
    comp = score(zs).mean(1)  # (M, N)
    comp = (comp - comp.max(0).values).clamp_min(-RESP_CLIP)  # the published +-30 clip (M = 2: exactly theirs)
    return torch.softmax(log_weights.unsqueeze(-1) + comp, dim=0).transpose(0, 1).contiguous()


def sampled_m_step(
    nmf: NMFNoise,
    state: NMFState,
    power: torch.Tensor,
    speech_log_var: torch.Tensor,
    exponent: float,
    update_gain: bool,
    update: bool = True,
) -> tuple[NMFState, torch.Tensor]:
    """The classic M-step from kept samples' decoder log-variances ``(R, N, F)`` and the noisy power ``(N, F)``:
    the updated :class:`NMFState` (unchanged if not ``update``) and its sampled IS cost (shared by MCEM and the
    fast E-step)."""
    speech_var = speech_variance(speech_log_var.to(power.dtype))
    if update:
        state = nmf.update_sampled(state, power, speech_var, exponent=exponent, update_gain=update_gain)
    return state, nmf.sampled_objective(state, power, speech_var)


def wiener_estimate(
    spec: torch.Tensor, state: NMFState, speech_log_var: torch.Tensor, rule: GainRule = GainRule()
) -> torch.Tensor:
    """``S = rule(mean_r [g s2_r / (g s2_r + V)]) X``: the speech STFT ``(F, N)`` from the noisy ``spec`` ``(F, N)``
    and samples' decoder log-variances ``(R, N, F)``; ``rule`` (default: identity) reshapes the posterior-mean
    Wiener gain (:class:`~pyro_minvae.infer.gain_rule.GainRule`)."""
    vs = state.g.unsqueeze(-1) * speech_variance(speech_log_var.to(state.g.dtype))
    gain = rule((vs / (vs + state.variance)).mean(0))  # (N, F)
    return spec * gain.transpose(0, 1).to(spec.real.dtype)


__all__ = [
    "MCEMResult",
    "EStepResult",
    "make_generator",
    "check_inputs",
    "model_batch",
    "EStepStart",
    "start_estep",
    "initial_latents",
    "initial_weights",
    "mean_log_weights",
    "responsibilities",
    "sampled_m_step",
    "wiener_estimate",
    "WEIGHTS",
    "RESP_CLIP",
]
