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

from ..contracts import EvaluationMethod
from ..infer.presets import preset_options
from ..data import modalities as _modalities  # noqa: F401  (registers "lips", "landmarks" in MODALITIES)
from .methods import register_checkpoint_methods


class CheckpointMethod(EvaluationMethod):
    """``method(noisy (T,), sample_rate, *, clean=None, video=None, seed=0) -> (T,)`` for one checkpoint.

    ``video``: ``{"lips": (N_v, 67, 67) uint8, "landmarks": (N_v, P, 2), "fps": float}`` (streams the model does
    not read are ignored). ``estep``: a name in ``ESTEPS``; ``init``: encoder to initialise z from (``None``: the
    model's default, i.e. the lips for MIN-VAE). ``last_info`` after a call: ``{"frame_rate", "init"}`` and, for a
    mixture prior enhanced in one chunk, ``"responsibilities"`` ``(N, M)`` and ``"component_names"``.
    :meth:`enhance_batch` runs the batched MCEM E-step (:func:`pyro_minvae.infer.batched.enhance_waveforms`)
    where :func:`~pyro_minvae.infer.batched.batch_refusal` admits the E-step and its options.
    """

    needs_video = True
    reports_info = True

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

    def checkpoint_paths(self) -> tuple:
        """The checkpoint files the method reads (the evaluation ties its results to their contents)."""
        return (self.path,)

    def _model(self):
        if self._loaded is None:
            from ..checkpoint import load_models  # one checkpoint, or an ensemble's several

            self._loaded = load_models(self.checkpoint_paths(), self.device)[:2]
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

    def _inputs(self, noisy, sample_rate: int, video: dict | None) -> tuple:
        """``(model, cfg, waveform (T,) float32, visual features {name: (N, D) tensor})`` for one record."""
        import torch

        model, cfg = self._model()
        if sample_rate != cfg.sample_rate:
            raise ValueError(f"the model works at {cfg.sample_rate} Hz, got {sample_rate} Hz audio")
        visual = {k: torch.from_numpy(v) for k, v in self.visual_features(model, cfg, video, len(noisy)).items()}
        return model, cfg, np.asarray(noisy, dtype=np.float32), visual

    def __call__(self, noisy, sample_rate: int, *, clean=None, video=None, seed: int = 0) -> np.ndarray:
        from ..infer.enhance import enhance_waveform

        model, cfg, wave, visual = self._inputs(noisy, sample_rate, video)
        res = enhance_waveform(
            model, cfg, wave, visual=visual, method=self.estep, seed=seed, device=self.device, config=self.config()
        )
        self.last_info = {"frame_rate": cfg.frame_rate, "init": res.init}
        if len(res.chunks) == 1 and res.result.responsibilities is not None:
            self.last_info["responsibilities"] = res.result.responsibilities.detach().cpu().numpy()
            self.last_info["component_names"] = list(model.guide_net.modalities)
        return res.waveform.numpy()

    def batch_refusal(self) -> str | None:
        from ..infer.batched import batch_refusal

        return batch_refusal(self.estep, self._options(), len(self.checkpoint_paths()))

    def enhance_batch(self, noisy, sample_rate: int, *, clean=None, video=None, seeds) -> list:
        """One batched E-step for the records that fit one chunk, each as alone with its seed (up to float
        rounding). Enhanced alone instead, so that a failure stays with its record: every record when
        :meth:`batch_refusal` refuses, a record longer than a chunk (chunked), and every record of a batch that
        raised (e.g. a NaN output: which record's?)."""
        from ..enhancement.batched import CHUNK_SECONDS
        from ..infer.batched import enhance_waveforms

        video = list(video or [None] * len(noisy))

        def alone(b: int):
            return super(CheckpointMethod, self).enhance_batch(
                [noisy[b]], sample_rate, video=[video[b]], seeds=[seeds[b]]
            )[0]

        if self.batch_refusal() is not None:
            return [alone(b) for b in range(len(noisy))]
        model, cfg = self._model()
        chunk = max(2, int(round(CHUNK_SECONDS * cfg.frame_rate)))  # frames; enhance_waveforms refuses longer
        out: list = [None] * len(noisy)
        ready = []  # (index, waveform (T,), visual features)
        for b, x in enumerate(noisy):
            try:
                _, _, wave, visual = self._inputs(x, sample_rate, video[b])
            except Exception as exc:  # this record fails alone
                out[b] = exc
                continue
            if cfg.n_frames(wave.shape[0]) > chunk:
                out[b] = alone(b)
            else:
                ready.append((b, wave, visual))
        if not ready:
            return out
        try:
            results = enhance_waveforms(
                model,
                cfg,
                [w for _, w, _ in ready],
                [v for _, _, v in ready],
                seeds=[seeds[b] for b, _, _ in ready],
                device=self.device,
                chunk_seconds=CHUNK_SECONDS,
                config=self.config(),
            )
        except Exception:
            results = [None] * len(ready)
        for (b, _, _), res in zip(ready, results):
            out[b] = alone(b) if res is None else res.waveform.numpy()
        return out

    def config(self):
        """The E-step's config (its ``config_class``) from ``opts`` and ``init``; unknown options raise here."""
        from ..infer import enhance  # noqa: F401  (registers the E-steps)
        from ..registry import ESTEPS

        return ESTEPS.get(self.estep).make_config(**self._options())

    def _options(self) -> dict:
        """The E-step's options: ``opts`` plus ``init`` when given."""
        return {**self.opts, **({"init": self.init} if self.init is not None else {})}

    def __repr__(self) -> str:
        opts = "".join(f", {k}={v!r}" for k, v in sorted(self.effective_options().items()))
        return f"CheckpointMethod({self.path!r}, estep={self.estep!r}, init={self.init!r}{opts})"

    def effective_options(self) -> dict:
        """The E-step's options as it will run: its config class's plain defaults overridden by ``opts``, and the
        restart schedule the model runs (:func:`~pyro_minvae.infer.estep_common.scheduled_config`; the model is
        loaded only when the config runs several restarts). So a changed default shows as a changed method, e.g.
        when ``evaluate`` resumes into older results."""
        from ..infer import enhance  # noqa: F401  (registers the E-steps)
        from ..infer.estep_common import scheduled_config
        from ..registry import ESTEPS

        options = {**ESTEPS.get(self.estep).config_class().plain_options(), **self.opts}
        config = self.config()
        if config.restarts > 1:  # which starts the restarts run is the model's (its family's) schedule
            starts = scheduled_config(config, self._model()[0]).restart_starts
            options.update({"restart_starts": starts} if starts is not None else {})
        return options


