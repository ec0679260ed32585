"""From training settings to a model: ``--encoders`` onto the family builder's arguments, the modalities a family
reads, the checks of ``--model-arg`` / ``--encoder-option`` against the registries, and :func:`make_model`."""

from __future__ import annotations

import inspect
import json
from typing import Sequence

from ..errors import UserInputError, one_line
from ..registry import DECODERS, ENCODERS, MODELS, PRIORS
from .config import TrainConfig

# Builder arguments that other options set (never through --model-arg).
_SET_BY_OPTIONS = {
    "input_dims": "the data",
    "latent_dim": "--latent-dim",
    "encoders": "--encoders",
    "encoder": "--encoders",
    "visual": "--encoders",
}
_KIND_EXAMPLE = {
    "boolean": "true or false",
    "integer": "a whole number",
    "number": "a number",
    "string": "a name",
    "list": "a JSON list, e.g. [1, 2]",
    "object": 'a JSON object, e.g. {"key": 1}',
}
# Builder arguments whose string value names a registered component (checked against that registry).
_NAMED_COMPONENTS = {"prior": PRIORS, "decoder": DECODERS, "encoder": ENCODERS, "visual": ENCODERS}
_SIZED_BY_THE_BUILDER = {"in_dim", "latent_dim", "cond_dim", "modality"}


def family_encoder_kwargs(family: str, encoders: Sequence[str] | None) -> dict:
    """Map ``--encoders`` onto the family builder's arguments (``encoders``, ``encoder`` or ``visual``).

    Unknown family or encoder names raise ``ValueError`` listing the valid ones.
    """
    builder = MODELS.get(family)
    if encoders is None:
        return {}
    encoders = list(encoders)
    for e in encoders:
        ENCODERS.get(e)
    params = inspect.signature(builder).parameters
    if "encoders" in params:
        return {"encoders": encoders}
    if "encoder" in params:
        if len(encoders) != 1:
            raise ValueError(f"model {family!r} takes exactly one encoder; got {', '.join(encoders)}")
        return {"encoder": encoders[0]}
    visual = [e for e in encoders if e != "audio"]
    if "visual" in params:
        if len(visual) != 1 or "audio" not in encoders:
            raise ValueError(f"model {family!r} takes audio plus one visual modality; got {', '.join(encoders)}")
        return {"visual": visual[0]}
    if visual:
        raise ValueError(f"model {family!r} uses the audio encoder only; got {', '.join(encoders)}")
    return {}


def _builder_encoders(family: str, encoders: Sequence[str] | None) -> list[str]:
    kw = family_encoder_kwargs(family, encoders)
    params = inspect.signature(MODELS.get(family)).parameters
    names: list[str] = []
    for key in ("encoders", "encoder", "visual"):
        if key in params:
            val = kw.get(key, params[key].default)
            names += [val] if isinstance(val, str) else list(val)
    return list(dict.fromkeys(names))


def required_modalities(family: str, encoders: Sequence[str] | None) -> list[str]:
    """Batch modalities a family needs (``"audio"`` first), from its builder defaults when not given."""
    return ["audio"] + [n for n in _builder_encoders(family, encoders) if n != "audio"]


