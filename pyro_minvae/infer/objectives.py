"""Training objectives built from the model's own traces (no hand-written likelihood).

``frame_elbo_terms`` evaluates, for each frame and each value of an enumerated mixture variable c, the
single-sample ELBO integrand ``log p(x, z, c) - log q(z | c)``. From it:

- ``component_responsibilities``: the optimal q(c_n = m) in closed form (softmax over m), the paper's pi_n;
- ``MarginalMixtureELBO``: ``-sum_n logsumexp_m [...]``, the ELBO with q(c) set to that optimum in every batch.
  Its gradients equal ``sum_m pi_nm grad(...)`` (the paper's weighted objective) and it trains pi too when the
  prior's weights are a parameter. It equals ``TraceEnum_ELBO`` when the guide's q(c) is that optimum (tested).
"""

from __future__ import annotations

import pyro
import torch
from pyro import poutine
from pyro.poutine.util import site_is_subsample


def frame_elbo_terms(model, guide, *args, **kwargs) -> torch.Tensor:
    """Per-frame ELBO integrand with guide-enumerated discrete sites excluded from q.

    Returns ``(M, B)`` when the guide enumerates a mixture site (row m: component m) and ``(B,)`` otherwise.
    """
    guide_tr = poutine.trace(poutine.enum(guide, first_available_dim=-2)).get_trace(*args, **kwargs)
    model_tr = poutine.trace(poutine.replay(model, trace=guide_tr)).get_trace(*args, **kwargs)
    total: torch.Tensor | float = 0.0
    for tr, sign in ((model_tr, 1.0), (guide_tr, -1.0)):
        tr.compute_log_prob()
        for site in tr.nodes.values():
            if site["type"] != "sample" or site_is_subsample(site):
                continue
            if sign < 0 and site["infer"].get("enumerate") == "parallel":
                continue  # q(c) is replaced by its closed-form optimum
            total = total + sign * site["log_prob"]
    if not torch.is_tensor(total):
        raise ValueError("the model has no sample sites")
    return total


def marginalise_components(terms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """From :func:`frame_elbo_terms`: the per-frame ELBO with q(c) at its optimum ``(B,)`` and that optimum
    ``(B, M)`` (detached); without a mixture (``terms`` of shape ``(B,)``) the terms themselves and ``None``."""
    if terms.dim() != 2:
        return terms, None
    return torch.logsumexp(terms, dim=0), torch.softmax(terms.detach(), dim=0).transpose(0, 1).contiguous()


def component_responsibilities(model, guide, *args, **kwargs) -> torch.Tensor:
    """Closed-form q(c_n = m), shape ``(B, M)``, detached. Requires a mixture guide."""
    with torch.no_grad():
        _, resp = marginalise_components(frame_elbo_terms(model, guide, *args, **kwargs))
    if resp is None:
        raise ValueError("component_responsibilities needs a guide that enumerates a mixture site 'c'")
    return resp


class MarginalMixtureELBO(pyro.infer.ELBO):
    """ELBO with the mixture variable's q(c) at its closed-form optimum per frame (single particle)."""

    def _get_trace(self, model, guide, args, kwargs):  # pragma: no cover - traces are built in frame_elbo_terms
        raise NotImplementedError("MarginalMixtureELBO computes its traces in frame_elbo_terms")

    def differentiable_loss(self, model, guide, *args, **kwargs) -> torch.Tensor:
        per_frame, _ = marginalise_components(frame_elbo_terms(model, guide, *args, **kwargs))
        return -per_frame.sum()

    def loss(self, model, guide, *args, **kwargs) -> float:
        with torch.no_grad():
            return self.differentiable_loss(model, guide, *args, **kwargs).item()

    def loss_and_grads(self, model, guide, *args, **kwargs) -> float:
        loss = self.differentiable_loss(model, guide, *args, **kwargs)
        loss.backward()
        return loss.item()
