"""The direct scoring path equals Pyro's trace of the one model (frame_log_probs) for every family and target."""

import pytest
import torch

from pyro_minvae.infer.potentials import ExpectedPowerPotential, LikelihoodPotential
from pyro_minvae.models import build_model
from pyro_minvae.models.likelihood import AdditiveNoise

F, N, D = 10, 6, 12
FAMILIES = {"avae": {"audio": F}, "avcvae": {"audio": F, "lips": D}, "minvae": {"audio": F, "lips": D}}


def _setup(family):
    torch.manual_seed(0)
    model = build_model(family, input_dims=FAMILIES[family], latent_dim=3).eval()
    if model.is_mixture:
        with torch.no_grad():
            model.prior.loc.normal_()
            model.prior.log_var.copy_(torch.tensor([-0.5, 0.3]))
            model.prior.set_weights(torch.tensor([0.3, 0.7]))
    batch = {"audio": torch.rand(N, F) * 3}
    if "lips" in FAMILIES[family]:
        batch["lips"] = torch.rand(N, D)
    return model, batch


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_likelihood_potential_direct_equals_trace(family):
    model, batch = _setup(family)
    noise = AdditiveNoise(torch.randn(N, F).exp(), (0.3 * torch.randn(N)).exp())
    z = torch.randn(N, 3)
    with torch.no_grad():
        a, aux_a = LikelihoodPotential(model, batch, "direct")(z, noise)
        b, aux_b = LikelihoodPotential(model, batch, "trace")(z, noise)
        torch.testing.assert_close(a, b)
        torch.testing.assert_close(aux_a["speech_log_var"], aux_b["speech_log_var"])
        torch.testing.assert_close(aux_a["speech_log_var"], model.speech_log_var(z, batch))
        # leading sample dims in the direct path
        zs = torch.stack([z, z + 0.1])
        many, _ = LikelihoodPotential(model, batch, "direct")(zs, noise)
        torch.testing.assert_close(many[0], a)


@pytest.mark.parametrize("marginal", [False, True])
@pytest.mark.parametrize("gain", [False, True])
def test_expected_power_potential_direct_equals_trace(marginal, gain):
    model, batch = _setup("minvae")
    resp = torch.softmax(torch.randn(N, 2), -1)
    g = (0.2 * torch.randn(N)).exp() if gain else None
    z = torch.randn(N, 3)
    with torch.no_grad():
        a, _ = ExpectedPowerPotential(model, batch, "direct", marginal)(z, batch["audio"], g, resp)
        b, _ = ExpectedPowerPotential(model, batch, "trace", marginal)(z, batch["audio"], g, resp)
        torch.testing.assert_close(a, b)
        # oracle: the weighted prior is sum_m r_nm log N(z; mu_m, s_m I) (marginal: logsumexp with pi)
        comp = model.prior.component_log_prob(z)  # (M, N)
        prior = torch.logsumexp(model.prior.log_weights()[:, None] + comp, 0) if marginal else (resp.T * comp).sum(0)
        lv = model.decoder(z) + (g.log()[:, None] if gain else 0)
        lik = (-lv - batch["audio"] * torch.exp(-lv)).sum(-1)
        torch.testing.assert_close(a, lik + prior)


def test_weighted_potential_needs_responsibilities():
    model, batch = _setup("minvae")
    with pytest.raises(ValueError, match="responsibilities"):
        ExpectedPowerPotential(model, batch)(torch.randn(N, 3), batch["audio"])
    with pytest.raises(ValueError, match="scoring"):
        LikelihoodPotential(model, batch, "fancy")


def test_bound_decoder_equals_the_decoder_and_passes_gradients_to_z():
    model, batch = _setup("avcvae")
    cond = model.condition(batch).detach()
    z = torch.randn(N, 3, requires_grad=True)
    decode = model.decoder.bind(cond)
    torch.testing.assert_close(decode(z), model.decoder(z, cond))
    zs = torch.randn(2, N, 3)  # leading sample dims
    torch.testing.assert_close(decode(zs), model.decoder(zs, cond))
    decode(z).sum().backward()
    assert z.grad is not None and torch.isfinite(z.grad).all()
    with pytest.raises(ValueError, match="latents"):
        decode(torch.randn(N, 4))
