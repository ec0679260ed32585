"""Per-frame log-densities of the model's sites at given latents: the one scoring path for enhancement.

``frame_log_probs(model.model, batch, {"z": z}, noise)`` traces the model conditioned on ``z`` (mixture sites
left free are enumerated in parallel) and returns each sample site's log-probability summed over its event
dims: ``(B,)`` for frame sites, ``(M, B)`` (or ``(M, 1)``) for sites depending on an enumerated ``c``.

``traced_prior_score(prior, batch, cond)`` does the same for the prior's program alone: the E-steps' prior term
for priors that offer no closed form (:meth:`pyro_minvae.contracts.Prior.closed_form`).
"""

from __future__ import annotations

import pyro
import torch
from pyro import poutine
from pyro.poutine.util import site_is_subsample


def frame_log_probs(model_fn, batch: dict, latents: dict, *args, **kwargs) -> dict[str, torch.Tensor]:
    """Trace ``model_fn(batch, *args, **kwargs)`` with ``latents`` observed; return ``{site: log_prob}``."""
    conditioned = poutine.condition(model_fn, data=latents)
    tr = poutine.trace(poutine.enum(conditioned, first_available_dim=-2)).get_trace(batch, *args, **kwargs)
    tr.compute_log_prob()
    return {
        name: site["log_prob"]
        for name, site in tr.nodes.items()
        if site["type"] == "sample" and not site_is_subsample(site)
    }


def traced_prior_score(prior, batch: dict, cond: torch.Tensor | None):
    """``score(z (..., N, L))`` from the prior's own Pyro program, traced with ``"z"`` observed and a mixture's
    ``"c"`` enumerated: ``log p(z) (..., N)``, or for a mixture the component log densities ``log p(z | c=m)``
    ``(M, ..., N)``. The generic enhancement path for any prior (no closed form needed)."""
    n = batch["audio"].shape[0]

    def program():
        with pyro.plate("frames", n, dim=-1):
            prior(batch, cond)

    def score(z: torch.Tensor) -> torch.Tensor:
        conditioned = poutine.condition(program, data={"z": z})
        tr = poutine.trace(poutine.enum(conditioned, first_available_dim=-z.dim())).get_trace()
        site = tr.nodes["z"]
        lp = site["fn"].log_prob(z)
        enumerated = [
            s for s in tr.nodes.values() if s["type"] == "sample" and s["infer"].get("enumerate") == "parallel"
        ]
        if not enumerated:
            return lp.expand(z.shape[:-1])
        return lp.expand((lp.shape[0],) + tuple(z.shape[:-1]))  # (M, ..., N): c's values on the leftmost dim

    return score
