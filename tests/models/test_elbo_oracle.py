"""ELBOs of every family on a tiny batch against hand-written Gaussian/Itakura-Saito formulas (fixed weights).

The reparameterised sample is fixed by replaying (or re-seeding) the guide, then the oracle evaluates
log p(x|z) + log p(z) - log q(z|x) with formulas written here in plain torch.
"""

from __future__ import annotations

import math

import pyro
import pytest
import torch
from pyro import poutine

from pyro_minvae.infer.objectives import MarginalMixtureELBO, component_responsibilities
from pyro_minvae.training.objectives import OBJECTIVES, kl_weighted
from pyro_minvae.models import build_model

F, B, L = 513, 6, 4
LIPS, LM = 4489, 12


def log_normal(z, loc, scale):
    """sum_l log N(z_l; loc_l, scale_l^2)."""
    return (-0.5 * math.log(2 * math.pi) - torch.log(scale) - 0.5 * ((z - loc) / scale) ** 2).sum(-1)


def log_power(x, lv):
    """sum_f log Exp(x_f; mean e^lv_f) = -lv - x e^-lv (lv clamped like the model)."""
    lv = lv.clamp(-30.0, 30.0)
    return (-lv - x * torch.exp(-lv)).sum(-1)


def enc_gauss(enc, x, cond=None):
    """Encoder's Gaussian written out from its layers."""
    h = torch.log(x.clamp_min(0) + 1e-8) if enc.input_transform == "log" else x
    if enc.pre is not None:  # square ROI average-pooled by p (the trailing side % p rows/columns dropped)
        side, p = enc.pre.side, enc.pre.pool
        k = side // p
        h = h.reshape(-1, side, side)[:, : k * p, : k * p].reshape(-1, k, p, k, p).mean((2, 4)).flatten(1)
    if cond is not None:
        h = torch.cat([h, cond], -1)
    h = enc.body(h)
    return enc.loc(h), torch.exp(0.5 * enc.log_var(h).clamp(-20.0, 10.0))


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(3)
    return {
        "audio": torch.rand(B, F, generator=g) * 2.0 + 1e-3,
        "lips": torch.rand(B, LIPS, generator=g),
        "landmarks": torch.randn(B, LM, generator=g),
    }


DIMS = {"audio": F, "lips": LIPS, "landmarks": LM}


