"""Per-frame log-densities of the model's sites at given latents: the one scoring path for enhancement.

``frame_log_probs(model.model, batch, {"z": z}, noise)`` traces the model conditioned on ``z`` (mixture sites
left free are enumerated in parallel) and returns each sample site's log-probability summed over its event
dims: ``(B,)`` for frame sites, ``(M, B)`` (or ``(M, 1)``) for sites depending on an enumerated ``c``.
"""

from __future__ import annotations

import torch
from pyro import poutine
from pyro.poutine.util import site_is_subsample


def frame_log_probs(model_fn, batch: dict, latents: dict, *args, **kwargs) -> dict[str, torch.Tensor]:
    """Trace ``model_fn(batch, *args, **kwargs)`` with ``latents`` observed; return ``{site: log_prob}``."""
    conditioned = poutine.condition(model_fn, data=latents)
    tr = poutine.trace(poutine.enum(conditioned, first_available_dim=-2)).get_trace(batch, *args, **kwargs)
    tr.compute_log_prob()
    return {name: site["log_prob"] for name, site in tr.nodes.items() if site["type"] == "sample" and not site_is_subsample(site)}
