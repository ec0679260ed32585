"""Alternating odd/even frame MH, exact for first-order Markov priors (registered in ``KERNELS`` as
``"odd-even-mh"``).

A prior that couples neighbouring frames (``Prior.frame_factorised = False``, e.g. a dynamical prior
``p(z_n | z_{n-1})``) makes the frame-wise MH of :class:`~pyro_minvae.infer.kernels.FrameMH` inexact: accepting
frame n on its own ignores that its move also changes frame n+1's prior term. This kernel moves only every other
frame per step (even frames, then odd frames, alternately). Given the frames that stay, the moved frames are
conditionally independent, each with the two terms that involve it, so each accepts on its own with

    log alpha_n = [t_n(z') - t_n(z)] + [t_{n+1}(z') - t_{n+1}(z)],     n = parity, parity + 2, ...

The potential's per-frame terms ``t (N,)`` must sum to the log target and ``t_n`` may depend on ``z_n`` and
``z_{n-1}`` only (for a coupled prior: ``log p(x_n | z_n) + log p(z_n | z_{n-1})``; the prior's ``closed_form``
returns those per-frame terms). For frame-factorised targets it is exact too (half the frames move per step).
Shapes: ``z`` ``(N, L)``; ``aux[k]`` ``(N, ...)`` per frame, depending on ``z_n`` only (the decoder output).
"""

from __future__ import annotations

import torch

from ..registry import KERNELS
from .kernels import FrameMH, FrameState


@KERNELS.register("odd-even-mh")
class OddEvenMH(FrameMH):
    """Gaussian random walk on the frames of one parity per step, accepted frame by frame (exact for targets whose
    per-frame terms couple only neighbours; see the module docstring)."""

    exact_for_coupled_frames = True

    def __init__(self, potential, step_var: float = 0.01, generator: torch.Generator | None = None, site: str = "z"):
        super().__init__(potential, step_var, generator, site)
        self._parity = 0

    def setup(self, warmup_steps, *args, **kwargs):
        super().setup(warmup_steps, *args, **kwargs)
        self._parity = 0

    def step(self, state: FrameState) -> FrameState:
        z = state.z
        n = z.shape[0]
        moved = (torch.arange(n, device=z.device) % 2) == self._parity  # (N,)
        self._parity = 1 - self._parity
        noise = torch.randn(z.shape, generator=self.generator, device=z.device, dtype=z.dtype)
        prop = self.score(torch.where(moved.unsqueeze(-1), z + self.step_size * noise, z))
        diff = prop.log_target - state.log_target  # (N,): nonzero on moved frames and their successors
        log_alpha = diff + torch.cat([diff[1:], diff.new_zeros(1)])  # own term + the next frame's term
        u = torch.rand(n, generator=self.generator, device=z.device, dtype=diff.dtype)
        accept = moved & (u.log_() < log_alpha)
        follows = torch.cat([accept.new_zeros(1), accept[:-1]])  # frames whose predecessor moved
        z_new = torch.where(accept.unsqueeze(-1), prop.z, z)
        t_new = torch.where(accept | follows, prop.log_target, state.log_target)
        aux_new = {}
        for k, v in state.aux.items() if self.carry_aux else ():
            mask = accept.reshape(accept.shape + (1,) * (v.dim() - 1))
            aux_new[k] = torch.where(mask, prop.aux[k], v)
        self._n_steps += 1
        self._n_accept = self._n_accept + accept.sum() / moved.sum()
        return FrameState(z_new, t_new, aux_new)


__all__ = ["OddEvenMH"]
