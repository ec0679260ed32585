"""Several trained speech models enhancing one recording together: the pooled Wiener gain of their E-steps.

::

    from pyro_minvae.infer.ensemble import ModelEnsemble
    team = ModelEnsemble([avae, minvae, avcvae])           # models sharing one STFT (same n_freq)
    res = ESTEPS.get("fast")(team, spec, visual, seed=0)   # every E-step takes an ensemble as its model
    res.estimate                                           # (F, N) = spec * rule(pool_m G_m)

Each member runs the E-step on the same noisy STFT with the same seed (so the same NMF start) and its own
restarts; its posterior-mean Wiener gain ``G_m`` ``(F, N)`` is taken before the gain rule, the gains are pooled,
and the config's gain rule (floor, exponent) acts once on the pooled gain, as with restarts. The default pool is
the geometric mean ``exp(mean_m log G_m)``: a bin keeps its energy only where every member calls it speech. The
members' speech models err in different places (the joint fit of speech and noise is local, and each model
explains a different part of the noise as speech), so the log-linear pool removes what any one of them
recognises as noise. Chosen on the validation mixtures against the arithmetic mean (docs/algorithms.md,
"Several speech models, one estimate").

Each member's restarts start their NMFs from the ensemble's schedule
:data:`~pyro_minvae.infer.estep_common.RESTART_STARTS` (the raw draws, then 0.25, 0.5 and 1 x the noisy power's
median per bin) unless the call sets ``restart_starts`` or ``noise_start`` itself
(:func:`~pyro_minvae.infer.estep_common.scheduled_config`, which ``EStep.__call__`` applies to any model); chosen
on the validation mixtures (docs/algorithms.md, "Restarts from different NMF starts, in the ensemble"). An E-step
that runs once (MCEM's default) is unchanged by it: its one run is the schedule's first, the raw draws.

The ensemble presents what the enhancement path reads from a model (``n_freq``, ``modalities``, ``spec``'s input
sizes, ``conditioner``, ``restart_starts``), so visual features, chunking and progress need nothing new;
:func:`members` lists the models an object stands for (itself for a plain model), for the checks that are per
model.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import torch
from torch import nn

from .estep_common import RESTART_STARTS, draw_seed, gain_of

POOLS = ("geometric", "arithmetic")


class ModelEnsemble(nn.Module):
    """``members``: trained speech models (``SpeechVAE``) with the same number of frequency bins ``F``, enhanced
    together by any E-step (:meth:`run`); ``pool``: how their Wiener gains combine, ``"geometric"`` (default)
    or ``"arithmetic"``; ``restart_starts``: the members' NMF start per restart when the call sets none
    (:func:`~pyro_minvae.infer.estep_common.scheduled_config`; ``None``: each member's own). Visual streams are
    shared: a member reads the ones it was trained on."""

    def __init__(
        self, members: Sequence[nn.Module], pool: str = "geometric", restart_starts: tuple | None = RESTART_STARTS
    ):
        super().__init__()
        members = list(members)
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least 2 models; got {len(members)}")
        if any(isinstance(m, ModelEnsemble) for m in members):
            raise ValueError("an ensemble's members are models, not ensembles; list their members instead")
        sizes = {m.n_freq for m in members}
        if len(sizes) != 1:
            raise ValueError(f"the models disagree on the number of frequency bins: {sorted(sizes)}")
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {POOLS}; got {pool!r}")
        self.members = nn.ModuleList(members)
        self.pool = pool
        self.restart_starts = None if restart_starts is None else tuple(restart_starts)
        self.spec = {"family": "ensemble", "kwargs": {"input_dims": _shared_input_dims(members)}}

    @property
    def n_freq(self) -> int:
        return self.members[0].n_freq

    @property
    def modalities(self) -> list[str]:
        """Every batch key a member reads, ``"audio"`` first, in the members' order."""
        names: list[str] = []
        for m in self.members:
            names += [k for k in m.modalities if k not in names]
        return names

    @property
    def conditioner(self):
        """A member's visual conditioner (the stream the ensemble cannot run without), or ``None``."""
        return next((m.conditioner for m in self.members if m.conditioner is not None), None)

    def run(self, estep: Callable, spec: torch.Tensor, visual: dict | None, config, *, seed: int = 0, **kwargs):
        """``estep(member, spec, visual, config, seed=..., **kwargs)`` for every member, pooled: the first member's
        result with ``estimate = spec * rule(pool(G_m))``, no responsibilities (they belong to one member) and
        ``init`` naming every member's encoder in order (``"audio / lips"``).
        With a ``generator`` in ``kwargs``, one seed is drawn from it and every member uses it; ``callback`` sees
        every member's iterations."""
        generator = kwargs.pop("generator", None)
        seed = seed if generator is None else draw_seed(generator)
        # ``config`` holds the ensemble's restart schedule (EStep.__call__); the members run without the rule: it
        # acts on the pool
        plain = dataclasses.replace(config, gain_floor=0.0, gain_exponent=1.0)
        results = [estep(m, spec, visual, plain, seed=seed, **kwargs) for m in self.members]
        gains = torch.stack([gain_of(r.estimate, spec) for r in results])
        rule = config.gain_rule()
        estimate = spec * rule(pool_gains(gains, self.pool))
        inits = " / ".join(r.init for r in results)  # each member's start, in order
        return results[0]._replace(estimate=estimate, responsibilities=None, init=inits)


def pool_gains(gains: torch.Tensor, pool: str = "geometric") -> torch.Tensor:
    """Gains ``(M, F, N)`` in [0, 1] -> one gain ``(F, N)``: their geometric mean (a member's 0 gives 0) or their
    arithmetic mean."""
    if pool == "arithmetic":
        return gains.mean(0)
    tiny = torch.finfo(gains.dtype).tiny
    pooled = gains.clamp_min(tiny).log().mean(0).exp()
    return torch.where((gains > 0).all(0), pooled, torch.zeros_like(pooled))


def members(model) -> tuple:
    """The models ``model`` stands for: an ensemble's members, else ``(model,)``."""
    return tuple(model.members) if isinstance(model, ModelEnsemble) else (model,)


def _shared_input_dims(models) -> dict:
    """The visual feature sizes the members were trained on, ``{name: D}``; two members reading one stream at
    different sizes cannot share it."""
    dims: dict = {}
    for m in models:
        for name, size in ((m.spec or {}).get("kwargs", {}).get("input_dims") or {}).items():
            if dims.setdefault(name, size) != size:
                raise ValueError(f"the models read the {name!r} stream at different sizes ({dims[name]} and {size})")
    return dims


__all__ = ["ModelEnsemble", "POOLS", "RESTART_STARTS", "members", "pool_gains"]
