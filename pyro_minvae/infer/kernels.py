"""Frame-wise Metropolis-Hastings as a Pyro ``MCMCKernel`` (registered in ``KERNELS`` as ``"frame-mh"``).

The latent is one array ``z`` ``(N, L)`` (N frames, L latent dims, unconstrained: ``transforms = {}``). Every
step proposes ``z'_n = z_n + sqrt(step_var) * eps_n`` for all frames at once and accepts or rejects *each frame
on its own* with probability ``min(1, exp(t_n(z') - t_n(z)))``. This is exact MH for any target that factorises
over frames, ``log p(z) = sum_n t_n(z_n)``, which holds for all our enhancement targets.

The per-frame log target comes from a *potential* callable ``potential(z, *args, **kwargs) -> (t (N,), aux)``
where ``aux`` is a dict of per-frame tensors with leading dim N (e.g. the decoder's speech log-variance
``(N, F)``). The kernel keeps ``t`` and ``aux`` of the current state and copies the proposal's rows for accepted
frames, so the decoder runs once per step (the published code decodes twice: proposal, then the whole current
state again). ``setup(warmup_steps, *args, **kwargs)`` stores the potential's arguments (e.g. the current noise
``AdditiveNoise``) and invalidates the cached target, so a changed noise/gain is always scored afresh (the
published classic loop keeps the stale gain for one step).

Driven by ``pyro.infer.MCMC(kernel, num_samples=R, warmup_steps=burn_in, initial_params={"z": z0})`` with
``mcmc.run(*potential_args)``, or by :func:`run_chain`, a thin loop over ``kernel.sample`` that also returns the
kept ``aux`` (no re-decoding of kept samples) and avoids MCMC's per-step logging overhead.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Callable, NamedTuple

import torch
from pyro.infer.mcmc.mcmc_kernel import MCMCKernel

from ..contracts import EStepKernel
from ..registry import KERNELS

Potential = Callable[..., "tuple[torch.Tensor, dict[str, torch.Tensor]]"]


class FrameState(NamedTuple):
    """Current chain state: ``z`` ``(N, L)``, per-frame log target ``(N,)``, per-frame cached ``aux``."""

    z: torch.Tensor
    log_target: torch.Tensor
    aux: dict


class ChainOutput(NamedTuple):
    """Kept samples of :func:`run_chain`: ``z`` ``(R, N, L)``, ``aux[k]`` ``(R, N, ...)``, acceptance rate."""

    z: torch.Tensor
    aux: dict
    accept_rate: float
    state: FrameState


@KERNELS.register("frame-mh")
class FrameMH(MCMCKernel, EStepKernel):
    """Gaussian random-walk MH, independent per frame (paper: proposal variance 0.01).

    Exact for frame-factorised targets only (``exact_for_coupled_frames = False``); needs nothing of the model.

    ``potential``: see module docstring. ``generator``: a ``torch.Generator`` on the latents' device (seeded
    by the caller) or ``None`` for the global RNG.
    """

    def __init__(
        self, potential: Potential, step_var: float = 0.01, generator: torch.Generator | None = None, site: str = "z"
    ):
        if not step_var > 0:
            raise ValueError(f"proposal variance must be > 0; got {step_var}")
        self.potential = potential
        self.step_var = float(step_var)
        self.step_size = math.sqrt(self.step_var)
        self.generator = generator
        self.site = site
        self.transforms = {}
        self._initial_params = None
        self._args: tuple = ()
        self._kwargs: dict = {}
        self.state: FrameState | None = None
        self._n_steps = 0
        self._n_accept = 0.0
        self.carry_aux = True

    # ---- MCMCKernel interface -------------------------------------------------------------------------------------
    def setup(self, warmup_steps, *args, **kwargs):
        self._args, self._kwargs = args, kwargs
        self.state = None  # target changed (e.g. new noise): re-score on the next step
        self._n_steps = 0
        self._n_accept = 0.0

    @property
    def initial_params(self):
        return self._initial_params

    @initial_params.setter
    def initial_params(self, params):
        self._initial_params = params
        self.state = None

    def logging(self):
        return OrderedDict(acc=f"{self.accept_rate:.3f}")

    def diagnostics(self):
        return {"acceptance rate": self.accept_rate}

    @property
    def accept_rate(self) -> float:
        """Mean per-frame acceptance since the last ``setup``."""
        return float(self._n_accept) / self._n_steps if self._n_steps else float("nan")

    def score(self, z: torch.Tensor) -> FrameState:
        """Evaluate the potential at ``z`` ``(N, L)`` with the stored arguments."""
        if z.dim() != 2:
            raise ValueError(f"FrameMH expects latents (N, L); got {tuple(z.shape)}")
        t, aux = self.potential(z, *self._args, **self._kwargs)
        if t.shape != z.shape[:1]:
            raise ValueError(
                f"the potential must return per-frame log targets (N,) = ({z.shape[0]},); got {tuple(t.shape)}"
            )
        return FrameState(z, t, dict(aux))

    def sample(self, params):
        z = params[self.site]
        if self.state is None or self.state.z is not z:
            self.state = self.score(z)
        self.state = self.step(self.state)
        return {self.site: self.state.z}

    # ---- one step -------------------------------------------------------------------------------------------------
    def standard_normal(self, like: torch.Tensor) -> torch.Tensor:
        """N(0, 1) draws shaped like ``like`` (the proposal noise; a hook: the batched kernel draws per utterance)."""
        return torch.randn(like.shape, generator=self.generator, device=like.device, dtype=like.dtype)

    def uniform(self, n: int, like: torch.Tensor) -> torch.Tensor:
        """``n`` U[0, 1) draws with ``like``'s device and dtype (the accept test; a hook, as above)."""
        return torch.rand(n, generator=self.generator, device=like.device, dtype=like.dtype)

    def step(self, state: FrameState) -> FrameState:
        """Propose for every frame, accept each frame on its own; returns the new state.

        With ``self.carry_aux`` False (set by :func:`run_chain` during burn-in) the new state's ``aux`` is empty:
        burn-in steps need only ``z`` and the log target, and the ``(N, F)`` copy is a measurable share of a step.
        """
        z = state.z
        noise = self.standard_normal(z)
        prop = self.score(torch.add(z, noise, alpha=self.step_size))
        return self.accept_or_reject(state, prop)

    def accept_or_reject(self, state: FrameState, prop: FrameState, allowed: torch.Tensor | None = None) -> FrameState:
        """Per-frame MH decision for a *symmetric* proposal ``prop``; frames where ``allowed`` ``(N,)`` is False
        are rejected outright (a proposal whose reverse move is impossible)."""
        z = state.z
        u = self.uniform(z.shape[0], prop.log_target)
        accept = u.log_() < (prop.log_target - state.log_target)
        if allowed is not None:
            accept &= allowed
        z_new = torch.where(accept.unsqueeze(-1), prop.z, z)
        t_new = torch.where(accept, prop.log_target, state.log_target)
        aux_new = {}
        for k, v in state.aux.items() if self.carry_aux else ():
            mask = accept.reshape(accept.shape + (1,) * (v.dim() - 1))
            aux_new[k] = torch.where(mask, prop.aux[k], v)
        self._n_steps += 1
        self._n_accept = self._n_accept + accept.sum() / accept.numel()  # stays on device: no sync per step
        return FrameState(z_new, t_new, aux_new)


