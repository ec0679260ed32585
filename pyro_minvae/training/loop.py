"""The SVI training loop for every model family: frame batches, Adam, LR schedule, early stopping, checkpoints.

Why an own loop rather than PyTorch Lightning: the loop is short, has no extra dependency, and controls every
source of randomness, so ``--resume`` is *bit-for-bit*: frame order comes from a generator seeded by
``(seed, epoch)`` and the global RNGs (Pyro's reparameterised samples, MIN-VAE's audio-input noise) are re-seeded
from ``(seed, epoch, rank)`` at the start of every epoch (:func:`epoch_seed`), while the model, Adam and scheduler
states are in the checkpoint (:class:`~pyro_minvae.training.state.TrainingState`). Data parallelism is a dozen
lines in :mod:`pyro_minvae.training.distributed` (one all-reduce per step).

One step: ``loss = objective.loss(model, batch)`` (the model's Pyro programs under Pyro's ELBOs, see
:mod:`pyro_minvae.training.objectives`), scaled to the per-frame mean of the global batch, ``backward``,
gradient all-reduce (multi-process), ``Adam.step`` (fused). A non-finite loss stops the run with
:class:`TrainingDiverged` before that step changes anything. After each epoch: for MIN-VAE the prior weights pi
become the epoch's mean responsibility (the paper's closed form); validation ELBO per frame
(:func:`~pyro_minvae.training.history.evaluate`), LR schedule, CSV log, ``last.pt`` and (if improved) ``best.pt``
written atomically, early stopping after ``patience`` epochs without improvement. Tensors live on ``device``; the
datasets are moved there once.

The run folder is locked for the run (:func:`pyro_minvae.locks.run_lock`) and never holds two runs: see
:mod:`pyro_minvae.training.run_folder` for ``resume`` and ``overwrite``. Ctrl-C raises
:class:`TrainingInterrupted` (a ``KeyboardInterrupt``) saying which epoch ``last.pt`` keeps.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import signal
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import pyro
import torch

from ..atomic import remove_stale_temps, write_text_atomic
from ..checkpoint import load_checkpoint, save_checkpoint
from ..data.datasets import FrameDataset
from ..errors import Interrupted, UserInputError
from ..locks import run_lock
from . import distributed as ddp
from .augment import ChannelAugment
from .builders import make_model, spec_difference
from .config import TrainConfig, check_device_available
from .history import evaluate, responsibility_line, responsibility_report, write_csv
from .objectives import OBJECTIVES, default_objective, kl_weighted
from .run_folder import RUN_FILES, check_resume, check_run_folder, data_fingerprint, remove_stale_files, run_files
from .state import TrainingState
from .tensorboard import TensorBoardLog
from .warm_start import warm_start

log = logging.getLogger("pyro_minvae")


class TrainResult(NamedTuple):
    model: torch.nn.Module
    history: list
    last_path: Path
    best_path: Path
    report: dict  # final responsibilities per modality (mixtures)
    summary: dict  # also in <out>/summary.json


class TrainingDiverged(UserInputError):
    """The loss (or the validation ELBO) became NaN or infinite; the checkpoints of earlier epochs are kept."""


class TrainingInterrupted(Interrupted):
    """Ctrl-C (or SIGTERM) during :func:`train`; the message says which epoch ``last.pt`` keeps and how to resume.

    ``out_dir``; ``epoch``: the epoch that was running (0: training had not started); ``kept_epoch``: the epoch
    ``last.pt`` holds (0: none)."""

    def __init__(self, signum: int, out_dir: Path, epoch: int, kept_epoch: int, replacing: bool = False):
        folder = Path(out_dir).resolve()
        resume = f"continue with the same options plus --resume --out {folder}"
        if epoch == 0:
            what = f"stopped before training started; {folder} is unchanged"
        elif kept_epoch:
            what = f"{folder / 'last.pt'} keeps epoch {kept_epoch}; {resume}"
        elif replacing:
            what = f"stopped in epoch {epoch} before its first checkpoint; the previous run in {folder} is unchanged"
        else:
            what = f"stopped in epoch {epoch} before its first checkpoint; nothing was written to {folder}"
        super().__init__(signum, what)
        self.out_dir, self.epoch, self.kept_epoch = Path(out_dir), epoch, kept_epoch


def _signum(exc: KeyboardInterrupt) -> int:
    return exc.signum if isinstance(exc, Interrupted) else int(signal.SIGINT)


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """The seed of epoch ``epoch`` on process ``rank`` (also used with offset ranks for other streams)."""
    return (seed * 1_000_003 + epoch * 7_919 + rank * 104_729) % (2**31 - 1)


def make_optimizer(params: list, lr: float) -> torch.optim.Adam:
    """Adam, fused when the device supports it (one kernel for all tensors: on CPU the update of MIN-VAE's
    4489 x 512 visual layer drops from ~16 ms to ~3 ms a step)."""
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr)


def make_scheduler(cfg: TrainConfig, optimizer):
    if cfg.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max", factor=cfg.lr_factor, patience=cfg.lr_patience, min_lr=cfg.min_lr
        )
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(cfg.epochs, 1), eta_min=cfg.min_lr)
    return None


@dataclass(frozen=True)
class _Request:
    """The arguments of :func:`train`, carried as one object through the set-up."""

    cfg: TrainConfig
    train_ds: FrameDataset
    valid_ds: FrameDataset
    out_dir: Path
    resume: bool
    init_from: Sequence[str | Path]
    progress: bool
    feature_cfg: Any
    tensorboard_dir: str | Path | None
    overwrite: bool


@dataclass
class _Run:
    """What stays fixed during a run (built once by :func:`_start`)."""

    cfg: TrainConfig
    model: torch.nn.Module
    params: list
    objective: Any
    objective_name: str
    train_ds: FrameDataset
    valid_ds: FrameDataset
    out_dir: Path
    feature_cfg: Any
    info: ddp.DistInfo
    device: torch.device
    board: TensorBoardLog | None
    progress: bool
    data: dict
    replacing: bool  # an --overwrite run replacing a run in out_dir
    first_step: int = 0  # optimiser steps taken before this process started (resume)
    saved_epoch: int = 0  # the epoch last.pt holds

    @property
    def augment(self) -> ChannelAugment:
        return ChannelAugment.from_dict(self.cfg.augment)

    @property
    def coupled(self) -> bool:
        """The prior couples consecutive frames: batches are contiguous segments that mark where each starts."""
        return not self.model.prior.frame_factorised

    @property
    def n_modal(self) -> int:
        return len(self.model.prior.components) if self.model.is_mixture else 0


def train(
    cfg: TrainConfig,
    train_ds: FrameDataset,
    valid_ds: FrameDataset,
    out_dir: str | Path,
    resume: bool = False,
    init_from: Sequence[str | Path] = (),
    progress: bool = True,
    feature_cfg=None,
    tensorboard_dir: str | Path | None = None,
    overwrite: bool = False,
) -> TrainResult:
    """Train ``cfg.family`` on ``train_ds``; checkpoints/logs in ``out_dir`` (``last.pt``, ``best.pt``,
    ``log.csv``, ``summary.json``, ``responsibilities.json``). Under ``torchrun`` runs data-parallel.

    ``resume``: continue the run in ``out_dir`` (same settings and data, else ``UserInputError``); ``overwrite``:
    replace the run there once this one has finished an epoch; without either, a folder holding a run is refused.
    ``tensorboard_dir``: also write the epoch log as TensorBoard scalars there (main process only).
    Raises :class:`TrainingDiverged` on a NaN loss and :class:`TrainingInterrupted` on Ctrl-C.
    """
    check_device_available(cfg.device)
    with ddp.process_group(cfg.device) as (info, device):
        out_dir = Path(out_dir)
        req = _Request(
            cfg, train_ds, valid_ds, out_dir, resume, init_from, progress, feature_cfg, tensorboard_dir, overwrite
        )
        # before taking the lock (no folder made for a refused run), and again once no other run can write there
        check_run_folder(out_dir, resume, overwrite, probe_lock=info.is_main)
        make_model(cfg, train_ds.input_dims)  # settings that cannot build a model fail here, before the folder
        created = not out_dir.exists()
        try:
            return _locked_train(req, info, device)
        except BaseException:
            if created and info.is_main:  # a run that failed before writing anything leaves no empty folder
                with contextlib.suppress(OSError):
                    out_dir.rmdir()
            raise


def _locked_train(req: _Request, info: ddp.DistInfo, device: torch.device) -> TrainResult:
    from ..features import FeatureConfig

    out_dir = req.out_dir
    with run_lock(out_dir, "train") if info.is_main else contextlib.nullcontext():
        check_run_folder(out_dir, req.resume, req.overwrite, probe_lock=False)
        if info.is_main:  # temporary files of a run killed mid-write (the final files are intact)
            for name in RUN_FILES:
                remove_stale_temps(out_dir / name)
        req = replace(req, feature_cfg=req.feature_cfg or req.train_ds.cfg or FeatureConfig())
        board = TensorBoardLog(req.tensorboard_dir) if req.tensorboard_dir is not None and info.is_main else None
        replacing = req.overwrite and bool(run_files(out_dir))
        try:
            try:
                run, state = _start(req, info, device, board, replacing)
            except KeyboardInterrupt as exc:
                raise TrainingInterrupted(_signum(exc), out_dir, 0, 0) from None
            return _loop(run, state)
        finally:
            if board is not None:
                board.close()


def _start(
    req: _Request, info: ddp.DistInfo, device: torch.device, board: TensorBoardLog | None, replacing: bool
) -> tuple[_Run, TrainingState]:
    cfg, train_ds, valid_ds, feature_cfg = req.cfg, req.train_ds, req.valid_ds, req.feature_cfg
    last_path = req.out_dir / "last.pt"
    pyro.clear_param_store()
    pyro.set_rng_seed(cfg.seed)
    if len(valid_ds) == 0 or len(train_ds) == 0:
        raise UserInputError("training and validation sets must both contain frames; check the manifest splits")
    data = data_fingerprint(train_ds, valid_ds)
    model = make_model(cfg, train_ds.input_dims)
    stored = None
    if req.resume:
        stored = load_checkpoint(last_path)
        if stored["model_spec"] != model.spec:
            raise UserInputError(
                f"{last_path}: checkpoint was trained with other model settings "
                f"({spec_difference(stored['model_spec'], model.spec)}); drop --resume or use the "
                "same options"
            )
        check_resume(last_path, stored, cfg, data, feature_cfg.to_dict(), req.init_from)
        model.load_state_dict(stored["model_state"])
    elif req.init_from:
        for line in warm_start(model, req.init_from):
            log.info("init: %s", line)
    model.to(device)
    ddp.broadcast_parameters(model, info)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(params, cfg.lr)
    state = TrainingState(optimizer, make_scheduler(cfg, optimizer))
    if stored is not None:
        state.restore(stored)
    name = cfg.objective or default_objective(model, cfg.responsibilities)
    objective = OBJECTIVES.build(name, cvae_weight=cfg.cvae_weight)
    run = _Run(
        cfg,
        model,
        params,
        objective,
        name,
        train_ds.to(device),
        valid_ds.to(device),
        req.out_dir,
        feature_cfg,
        info,
        device,
        board,
        req.progress,
        data,
        replacing,
        first_step=state.step,
    )
    return run, state


def _loop(run: _Run, state: TrainingState) -> TrainResult:
    cfg = run.cfg
    # elapsed_s counts training time across --resume: a resumed run continues from the last logged epoch
    t_run = time.perf_counter() - state.elapsed_s
    start = state.epoch + 1 if state.bad_epochs < cfg.patience else cfg.epochs + 1  # a stopped run stays stopped
    if state.epoch and start > cfg.epochs and run.info.is_main:
        log.warning(
            "%s: nothing to train: %s",
            run.out_dir / "last.pt",
            f"the run stopped early after epoch {state.epoch} (no validation improvement for {state.bad_epochs} epochs)"
            if state.bad_epochs >= cfg.patience
            else f"it already has {state.epoch} epochs (--epochs {cfg.epochs}); raise --epochs to train on",
        )
    run.saved_epoch = epoch = state.epoch
    try:
        for epoch in range(start, cfg.epochs + 1):
            row, ev = _epoch(run, state, epoch, t_run)
            improved = state.end_epoch(ev.elbo, row)
            if run.info.is_main:
                _save(run, state, improved)
                log.info(
                    "epoch %d: train ELBO %.2f, valid ELBO %.2f nats/frame, lr %.2g, %.0f frames/s%s",
                    epoch,
                    row["train_elbo"],
                    ev.elbo,
                    row["lr"],
                    row["frames_per_s"],
                    "".join(f", q_{k[8:]} {v:.2f}" for k, v in row.items() if k.startswith("valid_q_")),
                )
            ddp.barrier(run.info)
            if state.bad_epochs >= cfg.patience:
                log.info("early stopping: no validation improvement for %d epochs", state.bad_epochs)
                break
        return _finish(run, state, t_run)
    except KeyboardInterrupt as exc:
        raise TrainingInterrupted(_signum(exc), run.out_dir, epoch, run.saved_epoch, run.replacing) from None


def _epoch(run: _Run, state: TrainingState, epoch: int, t_run: float):
    """Train one epoch, validate, step the schedule; returns the log row and the validation result."""
    cfg, info, model = run.cfg, run.info, run.model
    model.train()
    t0 = time.perf_counter()
    pyro.set_rng_seed(epoch_seed(cfg.seed, epoch, info.rank))
    if run.objective.needs_epoch_hook:
        run.objective.start_epoch(model, run.train_ds, cfg.batch_size, epoch_seed(cfg.seed, epoch, 10_000))
    gen = torch.Generator().manual_seed(epoch_seed(cfg.seed, epoch))
    if run.coupled:
        batches = run.train_ds.segment_batches(cfg.batch_size * info.world_size, cfg.segment_frames, gen)
    else:
        batches = run.train_ds.shuffled_batches(cfg.batch_size * info.world_size, gen)
    channels = _ChannelDraws(run, epoch) if run.augment.active else None
    if info.enabled:
        batches = [b for b in batches if b.numel() >= info.world_size]
    loss_sum, n_seen = 0.0, 0
    resp_sum = torch.zeros(run.n_modal, dtype=torch.float64)
    bar = _progress(len(batches), f"{cfg.family} epoch {epoch}/{cfg.epochs}", run.progress and info.is_main)
    try:
        for gidx in batches:
            idx = gidx.tensor_split(info.world_size)[info.rank].to(run.device)
            loss, resp = _loss(run, state, epoch, idx, channels)
            state.optimizer.zero_grad(set_to_none=True)
            (loss * (info.world_size / gidx.numel())).backward()
            ddp.average_gradients(run.params, info)
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(run.params, cfg.grad_clip)
            state.optimizer.step()
            state.step += 1
            loss_sum += loss.item()
            n_seen += idx.numel()
            if resp is not None:
                resp_sum += resp.detach().sum(0).double().cpu()
            if bar is not None:
                post = {"elbo": f"{-loss.item() / max(idx.numel(), 1):.1f}"}
                if run.n_modal:
                    post["pi"] = "/".join(f"{v:.2f}" for v in (resp_sum / max(n_seen, 1)).tolist())
                bar.set_postfix(post, refresh=False)
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    train_time = time.perf_counter() - t0
    loss_sum, n_seen, *resp_tot = ddp.all_reduce_sum([loss_sum, float(n_seen)] + resp_sum.tolist(), info, run.device)
    if run.n_modal:
        run.objective.end_epoch(model, torch.tensor(resp_tot, dtype=torch.float32) / max(n_seen, 1))
    try:
        ev = evaluate(model, run.valid_ds, seed=epoch_seed(cfg.seed, 0, 20_000))
    except ValueError:  # Pyro's distribution checks on NaN parameters
        ev = None
    if ev is None or not math.isfinite(ev.elbo):
        raise _diverged(run, state, epoch, "the validation ELBO")
    lr = state.optimizer.param_groups[0]["lr"]
    if state.scheduler is not None:
        state.scheduler.step(ev.elbo) if cfg.schedule == "plateau" else state.scheduler.step()
    row = {
        "epoch": epoch,
        "step": state.step,
        "train_elbo": -loss_sum / max(n_seen, 1),
        "valid_elbo": ev.elbo,
        "lr": lr,
        "frames_per_s": n_seen / max(train_time, 1e-9),
        "epoch_time_s": time.perf_counter() - t0,
        "elapsed_s": time.perf_counter() - t_run,
    }
    if run.n_modal:
        names = model.prior.components
        for m, nm in enumerate(names):
            row[f"train_q_{nm}"] = resp_tot[m] / max(n_seen, 1)
        for m, nm in enumerate(names):
            row[f"valid_q_{nm}"] = float(ev.responsibilities[:, m].mean())
    return row, ev


class _ChannelDraws:
    """The epoch's random recording channels (``cfg.augment``), drawn batch after batch from a generator seeded by
    ``(seed, epoch, rank)``, so a resumed run draws the same channels as an uninterrupted one."""

    def __init__(self, run: _Run, epoch: int):
        self.augment = run.augment
        fc = run.feature_cfg
        self.freqs_hz = torch.arange(fc.n_freq, device=run.device) * (fc.sample_rate / fc.n_fft)
        seed = epoch_seed(run.cfg.seed, epoch, 30_000 + run.info.rank)
        self.generator = torch.Generator(device=run.device).manual_seed(seed)

    def __call__(self, batch: dict) -> dict:
        return {**batch, "audio": self.augment(batch["audio"], self.freqs_hz, self.generator)}


def _loss(run: _Run, state: TrainingState, epoch: int, idx: torch.Tensor, channels: _ChannelDraws | None = None):
    """The objective on one batch (through ``channels`` when augmenting); a NaN/infinite loss (or Pyro refusing NaN
    parameters) -> TrainingDiverged."""
    batch = run.train_ds.batch(idx, segments=run.coupled)
    if channels is not None:
        batch = channels(batch)
    try:
        with kl_weighted(run.cfg.kl_weight):
            loss, resp = run.objective.loss(run.model, batch, idx)
    except ValueError as exc:
        # Pyro's distribution checks refuse a scale that overflowed (exp of a huge log-variance) or NaN parameters;
        # after steps of this run that moved the parameters there, that is divergence, not a bug
        blown = not all(torch.isfinite(p).all() for p in run.params) or "to satisfy the constraint" in str(exc)
        if not blown or state.step == run.first_step:
            raise
        raise _diverged(run, state, epoch, "the loss") from None
    if not torch.isfinite(loss):
        raise _diverged(run, state, epoch, "the loss")
    return loss, resp


def _diverged(run: _Run, state: TrainingState, epoch: int, what: str) -> TrainingDiverged:
    kept = (
        f"{run.out_dir / 'last.pt'} keeps epoch {state.epoch}"
        if state.epoch
        else "no checkpoint of this run was written"
    )
    where = (
        f"at epoch {epoch} step {state.step + 1}" if what == "the loss" else f"after epoch {epoch} (step {state.step})"
    )
    return TrainingDiverged(f"{what} became NaN or infinite {where}; lower --lr (now {run.cfg.lr:g}); {kept}")


def _save(run: _Run, state: TrainingState, improved: bool) -> None:
    common = dict(
        model=run.model,
        feature_cfg=run.feature_cfg,
        train_config=run.cfg.to_dict(),
        extra={"objective": run.objective_name, "world_size": run.info.world_size, "data": run.data},
        **state.checkpoint_fields(),
    )
    if improved:
        save_checkpoint(run.out_dir / "best.pt", **common)
    save_checkpoint(run.out_dir / "last.pt", **common)
    run.saved_epoch = state.epoch
    write_csv(run.out_dir / "log.csv", state.history)
    if run.replacing and len(state.history) == 1:
        remove_stale_files(run.out_dir)
    if run.board is not None:
        run.board.log(state.history[-1])


def _finish(run: _Run, state: TrainingState, t_run: float) -> TrainResult:
    """Responsibility report on the best model (mixtures), ``summary.json``."""
    model, info = run.model, run.info
    last_path, best_path = run.out_dir / "last.pt", run.out_dir / "best.pt"
    report = {}
    if model.is_mixture:  # on the best model (the one enhancement uses)
        scored = model
        if best_path.exists():
            scored = copy.deepcopy(model)
            scored.load_state_dict(load_checkpoint(best_path)["model_state"])
        report = responsibility_report(
            scored, run.valid_ds, evaluate(scored, run.valid_ds, seed=run.cfg.seed).responsibilities
        )
    sync = ddp.max_replica_difference(run.params, info)
    summary = {
        "family": run.cfg.family,
        "objective": run.objective_name,
        "world_size": info.world_size,
        "epochs_run": len(state.history),
        "best_valid_elbo": state.best_valid_elbo if state.history else None,
        "elapsed_s": time.perf_counter() - t_run,
        "replica_max_abs_diff": sync,
        "responsibilities": report,
    }
    if info.is_main:
        write_text_atomic(run.out_dir / "summary.json", json.dumps(summary, indent=2))
        if report:
            write_text_atomic(run.out_dir / "responsibilities.json", json.dumps(report, indent=2))
            for nm, r in report["components"].items():
                log.info("%s", responsibility_line(nm, r))
    ddp.barrier(info)
    return TrainResult(model, state.history, last_path, best_path, report, summary)


def _progress(total: int, desc: str, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)