class EnsembleMethod(CheckpointMethod):
    """:class:`CheckpointMethod` for several checkpoints enhancing together
    (:class:`~pyro_minvae.infer.ensemble.ModelEnsemble`: every member runs E-step ``estep``, their Wiener gains
    are pooled). ``paths``: the members' checkpoints, in order. Records run one at a time (no batched E-step)."""

    def __init__(self, paths, estep: str = "fast", init: str | None = None, device: str = "cpu", **opts):
        super().__init__("", estep, init, device, **opts)
        self.path = tuple(str(p) for p in paths)

    def checkpoint_paths(self) -> tuple:
        return self.path


def ensemble_methods(name: str, paths) -> dict:
    """``{"<name>-<estep>": EnsembleMethod(paths, estep)}`` for every E-step (:func:`estep_names`)."""
    return {f"{name}-{estep}": EnsembleMethod(paths, estep) for estep in estep_names()}


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
    paper = preset_options("paper", "mcem")  # the published loop as published: 100 iterations, free activations
    methods[f"{label}-paper-loop"] = CheckpointMethod(path, "mcem", loop="minvae", **paper)
    methods[f"{label}-jump"] = CheckpointMethod(path, "mcem", kernel="frame-mh-jump")
    methods[f"{label}-paper-loop-jump"] = CheckpointMethod(path, "mcem", loop="minvae", kernel="frame-mh-jump", **paper)
    return methods


def _markov_vae(label: str, path: Path) -> dict:
    """A prior that couples frames: MCEM runs the odd/even kernel (the frame-wise one refuses it)."""
    methods = standard_methods(label, path)
    methods[f"{label}-mcem"] = CheckpointMethod(path, "mcem", kernel="odd-even-mh")
    return methods


for _family in ("vae", "avae", "avcvae"):
    register_checkpoint_methods(_family, standard_methods)
register_checkpoint_methods("minvae", _minvae)
register_checkpoint_methods("markov-vae", _markov_vae)
