"""A new E-step kernel: random-walk MH with Laplace steps (heavier tails, same variance as frame-mh)."""

import math

import torch

from pyro_minvae.infer.kernels import FrameMH, FrameState
from pyro_minvae.registry import KERNELS


@KERNELS.register("frame-mh-laplace")
class FrameMHLaplace(FrameMH):
    """A symmetric proposal, so FrameMH's per-frame accept/reject keeps the chain exact."""

    def step(self, state: FrameState) -> FrameState:
        z = state.z
        u = torch.rand(z.shape, generator=self.generator, device=z.device, dtype=z.dtype) - 0.5
        eps = -u.sign() * torch.log1p(-2 * u.abs()).clamp_min(-30.0)  # Laplace(0, 1): variance 2
        return self.accept_or_reject(state, self.score(z + self.step_size / math.sqrt(2) * eps))
