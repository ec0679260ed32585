"""Which enhancement methods an evaluation runs: classical baselines plus methods built from checkpoints.

A *method* is a picklable :class:`~pyro_minvae.contracts.EvaluationMethod`: ``method(noisy, sample_rate, *,
clean=None, video=None, seed=0) -> (T,)`` (``video`` is ``{"lips": (N_v, 67, 67) uint8, "landmarks": (N_v, P, 2)
float32, "fps": float}`` with absent streams left out) plus the attributes the runner asks (``needs_clean``,
``needs_video``, ``reports_info``, ``batch_refusal``). ``BASELINES`` checks it when a class is registered; the
methods a checkpoint factory returns are checked when the factory is called, before any evaluation work.

Checkpoint-based methods are added through a registry, keyed by the model name stored in the checkpoint::

    from pyro_minvae.evaluation.methods import register_checkpoint_methods
    from pyro_minvae.evaluation.vae_methods import CheckpointMethod

    @register_checkpoint_methods("my_family")
    def minvae_methods(label: str, path: Path) -> dict[str, EvaluationMethod]:
        return {f"{label}-mcem": CheckpointMethod(path, "mcem"), f"{label}-fast": CheckpointMethod(path, "fast")}

``pyro-minvae evaluate --checkpoint LABEL=PATH`` reads the model family (``model_spec["family"]`` of
:mod:`pyro_minvae.checkpoint`) with :func:`checkpoint_kind` and calls the factory registered for it; a family
registered in ``MODELS`` without one (e.g. by a ``--plugin`` file) gets ``<label>-<E-step>`` for every E-step.
The returned objects are pickled into each worker process once: keep them light
(store the path, load the network lazily on first call).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Dict, Iterable, Mapping, Sequence

from ..contracts import EvaluationMethod, check_contract
from ..errors import UserInputError
from ..paths import cache_dir
from ..registry import BASELINES, Registry

log = logging.getLogger("pyro_minvae")


# model name (as stored in a checkpoint) -> factory(label: str, path: Path) -> {method name: method}
CHECKPOINT_METHODS: Registry = Registry("checkpoint method family")


def register_checkpoint_methods(model_name: str, factory: Callable | None = None):
    """Register ``factory(label, path) -> dict[str, EvaluationMethod]`` for checkpoints of ``model_name``.

    Usable as a decorator or called directly. See the module docstring.
    """
    return CHECKPOINT_METHODS.register(model_name, factory)


def checkpoint_kind(path: str | Path) -> str:
    """The model family stored in a checkpoint (``state["model_spec"]["family"]``, e.g. ``"minvae"``).

    Raises ``UserInputError`` (file named) for a missing, unreadable or foreign file.
    """
    p = Path(path)
    if not p.exists():
        raise UserInputError(f"{p}: checkpoint not found; check the path given to --checkpoint")
    from ..checkpoint import load_checkpoint

    spec = load_checkpoint(p).get("model_spec") or {}
    family = spec.get("family") if isinstance(spec, dict) else None
    if not family:
        raise UserInputError(f"{p}: checkpoint has no model family (model_spec.family); re-train")
    return str(family)


def methods_from_checkpoint(label: str, path: str | Path) -> Dict[str, EvaluationMethod]:
    """``{method name: method}`` for one checkpoint, through the factory registered for its model name."""
    from ..registry import MODELS

    kind = checkpoint_kind(path)
    if kind in CHECKPOINT_METHODS:
        factory = CHECKPOINT_METHODS.get(kind)
    elif kind in MODELS:  # a family without its own method set (e.g. a plugin's): one method per E-step
        from .vae_methods import standard_methods as factory
    else:
        valid = ", ".join(CHECKPOINT_METHODS.names()) or "(none registered)"
        raise UserInputError(
            f"{path}: no evaluation methods for model {kind!r}; models with methods: {valid} "
            "(a family registered by a --plugin file gets one method per E-step)"
        )
    methods = dict(factory(label, Path(path)))
    if not methods:
        raise UserInputError(f"{path}: the {kind!r} factory returned no methods")
    for name, m in methods.items():
        try:
            check_contract("evaluation method", name, m, EvaluationMethod)
        except TypeError as exc:
            raise UserInputError(f"{path}: the {kind!r} factory's {exc}") from None
    return methods


def default_checkpoint_dir() -> Path:
    """Where ``evaluate`` looks for checkpoints when none is given: ``cache_dir()/runs`` (``pyro-minvae train``
    writes ``runs/<family>/best.pt`` there)."""
    return cache_dir() / "runs"


def default_checkpoints(directory: str | Path | None = None) -> Dict[str, Path]:
    """``{label: path}`` for ``<dir>/<run>/best.pt`` (label = run folder name) and ``<dir>/*.pt`` (label = stem)
    in ``directory`` (default :func:`default_checkpoint_dir`), keeping those whose model family has registered
    methods. Unreadable files are skipped with an INFO message."""
    d = Path(directory) if directory is not None else default_checkpoint_dir()
    if not CHECKPOINT_METHODS.names() or not d.is_dir():
        return {}
    candidates = [(p.parent.name, p) for p in sorted(d.glob("*/best.pt"))]
    candidates += [(p.stem, p) for p in sorted(d.glob("*.pt"))]
    found: Dict[str, Path] = {}
    for label, p in candidates:
        try:
            kind = checkpoint_kind(p)
        except Exception as exc:  # a stray file must not stop the evaluation
            log.info("%s: skipped (%s)", p, exc)
            continue
        if kind in CHECKPOINT_METHODS and label not in found:
            found[label] = p
    return found


