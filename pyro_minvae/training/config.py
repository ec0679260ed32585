"""The settings of a training run (:class:`TrainConfig`), checked when built, stored in every checkpoint."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from ..errors import UserInputError, is_positive_number
from .augment import ChannelAugment

SCHEDULES = ("plateau", "cosine", "constant")
RESPONSIBILITIES = ("marginal", "epoch")

# Settings that may differ when a run is resumed: the total epoch count (raise it to train on; not with the cosine
# schedule, whose period is the epoch count) and the device (bit-for-bit only on the same device).
RESUMABLE_CHANGES = ("epochs", "device")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (stored in the checkpoint as ``train_config``).

    Invalid values raise :class:`~pyro_minvae.errors.UserInputError` (a ``ValueError``) with a one-line message.
    """

    family: str = "minvae"
    encoders: tuple[str, ...] | None = None  # None: the family's default
    latent_dim: int = 32
    model_kwargs: dict = field(default_factory=dict)  # extra family arguments
    epochs: int = 20
    batch_size: int = 128  # frames per process (global batch = batch_size * world size)
    lr: float = 1e-3
    schedule: str = "plateau"
    lr_factor: float = 0.5
    lr_patience: int = 3
    min_lr: float = 1e-6
    patience: int = 20
    responsibilities: str = "marginal"
    objective: str | None = None  # None: by model capability
    cvae_weight: float = 0.5
    kl_weight: float = 1.0  # beta of a beta-VAE: the training loss weighs the latents' KL by this (1: the ELBO)
    seed: int = 0
    device: str = "cpu"
    grad_clip: float | None = None
    max_frames: int | None = None
    augment: dict = field(default_factory=dict)  # random recording channels of the training frames (augment.py)
    segment_frames: int = 8  # a prior that couples frames trains on contiguous segments this long (frames)

    def __post_init__(self):
        for problem in self.problems():
            raise UserInputError(problem)

    def problems(self) -> list[str]:
        """What is wrong with these settings, one message per problem (empty when valid)."""
        out = []
        if self.schedule not in SCHEDULES:
            out.append(f"schedule must be one of {', '.join(SCHEDULES)}; got {self.schedule!r}")
        if self.responsibilities not in RESPONSIBILITIES:
            out.append(f"responsibilities must be one of {', '.join(RESPONSIBILITIES)}; got {self.responsibilities!r}")
        if self.encoders is not None:
            if not self.encoders or any(not isinstance(e, str) or not e for e in self.encoders):
                out.append(
                    f"--encoders {','.join(map(str, self.encoders))!r}: give encoder names separated by "
                    "commas, e.g. audio,lips"
                )
            elif len(set(self.encoders)) != len(self.encoders):
                dup = sorted({e for e in self.encoders if self.encoders.count(e) > 1})
                out.append(
                    f"--encoders {','.join(self.encoders)}: {', '.join(dup)} given twice; name each encoder once"
                )
        ints = {
            "epochs": (self.epochs, 1),
            "batch_size": (self.batch_size, 1),
            "latent_dim": (self.latent_dim, 1),
            "patience": (self.patience, 1),
            "lr_patience": (self.lr_patience, 0),
            "segment_frames": (self.segment_frames, 2),
        }
        for name, (value, low) in ints.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                out.append(f"--{name.replace('_', '-')} {value}: must be a whole number >= {low}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**32:
            out.append(f"--seed {self.seed}: must be a whole number from 0 to 2**32 - 1")
        device_problem = _device_problem(self.device)
        if device_problem:
            out.append(device_problem)
        if self.max_frames is not None and (not isinstance(self.max_frames, int) or self.max_frames < 1):
            out.append(f"--max-frames {self.max_frames}: must be a whole number >= 1")
        if not is_positive_number(self.lr):
            out.append(f"--lr {self.lr}: the learning rate must be a finite number > 0, e.g. 1e-3")
        if not is_positive_number(self.min_lr) and self.min_lr != 0:
            out.append(f"min_lr {self.min_lr}: must be a finite number >= 0")
        if not (is_positive_number(self.lr_factor) and self.lr_factor < 1):
            out.append(f"lr_factor {self.lr_factor}: must be between 0 and 1 (exclusive)")
        if not (isinstance(self.cvae_weight, (int, float)) and 0 <= self.cvae_weight <= 1):
            out.append(f"--cvae-weight {self.cvae_weight}: must be between 0 and 1")
        if not is_positive_number(self.kl_weight):
            out.append(f"--kl-weight {self.kl_weight}: must be a finite number > 0 (1: the plain ELBO)")
        try:
            ChannelAugment.from_dict(self.augment)
        except (TypeError, ValueError) as exc:
            out.append(str(exc))
        if self.grad_clip is not None and not is_positive_number(self.grad_clip):
            out.append(f"grad_clip {self.grad_clip}: must be a finite number > 0 (or None: no clipping)")
        return out

    def to_dict(self) -> dict:
        d = asdict(self)
        d["encoders"] = list(self.encoders) if self.encoders is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        if d.get("encoders") is not None:
            d["encoders"] = tuple(d["encoders"])
        return cls(**d)

    def resume_differences(self, stored: dict) -> list[str]:
        """``"lr: 0.001 in the checkpoint, 0.01 now"`` for every setting a resumed run may not change
        (all but :data:`RESUMABLE_CHANGES`; ``epochs`` only outside the cosine schedule)."""
        now = self.to_dict()
        then = {**TrainConfig(family=self.family).to_dict(), **stored}
        allowed = set(RESUMABLE_CHANGES) - ({"epochs"} if self.schedule == "cosine" else set())
        return [
            f"{k}: {then.get(k)!r} in the checkpoint, {now[k]!r} now"
            for k in now
            if k not in allowed and _norm(then.get(k)) != _norm(now[k])
        ]


def check_device_available(device: str) -> None:
    """Raise ``UserInputError`` when ``device`` is a CUDA device this machine does not have."""
    import torch

    dev = torch.device(device)
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise UserInputError(f"--device {device}: no CUDA device is available; use --device cpu")
        if dev.index is not None and dev.index >= n:
            raise UserInputError(f"--device {device}: this machine has {n} CUDA device(s) (cuda:0 to cuda:{n - 1})")


def _device_problem(device) -> str | None:
    import torch

    try:
        kind = torch.device(device).type
    except (RuntimeError, TypeError, ValueError):
        return f"--device {device}: not a device; use cpu, cuda or cuda:N"
    if kind not in ("cpu", "cuda"):
        return f"--device {device}: training runs on cpu or cuda (cuda:N)"
    return None


def _norm(v):
    return list(v) if isinstance(v, tuple) else v
