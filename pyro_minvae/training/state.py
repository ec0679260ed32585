"""Where a training run stands (:class:`TrainingState`): what ``last.pt`` stores besides the weights, and what
``--resume`` restores.

Randomness needs no stored state: frame order and the global RNGs are re-seeded from ``(seed, epoch, rank)`` at
the start of every epoch (:func:`pyro_minvae.training.loop.epoch_seed`), so a resumed run draws what an
uninterrupted one draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class TrainingState:
    """Progress of a run after ``epoch`` finished epochs.

    ``step``: optimiser steps taken; ``best_valid_elbo``: best validation ELBO so far (nats/frame, ``-inf`` before
    the first epoch); ``bad_epochs``: epochs since it last improved (early stopping); ``history``: one log row per
    finished epoch; ``optimizer`` / ``scheduler``: their state lives in these objects.
    """

    optimizer: torch.optim.Optimizer
    scheduler: Any | None = None
    epoch: int = 0
    step: int = 0
    best_valid_elbo: float = -math.inf
    bad_epochs: int = 0
    history: list[dict] = field(default_factory=list)

    def restore(self, checkpoint: dict) -> None:
        """Continue from a ``last.pt`` dict (optimiser, scheduler, counters, history)."""
        self.optimizer.load_state_dict(checkpoint["optimizer_state"])
        if self.scheduler is not None and checkpoint.get("scheduler_state") is not None:
            self.scheduler.load_state_dict(checkpoint["scheduler_state"])
        self.epoch, self.step = int(checkpoint["epoch"]), int(checkpoint["step"])
        best = checkpoint.get("best_valid_elbo")
        self.best_valid_elbo = -math.inf if best is None else float(best)
        self.bad_epochs = int(checkpoint.get("bad_epochs", 0))
        self.history = list(checkpoint.get("history") or [])

    def end_epoch(self, valid_elbo: float, row: dict) -> bool:
        """Record a finished epoch; returns whether the validation ELBO improved on the best so far."""
        improved = valid_elbo > self.best_valid_elbo
        if improved:
            self.best_valid_elbo, self.bad_epochs = valid_elbo, 0
        else:
            self.bad_epochs += 1
        self.epoch = int(row["epoch"])
        self.history.append(row)
        return improved

    def checkpoint_fields(self) -> dict:
        """Keyword arguments of :func:`~pyro_minvae.checkpoint.save_checkpoint` for this state."""
        return dict(
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            epoch=self.epoch,
            step=self.step,
            best_valid_elbo=self.best_valid_elbo if self.history else None,
            bad_epochs=self.bad_epochs,
            history=self.history,
        )

    @property
    def elapsed_s(self) -> float:
        """Training time of the epochs logged so far (continues across ``--resume``)."""
        return float(self.history[-1].get("elapsed_s", 0.0)) if self.history else 0.0
