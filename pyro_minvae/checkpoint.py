"""Checkpoints: everything needed to rebuild a model, resume training bit-for-bit and enhance with it.

A checkpoint is one ``torch.save`` dict (loaded with ``weights_only=True``: plain tensors, numbers, strings,
lists and dicts only), written atomically:

- ``format_version`` (int), ``versions`` (``pyro_minvae``, ``torch``, ``pyro``);
- ``model_spec`` (``{"family", "kwargs"}``, rebuilt by :func:`pyro_minvae.models.build_model`), ``model_state``;
- ``feature_config`` (:class:`FeatureConfig` as a dict), ``train_config`` (dict);
- ``optimizer_state``, ``scheduler_state`` (or ``None``);
- ``rng`` (torch CPU/CUDA, numpy, python ``random`` states), ``epoch``, ``step``, ``best_valid_elbo``,
  ``bad_epochs``, ``history`` (list of per-epoch dicts), ``extra`` (free-form dict).

:func:`load_model` ``(path, device) -> (model, feature_cfg, meta)`` is the entry point for enhancement and
evaluation. Bad files raise :class:`~pyro_minvae.errors.UserInputError` naming the file.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import pyro
import torch

from .atomic import atomic_path
from .errors import UserInputError
from .features import FeatureConfig

# 2: model_spec records every encoder's resolved options (1: only the options given);
# 3: AV-CVAE specs name their visual conditioner (format 2 ones used the paper's "embedding")
FORMAT_VERSION = 3
REQUIRED_KEYS = ("format_version", "model_spec", "model_state", "feature_config")


def package_versions() -> dict[str, str]:
    from . import __version__

    return {"pyro_minvae": str(__version__), "torch": str(torch.__version__), "pyro": str(pyro.__version__)}


def get_rng_state() -> dict:
    """All RNG states as plain tensors/ints (safe for ``weights_only`` loading)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "name": name,
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "python": _to_lists(random.getstate()),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore :func:`get_rng_state`'s output."""
    torch.set_rng_state(state["torch"].cpu())
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    random.setstate(_to_tuples(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_lists(x):
    return [_to_lists(v) for v in x] if isinstance(x, (tuple, list)) else x


def _to_tuples(x):
    return tuple(_to_tuples(v) for v in x) if isinstance(x, (tuple, list)) else x


def save_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    feature_cfg: FeatureConfig,
    train_config: dict | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    epoch: int = 0,
    step: int = 0,
    best_valid_elbo: float | None = None,
    bad_epochs: int = 0,
    history: list | None = None,
    extra: dict | None = None,
) -> Path:
    """Write a checkpoint atomically (a killed process never leaves a partial file). Returns the path."""
    spec = getattr(model, "spec", None)
    if not spec or "family" not in spec:
        raise ValueError("model has no .spec; build it with pyro_minvae.models.build_model")
    state = {
        "format_version": FORMAT_VERSION,
        "versions": package_versions(),
        "model_spec": {"family": spec["family"], "kwargs": dict(spec["kwargs"])},
        "model_state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "feature_config": feature_cfg.to_dict(),
        "train_config": dict(train_config or {}),
        "optimizer_state": optimizer.state_dict() if optimizer is not None else None,
        "scheduler_state": scheduler.state_dict() if scheduler is not None else None,
        "rng": get_rng_state(),
        "epoch": int(epoch),
        "step": int(step),
        "best_valid_elbo": None if best_valid_elbo is None else float(best_valid_elbo),
        "bad_epochs": int(bad_epochs),
        "history": list(history or []),
        "extra": dict(extra or {}),
    }
    state["checksum"] = state_checksum(state)
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def state_checksum(state: dict) -> str:
    """``sha256:<hex>`` over every tensor of a checkpoint dict (its place in the dict, dtype, shape and bytes).

    Stored by :func:`save_checkpoint`; :func:`load_checkpoint` recomputes it, so bytes damaged inside the weights
    or optimiser moments (which ``torch.load`` does not notice) are reported instead of silently used. Plain
    settings (model spec, versions, history) are not covered: damage there shows as an unreadable file or as a
    mismatch naming the setting.
    """
    import hashlib

    h = hashlib.sha256()
    _digest({k: v for k, v in state.items() if k != "checksum"}, h, "")
    return "sha256:" + h.hexdigest()


def _digest(obj, h, where: str) -> None:
    if torch.is_tensor(obj):
        t = obj.detach().cpu().contiguous()
        h.update(f"{where}|{t.dtype}|{tuple(t.shape)}|".encode())
        if t.numel():
            h.update(memoryview(t.reshape(-1).view(torch.uint8).numpy()))
    elif isinstance(obj, dict):
        for k in sorted(obj, key=repr):
            _digest(obj[k], h, f"{where}/{k!r}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _digest(v, h, f"{where}[{i}]")


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Read and validate a checkpoint dict; one-line ``UserInputError`` on any problem."""
    path = Path(path)
    if not path.exists():
        raise UserInputError(f"{path}: checkpoint not found; train one with `pyro-minvae train`")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise UserInputError(
            f"{path}: not a readable pyro-minvae checkpoint (truncated or corrupt: "
            f"{type(exc).__name__}); re-train or copy it again"
        ) from None
    if not isinstance(state, dict):
        raise UserInputError(f"{path}: not a pyro-minvae checkpoint (no dict inside); re-train")
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise UserInputError(
            f"{path}: checkpoint lacks {', '.join(missing)}; it was not written by pyro-minvae train, re-train"
        )
    if state["format_version"] == 1:
        state = upgrade_v1(state)
    if state["format_version"] == 2:
        state = upgrade_v2(state)
    if state["format_version"] != FORMAT_VERSION:
        raise UserInputError(
            f"{path}: checkpoint format {state['format_version']} is not supported by this "
            f"version (format {FORMAT_VERSION}); re-train or use a matching pyro-minvae"
        )
    if "checksum" in state and state["checksum"] != state_checksum(state):  # older files have none
        raise UserInputError(
            f"{path}: checkpoint contents do not match their checksum (corrupted on disk or in "
            "transfer); re-train or copy it again"
        )
    return state


def upgrade_v1(state: dict) -> dict:
    """Format 1 -> 2: format-1 checkpoints were built when the lips encoder defaulted to the paper's sizes.

    Their ``model_spec`` gets those sizes written out (``{"lips": PAPER_LIPS}``) where it gave no lips options,
    and every encoder's other defaults filled in as format 2 records them; the checksum covers the tensors only,
    so it still holds.
    """
    from .models.families import resolved_encoder_options
    from .nn.encoders import PAPER_LIPS

    spec = state["model_spec"]
    kwargs = dict(spec.get("kwargs", {}))
    family = spec.get("family")
    encoders = {"minvae": kwargs.get("encoders", ["audio", "lips"]), "vae": [kwargs.get("encoder", "audio")]}
    if family in encoders:
        options = {k: dict(v) for k, v in (kwargs.get("encoder_options") or {}).items()}
        if "lips" in encoders[family]:
            options["lips"] = {**PAPER_LIPS, **options.get("lips", {})}
        kwargs["encoder_options"] = resolved_encoder_options(encoders[family], options)
    return {**state, "format_version": 2, "model_spec": {**spec, "kwargs": kwargs}}


def upgrade_v2(state: dict) -> dict:
    """Format 2 -> 3: AV-CVAE checkpoints of format 2 were built with the paper's visual conditioner.

    Their ``model_spec`` gets ``conditioner="embedding"`` written out (the default is now the normalised one); the
    checksum covers the tensors only, so it still holds.
    """
    spec = state["model_spec"]
    kwargs = dict(spec.get("kwargs", {}))
    if spec.get("family") == "avcvae":
        kwargs.setdefault("conditioner", "embedding")
    return {**state, "format_version": 3, "model_spec": {**spec, "kwargs": kwargs}}


def build_from_state(state: dict, path: str | Path = "checkpoint"):
    """Rebuild the model (on CPU) from a loaded checkpoint dict and load its weights."""
    from .models import build_model

    spec = state["model_spec"]
    try:
        model = build_model(spec["family"], **spec["kwargs"])
        msg = state_mismatch(model.state_dict(), state["model_state"])
        if msg is None:
            model.load_state_dict(state["model_state"])
    except (ValueError, TypeError, KeyError, RuntimeError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if msg is not None:
        raise UserInputError(f"{path}: cannot rebuild model {spec.get('family')!r} ({msg}); re-train with this version")
    return model


def state_mismatch(expected: dict, stored: dict) -> str | None:
    """The first difference between a freshly built model's ``state_dict`` and a stored one (a missing or
    unexpected tensor, or a shape), as a phrase; ``None`` when they fit."""
    for name, t in expected.items():
        if name not in stored:
            return f"tensor {name!r} is missing from the checkpoint"
        got = stored[name]
        if not torch.is_tensor(got) or tuple(got.shape) != tuple(t.shape):
            shape = tuple(got.shape) if torch.is_tensor(got) else type(got).__name__
            return (
                f"tensor {name!r} has shape {shape} in the checkpoint but {tuple(t.shape)} in the model its "
                "settings build"
            )
    extra = [k for k in stored if k not in expected]
    return f"unexpected tensor {extra[0]!r} in the checkpoint" if extra else None


def load_model(path: str | Path, device: str | torch.device = "cpu"):
    """Load a trained model for enhancement/evaluation: ``(model (eval mode, on device), FeatureConfig, meta)``.

    ``meta`` holds ``train_config``, ``history``, ``epoch``, ``best_valid_elbo``, ``versions``, ``extra``, ``path``.
    """
    state = load_checkpoint(path)
    model = build_from_state(state, path).to(device).eval()
    try:
        cfg = FeatureConfig.from_dict(state["feature_config"])
    except (ValueError, TypeError) as exc:
        raise UserInputError(f"{path}: bad feature settings in checkpoint ({exc}); re-train") from None
    if cfg.n_freq != model.n_freq:
        raise UserInputError(
            f"{path}: the feature settings give {cfg.n_freq} frequency bins but the model was "
            f"trained on {model.n_freq}; re-train"
        )
    meta = {k: state.get(k) for k in ("train_config", "history", "epoch", "best_valid_elbo", "versions", "extra")}
    meta["path"] = str(path)
    return model, cfg, meta


def load_ensemble(paths, device: str | torch.device = "cpu", pool: str = "geometric"):
    """Load several checkpoints as one :class:`~pyro_minvae.infer.ensemble.ModelEnsemble`: ``(ensemble (eval
    mode, on device), their shared FeatureConfig, [meta per checkpoint])``. Checkpoints whose feature settings
    differ from the first one's (another STFT or sample rate) give a ``UserInputError`` naming the file."""
    from .infer.ensemble import ModelEnsemble

    paths = [Path(p) for p in paths]
    loaded = [load_model(p, device) for p in paths]
    cfg = loaded[0][1]
    for p, (_, other, _) in zip(paths[1:], loaded[1:]):
        if other != cfg:
            raise UserInputError(
                f"{p}: its feature settings ({other}) differ from {paths[0]}'s; the models of an ensemble "
                "must share one STFT: pick checkpoints trained with the same settings"
            )
    try:
        team = ModelEnsemble([m for m, _, _ in loaded], pool=pool)
    except ValueError as exc:
        raise UserInputError(f"{', '.join(map(str, paths))}: cannot enhance together ({exc})") from None
    return team.to(device).eval(), cfg, [meta for _, _, meta in loaded]


def load_models(checkpoints, device: str | torch.device = "cpu"):
    """What ``enhance`` runs: one checkpoint path (or a sequence of one) -> :func:`load_model`; a sequence of
    several -> :func:`load_ensemble` (they enhance together)."""
    paths = checkpoint_paths(checkpoints)
    return load_model(paths[0], device) if len(paths) == 1 else load_ensemble(paths, device)


def checkpoint_paths(checkpoints) -> tuple[str, ...]:
    """One checkpoint path, or a sequence of several (an ensemble), as a tuple of path strings."""
    if isinstance(checkpoints, (str, os.PathLike)):
        return (os.fspath(checkpoints),)
    return tuple(os.fspath(p) for p in checkpoints)


def checkpoint_name(checkpoints) -> str:
    """How messages and reports name one checkpoint or an ensemble: the paths joined by `` + ``."""
    return " + ".join(checkpoint_paths(checkpoints))
