"""Frame-wise MH with jumps between the modes of a mixture prior (registered in ``KERNELS`` as ``"frame-mh-jump"``).

MIN-VAE's prior has one Gaussian per modality; after training their means lie far apart (about 10 prior standard
deviations for the long-trained model), so a random walk with step 0.1 that starts at the lips encoder's mean
never reaches the audio component's region, and the other way round. Every ``jump_every``-th step this kernel
proposes, for each frame on its own, the *translation* of ``z_n`` from its nearest component mean ``mu_m`` to
another one ``mu_m'`` (chosen uniformly among the other M - 1):

    z'_n = z_n + mu_m' - mu_m,        m = argmin_k |z_n - mu_k|.

The move is accepted with probability ``min(1, exp(t_n(z') - t_n(z)))`` only where ``m'`` is also the nearest
mean of ``z'_n`` (so the reverse jump is proposed with the same probability 1/(M - 1): the proposal is
symmetric on the frames where it is allowed and the others are rejected; exact MH). The other steps are the
random walk of :class:`~pyro_minvae.infer.kernels.FrameMH`; a fixed cycle of two MH kernels leaves the target
invariant.

Shapes: ``z`` ``(N, L)``; ``means`` ``(M, L)`` (default: the mixture prior's ``component_means()``, through the
potential). Declares ``requires = {"mixture"}``: enhancing a model without a mixture prior with it is refused
before any work (:func:`pyro_minvae.contracts.check_kernel_fits`).
"""

from __future__ import annotations

import torch

from ..registry import KERNELS
from .kernels import FrameMH, FrameState
from .potentials import FramePotential


@KERNELS.register("frame-mh-jump")
class FrameMHJump(FrameMH):
    """:class:`FrameMH` with a between-mode jump every ``jump_every`` steps (see the module docstring)."""

    requires = frozenset({"mixture"})

    def __init__(
        self,
        potential,
        step_var: float = 0.01,
        generator: torch.Generator | None = None,
        site: str = "z",
        jump_every: int = 5,
        means: torch.Tensor | None = None,
    ):
        super().__init__(potential, step_var, generator, site)
        if int(jump_every) < 2:  # jumps alone only translate between the means: the walk is what explores a mode
            raise ValueError(f"jump_every must be >= 2; got {jump_every}")
        if means is None:
            if not (isinstance(potential, FramePotential) and potential.is_mixture):
                raise ValueError("frame-mh-jump needs a mixture prior (MIN-VAE) or explicit means (M, L)")
            means = potential.model.prior.component_means().detach()
        means = torch.as_tensor(means)
        if means.dim() != 2 or means.shape[0] < 2:
            raise ValueError(f"means must be (M >= 2, L); got {tuple(means.shape)}")
        self.means = means
        self.jump_every = int(jump_every)
        self._calls = 0

    def step(self, state: FrameState) -> FrameState:
        self._calls += 1
        return self.jump(state) if self._calls % self.jump_every == 0 else super().step(state)

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """Index ``(N,)`` of the nearest component mean of each frame's ``z`` ``(N, L)``."""
        return torch.cdist(z, self.means.to(z)).argmin(-1)

    def jump(self, state: FrameState) -> FrameState:
        z = state.z
        if z.shape[-1] != self.means.shape[-1]:
            raise ValueError(f"latents (N, {z.shape[-1]}) do not match the means {tuple(self.means.shape)}")
        means = self.means.to(z)
        here = self.nearest(z)
        other = torch.randint(0, means.shape[0] - 1, here.shape, generator=self.generator, device=z.device)
        there = other + (other >= here).long()  # uniform over the components other than `here`
        prop = self.score(z + means[there] - means[here])
        return self.accept_or_reject(state, prop, allowed=self.nearest(prop.z) == there)


__all__ = ["FrameMHJump"]
