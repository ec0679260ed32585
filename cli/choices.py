"""Command-line choices read from the registries when the command line is parsed, i.e. after ``--plugin`` files
have registered their components: a plugin's E-step, kernel or loop is a valid ``--method``/``--kernel``/
``--loop`` value like the built-in ones."""

from __future__ import annotations

from typing import Callable

import click

from pyro_minvae.errors import UserInputError


class RegistryChoice(click.ParamType):
    """A name registered in ``registry()`` (called lazily, so plugin registrations count)."""

    name = "name"

    def __init__(self, registry: Callable, extra: tuple = ()):
        self._registry = registry
        self._extra = tuple(extra)

    def choices(self) -> list:
        return list(self._extra) + [n for n in self._registry().names() if not n.startswith("_")]

    def get_metavar(self, param, ctx=None) -> str:
        return "[" + "|".join(self.choices()) + "]"

    def convert(self, value, param, ctx):
        if value in self._extra:
            return value
        try:
            self._registry().get(value)
        except ValueError as exc:  # "unknown kernel 'x'; valid kernels: ...": the house one-line error, exit 2
            option = param.opts[0] if param is not None and param.opts else self.name
            raise UserInputError(
                f"{option} {value}: {exc} (a plugin registers more: pyro-minvae --plugin FILE.py ...)"
            ) from None
        return value


def _estep_registry():
    from pyro_minvae.infer import enhance  # noqa: F401  (registers the built-in E-steps)
    from pyro_minvae.registry import ESTEPS

    return ESTEPS


def _kernel_registry():
    import pyro_minvae.infer  # noqa: F401  (registers the built-in kernels)
    from pyro_minvae.registry import KERNELS

    return KERNELS


def _loop_registry():
    from pyro_minvae.infer.mcem import MCEM_LOOPS

    return MCEM_LOOPS


def _preset_registry():
    from pyro_minvae.infer.presets import PRESETS
    from pyro_minvae.registry import Registry

    presets = Registry("preset")  # the presets' names read like any registry's (and plugin-added ones count)
    for name, options in PRESETS.items():
        presets.register(name, options)
    return presets


ESTEP_CHOICE = RegistryChoice(_estep_registry)
PRESET_CHOICE = RegistryChoice(_preset_registry)
KERNEL_CHOICE = RegistryChoice(_kernel_registry)
LOOP_CHOICE = RegistryChoice(_loop_registry)


def comma_list(value: str | None, option: str) -> list[str] | None:
    """``a,b`` -> ``["a", "b"]``; an option not given -> ``None`` (the command's default); given but naming
    nothing (``--methods ''``) -> a one-line error rather than silently meaning "all"."""
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise UserInputError(f"{option} {value!r} names nothing; give a comma list or leave the option out")
    return items


def snr_list(value: str | None, option: str = "--snr") -> list[float] | None:
    """Comma list of SNRs in dB (see :func:`comma_list`)."""
    items = comma_list(value, option)
    if items is None:
        return None
    try:
        return [float(v) for v in items]
    except ValueError:
        raise UserInputError(f"{option} {value!r}: give SNRs in dB as a comma list, e.g. {option}=-5,0,5") from None


def metric_list(value: str | None, option: str = "--metrics") -> list[str]:
    """Comma list of registered metric names (see :func:`comma_list`); not given -> the default metrics."""
    from pyro_minvae.metrics import DEFAULT_METRICS, METRICS

    names = comma_list(value, option) or list(DEFAULT_METRICS)
    unknown = [m for m in names if m not in METRICS]
    if unknown:
        raise UserInputError(f"{option}: unknown {', '.join(unknown)}; valid: {', '.join(sorted(METRICS))}")
    return names
