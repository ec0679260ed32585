"""Name -> component registries, each checking its contract (:mod:`pyro_minvae.contracts`) at registration.

A new component is a class (or factory) plus one registration line::

    from pyro_minvae.contracts import Prior
    from pyro_minvae.registry import PRIORS

    @PRIORS.register("my-prior")
    class MyPrior(Prior):
        ...

A class registered where a contract applies must subclass it and implement its abstract methods; otherwise
``register`` raises ``TypeError`` naming the missing methods. Registries and what they hold:

``PRIORS`` :class:`~pyro_minvae.contracts.Prior` classes; ``DECODERS`` :class:`~pyro_minvae.contracts.Decoder`
classes; ``GUIDES`` :class:`~pyro_minvae.contracts.Guide` classes; ``ENCODERS`` encoder factories by **modality
name** (``factory(in_dim, latent_dim, ...) -> module`` with ``.modality`` and ``forward(x, cond) -> (loc,
scale)``); ``CONDITIONERS`` conditioning networks (AV-CVAE's visual embedding); ``MODELS`` family builders;
``KERNELS`` :class:`~pyro_minvae.contracts.EStepKernel` classes; ``ESTEPS``
:class:`~pyro_minvae.contracts.EStep` instances; ``MODALITIES`` visual stream loaders; ``BASELINES`` classical
enhancement methods (:class:`~pyro_minvae.contracts.EvaluationMethod` classes).

Checkpoints store the family name and its arguments (``model.spec``) and rebuild through ``MODELS``, which looks
the components up here by name: a component registered by a plugin reloads while the plugin is imported.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Generic, Iterator, TypeVar

from .contracts import Decoder, EStep, EStepKernel, EvaluationMethod, Guide, Prior, check_contract

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of component factories of one kind; ``contract``: the base class (for classes) or
    type (for instances) every entry must satisfy, checked by :meth:`register`."""

    def __init__(self, kind: str, contract: type | None = None):
        self.kind = kind
        self.contract = contract
        self._items: Dict[str, Callable[..., T]] = {}

    def register(self, name: str, obj: Callable[..., T] | None = None):
        """Register ``obj`` under ``name``; usable as ``@REG.register("name")`` or ``REG.register("name", obj)``.

        Raises ``TypeError`` when ``obj`` breaks the registry's contract, ``ValueError`` when ``name`` is taken.
        """

        def deco(o: Callable[..., T]) -> Callable[..., T]:
            if self.contract is not None:
                check_contract(self.kind, name, o, self.contract)
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
        """Construct ``name`` with ``kwargs``."""
        return self.get(name)(**kwargs)

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))


PRIORS: Registry = Registry("prior", Prior)
ENCODERS: Registry = Registry("encoder")
CONDITIONERS: Registry = Registry("conditioner")
DECODERS: Registry = Registry("decoder", Decoder)
GUIDES: Registry = Registry("guide", Guide)
MODELS: Registry = Registry("model")
KERNELS: Registry = Registry("kernel", EStepKernel)
ESTEPS: Registry = Registry("E-step method", EStep)
MODALITIES: Registry = Registry("modality")
BASELINES: Registry = Registry("baseline", EvaluationMethod)