def run_chain(kernel: FrameMH, z0: torch.Tensor, num_steps: int, burn_in: int, *args, **kwargs) -> ChainOutput:
    """Run ``num_steps`` MH steps from ``z0`` ``(N, L)`` keeping the last ``num_steps - burn_in`` states.

    Equivalent to ``pyro.infer.MCMC(kernel, num_samples=num_steps - burn_in, warmup_steps=burn_in,
    initial_params={"z": z0}).run(*args, **kwargs)`` (same draws from the same generator), but also returns the
    kept ``aux`` so kept samples need no second decoder pass; burn-in steps do not carry ``aux`` (one extra
    potential evaluation at the end of burn-in instead of an ``(N, F)`` copy per burn-in step).
    """
    if not 0 <= burn_in < num_steps:
        raise ValueError(f"need 0 <= burn_in < num_steps; got burn_in={burn_in}, num_steps={num_steps}")
    kernel.setup(burn_in, *args, **kwargs)
    state = kernel.score(z0)
    zs, auxs = [], {k: [] for k in state.aux}
    try:
        for i in range(num_steps):
            if i == burn_in and burn_in > 0:  # burn-in carried no aux: recompute it once for the current state
                state = FrameState(state.z, state.log_target, kernel.score(state.z).aux)
            kernel.carry_aux = i >= burn_in  # kernels overriding step() may ignore it: they carry aux throughout
            state = kernel.step(state)
            if i >= burn_in:
                zs.append(state.z)
                for k, v in state.aux.items():
                    auxs[k].append(v)
    finally:
        kernel.carry_aux = True
    kernel.state = state
    return ChainOutput(torch.stack(zs), {k: torch.stack(v) for k, v in auxs.items()}, kernel.accept_rate, state)


__all__ = ["FrameMH", "FrameState", "ChainOutput", "run_chain"]
