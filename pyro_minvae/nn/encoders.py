"""Encoders: plain torch modules mapping one modality's frame features to a diagonal Gaussian over z.

Every encoder maps ``(B, D_in)`` -> ``(loc (B, L), scale (B, L))``. ``ENCODERS`` holds one factory per **modality
name** (``audio``, ``lips``, ``landmarks``; the model families build one encoder per modality by that name);
``CONDITIONERS`` holds AV-CVAE's deterministic visual embedding (``embedding``). Sizes are constructor arguments;
checkpoints record them through the family's arguments (``model.spec``).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from ..registry import CONDITIONERS, ENCODERS

_ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU}

LOG_POWER_FLOOR = 1e-8


def mlp(in_dim: int, hidden: Sequence[int], activations: Sequence[str]) -> nn.Sequential:
    """A stack of Linear + activation layers; ``activations`` has one name per hidden layer."""
    if len(hidden) != len(activations):
        raise ValueError(f"need one activation per hidden layer; got {len(hidden)} layers, {len(activations)} names")
    layers: list[nn.Module] = []
    d = in_dim
    for h, a in zip(hidden, activations):
        if a not in _ACTIVATIONS:
            raise ValueError(f"unknown activation {a!r}; valid: {', '.join(sorted(_ACTIVATIONS))}")
        layers += [nn.Linear(d, h), _ACTIVATIONS[a]()]
        d = h
    return nn.Sequential(*layers)


class GaussianMLPEncoder(nn.Module):
    """MLP encoder ``(B, in_dim) -> (loc, scale)`` each ``(B, latent_dim)``.

    ``input_transform="log"`` feeds ``log(x + 1e-8)`` (for power spectra); ``"identity"`` feeds x as is.
    ``modality`` names the batch key the encoder reads.
    """

    def __init__(
        self,
        modality: str,
        in_dim: int,
        latent_dim: int = 32,
        hidden: Sequence[int] = (128,),
        activations: Sequence[str] | None = None,
        input_transform: str = "identity",
        cond_dim: int = 0,
        pre: nn.Module | None = None,
        pre_dim: int | None = None,
    ):
        super().__init__()
        if input_transform not in ("identity", "log"):
            raise ValueError(f"input_transform must be 'identity' or 'log'; got {input_transform!r}")
        if any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in hidden):
            raise ValueError(f"hidden layer sizes must be whole numbers >= 1; got {list(hidden)}")
        activations = list(activations) if activations is not None else ["tanh"] * len(hidden)
        self.modality = modality
        self.in_dim = in_dim
        self.latent_dim = latent_dim
        self.input_transform = input_transform
        self.cond_dim = cond_dim
        self.pre = pre  # optional fixed input reduction (e.g. spatial pooling of lip images)
        first = pre_dim if pre is not None else in_dim
        self.body = mlp(first + cond_dim, hidden, activations)
        last = hidden[-1] if len(hidden) else first + cond_dim
        self.loc = nn.Linear(last, latent_dim)
        self.log_var = nn.Linear(last, latent_dim)

    def features(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if x.dim() != 2 or x.shape[-1] != self.in_dim:
            raise ValueError(f"{self.modality} encoder expects (B, {self.in_dim}); got {tuple(x.shape)}")
        if self.input_transform == "log":
            x = torch.log(x.clamp_min(0) + LOG_POWER_FLOOR)
        if self.pre is not None:
            x = self.pre(x)
        if self.cond_dim:
            if cond is None or cond.shape != (x.shape[0], self.cond_dim):
                raise ValueError(f"{self.modality} encoder expects a conditioning tensor (B, {self.cond_dim})")
            x = torch.cat([x, cond], dim=-1)
        return self.body(x)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` ``(B, in_dim)``, optional ``cond`` ``(B, cond_dim)`` -> ``(loc, scale)`` each ``(B, latent_dim)``."""
        h = self.features(x, cond)
        return self.loc(h), torch.exp(0.5 * self.log_var(h).clamp(-20.0, 10.0))


def audio_encoder(
    in_dim: int = 513, latent_dim: int = 32, hidden: Sequence[int] = (128,), cond_dim: int = 0
) -> GaussianMLPEncoder:
    """The paper's audio encoder: 513 -> 128 tanh -> 32, on log-power spectra (``cond_dim`` > 0: AV-CVAE's)."""
    return GaussianMLPEncoder(
        "audio", in_dim, latent_dim, hidden, ["tanh"] * len(hidden), input_transform="log", cond_dim=cond_dim
    )