def check_model_settings(family: str, encoders: Sequence[str] | None, model_kwargs: dict) -> None:
    """Check ``--model-arg`` / ``--encoder-option`` values before any data is read: builder arguments, registered
    component names and encoder arguments. Raises ``UserInputError`` listing the valid names."""
    from ..models.families import check_model_kwargs

    try:
        check_model_kwargs(family, model_kwargs)
    except ValueError as exc:
        raise UserInputError(f"--model-arg: {exc}") from None
    params = inspect.signature(MODELS.get(family)).parameters
    for key, value in model_kwargs.items():
        if key in _SET_BY_OPTIONS:
            raise UserInputError(f"--model-arg {key}: set by {_SET_BY_OPTIONS[key]}, not by --model-arg")
        default = params[key].default if key in params else inspect.Parameter.empty
        expected = _json_kind(default)
        if (
            expected is not None
            and _json_kind(value) != expected
            and not (expected == "number" and _json_kind(value) == "integer")
        ):
            shown = json.dumps(list(default) if isinstance(default, tuple) else default)
            raise UserInputError(
                f"--model-arg {key}={json.dumps(value)}: expected {_KIND_EXAMPLE[expected]} (the default is {shown})"
            )
    for key, registry in _NAMED_COMPONENTS.items():
        value = model_kwargs.get(key)
        if isinstance(value, str) and value not in registry:
            raise UserInputError(
                f"--model-arg {key}={value!r}: unknown {registry.kind}; valid {registry.kind}s: "
                f"{', '.join(registry.names())}"
            )
    options = model_kwargs.get("encoder_options") or {}
    if not isinstance(options, dict):
        raise UserInputError("encoder_options must map a modality to its arguments, e.g. --encoder-option lips.pool=4")
    used = _builder_encoders(family, encoders) or ["audio"]  # a family naming no encoder is audio-only (A-VAE)
    for modality, opts in options.items():
        if modality not in used:
            raise UserInputError(
                f"--encoder-option {modality}.*: {modality!r} is not an encoder of this model; "
                f"its encoders: {', '.join(used)}"
            )
        params = inspect.signature(ENCODERS.get(modality)).parameters
        if any(p.kind is p.VAR_KEYWORD for p in params.values()):
            continue
        valid = [p for p in params if p not in _SIZED_BY_THE_BUILDER]
        for name in opts:
            if name not in valid:
                raise UserInputError(
                    f"--encoder-option {modality}.{name}: the {modality} encoder has no argument "
                    f"{name!r}; valid: {', '.join(valid) or '(none)'}"
                )


def _json_kind(value) -> str | None:
    """The JSON kind of a builder default or a parsed value (``None``: no default, or ``None``: anything goes)."""
    if value is inspect.Parameter.empty or value is None:
        return None
    for kind, types in (
        ("boolean", bool),
        ("integer", int),
        ("number", float),
        ("string", str),
        ("list", (list, tuple)),
        ("object", dict),
    ):
        if isinstance(value, types):
            return kind
    return None


def spec_difference(old: dict, new: dict) -> str:
    """``"latent_dim: 4 in the checkpoint, 8 now"`` for each setting in which two model specs differ."""
    a = {"model": old.get("family"), **dict(old.get("kwargs") or {})}
    b = {"model": new.get("family"), **dict(new.get("kwargs") or {})}
    diffs = [
        f"{k}: {a.get(k)!r} in the checkpoint, {b.get(k)!r} now"
        for k in dict.fromkeys([*a, *b])
        if a.get(k) != b.get(k)
    ]
    return "; ".join(diffs) or "the settings differ"


def make_model(cfg: TrainConfig, input_dims: dict):
    """Build ``cfg.family`` for data of ``input_dims`` (modality -> feature size); bad settings raise
    ``UserInputError`` (one line)."""
    from ..models import build_model

    check_model_settings(cfg.family, cfg.encoders, cfg.model_kwargs)
    kwargs = dict(
        input_dims={k: int(v) for k, v in input_dims.items()},
        latent_dim=cfg.latent_dim,
        **family_encoder_kwargs(cfg.family, cfg.encoders),
        **cfg.model_kwargs,
    )
    try:
        return build_model(cfg.family, **kwargs)
    except UserInputError:
        raise
    except Exception as exc:
        if not cfg.model_kwargs and not isinstance(exc, (TypeError, ValueError)):
            raise  # nothing the user gave reaches the builder's internals: a bug, not bad input
        reason = one_line(exc) if not isinstance(exc, (TypeError, ValueError)) else str(exc).splitlines()[0]
        raise UserInputError(
            f"model {cfg.family!r} cannot be built with these settings ({reason}); check "
            "--model-arg and --encoder-option"
        ) from None
