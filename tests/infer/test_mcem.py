"""MCEM driver: numpy reference (injected draws), determinism, near-identity on clean input, registry."""

import numpy as np
import pytest
import torch

from pyro_minvae.infer.mcem import mcem
from pyro_minvae.models.families import build_model
from pyro_minvae.registry import ESTEPS

import mcem_numpy_reference as ref

F, N = 12, 9


def _spec(seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    re = torch.randn(F, N, generator=g, dtype=torch.float64)
    im = torch.randn(F, N, generator=g, dtype=torch.float64)
    return torch.complex(re, im) * scale


def _avae():
    torch.manual_seed(1)
    return build_model("avae", input_dims={"audio": F}, latent_dim=3).double()


PAPER_H = 1  # the numpy references implement the paper's free NMF activations (tied ones: test_nmf_regularisation)


def _minvae():
    torch.manual_seed(2)
    m = build_model("minvae", input_dims={"audio": F, "lips": 10}, latent_dim=3).double()
    with torch.no_grad():  # distinct component priors so responsibilities move
        m.prior.loc.copy_(torch.tensor([[0.5, -0.2, 0.1], [-0.4, 0.3, 0.0]], dtype=torch.float64))
        m.prior.log_var.copy_(torch.tensor([-0.3, 0.4], dtype=torch.float64))
    return m


@pytest.mark.parametrize("start", [None, 0.5])  # the paper's NMF start (default), and one at half the median
def test_classic_matches_numpy_reference(start):
    model, spec = _avae(), _spec()
    kw = dict(iterations=4, mh_steps=6, burn_in=3, final_mh_steps=5, final_burn_in=2, rank=3, h_block=PAPER_H)
    res = mcem(model, spec, None, loop="classic", seed=7, noise_start=start, **kw)
    s, w, h, g, _ = ref.classic(model, spec.numpy(), 7, 4, 6, 3, 5, 2, 3, start=start)
    np.testing.assert_allclose(res.W.numpy(), w, rtol=1e-8)
    np.testing.assert_allclose(res.H.numpy(), h, rtol=1e-8)
    np.testing.assert_allclose(res.g.numpy(), g, rtol=1e-8)
    np.testing.assert_allclose(res.estimate.numpy(), s, rtol=1e-8, atol=1e-12)
    assert res.acceptance.shape == (4,) and res.objective.shape == (4,)
    assert 0 < float(res.acceptance.min()) and float(res.acceptance.max()) < 1  # non-trivial accept pattern


def test_classic_loop_on_minvae_matches_numpy_reference():
    """Default MIN-VAE MCEM: marginal mixture prior in the MH target, responsibilities and pi re-estimated."""
    model, spec = _minvae(), _spec(1)
    lips = torch.rand(N, 10, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    kw = dict(iterations=3, mh_steps=6, burn_in=3, final_mh_steps=5, final_burn_in=2, rank=3, h_block=PAPER_H)
    res = mcem(model, spec, {"lips": lips}, seed=5, **kw)
    s, w, h, g, resp = ref.classic(model, spec.numpy(), 5, 3, 6, 3, 5, 2, 3, lips=lips.numpy())
    _assert_mixture_result(res, s, w, h, resp)
    np.testing.assert_allclose(res.g.numpy(), g, rtol=1e-8)


def _assert_mixture_result(res, s, w, h, resp):
    """A lips-initialised MIN-VAE result equals the numpy reference's (estimate, W, H, responsibilities)."""
    assert res.init == "lips"
    np.testing.assert_allclose(res.responsibilities.numpy(), resp, rtol=1e-8)
    assert np.abs(resp - 0.5).max() > 1e-3  # the responsibilities did move
    np.testing.assert_allclose(res.W.numpy(), w, rtol=1e-8)
    np.testing.assert_allclose(res.H.numpy(), h, rtol=1e-8)
    np.testing.assert_allclose(res.estimate.numpy(), s, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("scoring, start", [("direct", None), ("trace", 0.5)])
def test_minvae_loop_matches_numpy_reference(scoring, start):
    model, spec = _minvae(), _spec(1)
    lips = torch.rand(N, 10, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    res = mcem(
        model,
        spec,
        {"lips": lips},
        loop="minvae",
        seed=11,
        iterations=3,
        mh_steps=6,
        burn_in=3,
        rank=3,
        h_block=PAPER_H,
        scoring=scoring,
        noise_start=start,
    )
    s, w, h, resp = ref.minvae(model, spec.numpy(), lips.numpy(), 11, 3, 6, 3, 3, start=start)
    _assert_mixture_result(res, s, w, h, resp)


def test_pyro_driver_and_trace_scoring_agree_with_default():
    model, spec = _avae(), _spec(2)
    kw = dict(iterations=2, mh_steps=4, burn_in=2, final_mh_steps=4, final_burn_in=2, rank=2, seed=3)
    base = mcem(model, spec, None, **kw)
    for extra in ({"driver": "pyro"}, {"scoring": "trace"}):
        other = mcem(model, spec, None, **kw, **extra)
        torch.testing.assert_close(other.estimate, base.estimate)
        torch.testing.assert_close(other.acceptance, base.acceptance)


@pytest.mark.parametrize("method", ["mcem", "fast"])
def test_same_seed_same_output(method):
    model, spec = _avae().float(), _spec(3).to(torch.complex64)
    opts = (
        dict(iterations=3)
        if method == "fast"
        else dict(iterations=2, mh_steps=4, burn_in=2, final_mh_steps=4, final_burn_in=2)
    )
    a = ESTEPS.get(method)(model, spec, None, seed=5, **opts)
    b = ESTEPS.get(method)(model, spec, None, seed=5, **opts)
    c = ESTEPS.get(method)(model, spec, None, seed=6, **opts)
    assert torch.equal(a.estimate, b.estimate)
    assert not torch.equal(a.estimate, c.estimate)


@pytest.mark.parametrize("method, loop", [("mcem", "classic"), ("mcem", "minvae"), ("fast", None)])
def test_clean_input_is_nearly_unchanged(method, loop):
    """Speech drawn from the model itself, loud relative to the NMF's initial scale, noise negligible."""
    model = _avae()
    with torch.no_grad():
        model.decoder.out.bias.add_(np.log(1e4))  # speech variances ~1e4 >> the noise's ~K/4
        z = torch.randn(N, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        std = model.decoder(z).exp().sqrt().T  # (F, N)
    spec = _spec(4) * std / np.sqrt(2)
    # raw NMF starts: on 9 frames x 12 bins a start at the median power (A-VAE's schedule) is the speech itself,
    # and 5 iterations cannot pull it apart (on real clean speech the schedule keeps ~40 dB SI-SDR: algorithms.md)
    opts = dict(iterations=5, seed=0, restart_starts=[None])
    if method == "mcem":
        opts.update(loop=loop, mh_steps=10, burn_in=5, final_mh_steps=10, final_burn_in=5)
    res = ESTEPS.get(method)(model, spec, None, **opts)
    err = (res.estimate - spec).abs().square().sum() / spec.abs().square().sum()
    assert 10 * torch.log10(err) < -20  # within 20 dB of the input


def test_bad_inputs():
    model = _avae()
    with pytest.raises(ValueError, match="complex"):
        mcem(model, torch.rand(F, N, dtype=torch.float64))
    with pytest.raises(ValueError, match="bins"):
        mcem(model, _spec()[:5])
    with pytest.raises(ValueError, match="loop"):
        mcem(model, _spec(), loop="nope")
    with pytest.raises(ValueError, match="E-step method"):
        ESTEPS.get("nope")


@pytest.mark.parametrize("method", ["mcem", "fast"])
def test_avcvae_runs_with_its_visual_conditioning(method):
    torch.manual_seed(3)
    model = build_model("avcvae", input_dims={"audio": F, "lips": 10}, latent_dim=3).double()
    lips = torch.rand(N, 10, dtype=torch.float64)
    opts = (
        dict(iterations=2)
        if method == "fast"
        else dict(iterations=2, mh_steps=4, burn_in=2, final_mh_steps=4, final_burn_in=2)
    )
    res = ESTEPS.get(method)(model, _spec(5), {"lips": lips}, **opts)
    other = ESTEPS.get(method)(model, _spec(5), {"lips": 1 - lips}, **opts)
    assert res.estimate.shape == (F, N) and torch.isfinite(res.estimate.abs()).all()
    assert not torch.equal(res.estimate, other.estimate)  # the visual stream matters
