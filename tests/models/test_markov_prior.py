"""The learned Markov prior (``PRIORS["markov"]``, family ``markov-vae``) against oracles: its per-frame terms
against torch's Normal frame by frame, its closed form against its traced program, its samples against the AR(1)
moments of an untrained prior, the fast E-step on coupled frames against the exact Gaussian posterior, and joint
training on contiguous segments."""

from __future__ import annotations

import pyro
import pytest
import torch
from torch.distributions import Normal

from pyro_minvae.checkpoint import load_model
from pyro_minvae.contracts import IncompatibleComponentError
from pyro_minvae.infer.mcem import mcem
from pyro_minvae.infer.vem import FrameGaussian, vem
from pyro_minvae.models.families import build_model
from pyro_minvae.models.markov_prior import MarkovPrior
from pyro_minvae.models.scoring import traced_prior_score
from pyro_minvae.registry import PRIORS
from pyro_minvae.training import TrainConfig, train
from pyro_minvae.training.objectives import OBJECTIVES

F, N, L = 17, 9, 4


def _perturbed_prior(latent_dim=L, hidden=(8,)) -> MarkovPrior:
    prior = MarkovPrior(latent_dim, hidden)
    with torch.no_grad():  # away from the zero initialisation of the shift and variance heads
        for p in prior.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return prior


