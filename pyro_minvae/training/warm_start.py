"""Warm start: copy matching parameters of pretrained checkpoints into a new model (the paper's recipe: MIN-VAE's
audio encoder from an A-VAE, its lips encoder from a V-VAE, the shared decoder from the first)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from ..checkpoint import build_from_state, load_checkpoint
from ..errors import UserInputError


def _encoders_by_modality(model) -> dict:
    g = model.guide_net
    return dict(zip(g.modalities, g.encoder_modules()))


def warm_start(model, paths: Sequence[str | Path]) -> list[str]:
    """Copy matching parameters from pretrained checkpoints (earlier paths win); returns what was copied.

    Encoders are matched by modality (e.g. MIN-VAE's audio encoder from an A-VAE, its lips encoder from a V-VAE:
    the paper's recipe), every other tensor by name and shape (the shared decoder). A mixture prior's component
    for a copied encoder takes the source's prior mean/variance (0 and 1 for a standard normal prior): this needs
    the ``loc`` / ``log_var`` parameters of the built-in Gaussian mixture prior.
    """
    done: set[str] = set()
    copied: list[str] = []
    target_state = model.state_dict()
    for path in paths:
        src = build_from_state(load_checkpoint(path), path)
        src_state = src.state_dict()
        with torch.no_grad():
            for name, t in src_state.items():
                if name.startswith(("guide_net.", "prior.")) or name not in target_state or name in done:
                    continue
                if target_state[name].shape == t.shape:
                    target_state[name].copy_(t)
                    done.add(name)
                    copied.append(f"{name} <- {Path(path).name}")
            src_encs = _encoders_by_modality(src)
            for modality, enc in _encoders_by_modality(model).items():
                key = f"encoder:{modality}"
                if key in done or modality not in src_encs:
                    continue
                s = src_encs[modality].state_dict()
                t = enc.state_dict()
                if s.keys() != t.keys() or any(s[k].shape != t[k].shape for k in s):
                    continue
                enc.load_state_dict(s)
                done.add(key)
                copied.append(f"{modality} encoder <- {Path(path).name}")
                if model.is_mixture:
                    m = model.prior.components.index(modality)
                    if src.is_mixture and modality in src.prior.components:
                        k = src.prior.components.index(modality)
                        model.prior.loc[m].copy_(src.prior.loc[k])
                        model.prior.log_var[m].copy_(src.prior.log_var[k])
                    else:  # a standard normal prior (A-VAE, V-VAE)
                        model.prior.loc[m].zero_()
                        model.prior.log_var[m].zero_()
                    copied.append(f"prior component {modality} <- {Path(path).name}")
        if not any(c.endswith(f"<- {Path(path).name}") for c in copied):
            raise UserInputError(
                f"{path}: no parameter of this checkpoint fits the model being trained (different "
                f"latent size or modalities?); drop this --init-from"
            )
    return copied
