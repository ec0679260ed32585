"""PowerSpectrum, the project's one likelihood, against the exponential-distribution oracle (torch's Exponential
and scipy.stats.expon): log-densities in both parameterisations, the log-variance clamp, sampling moments and
a Kolmogorov-Smirnov test, expand, and argument checks."""

from __future__ import annotations

import pytest
import torch
from scipy import stats
from torch.distributions import Exponential

from pyro_minvae.models.likelihood import LOG_VAR_MAX, LOG_VAR_MIN, PowerSpectrum


@pytest.fixture
def grid():
    g = torch.Generator().manual_seed(0)
    v = torch.rand(4, 7, generator=g, dtype=torch.float64) * 5 + 0.01
    p = torch.rand(4, 7, generator=g, dtype=torch.float64) * 10
    return v, p


def test_log_prob_equals_the_exponential_density_in_both_parameterisations(grid):
    v, p = grid
    oracle = Exponential(rate=1.0 / v).log_prob(p)
    torch.testing.assert_close(PowerSpectrum(v.log()).log_prob(p), oracle)
    torch.testing.assert_close(PowerSpectrum(variance=v).log_prob(p), oracle)
    assert torch.allclose(PowerSpectrum(variance=v).mean, v) and torch.allclose(PowerSpectrum(v.log()).mean, v)
    torch.testing.assert_close(PowerSpectrum(v.log()).variance, v.square())


def test_log_variance_is_clamped_to_the_safe_range():
    lv = torch.tensor([-100.0, 0.0, 100.0], dtype=torch.float64)
    d = PowerSpectrum(lv)
    assert d.log_var.tolist() == [LOG_VAR_MIN, 0.0, LOG_VAR_MAX]
    p = torch.tensor([1e-20, 1.0, 1e20], dtype=torch.float64)
    oracle = Exponential(rate=torch.exp(-d.log_var)).log_prob(p)
    torch.testing.assert_close(d.log_prob(p), oracle)
    assert torch.isfinite(d.log_prob(p)).all()


def test_samples_follow_the_exponential_law():
    torch.manual_seed(1)
    v = torch.tensor([0.5, 2.0, 30.0], dtype=torch.float64)
    for d in (PowerSpectrum(v.log()), PowerSpectrum(variance=v)):
        x = d.sample((40000,))
        assert x.shape == (40000, 3) and (x >= 0).all()
        torch.testing.assert_close(x.mean(0), v, rtol=0.03, atol=0)  # SE of the mean: v / 200
        torch.testing.assert_close(x.var(0), v.square(), rtol=0.08, atol=0)
        for k in range(3):  # the whole law, not only two moments
            assert stats.kstest(x[:, k].numpy(), stats.expon(scale=float(v[k])).cdf).pvalue > 1e-3


def test_expand_keeps_both_parameterisations(grid):
    v, p = grid
    for d in (PowerSpectrum(v[:1].log()), PowerSpectrum(variance=v[:1])):
        e = d.expand(torch.Size([4, 7]))
        assert e.batch_shape == (4, 7) and e.event_shape == ()
        torch.testing.assert_close(e.log_prob(p), Exponential(rate=1.0 / v[:1].expand(4, 7)).log_prob(p))
        assert e.sample((3,)).shape == (3, 4, 7)
    assert PowerSpectrum(v.log()).to_event(1).log_prob(p).shape == (4,)


def test_arguments_and_support_are_checked(grid):
    v, _ = grid
    with pytest.raises(ValueError, match="exactly one"):
        PowerSpectrum()
    with pytest.raises(ValueError, match="exactly one"):
        PowerSpectrum(v.log(), variance=v)
    with pytest.raises(ValueError):
        PowerSpectrum(v.log(), validate_args=True).log_prob(-torch.ones_like(v))
