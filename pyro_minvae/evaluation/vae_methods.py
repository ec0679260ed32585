"""Evaluation methods built from trained checkpoints (A-VAE, AV-CVAE, MIN-VAE and their variants).

Registered per model family in :data:`pyro_minvae.evaluation.methods.CHECKPOINT_METHODS`:

- every family: ``<label>-mcem`` (the paper's Monte-Carlo EM), ``<label>-fast`` (the fast E-step) and
  ``<label>-<name>`` for every other registered E-step (e.g. one a ``--plugin`` file registers);
- MIN-VAE also: ``<label>-audio-init`` (MCEM initialised from the audio encoder instead of the lips: the paper's
  ablation), ``<label>-paper-loop`` (the published variational MCEM loop with its 100 iterations), and both
  MCEM loops with jumps between the prior's components in the E-step, ``<label>-jump`` and
  ``<label>-paper-loop-jump`` (kernel ``"frame-mh-jump"``, :mod:`pyro_minvae.infer.mode_jump`).

A method is picklable and loads its network lazily in the worker process that first calls it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data import modalities as _modalities  # noqa: F401  (registers "lips", "landmarks" in MODALITIES)
from .methods import register_checkpoint_methods


class CheckpointMethod:
    """``method(noisy (T,), sample_rate, *, clean=None, video=None, seed=0) -> (T,)`` for one checkpoint.

    ``video``: ``{"lips": (N_v, 67, 67) uint8, "landmarks": (N_v, P, 2), "fps": float}`` (streams the model does
    not read are ignored). ``estep``: a name in ``ESTEPS``; ``init``: encoder to initialise z from (``None``: the
    model's default, i.e. the lips for MIN-VAE).
    """

    needs_video = True

    def __init__(self, path: str | Path, estep: str = "mcem", init: str | None = None, device: str = "cpu", **opts):
        self.path = str(path)
        self.estep = estep
        self.init = init
        self.device = device
        self.opts = dict(opts)
        self._loaded = None
        self.last_info: dict = {}

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_loaded"] = None  # workers reload the network themselves
        return state

    def _model(self):
        if self._loaded is None:
            from ..checkpoint import load_model

            self._loaded = load_model(self.path, self.device)[:2]
        return self._loaded

    def visual_features(self, model, cfg, video: dict | None, n_samples: int) -> dict:
        """Frame-aligned features ``{name: (N, D)}`` for the model's visual modalities present in ``video``."""
        from ..enhancement.inputs import Stream
        from ..enhancement.visual import visual_features

        video = video or {}
        streams = {
            name: Stream(np.asarray(video[name]), video.get("fps"), f"{name} stream")
            for name in model.modalities
            if name != "audio" and name in video
        }
        return visual_features(model, cfg, streams, n_samples, "the record has no such stream")

    def __call__(self, noisy, sample_rate: int, *, clean=None, video=None, seed: int = 0) -> np.ndarray:
        import torch

        from ..infer.enhance import enhance_waveform

        model, cfg = self._model()
        if sample_rate != cfg.sample_rate:
            raise ValueError(f"the model works at {cfg.sample_rate} Hz, got {sample_rate} Hz audio")
        visual = {k: torch.from_numpy(v) for k, v in self.visual_features(model, cfg, video, len(noisy)).items()}
        res = enhance_waveform(
            model,
            cfg,
            np.asarray(noisy, dtype=np.float32),
            visual=visual,
            method=self.estep,
            seed=seed,
            device=self.device,
            config=self.config(),
        )
        self.last_info = {"frame_rate": cfg.frame_rate, "init": res.init}
        if len(res.chunks) == 1 and res.result.responsibilities is not None:
            self.last_info["responsibilities"] = res.result.responsibilities.detach().cpu().numpy()
            self.last_info["component_names"] = list(model.guide_net.modalities)
        return res.waveform.numpy()

    def config(self):
        """The E-step's config (its ``config_class``) from ``opts`` and ``init``; unknown options raise here."""
        from ..infer import enhance  # noqa: F401  (registers the E-steps)
        from ..registry import ESTEPS

        opts = dict(self.opts)
        if self.init is not None:
            opts["init"] = self.init
        return ESTEPS.get(self.estep).make_config(**opts)

    def __repr__(self) -> str:
        opts = "".join(f", {k}={v!r}" for k, v in sorted(self.effective_options().items()))
        return f"CheckpointMethod({self.path!r}, estep={self.estep!r}, init={self.init!r}{opts})"

    def effective_options(self) -> dict:
        """The E-step's options as it will run: its config class's plain defaults overridden by ``opts`` (so a
        changed default shows as a changed method, e.g. when ``evaluate`` resumes into older results)."""
        from ..infer import enhance  # noqa: F401  (registers the E-steps)
        from ..registry import ESTEPS

        return {**ESTEPS.get(self.estep).config_class().plain_options(), **self.opts}


def estep_names() -> list:
    """Registered E-step names, ``mcem`` and ``fast`` first, without aliases (``vem`` is ``fast``) or private
    names (leading ``_``): a plugin's E-step (``--plugin``) becomes the method ``<label>-<name>``."""
    from ..infer import enhance  # noqa: F401  (registers the E-steps)
    from ..registry import ESTEPS

    names, seen = [], set()
    for name in ["mcem", "fast"] + ESTEPS.names():
        obj = ESTEPS.get(name)
        if name.startswith("_") or id(obj) in seen:
            continue
        seen.add(id(obj))
        names.append(name)
    return names


def standard_methods(label: str, path: Path) -> dict:
    """``{"<label>-<name>": CheckpointMethod(path, name)}`` for every E-step (:func:`estep_names`)."""
    return {f"{label}-{name}": CheckpointMethod(path, name) for name in estep_names()}


def _minvae(label: str, path: Path) -> dict:
    methods = standard_methods(label, path)
    methods[f"{label}-audio-init"] = CheckpointMethod(path, "mcem", init="audio")
    methods[f"{label}-paper-loop"] = CheckpointMethod(path, "mcem", loop="minvae", iterations=100)
    methods[f"{label}-jump"] = CheckpointMethod(path, "mcem", kernel="frame-mh-jump")
    methods[f"{label}-paper-loop-jump"] = CheckpointMethod(
        path, "mcem", loop="minvae", iterations=100, kernel="frame-mh-jump"
    )
    return methods


for _family in ("vae", "avae", "avcvae"):
    register_checkpoint_methods(_family, standard_methods)
register_checkpoint_methods("minvae", _minvae)