class ImagePool(nn.Module):
    """Average-pool flattened square images: ``(B, side*side) -> (B, (side // pool)**2)``."""

    def __init__(self, side: int, pool: int):
        super().__init__()
        if isinstance(pool, bool) or not isinstance(pool, int) or pool < 1:
            raise ValueError(f"pool must be a whole number >= 1 (1: no pooling); got {pool!r}")
        if side < pool:
            raise ValueError(f"cannot pool {side}x{side} images by {pool}")
        self.side = side
        self.pool = pool

    @property
    def out_dim(self) -> int:
        return (self.side // self.pool) ** 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        img = x.reshape(x.shape[0], 1, self.side, self.side)
        return torch.nn.functional.avg_pool2d(img, self.pool).flatten(1)


PAPER_LIPS = {"pool": 1, "hidden": [512, 128]}  # the published visual encoder's sizes


def lips_encoder(
    in_dim: int = 67 * 67, latent_dim: int = 32, hidden: Sequence[int] = (128,), pool: int | None = None
) -> GaussianMLPEncoder:
    """Visual encoder on mouth ROIs ``(B, side*side)``, pixels in [0, 1] -> Gaussian over z ``(B, latent_dim)``.

    Default: average-pool the 67x67 ROI by 4 (16x16 = 256 inputs) -> 128 tanh -> 32. ``pool=None`` means 4 for
    square images of side >= 16 and 1 (no pooling) for anything else, e.g. small or precomputed features
    that are not images. The paper's encoder is
    ``pool=1, hidden=(512, 128)`` (4489 -> 512 ReLU -> 128 tanh -> 32; :data:`PAPER_LIPS`). Measured on the demo
    corpus, the pooled encoder reaches the same or a better validation ELBO (V-VAE, MIN-VAE) while MIN-VAE costs
    1.8x A-VAE per epoch instead of 5.1x (docs/results-discussion.md): the 4489 x 512 layer dominated training.
    """
    acts = ["relu"] * (len(hidden) - 1) + ["tanh"]
    side = math.isqrt(in_dim)
    square = side * side == in_dim
    if pool is None:
        pool = 4 if square and side >= 16 else 1
    if pool == 1:
        return GaussianMLPEncoder("lips", in_dim, latent_dim, hidden, acts)
    if not square:
        raise ValueError(f"pooling needs square lip images; in_dim {in_dim} is not a square")
    pre = ImagePool(side, pool)
    return GaussianMLPEncoder("lips", in_dim, latent_dim, hidden, acts, pre=pre, pre_dim=pre.out_dim)


def landmarks_encoder(in_dim: int = 40, latent_dim: int = 32, hidden: Sequence[int] = (64,)) -> GaussianMLPEncoder:
    """A small encoder for lip-landmark coordinates (2P values per frame)."""
    return GaussianMLPEncoder("landmarks", in_dim, latent_dim, hidden, ["tanh"] * len(hidden))


ENCODERS.register("audio", audio_encoder)
ENCODERS.register("lips", lips_encoder)
ENCODERS.register("landmarks", landmarks_encoder)


class FeatureEmbedding(nn.Module):
    """Deterministic embedding of one modality ``(B, in_dim) -> (B, out_dim)`` in (-1, 1) (AV-CVAE's conditioning).

    ``normalise=False`` is the paper's network (Linear-ReLU-Linear-tanh, then Linear-tanh). ``normalise=True``
    standardises each input frame (a layer norm without parameters: lip images differ from frame to frame by about
    2% of their mean brightness, so raw pixels feed the first layer an almost constant vector) and puts a layer
    norm before every nonlinearity, which keeps each layer's inputs centred and scaled frame by frame. The paper's
    network, trained on the demo corpus, ended with its tanh saturated at the same value on every frame (standard
    deviation over frames 0.0: the model ignored the lips). See docs/algorithms.md, "AV-CVAE's visual conditioner".
    """

    def __init__(
        self,
        modality: str,
        in_dim: int,
        out_dim: int = 32,
        hidden: Sequence[int] = (512, 128),
        activations: Sequence[str] | None = None,
        normalise: bool = False,
    ):
        super().__init__()
        activations = list(activations) if activations is not None else ["relu"] * (len(hidden) - 1) + ["tanh"]
        self.modality = modality
        self.in_dim = in_dim
        self.out_dim = out_dim
        self.normalise = normalise
        if normalise:
            self.body = normalised_mlp(in_dim, hidden, activations)
            last = hidden[-1] if len(hidden) else in_dim
            self.out = nn.Sequential(nn.Linear(last, out_dim), nn.LayerNorm(out_dim), nn.Tanh())
        else:
            self.body = mlp(in_dim, hidden, activations)
            self.out = nn.Sequential(nn.Linear(hidden[-1] if len(hidden) else in_dim, out_dim), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[-1] != self.in_dim:
            raise ValueError(f"{self.modality} embedding expects (B, {self.in_dim}); got {tuple(x.shape)}")
        return self.out(self.body(x))


def normalised_mlp(in_dim: int, hidden: Sequence[int], activations: Sequence[str]) -> nn.Sequential:
    """:func:`mlp` on the standardised input with a layer norm between every Linear and its activation."""
    plain = mlp(in_dim, hidden, activations)
    layers: list[nn.Module] = [nn.LayerNorm(in_dim, elementwise_affine=False)]
    for module in plain:
        layers.append(module)
        if isinstance(module, nn.Linear):
            layers.append(nn.LayerNorm(module.out_features))
    return nn.Sequential(*layers)


def normalised_embedding(modality: str, in_dim: int, out_dim: int = 32, hidden: Sequence[int] = (512, 128)):
    """AV-CVAE's visual embedding with standardised input and layer norms (:class:`FeatureEmbedding`)."""
    return FeatureEmbedding(modality, in_dim, out_dim, hidden, normalise=True)


CONDITIONERS.register("embedding", FeatureEmbedding)
CONDITIONERS.register("normalised-embedding", normalised_embedding)