def _reference_terms(prior: MarkovPrior, z: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
    """log p(z_n | z_{n-1}) frame by frame with torch's Normal: ``z (S, N, L) -> (S, N)``."""
    out = torch.zeros(z.shape[:-1])
    for n in range(z.shape[-2]):
        if starts[n]:
            out[:, n] = Normal(0.0, 1.0).log_prob(z[:, n]).sum(-1)
        else:
            loc, scale = prior.transition(z[:, n - 1])
            out[:, n] = Normal(loc, scale).log_prob(z[:, n]).sum(-1)
    return out


def test_markov_prior_is_registered_and_declares_coupled_frames():
    assert PRIORS.get("markov") is MarkovPrior
    assert MarkovPrior.frame_factorised is False
    model = build_model("markov-vae", input_dims={"audio": F}, latent_dim=L)
    assert isinstance(model.prior, MarkovPrior) and model.restart_starts is not None


@torch.no_grad()
def test_per_frame_terms_equal_a_frame_by_frame_reference_and_the_trace():
    prior = _perturbed_prior()
    z = torch.randn(3, N, L)
    one_chain = torch.zeros(N, dtype=torch.bool)
    one_chain[0] = True
    closed = prior.closed_form(N)(z)
    torch.testing.assert_close(closed, _reference_terms(prior, z, one_chain), atol=1e-5, rtol=0)
    traced = traced_prior_score(prior, {"audio": torch.rand(N, F)}, None)(z)
    torch.testing.assert_close(closed, traced, atol=1e-6, rtol=0)
    # segments: frames 0 and 4 start a chain, so frame 4 no longer depends on frame 3
    starts = torch.zeros(N, dtype=torch.bool)
    starts[[0, 4]] = True
    batch = {"audio": torch.rand(N, F), "segment_start": starts}
    traced = traced_prior_score(prior, batch, None)(z)
    torch.testing.assert_close(traced, _reference_terms(prior, z, starts), atol=1e-5, rtol=0)


@torch.no_grad()
def test_untrained_prior_samples_an_ar1_chain_with_the_right_moments():
    prior = MarkovPrior(latent_dim=2, init_coef=0.5)  # shift and log-variance heads start at 0: z_n = a z_{n-1} + e
    starts = torch.tensor([True, False, False, False, True, False])
    z = prior.chain(starts).sample((40_000,))  # (S, 6, 2)
    var = z.var(dim=0).mean(-1)
    expected = torch.tensor([1.0, 1.25, 1.3125, 1.328125, 1.0, 1.25])  # sum_k a^(2k) since each chain's start
    torch.testing.assert_close(var, expected, atol=0.04, rtol=0)
    lag1 = (z[:, 1:] * z[:, :-1]).mean(dim=0).mean(-1)
    torch.testing.assert_close(lag1[[0, 1, 2]], 0.5 * expected[[0, 1, 2]], atol=0.03, rtol=0)
    assert lag1[3].abs() < 0.03  # frame 4 starts a new chain: independent of frame 3


def test_a_chain_cannot_be_expanded_to_other_frames():
    chain = MarkovPrior(latent_dim=2).chain(torch.tensor([True, False]))
    assert chain.expand(torch.Size([2])) is chain
    with pytest.raises(ValueError, match="cannot be expanded"):
        chain.expand(torch.Size([3]))


def test_a_malformed_segment_mask_is_refused():
    prior = MarkovPrior(latent_dim=L)
    with pytest.raises(ValueError, match="segment_start"):
        prior({"audio": torch.rand(N, F), "segment_start": torch.ones(N - 1, dtype=torch.bool)})


# ---- the fast E-step on coupled frames -------------------------------------------------------------------------
A, S2 = 0.8, 0.5  # AR(1) coefficient (stationary variance 1) and the Gaussian likelihood's variance
Y = torch.tensor([1.0, -0.5, 2.0, 0.0, 1.5, -1.0], dtype=torch.float64)


def _ar1_potential(z):
    """Per-frame terms of a stationary AR(1) chain and a Gaussian likelihood: ``z (S, 6, 1) -> (S, 6)``."""
    x = z[..., 0]
    prev = torch.cat([torch.zeros_like(x[..., :1]), x[..., :-1]], dim=-1)
    var = torch.full((len(Y),), 1 - A * A, dtype=z.dtype)
    var[0] = 1.0
    prior = -0.5 * (x - A * prev).square() / var
    return prior - 0.5 * (x - Y).square() / S2, {}


def test_fast_e_step_reaches_the_exact_posterior_mean_of_coupled_frames():
    """Mean-field Gaussian VI on a Gaussian target recovers its exact mean and the inverse diagonal of its
    precision; the fast E-step's q, ascending the sum of coupled per-frame terms, must find both."""
    n = len(Y)
    prec = torch.zeros(n, n, dtype=torch.float64)
    prec[0, 0] = 1.0
    for k in range(1, n):
        b = torch.zeros(n, dtype=torch.float64)
        b[k], b[k - 1] = 1.0, -A
        prec += torch.outer(b, b) / (1 - A * A)
    prec += torch.eye(n, dtype=torch.float64) / S2
    mean = torch.linalg.solve(prec, Y / S2)
    q = FrameGaussian(torch.zeros(n, 1, dtype=torch.float64), init_scale=0.5)
    gen = torch.Generator().manual_seed(0)
    for lr in (0.05, 0.005, 0.001):  # smaller and smaller steps, so that the stochastic gradient's jitter settles
        q._adam.lr = lr
        q.refine(_ar1_potential, 1500, 64, gen)
    torch.testing.assert_close(q.loc[:, 0], mean, atol=0.02, rtol=0)
    torch.testing.assert_close(q.scale[:, 0].square(), 1 / prec.diagonal(), atol=0.02, rtol=0)


def test_markov_vae_enhances_with_the_fast_e_step_and_the_odd_even_kernel_only():
    model = build_model("markov-vae", input_dims={"audio": F}, latent_dim=L)
    spec = torch.randn(F, N, dtype=torch.complex64, generator=torch.Generator().manual_seed(0))
    res = vem(model, spec, iterations=2, restarts=1)
    assert torch.isfinite(torch.view_as_real(res.estimate)).all()
    res = mcem(
        model, spec, iterations=2, mh_steps=4, burn_in=1, final_mh_steps=4, final_burn_in=1, kernel="odd-even-mh"
    )
    assert torch.isfinite(torch.view_as_real(res.estimate)).all()
    with pytest.raises(IncompatibleComponentError, match="couples frames"):
        mcem(model, spec, iterations=1)


# ---- segments of the training data ------------------------------------------------------------------------------
def test_segment_batches_cover_every_frame_once_in_contiguous_runs_of_one_utterance(datasets):
    train_ds, _ = datasets
    batches = train_ds.segment_batches(20, 6, torch.Generator().manual_seed(0))
    frames = torch.cat(batches)
    assert torch.equal(frames.sort().values, torch.arange(len(train_ds)))
    utterance = train_ds.utterance_of_frame()
    for idx in batches:
        assert idx.numel() <= 18  # 3 segments of at most 6 frames
        starts = train_ds.segment_starts(idx)
        assert bool(starts[0])
        cuts = torch.nonzero(starts).flatten().tolist() + [idx.numel()]
        for a, b in zip(cuts[:-1], cuts[1:]):
            run = idx[a:b]  # one segment, or consecutive segments the shuffle happened to put in order
            assert torch.equal(run, torch.arange(int(run[0]), int(run[0]) + run.numel()))
            assert (utterance[run] == utterance[run[0]]).all()
    assert not torch.equal(frames, torch.arange(len(train_ds)))  # shuffled


def test_segment_starts_mark_utterance_starts_and_jumps(datasets):
    train_ds, _ = datasets
    u1 = int(train_ds.offsets[1])
    idx = torch.tensor([u1 - 2, u1 - 1, u1, u1 + 1, 0, 1])
    assert train_ds.segment_starts(idx).tolist() == [True, False, True, False, True, False]
    batch = train_ds.batch(slice(u1 - 1, u1 + 1), segments=True)
    assert batch["segment_start"].tolist() == [True, True]
    assert "segment_start" not in train_ds.batch(idx)


def test_markov_vae_trains_on_segments_and_its_checkpoint_enhances(datasets, tmp_path, monkeypatch):
    train_ds, valid_ds = datasets
    seen = []
    elbo = OBJECTIVES.get("elbo")
    original = elbo.loss

    def recording_loss(self, model, batch, index):
        seen.append((index.clone(), batch["segment_start"].clone()))
        return original(self, model, batch, index)

    monkeypatch.setattr(elbo, "loss", recording_loss)
    cfg = TrainConfig(family="markov-vae", latent_dim=L, epochs=3, batch_size=24, lr=1e-2, seed=1, segment_frames=8)
    res = train(cfg, train_ds, valid_ds, tmp_path / "run", progress=False)
    assert res.history[-1]["valid_elbo"] > res.history[0]["valid_elbo"]
    idx, starts = seen[0]
    assert torch.equal(starts, train_ds.segment_starts(idx)) and starts.sum() >= 2  # several segments per batch
    assert not torch.equal(starts, torch.ones_like(starts))  # not shuffled frames
    pyro.clear_param_store()
    model, _, meta = load_model(tmp_path / "run" / "best.pt")
    assert meta["train_config"]["segment_frames"] == 8
    assert isinstance(model.prior, MarkovPrior)
    assert not torch.allclose(model.prior.coef, torch.full((L,), 0.5))  # the prior was trained jointly
    spec = torch.randn(train_ds.audio.shape[1], 12, dtype=torch.complex64)
    out = vem(model, spec, iterations=2, restarts=1)
    assert torch.isfinite(torch.view_as_real(out.estimate)).all()
