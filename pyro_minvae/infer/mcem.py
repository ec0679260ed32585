"""Monte-Carlo EM for speech enhancement (registered in ``ESTEPS`` as ``"mcem"``).

Input: the noisy STFT ``spec`` ``(F, N)`` complex and frame-aligned visual features ``{name: (N, D)}``.
Output: :class:`MCEMResult` with the speech STFT estimate ``(F, N)`` and the final inference state.

Two loops (``loop=``), both with the paper's MH and NMF settings (40 MH steps, 30 burn-in, K = 10, proposal
variance 0.01) and the frame-wise MH kernel :class:`~pyro_minvae.infer.kernels.FrameMH`. The default is 30 EM
iterations, not the paper's 100: on the validation mixtures every checkpoint (A-VAE, AV-CVAE, MIN-VAE) scored a
higher SI-SDR at 20-40 iterations than at 100, because the NMF slowly absorbs short speech bursts while the
speech model explains speech-like noise (docs/algorithms.md). For the same reason the NMF activations are
shared by blocks of 16 frames (``h_block=16``) by default. ``preset=paper`` (100 iterations, ``h_block=1``)
reproduces the paper.

``"classic"`` (every family; the default, ``loop="auto"``; Leglaive et al., Sadeghi et al. 2020)
    E-step: MH on ``log p(x | z, W H, g) + log p(z)`` (:class:`LikelihoodPotential`). M-step: multiplicative
    updates of W, H **and g** from the kept samples' speech variances (exponent 1/2, monotone; see
    :class:`~pyro_minvae.noise.nmf.NMFNoise`). Optional tolerance stop on the sampled IS cost. Final estimate:
    a longer MH run (100 steps, 75 burn-in) and ``S = mean_r [g s2_r / (g s2_r + V)] X``. For MIN-VAE the
    prior is the mixture with c marginalised, ``sum_m pi_m p(z | c=m)``, and each iteration re-estimates the
    responsibilities from the kept samples and ``pi = mean_n r_n`` (test-time EM on the weights, as the paper
    does): MCEM on the full model. On the validation mixtures it beat the paper's variational loop below by
    7.7 dB SI-SDR with the same checkpoint (+1.5 against -6.2 dB; noisy -4.2 dB). That loop's visual
    initialisation locks every frame onto the lips component: the two learned prior means lie ~10 prior
    standard deviations apart, beyond the reach of a 0.1-step random walk.
``"minvae"`` (MIN-VAE's published variational loop, AUTHORS_LOOPS.md section 3)
    Each iteration: (a) MH on ``log p(P | z, g) + sum_m r_nm log p(z | c=m)`` with ``P = |mu_s|^2 + Sigma_s``;
    (b) ``gam = g / mean_r(1 / s2_r)``; (c) responsibilities ``r_nm ~ pi_m exp(mean_r log p(z_r | c=m))`` and
    ``pi = mean_n r_n``; (d) ``Sigma_s = V gam / (V + gam)``, ``mu_s = gam / (V + gam) X`` (previous V);
    (e) IS-NMF on ``|x - mu_s|^2 + Sigma_s`` (exponent 1, eps floor, l1-normalised W); optional closed-form
    gain update (``update_gain=True``; the published code keeps g = 1). Output ``S = gam / (V + gam) X``.

Deliberate departures from the published code (bugs, not modelling choices):

* no double decoding: the kernel reuses the proposal's decoder output for accepted frames, and kept samples'
  variances come from the chain (no re-decode);
* no stale gain: the current state is re-scored whenever W, H or g change (``FrameMH.setup``);
* the classic final estimate averages *all* kept samples (the published ``separate()`` uses 10 of its 25);
* MIN-VAE responsibilities use the exact Gaussian log density (``1/2 log s`` per dim; the published code adds
  ``log s``), generalised from a Bernoulli to M components; MH/NMF sizes are arguments, not hard-coded.

Randomness: one ``torch.Generator`` (seeded from ``seed`` on ``device``) draws W0, then H0, then per MH step a
``randn(N, L)`` and a ``rand(N)``: the same seed gives the same output.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyro
import torch

from ..models.likelihood import speech_variance
from ..contracts import EStep, check_kernel_fits
from ..registry import ESTEPS, KERNELS, Registry
from . import estep_common as ec
from .estep_common import EStepStart, MCEMResult
from .estep_config import EStepConfig
from .kernels import ChainOutput, FrameMH, run_chain
from .potentials import ExpectedPowerPotential, LikelihoodPotential

DRIVERS = ("loop", "pyro")
#: EM loops of MCEM by name (``MCEMConfig.loop``); each ``loop(model, start, z, init_name, config, callback) ->
#: MCEMResult`` from an :class:`~.estep_common.EStepStart` and the initial latents ``z`` ``(N, L)`` of the encoder
#: ``init_name``. ``enhance --loop`` offers these names.
MCEM_LOOPS: Registry = Registry("MCEM loop")


def _chain(kernel: FrameMH, z: torch.Tensor, steps: int, burn_in: int, driver: str, *args) -> ChainOutput:
    """Run the kernel with our loop or through ``pyro.infer.MCMC`` (same draws, same result)."""
    if driver == "loop":
        return run_chain(kernel, z, steps, burn_in, *args)
    kept: list = []

    def hook(kern, params, stage, i):
        if stage == "Sample":
            kept.append(kern.state.aux)

    mcmc = pyro.infer.MCMC(
        kernel,
        num_samples=steps - burn_in,
        warmup_steps=burn_in,
        initial_params={"z": z},
        hook_fn=hook,
        disable_progbar=True,
    )
    mcmc.run(*args)
    zs = mcmc.get_samples()["z"]
    aux = {k: torch.stack([a[k] for a in kept]) for k in kept[0]}
    return ChainOutput(zs, aux, kernel.accept_rate, kernel.state)


def _make_kernel(config: "MCEMConfig", potential, gen) -> FrameMH:
    """The E-step kernel registered as ``config.kernel`` in ``KERNELS`` (default ``"frame-mh"``)."""
    return KERNELS.build(
        config.kernel, potential=potential, step_var=config.step_var, generator=gen, **config.kernel_options
    )


@dataclass(frozen=True)
class MCEMConfig(EStepConfig):
    """MCEM's options (see the module docstring; the shared ones in :class:`EStepConfig`).

    ``loop``: ``"auto"`` (= ``"classic"``; for mixture priors: marginal prior + re-estimated weights) or
    ``"minvae"`` (MIN-VAE's published variational loop). ``mh_steps``/``burn_in`` per EM iteration and
    ``final_mh_steps``/``final_burn_in`` for the classic final estimate (0 <= burn-in < steps); ``step_var``
    the random-walk proposal variance (> 0). ``update_gain`` defaults to True (classic) / False (minvae, as
    published); ``exponent`` to 0.5 (classic) / 1 (minvae). ``tol``: stop the classic loop when the cost changes
    by less than ``tol`` (``None``: run all iterations). ``h_block`` defaults to 16 (NMF activations shared by
    ~0.5 s blocks; the paper's free activations are ``h_block=1``, ``preset=paper``): on the validation mixtures
    with the long-trained checkpoints it raised every metric (A-VAE, 60 files: SI-SDR +0.2 dB, STOI +0.016,
    ESTOI +0.012; MIN-VAE at 5 and 10 dB, 48 files: SI-SDR +1.8 dB, PESQ-wb +0.09, ESTOI +0.071;
    docs/algorithms.md). ``marginal``: the minvae loop's potential marginalises c
    instead of weighting by the responsibilities. ``driver``: ``"loop"`` (:func:`run_chain`) or ``"pyro"``
    (``pyro.infer.MCMC``, same draws). ``kernel``: a name in ``KERNELS``, built as ``KERNELS.build(kernel,
    potential=..., step_var=step_var, generator=gen, **kernel_options)`` (see ``examples/custom_kernel.py``).
    """

    h_block: int = 16
    loop: str = "auto"
    mh_steps: int = 40
    burn_in: int = 30
    step_var: float = 0.01
    update_gain: bool | None = None
    exponent: float | None = None
    tol: float | None = None
    final_mh_steps: int = 100
    final_burn_in: int = 75
    marginal: bool = False
    driver: str = "loop"
    kernel: str = "frame-mh"
    kernel_options: dict = field(default_factory=dict)

    def __post_init__(self):
        super().__post_init__()
        self._choice("loop", ("auto",) + tuple(MCEM_LOOPS.names()))
        self._choice("driver", DRIVERS)
        for steps, burn in (("mh_steps", "burn_in"), ("final_mh_steps", "final_burn_in")):
            self._require(isinstance(getattr(self, steps), int) and getattr(self, steps) >= 1, steps, "an integer >= 1")
            self._require(0 <= getattr(self, burn) < getattr(self, steps), burn, f"in [0, {steps})")
        self._require(self.step_var > 0, "step_var", "> 0")
        self._require(self.tol is None or self.tol >= 0, "tol", ">= 0 or None")
        self._require(isinstance(self.kernel, str), "kernel", "a KERNELS name")
        object.__setattr__(self, "kernel_options", dict(self.kernel_options or {}))

    @property
    def resolved_loop(self) -> str:
        return "classic" if self.loop == "auto" else self.loop

    def observed_bins(self, spec: torch.Tensor) -> torch.Tensor | None:
        """As :meth:`EStepConfig.observed_bins`; MIN-VAE's published variational loop scores every bin, as
        published (its E-z target and gain update have no bin mask)."""
        return None if self.resolved_loop == "minvae" else super().observed_bins(spec)


class MCEM(EStep):
    """Monte-Carlo EM (registered as ``"mcem"``); call ``mcem(model, spec, visual, config, seed=...)`` or with
    the config's fields as keywords, e.g. ``mcem(model, spec, visual, iterations=100)``.

    Returns :class:`MCEMResult`. Runs on ``spec``'s device; the model must live there too (it is put in eval
    mode). ``callback(it, info)`` is called after each iteration. The kernel's requirements are checked before
    any work (``frame-mh-jump`` needs a mixture prior; a prior that couples frames needs a kernel exact for it).
    """

    config_class = MCEMConfig

    def check(self, model, config: MCEMConfig) -> None:
        check_kernel_fits(KERNELS.get(config.kernel), config.kernel, model)

    @torch.no_grad()
    def run(
        self,
        model,
        spec,
        visual,
        config: MCEMConfig,
        *,
        seed=0,
        generator=None,
        callback=None,
        noise=None,
        fix_noise=False,
    ):
        with pyro.validation_enabled(False):  # distribution argument checks cost ~10% of an MH step
            start = ec.start_estep(model, spec, visual, config, seed, generator, noise, fix_noise)
            return _mcem(model, start, config, callback)


mcem = MCEM()


def _mcem(model, start: EStepStart, config: MCEMConfig, callback):
    z, used = ec.initial_latents(model, start.batch, config.init)
    return MCEM_LOOPS.get(config.resolved_loop)(model, start, z, used, config, callback)


def _classic(model, start: EStepStart, z, used, config: MCEMConfig, callback):
    dtype, power, nmf, state = z.dtype, start.power, start.nmf, start.state
    iterations, mh_steps, burn_in, driver = config.iterations, config.mh_steps, config.burn_in, config.driver
    scoring, weights, update_weights, tol = config.scoring, config.weights, config.update_weights, config.tol
    update_gain = True if config.update_gain is None else config.update_gain
    exponent = 0.5 if config.exponent is None else config.exponent
    potential = LikelihoodPotential(model, start.batch, scoring)
    kernel = _make_kernel(config, potential, start.generator)
    # the traced model always uses the prior's own weights: report against those, and keep them fixed
    log_w, resp = ec.initial_weights(
        model, "model" if scoring == "trace" else weights, power.shape[0], power.device, dtype
    )
    extra = () if log_w is None or scoring == "trace" else (log_w,)
    acc, obj = [], []
    prev = None
    for it in range(iterations):
        out = _chain(kernel, z, mh_steps, burn_in, driver, nmf.additive(state, dtype), *extra)
        z = out.state.z
        if log_w is not None:  # test-time EM on the mixture: q(c_n) from the kept samples, pi = mean_n q(c_n)
            resp = ec.responsibilities(model, out.z, log_w, potential.component_log_prob)
            if update_weights and extra:
                log_w = ec.mean_log_weights(resp)
                extra = (log_w,)
        state, cost = ec.sampled_m_step(
            nmf, state, power, out.aux["speech_log_var"], exponent, update_gain, start.update_noise
        )
        acc.append(out.accept_rate)
        obj.append(cost)
        if callback is not None:
            callback(
                it, {"acceptance": out.accept_rate, "objective": cost, "pi": None if log_w is None else log_w.exp()}
            )
        if tol is not None and prev is not None and abs(float(prev) - float(cost)) < tol:
            break
        prev = cost
    out = _chain(kernel, z, config.final_mh_steps, config.final_burn_in, driver, nmf.additive(state, dtype), *extra)
    estimate = ec.wiener_estimate(start.spec, state, out.aux["speech_log_var"], config.gain_rule())
    if log_w is not None:
        resp = ec.responsibilities(model, out.z, log_w, potential.component_log_prob)
    return MCEMResult(estimate, state, torch.tensor(acc), torch.stack(obj).cpu(), resp, out.state.z, used)


def _minvae(model, start: EStepStart, z, used, config: MCEMConfig, callback):
    dtype, power, nmf, state = z.dtype, start.power, start.nmf, start.state
    iterations, mh_steps, burn_in, driver = config.iterations, config.mh_steps, config.burn_in, config.driver
    update_gain = False if config.update_gain is None else config.update_gain
    exponent = 1.0 if config.exponent is None else config.exponent
    potential = ExpectedPowerPotential(model, start.batch, config.scoring, marginal=config.marginal)
    kernel = _make_kernel(config, potential, start.generator)
    log_w, resp = ec.initial_weights(model, config.weights, power.shape[0], power.device, dtype)  # pi_n starts at pi
    speech_power = power  # |mu_s|^2 + Sigma_s, starts at |x|^2 (mu_s = x, Sigma_s = 0)
    acc, obj = [], []
    gam = None
    for it in range(iterations):
        gain = state.g.to(dtype) if update_gain else None
        out = _chain(kernel, z, mh_steps, burn_in, driver, speech_power.to(dtype), gain, resp, log_w)
        z = out.state.z
        inv_sv = speech_variance(out.aux["speech_log_var"].to(power.dtype)).reciprocal_().mean(0)  # mean_r 1/s2_r
        gam = state.g.unsqueeze(-1) / inv_sv
        if resp is not None:
            resp = ec.responsibilities(model, out.z, log_w, potential.component_log_prob)
            if config.update_weights:
                log_w = ec.mean_log_weights(resp)
        v = state.variance  # previous V
        wiener = gam / (v + gam)
        sigma_s = v * wiener
        speech_power = wiener.square() * power + sigma_s
        noise_power = (v / (v + gam)).square() * power + sigma_s
        if start.update_noise:
            state = nmf.update_expected_power(state, noise_power, exponent=exponent)
            if update_gain:
                state = nmf.update_gain_expected(state, speech_power, inv_sv)
        cost = nmf.expected_power_objective(state, noise_power)
        acc.append(out.accept_rate)
        obj.append(cost)
        if callback is not None:
            callback(
                it, {"acceptance": out.accept_rate, "objective": cost, "pi": None if log_w is None else log_w.exp()}
            )
    gain = config.gain_rule()(gam / (state.variance + gam))
    estimate = start.spec * gain.transpose(0, 1).to(start.spec.real.dtype)
    return MCEMResult(estimate, state, torch.tensor(acc), torch.stack(obj).cpu(), resp, z, used)


MCEM_LOOPS.register("classic", _classic)
MCEM_LOOPS.register("minvae", _minvae)
ESTEPS.register("mcem", mcem)

__all__ = ["mcem", "MCEM", "MCEMConfig", "MCEMResult", "MCEM_LOOPS", "DRIVERS"]
