"""Turn a training checkpoint into the small file that ships: weights and settings only.

:func:`export_checkpoint` keeps what :func:`pyro_minvae.checkpoint.load_model` needs (model spec and weights,
feature settings, training settings, history, best validation ELBO, versions) and drops the optimiser, scheduler
and RNG states, which only resuming needs and which are twice the size of the weights. Floating-point weights
are stored as float16 where they fit its range (``load_state_dict`` casts them back to the model's float32);
a tensor with values beyond float16's range stays float32.
"""

from __future__ import annotations

import io
import os

import torch

from ..atomic import write_bytes_atomic
from ..checkpoint import load_checkpoint, state_checksum
from ..data.manifest import sha256_file


def compact_weights(state: dict, dtype: torch.dtype = torch.float16) -> dict:
    """``{name: tensor}`` with float32 tensors cast to ``dtype`` when every value fits its range."""
    limit = float(torch.finfo(dtype).max)
    out = {}
    for name, t in state.items():
        fits = t.dtype == torch.float32 and (t.numel() == 0 or float(t.abs().max()) < limit)
        out[name] = t.to(dtype) if fits else t
    return out


def export_checkpoint(source: str | os.PathLike, target: str | os.PathLike, *, dtype=torch.float16) -> dict:
    """Write the shipped form of checkpoint ``source`` to ``target`` (atomically); return what was written.

    The result is an ordinary checkpoint (same format, own checksum), so every loader accepts it; its ``extra``
    records ``exported_from`` (the source file's sha256) and ``weights_dtype``.
    """
    state = load_checkpoint(source)
    shipped = {
        **state,
        "model_state": compact_weights(state["model_state"], dtype),
        "optimizer_state": None,
        "scheduler_state": None,
        "rng": {},
        "extra": {
            **dict(state.get("extra") or {}),
            "exported_from": "sha256:" + sha256_file(source),
            "weights_dtype": str(dtype).removeprefix("torch."),
        },
    }
    shipped.pop("checksum", None)
    shipped["checksum"] = state_checksum(shipped)
    # through a buffer: torch.save names its archive after the file, and the temporary name is random, so writing
    # to the file directly would give different bytes (and sha256) for the same weights on every export
    buffer = io.BytesIO()
    torch.save(shipped, buffer)
    write_bytes_atomic(target, buffer.getvalue())
    return shipped


__all__ = ["compact_weights", "export_checkpoint"]
