"""Tests for the classical baselines (identity, spectral gating, oracle Wiener)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from eval_synth import SR, make_noise, make_speech, mix
from pyro_minvae import metrics as M
from pyro_minvae.baselines import Enhancer
from pyro_minvae.registry import BASELINES

NAMES = ("noisy", "spectral-gating", "spectral-gating-stationary", "wiener-oracle")


@pytest.fixture(scope="module")
def pair():
    s = make_speech()
    return s, mix(s, make_noise(s.size, "pink"), 0.0)


def test_all_registered_and_picklable():
    for name in NAMES:
        m = BASELINES.build(name)
        assert isinstance(m, Enhancer)
        assert repr(pickle.loads(pickle.dumps(m))) == repr(m)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("length", [SR * 2, SR * 2 - 123, 7001])
def test_exact_output_length_and_dtype(pair, name, length):
    s, x = pair
    y = BASELINES.build(name)(x[:length], SR, clean=s[:length])
    assert y.shape == (length,) and y.dtype == np.float32 and np.isfinite(y).all()


def test_noisy_is_identity(pair):
    _, x = pair
    y = BASELINES.build("noisy")(x, SR)
    np.testing.assert_array_equal(y, x)
    assert y is not x


def test_oracle_wiener_is_exact_on_clean_input_and_an_upper_bound(pair):
    s, x = pair
    w = BASELINES.build("wiener-oracle")
    # with no noise the mask is 1 everywhere and the STFT round trip is perfect
    np.testing.assert_allclose(w(s, SR, clean=s), s, atol=1e-5)
    # with noise, it beats the input and the blind baselines by a wide margin
    scores = {n: M.si_sdr(s, BASELINES.build(n)(x, SR, clean=s), SR) for n in NAMES}
    assert scores["wiener-oracle"] > scores["noisy"] + 8
    assert scores["wiener-oracle"] > max(scores["spectral-gating"], scores["spectral-gating-stationary"]) + 5


def test_oracle_wiener_requires_clean(pair):
    _, x = pair
    with pytest.raises(ValueError, match="clean reference"):
        BASELINES.build("wiener-oracle")(x, SR)


@pytest.mark.parametrize("name", ["spectral-gating", "spectral-gating-stationary"])
def test_spectral_gating_improves_si_sdr_on_stationary_noise(name):
    s = make_speech()
    x = mix(s, make_noise(s.size, "white"), 0.0)
    y = BASELINES.build(name)(x, SR, seed=0)
    assert M.si_sdr(s, y, SR) > M.si_sdr(s, x, SR) + 1.0
    # removing noise lowers the energy in the speech pauses (first 0.1 s is silence in make_speech)
    assert np.std(y[: SR // 20]) < 0.5 * np.std(x[: SR // 20])


def test_input_validation():
    m = BASELINES.build("noisy")
    with pytest.raises(ValueError, match="1-D"):
        m(np.zeros((2, 100), np.float32), SR)
    with pytest.raises(ValueError, match="NaN"):
        m(np.array([0.0, np.nan], np.float32), SR)
    with pytest.raises(ValueError, match="prop_decrease"):
        BASELINES.build("spectral-gating", prop_decrease=2.0)
