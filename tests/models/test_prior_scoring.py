"""Prior scoring for enhancement: each shipped prior's closed form equals its traced Pyro program; a prior with no
closed form (a mixture of Gaussian mixtures) enhances through the trace; coupled-frame priors are refused."""

import pyro
import pyro.distributions as dist
import pytest
import torch

from pyro_minvae.contracts import IncompatibleComponentError, MixturePrior, Prior
from pyro_minvae.infer.estep_common import model_batch
from pyro_minvae.infer.mcem import mcem
from pyro_minvae.infer.potentials import ExpectedPowerPotential, LikelihoodPotential
from pyro_minvae.infer.vem import vem
from pyro_minvae.models.families import build_model
from pyro_minvae.models.likelihood import AdditiveNoise
from pyro_minvae.models.priors import MixtureGaussianPrior
from pyro_minvae.models.scoring import traced_prior_score

F, N, L = 17, 6, 4


def _models():
    torch.manual_seed(0)
    avae = build_model("avae", input_dims={"audio": F}, latent_dim=L)
    avcvae = build_model("avcvae", input_dims={"audio": F, "lips": 9}, latent_dim=L, embedding_dim=5)
    minvae = build_model("minvae", input_dims={"audio": F, "lips": 9}, latent_dim=L)
    with torch.no_grad():
        minvae.prior.loc.normal_()
        minvae.prior.log_var.normal_(0, 0.3)
    return {"avae": avae, "avcvae": avcvae, "minvae": minvae}


@pytest.mark.parametrize("family", ["avae", "avcvae", "minvae"])
def test_closed_form_equals_traced_program(family):
    model = _models()[family].double()
    batch = {"audio": torch.rand(N, F, dtype=torch.float64), "lips": torch.rand(N, 9, dtype=torch.float64)}
    cond = model.condition(batch)
    closed = model.prior.closed_form(N, cond)
    traced = traced_prior_score(model.prior, batch, cond)
    assert closed is not None
    for shape in ((N, L), (3, N, L)):
        z = torch.randn(shape, dtype=torch.float64)
        torch.testing.assert_close(closed(z), traced(z), rtol=1e-12, atol=1e-12)


class MoGComponents(MixtureGaussianPrior):
    """Each component a 2-mode Gaussian mixture: no closed form offered (forward/component_log_prob overridden)."""

    def __init__(self, components=("audio", "lips"), latent_dim=L, learn_weights=False):
        super().__init__(components, latent_dim, learn_weights)
        self.loc = torch.nn.Parameter(torch.randn(2, 2, latent_dim))
        self.log_var = torch.nn.Parameter(0.2 * torch.randn(2, 2))
        self.mode_logits = torch.nn.Parameter(torch.randn(2, 2))

    def _mixture(self, index=slice(None)):
        scale = torch.exp(0.5 * self.log_var[index]).unsqueeze(-1).expand(self.loc[index].shape)
        return dist.MixtureSameFamily(
            dist.Categorical(logits=self.mode_logits[index]), dist.Normal(self.loc[index], scale).to_event(1)
        )

    def component_log_prob(self, z):
        return self._mixture().log_prob(z.unsqueeze(-2)).movedim(-1, 0)

    def component_means(self):
        return (torch.softmax(self.mode_logits, -1).unsqueeze(-1) * self.loc).sum(-2)

    def forward(self, batch, cond=None):
        c = pyro.sample("c", dist.Categorical(logits=self.log_weights()), infer={"enumerate": "parallel"})
        return pyro.sample("z", self._mixture(c))


def _mog_model():
    torch.manual_seed(1)
    model = build_model("minvae", input_dims={"audio": F, "lips": 9}, latent_dim=L)
    model.prior = MoGComponents()
    return model


def test_prior_without_closed_form_is_scored_by_its_trace():
    model = _mog_model()
    assert model.prior.closed_form(N) is None
    spec = torch.randn(F, N, dtype=torch.complex64)
    batch = model_batch(model, spec, {"lips": torch.rand(N, 9)}, torch.float32)
    z = torch.randn(N, L)
    noise = AdditiveNoise(torch.rand(N, F) + 0.1, torch.ones(N))
    direct = LikelihoodPotential(model, batch, "direct")
    whole = LikelihoodPotential(model, batch, "trace")  # the whole model traced: an independent path
    torch.testing.assert_close(direct(z, noise)[0], whole(z, noise)[0], rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(direct.component_log_prob(z), model.prior.component_log_prob(z))
    exp_direct = ExpectedPowerPotential(model, batch, "direct", marginal=True)
    exp_trace = ExpectedPowerPotential(model, batch, "trace", marginal=True)
    torch.testing.assert_close(exp_direct(z, batch["audio"])[0], exp_trace(z, batch["audio"])[0], rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(
    "estep,opts",
    [
        (mcem, dict(iterations=2, mh_steps=3, burn_in=1, final_mh_steps=3, final_burn_in=1)),
        (mcem, dict(iterations=2, mh_steps=3, burn_in=1, loop="minvae")),
        (mcem, dict(iterations=2, mh_steps=6, burn_in=1, final_mh_steps=3, final_burn_in=1, kernel="frame-mh-jump")),
        (vem, dict(iterations=2)),
    ],
)
def test_mog_prior_enhances(estep, opts):
    model = _mog_model()
    spec = torch.randn(F, N, dtype=torch.complex64)
    res = estep(model, spec, {"lips": torch.rand(N, 9)}, seed=0, **opts)
    assert torch.isfinite(torch.view_as_real(res.estimate)).all()
    assert res.responsibilities.shape == (N, 2)


class MarkovPrior(Prior):
    """z_n ~ N(z_{n-1}, I): its frames are coupled (declared), so frame-wise MCEM must refuse it (the fast E-step
    enhances such priors: tests/models/test_markov_prior.py)."""

    frame_factorised = False

    def __init__(self, latent_dim=L):
        super().__init__()
        self.latent_dim = latent_dim

    def forward(self, batch, cond=None):  # pragma: no cover - never run by these tests
        raise NotImplementedError


def test_coupled_frame_prior_is_refused_by_frame_wise_mcem_with_one_line():
    model = build_model("avae", input_dims={"audio": F}, latent_dim=L)
    model.prior = MarkovPrior()
    with pytest.raises(IncompatibleComponentError, match="couples frames") as info:
        mcem(model, torch.randn(F, N, dtype=torch.complex64), iterations=1)
    assert "\n" not in str(info.value)


def test_mixture_kernel_on_a_plain_prior_is_refused():
    model = build_model("avae", input_dims={"audio": F}, latent_dim=L)
    assert not isinstance(model.prior, MixturePrior)
    with pytest.raises(IncompatibleComponentError, match="needs a mixture prior"):
        mcem(model, torch.randn(F, N, dtype=torch.complex64), iterations=1, kernel="frame-mh-jump")
