"""Training objectives per model family (registered in :data:`OBJECTIVES`), used by :mod:`pyro_minvae.training.loop`.

Each objective computes a differentiable loss *summed over the frames of a batch* (negative ELBO-like) and,
for mixture models, the responsibilities q(c) ``(B, M)`` it used. All of them evaluate the model's own Pyro
programs (``model.model``, ``model.guide``, ``model.prior_guide``) through Pyro's ELBO classes or
:func:`~pyro_minvae.infer.objectives.frame_elbo_terms`; nothing re-implements the likelihood.

- ``"elbo"``: ``Trace_ELBO`` (A-VAE, V-VAE);
- ``"cvae"``: AV-CVAE, ``(1 - w) * ELBO(model, guide) + w * ELBO(model, prior_guide)``; the second term is
  ``E_{p(z|v)} log p(s | z, v)`` (log p(z|v) - log q(z|v) cancels since q is the prior), i.e. speech
  reconstructed from latents drawn from the visual prior network, so that network learns useful latents
  (the AV-CVAE paper's weighted sum; the published code's ``beta`` is ``1 - w``);
- ``"mixture-marginal"``: MIN-VAE with q(c) at its closed-form optimum in every batch (equal to
  :class:`~pyro_minvae.infer.objectives.MarginalMixtureELBO`); pi is set to the epoch's mean responsibility
  after every epoch (or trained by the ELBO when the prior's weights are a parameter);
- ``"mixture-epoch"``: the paper's recipe: q(c_n) computed in closed form once per epoch over all training frames
  (:func:`~pyro_minvae.infer.objectives.component_responsibilities`, guide in eval mode, i.e. no input noise),
  stored per frame, fed as ``batch["responsibilities"]`` to ``TraceEnum_ELBO(max_plate_nesting=1)``; the prior
  weights pi are set to the mean responsibility (``prior.set_weights``).

:func:`default_objective` picks one from the model's capabilities (mixture prior -> mixture objective,
conditioning network -> cvae, else elbo), so a new family needs no entry here.

:func:`kl_weighted` weighs every objective's latent terms (a beta-VAE, ``TrainConfig.kl_weight``).
"""

from __future__ import annotations

import contextlib

import pyro
import torch
from pyro.poutine.messenger import Messenger

from ..contracts import ExplicitPrior
from ..registry import Registry
from ..infer.objectives import component_responsibilities, frame_elbo_terms, marginalise_components

OBJECTIVES: Registry = Registry("objective")


class Objective:
    """Base class: ``loss(model, batch, index) -> (loss summed over frames, q(c) (B, M) or None)``."""

    needs_epoch_hook = False

    def loss(self, model, batch: dict, index: torch.Tensor):  # pragma: no cover - interface
        raise NotImplementedError

    def start_epoch(self, model, dataset, batch_size: int, seed: int) -> None:
        """Called before every epoch (closed-form updates); no-op by default."""

    def end_epoch(self, model, mean_responsibilities: torch.Tensor | None) -> None:
        """Called after every epoch with the epoch's mean q(c) ``(M,)`` (mixtures); no-op by default."""


@contextlib.contextmanager
def shared_condition(model, batch: dict):
    """Compute the model's conditioning tensor (AV-CVAE's visual embedding) once for ``batch``.

    Without this the model, the guide and the prior guide each re-run the conditioning network (4 times per
    AV-CVAE step). Gradients are unchanged: the one tensor feeds every use. Other batches are unaffected.
    """
    if model.conditioner is None:
        yield
        return
    cond = model.condition(batch)
    method = type(model).condition

    def condition(b):
        return cond if b.get("audio") is batch["audio"] else method(model, b)

    model.condition = condition  # instance attribute shadows the method for this call only
    try:
        yield
    finally:
        del model.condition


@OBJECTIVES.register("elbo")
class ELBOObjective(Objective):
    """Plain single-sample ``Trace_ELBO`` of ``model.model`` against ``model.guide``."""

    def __init__(self, **_):
        self.elbo = pyro.infer.Trace_ELBO()

    def loss(self, model, batch, index):
        with shared_condition(model, batch):
            return self.elbo.differentiable_loss(model.model, model.guide, batch), None