def baseline_methods(names: Iterable[str] | None = None) -> Dict[str, EvaluationMethod]:
    """Build registered baselines (all when ``names`` is None)."""
    return {n: BASELINES.build(n) for n in (BASELINES.names() if names is None else names)}


def resolve_methods(
    names: Iterable[str] | None = None,
    checkpoints: Mapping[str, str | Path] | None = None,
    ensembles: Mapping[str, Sequence[str]] | None = None,
) -> Dict[str, EvaluationMethod]:
    """The methods to evaluate: all baselines plus the methods of every checkpoint and ensemble, filtered by
    ``names``.

    ``names`` entries are method names (a baseline such as ``wiener-oracle`` or a name a checkpoint factory
    returns); unknown names raise ``UserInputError`` listing the available ones. Order follows ``names``.
    ``ensembles``: ``{name: [checkpoint label, ...]}``; each gives ``<name>-<E-step>`` for every E-step, the
    labelled checkpoints enhancing together (:class:`~pyro_minvae.infer.ensemble.ModelEnsemble`).
    """
    from .. import baselines as _register_baselines  # noqa: F401  (fills BASELINES)

    available: Dict[str, EvaluationMethod] = baseline_methods()
    checkpoints = dict(checkpoints or {})
    groups = [(f"checkpoint {path}", methods_from_checkpoint(label, path)) for label, path in checkpoints.items()]
    for ens, labels in (ensembles or {}).items():
        groups.append((f"--ensemble {ens}", _ensemble_methods(ens, labels, checkpoints)))
    for source, found in groups:
        for name, m in found.items():
            if name in available:
                raise UserInputError(
                    f"method name {name!r} from {source} clashes with another method; "
                    "pick another LABEL in --checkpoint LABEL=PATH or NAME in --ensemble NAME=LABELS"
                )
            available[name] = m
    if names is None:
        return available
    names = list(names)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise UserInputError(
            f"unknown method(s) {', '.join(unknown)}; available: {', '.join(available)} "
            "(checkpoint methods need --checkpoint LABEL=PATH)"
        )
    return {n: available[n] for n in names}


def _ensemble_methods(name: str, labels: Sequence[str], checkpoints: Mapping[str, str | Path]) -> dict:
    """The methods of ensemble ``name`` over the checkpoints ``labels`` name (at least 2, distinct, given)."""
    from .vae_methods import ensemble_methods

    labels = list(labels)
    unknown = [lab for lab in labels if lab not in checkpoints]
    if unknown:
        raise UserInputError(
            f"--ensemble {name}: no checkpoint labelled {', '.join(unknown)}; "
            f"give it with --checkpoint LABEL=PATH (labels: {', '.join(checkpoints) or 'none'})"
        )
    if len(set(labels)) < 2 or len(set(labels)) != len(labels):
        raise UserInputError(f"--ensemble {name}: needs at least 2 distinct checkpoint labels; got {','.join(labels)}")
    return ensemble_methods(name, [checkpoints[lab] for lab in labels])


def parse_ensembles(specs: Iterable[str], option: str = "--ensemble") -> Dict[str, list]:
    """``[NAME=]LABEL,LABEL,...`` items -> ``{NAME: [LABEL, ...]}`` (NAME default ``ensemble``); a repeated NAME or
    an empty label list is a one-line ``UserInputError``."""
    out: Dict[str, list] = {}
    for spec in specs:
        name, sep, labels = spec.rpartition("=")
        name = name if sep else "ensemble"
        items = [lab.strip() for lab in labels.split(",") if lab.strip()]
        if not name or name in out or not items:
            raise UserInputError(
                f"{option} {spec!r}: expected [NAME=]LABEL,LABEL,... with a NAME of its own per ensemble, "
                f"e.g. {option} av=avae,minvae"
            )
        out[name] = items
    return out
