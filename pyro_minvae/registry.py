"""Name -> component registries (priors, encoders, decoders, guides, models, noise models, kernels, ...).

A new component is a class (or factory) plus one registration line::

    from pyro_minvae.registry import ENCODERS

    @ENCODERS.register("my_encoder")
    class MyEncoder(torch.nn.Module):
        ...

``Registry.build(name, **kwargs)`` constructs it and records the constructor arguments so that
checkpoints can rebuild it (see :func:`serialize` / :func:`deserialize`).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Generic, Iterator, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of component factories of one kind."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: Dict[str, Callable[..., T]] = {}

    def register(self, name: str, obj: Callable[..., T] | None = None):
        """Register ``obj`` under ``name``; usable as ``@REG.register("name")`` or ``REG.register("name", obj)``."""

        def deco(o: Callable[..., T]) -> Callable[..., T]:
            if name in self._items and self._items[name] is not o:
                raise ValueError(f"{self.kind} {name!r} is already registered to {self._items[name]!r}")
            self._items[name] = o
            try:
                o.registry_name = name  # type: ignore[attr-defined]
            except (AttributeError, TypeError):
                pass
            return o

        return deco(obj) if obj is not None else deco

    def get(self, name: str) -> Callable[..., T]:
        """Return the factory named ``name``; unknown names raise ``ValueError`` listing the valid ones."""
        try:
            return self._items[name]
        except KeyError:
            valid = ", ".join(sorted(self._items)) or "(none registered)"
            raise ValueError(f"unknown {self.kind} {name!r}; valid {self.kind}s: {valid}") from None

    def build(self, name: str, **kwargs: Any) -> T:
        """Construct ``name`` with ``kwargs`` and remember both on the instance for :func:`serialize`."""
        obj = self.get(name)(**kwargs)
        try:
            obj._registry_spec = {"kind": self.kind, "name": name, "kwargs": dict(kwargs)}  # type: ignore[attr-defined]
        except (AttributeError, TypeError):
            pass
        return obj

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))


def serialize(obj: Any) -> dict:
    """Return ``{"kind", "name", "kwargs"}`` for an object built with :meth:`Registry.build`."""
    spec = getattr(obj, "_registry_spec", None)
    if spec is None:
        raise ValueError(f"{type(obj).__name__} was not built through a registry; use Registry.build(name, **kwargs)")
    return {"kind": spec["kind"], "name": spec["name"], "kwargs": dict(spec["kwargs"])}


PRIORS: Registry = Registry("prior")
ENCODERS: Registry = Registry("encoder")
DECODERS: Registry = Registry("decoder")
GUIDES: Registry = Registry("guide")
MODELS: Registry = Registry("model")
NOISE_MODELS: Registry = Registry("noise model")
KERNELS: Registry = Registry("kernel")
ESTEPS: Registry = Registry("E-step method")
MODALITIES: Registry = Registry("modality")
BASELINES: Registry = Registry("baseline")

_ALL = {r.kind: r for r in (PRIORS, ENCODERS, DECODERS, GUIDES, MODELS, NOISE_MODELS, KERNELS, ESTEPS, MODALITIES,
                            BASELINES)}


def deserialize(spec: dict) -> Any:
    """Rebuild an object from :func:`serialize`'s output."""
    try:
        reg = _ALL[spec["kind"]]
    except KeyError:
        raise ValueError(f"unknown component kind {spec.get('kind')!r}; valid kinds: {', '.join(sorted(_ALL))}") from None
    return reg.build(spec["name"], **spec["kwargs"])