@OBJECTIVES.register("cvae")
class CVAEObjective(Objective):
    """AV-CVAE: ``(1 - w) * (-ELBO) + w * (-E_{p(z|v)} log p(s|z,v))`` with ``w = cvae_weight``."""

    def __init__(self, cvae_weight: float = 0.5, **_):
        if not 0.0 <= cvae_weight <= 1.0:
            raise ValueError(f"cvae_weight must be in [0, 1]; got {cvae_weight}")
        self.w = float(cvae_weight)
        self.elbo = pyro.infer.Trace_ELBO()

    def loss(self, model, batch, index):
        with shared_condition(model, batch):
            loss = (1.0 - self.w) * self.elbo.differentiable_loss(model.model, model.guide, batch)
            if self.w > 0:
                loss = loss + self.w * self.elbo.differentiable_loss(model.model, model.prior_guide, batch)
        return loss, None


@OBJECTIVES.register("mixture-marginal")
class MarginalMixtureObjective(Objective):
    """q(c) at its optimum per batch: ``-sum_n logsumexp_m terms[m, n]`` (= ``MarginalMixtureELBO``)."""

    def __init__(self, **_):
        pass

    def end_epoch(self, model, mean_responsibilities):
        """pi <- mean responsibility of the epoch (the paper's closed form), unless pi is a trained parameter."""
        if mean_responsibilities is not None and not model.prior.weights_learned:
            model.prior.set_weights(mean_responsibilities)

    def loss(self, model, batch, index):
        per_frame, resp = marginalise_components(frame_elbo_terms(model.model, model.guide, batch))
        if resp is None:
            raise ValueError("the mixture objective needs a model whose guide enumerates a mixture site 'c'")
        return -per_frame.sum(), resp


@OBJECTIVES.register("mixture-epoch")
class EpochMixtureObjective(Objective):
    """The paper's per-epoch closed-form responsibilities, trained with ``TraceEnum_ELBO``."""

    needs_epoch_hook = True

    def __init__(self, **_):
        self.elbo = pyro.infer.TraceEnum_ELBO(max_plate_nesting=1)
        self.responsibilities: torch.Tensor | None = None  # (N, M) on the dataset's device

    def start_epoch(self, model, dataset, batch_size, seed):
        was_training = model.training
        model.eval()
        parts = []
        with torch.random.fork_rng(devices=_cuda_devices(dataset.device)):
            pyro.set_rng_seed(seed)
            for idx in torch.arange(len(dataset), device=dataset.device).split(max(batch_size, 1024)):
                parts.append(component_responsibilities(model.model, model.guide, dataset.batch(idx)))
        model.train(was_training)
        self.responsibilities = torch.cat(parts)
        model.prior.set_weights(self.responsibilities.mean(0))

    def loss(self, model, batch, index):
        if self.responsibilities is None:
            raise RuntimeError("mixture-epoch objective: start_epoch was not called")
        q = self.responsibilities[index.to(self.responsibilities.device)]
        batch = dict(batch, responsibilities=q)
        return self.elbo.differentiable_loss(model.model, model.guide, batch), q


class _LatentScale(Messenger):
    """Multiply the log-density of every latent (not observed) sample site by ``weight``, in model and guide."""

    def __init__(self, weight: float):
        super().__init__()
        self.weight = float(weight)

    def _process_message(self, msg):
        if msg["type"] == "sample" and not msg["is_observed"]:
            msg["scale"] = msg["scale"] * self.weight


def kl_weighted(weight: float):
    """Context in which any objective's ELBO becomes ``E_q log p(x|z) - weight * KL`` (a beta-VAE, beta = weight).

    Every latent site's ``log p`` (model) and ``log q`` (guide) is scaled by ``weight``, so the KL terms of z (and
    the prior weights' ``log pi`` of a mixture) are weighed and the likelihood is not. ``weight = 1`` is the plain
    ELBO and adds no handler at all. Validation and checkpoint selection keep the plain ELBO; the epoch log's
    ``train_elbo`` is the weighted objective (as it is AV-CVAE's weighted sum).
    """
    return contextlib.nullcontext() if weight == 1 else _LatentScale(weight)


def _cuda_devices(device) -> list:
    d = torch.device(device)
    return [d] if d.type == "cuda" else []


def default_objective(model, responsibilities: str = "marginal") -> str:
    """Objective name for ``model``: ``mixture-<responsibilities>``, ``cvae`` or ``elbo`` by capability."""
    if model.is_mixture:
        name = f"mixture-{responsibilities}"
        OBJECTIVES.get(name)
        return name
    if model.conditioner is not None and isinstance(model.prior, ExplicitPrior):
        return "cvae"
    return "elbo"
