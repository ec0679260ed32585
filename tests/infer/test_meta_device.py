"""The E-step's per-step code on a second device, on any machine: every tensor on PyTorch's ``meta`` device.

A CPU tensor mixed into a meta computation raises the error it would raise in a CUDA one (only 0-dim CPU
scalars mix, as on CUDA), so these tests catch a tensor created on the wrong device inside the MH chain, the
potentials, the fast E-step's Adam refinement or the NMF M-steps, without a GPU. Meta tensors hold no data: what
reads values (seeded generators, ``.item()`` once per EM iteration) is covered by ``test_cuda.py`` on a GPU.
"""

from __future__ import annotations

import pyro
import pytest
import torch

from pyro_minvae.infer.kernels import FrameMH
from pyro_minvae.infer.estep_common import initial_weights
from pyro_minvae.infer.potentials import ExpectedPowerPotential, LikelihoodPotential
from pyro_minvae.infer.vem import FrameGaussian
from pyro_minvae.models.families import build_model
from pyro_minvae.noise import NMFNoise

META = torch.device("meta")
N, F, LIPS = 7, 33, 16 * 16


def _model_and_batch(family):
    dims = {"audio": F} if family == "avae" else {"audio": F, "lips": LIPS}
    model = build_model(family, input_dims=dims).to(META).eval()
    batch = {k: torch.rand(N, d, device=META) for k, d in dims.items()}
    return model, batch


def _noise_args(model) -> tuple:
    """The classic potential's arguments on the device: NMF noise, then the mixture log-weights if any."""
    nmf = NMFNoise(3)
    log_w, _ = initial_weights(model, "uniform", N, META, torch.float32)
    return (nmf.additive(nmf.init(F, N, device=META)),) + (() if log_w is None else (log_w,))


def _on_meta(*tensors):
    """Every tensor is on the meta device (``None``: a state field that is not used, e.g. NMF band weights)."""
    return all(t is None or t.device == META for t in tensors)


@pytest.fixture(autouse=True)
def _no_validation():
    with pyro.validation_enabled(False):
        yield


@pytest.mark.parametrize("family", ["avae", "avcvae", "minvae"])
def test_mh_steps_stay_on_the_device(family):
    model, batch = _model_and_batch(family)
    with torch.no_grad():
        kernel = FrameMH(LikelihoodPotential(model, batch))
        kernel.setup(0, *_noise_args(model))
        state = kernel.score(torch.randn(N, model.latent_dim, device=META))
        for carry in (False, True):  # a burn-in step, then a kept one
            kernel.carry_aux = carry
            state = kernel.step(state)
    assert _on_meta(state.z, state.log_target, *state.aux.values()) and state.log_target.shape == (N,)


def test_minvae_expected_power_potential_stays_on_the_device():
    model, batch = _model_and_batch("minvae")
    resp = torch.full((N, 2), 0.5, device=META)
    with torch.no_grad():
        pot = ExpectedPowerPotential(model, batch)
        t, aux = pot(torch.randn(N, model.latent_dim, device=META), batch["audio"], torch.ones(N, device=META), resp)
    assert _on_meta(t, *aux.values())


@pytest.mark.parametrize("family", ["avae", "minvae"])
def test_fast_estep_refinement_stays_on_the_device(family):
    model, batch = _model_and_batch(family)
    with torch.no_grad():
        pot = LikelihoodPotential(model, batch)
    q = FrameGaussian(torch.randn(N, model.latent_dim, device=META))
    q.refine(pot, 2, 1, None, *_noise_args(model))
    assert _on_meta(q.loc, q.log_scale, q.sample(2))


@pytest.mark.parametrize("w_band, band_limited", [(1, False), (4, False), (1, True), (4, True)])
def test_nmf_m_steps_stay_on_the_device(w_band, band_limited):
    observed = (torch.arange(F, device=META) < F // 2) if band_limited else None  # a stop band left out
    nmf = NMFNoise(3, w_band=w_band, observed=observed)
    state = nmf.init(F, N, device=META)
    power, speech_var = torch.rand(N, F, device=META), torch.rand(4, N, F, device=META)
    new = nmf.update_sampled(state, power, speech_var)
    cost = nmf.sampled_objective(new, power, speech_var)
    other = nmf.update_gain_expected(nmf.update_expected_power(state, power), power, power)
    assert _on_meta(*new, cost, *other)


def test_a_host_tensor_in_a_step_is_caught():
    model, batch = _model_and_batch("avae")
    with torch.no_grad():
        pot = LikelihoodPotential(model, batch)

        def leaky(z, noise):  # the bug this file guards against: a tensor made without device=
            t, aux = pot(z, noise)
            return t + torch.zeros(N), aux

        kernel = FrameMH(leaky)
        kernel.setup(0, *_noise_args(model))
        with pytest.raises(RuntimeError, match="device"):
            kernel.step(kernel.score(torch.randn(N, model.latent_dim, device=META)))