@pytest.mark.parametrize("encoder", ["audio", "lips"])
def test_vae_elbo_matches_hand_computation(batch, encoder):
    model = build_model("vae", input_dims=DIMS, latent_dim=L, encoder=encoder).eval()
    guide_tr = poutine.trace(model.guide).get_trace(batch)
    z = guide_tr.nodes["z"]["value"]
    loss = pyro.infer.Trace_ELBO().differentiable_loss(model.model, poutine.replay(model.guide, trace=guide_tr), batch)
    loc, scale = enc_gauss(model.guide_net.encoder, batch[encoder])
    elbo = (
        log_power(batch["audio"], model.decoder.out(model.decoder.body(z)))
        + log_normal(z, torch.zeros(L), torch.ones(L))
        - log_normal(z, loc, scale)
    ).sum()
    torch.testing.assert_close(-loss, elbo, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("weight", [0.25, 3.0])
def test_kl_weight_scales_the_latent_terms_only(batch, weight):
    """beta-VAE: -loss = log p(x|z) + beta (log p(z) - log q(z|x)), written out for A-VAE."""
    model = build_model("avae", input_dims=DIMS, latent_dim=L).eval()
    guide_tr = poutine.trace(model.guide).get_trace(batch)
    z = guide_tr.nodes["z"]["value"]
    with kl_weighted(weight):
        loss = pyro.infer.Trace_ELBO().differentiable_loss(
            model.model, poutine.replay(model.guide, trace=guide_tr), batch
        )
    loc, scale = enc_gauss(model.guide_net.encoder, batch["audio"])
    loglik = log_power(batch["audio"], model.decoder.out(model.decoder.body(z)))
    kl = log_normal(z, loc, scale) - log_normal(z, torch.zeros(L), torch.ones(L))
    torch.testing.assert_close(-loss, (loglik - weight * kl).sum(), rtol=1e-5, atol=1e-3)
    # the training objective under the handler; weight 1 is the plain ELBO
    pyro.set_rng_seed(4)
    with kl_weighted(1.0):
        plain, _ = OBJECTIVES.build("elbo").loss(model, batch, None)
    pyro.set_rng_seed(4)
    torch.testing.assert_close(plain, pyro.infer.Trace_ELBO().differentiable_loss(model.model, model.guide, batch))


def test_kl_weight_in_the_mixture_objective_weighs_each_components_latent_terms(batch):
    """MIN-VAE's per-component terms become log p(x|z_m) + beta (log pi_m + log p(z_m|m) - log q_m(z_m)), and the
    marginal objective is their logsumexp (the oracle's terms with the latent part scaled)."""
    beta = 0.5
    model = build_model("minvae", input_dims=DIMS, latent_dim=L).eval()
    with torch.no_grad():
        model.prior.loc.normal_()
        model.prior.set_weights(torch.tensor([0.3, 0.7]))
    pyro.set_rng_seed(9)
    with kl_weighted(beta):
        loss, resp = OBJECTIVES.build("mixture-marginal").loss(model, batch, None)
    pyro.set_rng_seed(9)
    z = poutine.trace(poutine.enum(model.guide, first_available_dim=-2)).get_trace(batch).nodes["z"]["value"]
    _, terms = _mixture_oracle(model, batch, z, torch.full((B, 2), 0.5))
    loglik = torch.stack([log_power(batch["audio"], model.decoder.out(model.decoder.body(zm))) for zm in z])
    weighted = loglik + beta * (terms - loglik)
    torch.testing.assert_close(loss, -torch.logsumexp(weighted, 0).sum(), rtol=1e-5, atol=1e-2)
    torch.testing.assert_close(resp, torch.softmax(weighted, 0).T, rtol=1e-4, atol=1e-5)


def test_avcvae_elbo_and_prior_term_match_hand_computation(batch):
    model = build_model("avcvae", input_dims=DIMS, latent_dim=L).eval()
    cond = model.conditioner.out(model.conditioner.body(batch["lips"]))
    h = model.prior.body(cond)
    p_loc, p_scale = model.prior.loc(h), torch.exp(0.5 * model.prior.log_var(h).clamp(-20.0, 10.0))

    def dec(z):
        return model.decoder.out(model.decoder.body(torch.cat([z, cond], -1)))

    guide_tr = poutine.trace(model.guide).get_trace(batch)
    z = guide_tr.nodes["z"]["value"]
    loss = pyro.infer.Trace_ELBO().differentiable_loss(model.model, poutine.replay(model.guide, trace=guide_tr), batch)
    q_loc, q_scale = enc_gauss(model.guide_net.encoder, batch["audio"], cond)
    elbo = (log_power(batch["audio"], dec(z)) + log_normal(z, p_loc, p_scale) - log_normal(z, q_loc, q_scale)).sum()
    torch.testing.assert_close(-loss, elbo, rtol=1e-5, atol=1e-3)

    # the reconstruction-from-prior term: E_{p(z|v)} log p(s|z,v)
    prior_tr = poutine.trace(model.prior_guide).get_trace(batch)
    zp = prior_tr.nodes["z"]["value"]
    loss_p = pyro.infer.Trace_ELBO().differentiable_loss(
        model.model, poutine.replay(model.prior_guide, trace=prior_tr), batch
    )
    torch.testing.assert_close(-loss_p, log_power(batch["audio"], dec(zp)).sum(), rtol=1e-5, atol=1e-3)

    # the training objective is the documented weighted sum
    w = 0.3
    obj = OBJECTIVES.build("cvae", cvae_weight=w)
    pyro.set_rng_seed(5)
    got, _ = obj.loss(model, batch, None)
    pyro.set_rng_seed(5)
    a = pyro.infer.Trace_ELBO().differentiable_loss(model.model, model.guide, batch)
    b = pyro.infer.Trace_ELBO().differentiable_loss(model.model, model.prior_guide, batch)
    torch.testing.assert_close(got, (1 - w) * a + w * b)


def _mixture_oracle(model, batch, z, q):
    """Explicit sum over c of q(c)[log p(x|z_c) + log p(z_c|c) + log pi_c - log q(z_c|c) - log q(c)].

    ``z``: ``(M, B, L)``, ``q``: ``(B, M)``. Returns the ELBO (scalar) and the per-component terms ``(M, B)``.
    """
    prior = model.prior
    log_pi = torch.log_softmax(prior.weight_logits, -1)
    terms = []
    for m, enc in enumerate(model.guide_net.encoders):
        loc, scale = enc_gauss(enc, batch[enc.modality])
        p_scale = torch.exp(0.5 * prior.log_var[m]).expand(L)
        terms.append(
            log_power(batch["audio"], model.decoder.out(model.decoder.body(z[m])))
            + log_normal(z[m], prior.loc[m], p_scale)
            + log_pi[m]
            - log_normal(z[m], loc, scale)
        )
    terms = torch.stack(terms)  # (M, B)
    elbo = (q.T * (terms - torch.log(q.T))).sum()
    return elbo, terms


@pytest.mark.parametrize("encoders", [("audio", "lips"), ("audio", "lips", "landmarks")])
def test_enumerated_mixture_elbo_equals_explicit_sum(batch, encoders):
    model = build_model("minvae", input_dims=DIMS, latent_dim=L, encoders=encoders).eval()
    m = len(encoders)
    with torch.no_grad():  # a non-trivial prior
        model.prior.loc.normal_()
        model.prior.log_var.uniform_(-1, 1)
        model.prior.set_weights(torch.rand(m) + 0.1)
    q = torch.distributions.Dirichlet(torch.ones(m)).sample((B,))  # arbitrary q(c)
    b = dict(batch, responsibilities=q)
    pyro.set_rng_seed(11)
    loss = pyro.infer.TraceEnum_ELBO(max_plate_nesting=1).differentiable_loss(model.model, model.guide, b)
    pyro.set_rng_seed(11)
    z = poutine.trace(poutine.enum(model.guide, first_available_dim=-2)).get_trace(b).nodes["z"]["value"]
    assert z.shape == (m, B, L)
    elbo, _ = _mixture_oracle(model, batch, z, q)
    torch.testing.assert_close(-loss, elbo, rtol=1e-5, atol=1e-2)


def test_marginal_mixture_elbo_equals_traceenum_at_optimal_q(batch):
    model = build_model("minvae", input_dims=DIMS, latent_dim=L).eval()
    with torch.no_grad():
        model.prior.loc.normal_()
    pyro.set_rng_seed(2)
    q = component_responsibilities(model.model, model.guide, batch)
    pyro.set_rng_seed(2)
    marginal = MarginalMixtureELBO().differentiable_loss(model.model, model.guide, batch)
    pyro.set_rng_seed(2)
    enum = pyro.infer.TraceEnum_ELBO(max_plate_nesting=1).differentiable_loss(
        model.model, model.guide, dict(batch, responsibilities=q)
    )
    torch.testing.assert_close(marginal, enum, rtol=1e-5, atol=1e-2)
    # q is the closed-form optimum: the oracle's softmax over components
    pyro.set_rng_seed(2)
    z = poutine.trace(poutine.enum(model.guide, first_available_dim=-2)).get_trace(batch).nodes["z"]["value"]
    _, terms = _mixture_oracle(model, batch, z, q)
    torch.testing.assert_close(q, torch.softmax(terms, 0).T, rtol=1e-4, atol=1e-5)
    # any other q gives a lower ELBO
    pyro.set_rng_seed(2)
    other = pyro.infer.TraceEnum_ELBO(max_plate_nesting=1).differentiable_loss(
        model.model, model.guide, dict(batch, responsibilities=torch.full_like(q, 0.5))
    )
    assert other > marginal
    # the training objective is the same quantity and reports the same q
    pyro.set_rng_seed(2)
    got, resp = OBJECTIVES.build("mixture-marginal").loss(model, batch, None)
    torch.testing.assert_close(got, marginal)
    torch.testing.assert_close(resp, q)


M3 = {"encoders": ("audio", "lips", "landmarks")}


@pytest.mark.parametrize(
    "family,kw,resp",
    [
        ("avae", {}, None),
        ("vae", {"encoder": "lips"}, None),
        ("avcvae", {}, None),
        ("minvae", {}, "marginal"),
        ("minvae", {}, "epoch"),
        ("minvae", M3, "marginal"),
        ("minvae", M3, "epoch"),
    ],
)
def test_gradients_finite_for_every_parameter(batch, family, kw, resp):
    from pyro_minvae.data.datasets import FrameDataset
    from pyro_minvae.training.objectives import default_objective

    model = build_model(family, input_dims=DIMS, latent_dim=L, **kw).train()
    name = default_objective(model, resp or "marginal")
    obj = OBJECTIVES.build(name)
    if obj.needs_epoch_hook:
        visual = {k: v for k, v in batch.items() if k != "audio"}
        ds = FrameDataset(batch["audio"], visual, torch.tensor([0, B]), ["u"], None)
        obj.start_epoch(model, ds, 4, 0)
        assert torch.allclose(model.prior.log_weights().exp(), obj.responsibilities.mean(0))
    loss, _ = obj.loss(model, batch, torch.arange(B))
    loss.backward()
    assert torch.isfinite(loss)
    for name_, p in model.named_parameters():
        if name_.startswith("prior.weight_logits"):
            continue
        assert p.grad is not None, f"{family}: no gradient for {name_}"
        assert torch.isfinite(p.grad).all(), f"{family}: non-finite gradient for {name_}"
