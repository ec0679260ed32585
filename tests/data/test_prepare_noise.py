"""Noise generators: spectral shape of white/pink noise, babble pool rules, ambience loading."""

from __future__ import annotations

import numpy as np
import pytest

from pyro_minvae.data.prepare.noise import (
    NoiseBank,
    babble,
    load_ambiences,
    pink_noise,
    transient_noise,
    white_noise,
)
from prepare_fakes import fake_packages


def _slope(x):
    f = np.fft.rfftfreq(x.size, 1 / 16000)
    p = np.abs(np.fft.rfft(x)) ** 2
    band = (f > 50) & (f < 7000)
    return np.polyfit(np.log(f[band]), np.log(p[band]), 1)[0]


def test_white_and_pink_spectra():
    rng = np.random.default_rng(0)
    assert abs(_slope(white_noise(16000 * 8, rng))) < 0.1
    pink = pink_noise(16000 * 8, rng)
    assert _slope(pink) == pytest.approx(-1.0, abs=0.1)
    assert np.mean(pink.astype(np.float64) ** 2) == pytest.approx(1.0, rel=1e-3)


def test_transient_noise_is_sparse_bursts_on_a_faint_floor():
    """Bursts shorter than an analysis frame at about 4 per second: most 10 ms frames sit on the floor, 25 dB below
    the bursts' mean power, and the loudest few hold most of the energy (a Gaussian noise has kurtosis 3)."""
    sr, seconds = 16000, 30
    x = transient_noise(sr * seconds, np.random.default_rng(1), sr).astype(np.float64)
    assert x.shape == (sr * seconds,) and np.mean(x**2) == pytest.approx(1.0, rel=1e-3)
    frames = (x.reshape(-1, 160) ** 2).mean(1)  # 10 ms frames
    floor_db = 10 * np.log10(np.median(frames) / frames.mean())
    assert -32 < floor_db < -12  # the median frame is floor
    loud = np.sort(frames)[::-1]
    assert loud[: len(loud) // 10].sum() > 0.7 * loud.sum()  # a tenth of the frames hold most of the energy
    assert np.mean(x**4) / np.mean(x**2) ** 2 > 10
    onsets = np.flatnonzero((frames[1:] > 30 * np.median(frames)) & (frames[:-1] <= 30 * np.median(frames)))
    assert 2.0 < len(onsets) / seconds < 5.0  # about 4 bursts per second (overlaps merge a few)


def test_synthetic_noise_is_seeded():
    bank = NoiseBank()
    for kind in ("pink", "transient"):
        a = bank.sample(kind, 16000, np.random.default_rng(5))
        b = bank.sample(kind, 16000, np.random.default_rng(5))
        np.testing.assert_array_equal(a, b)
    with pytest.raises(KeyError):
        bank.sample("jackhammer", 10, np.random.default_rng(0))


def test_babble_needs_four_speakers_and_has_unit_power():
    rng = np.random.default_rng(1)
    pool = {f"s{i}": [rng.standard_normal(8000) * (i + 1)] for i in range(5)}
    b = babble(16000, pool, rng)
    assert b.shape == (16000,)
    assert np.mean(b.astype(np.float64) ** 2) == pytest.approx(1.0, rel=1e-3)
    with pytest.raises(ValueError):
        NoiseBank().sample("babble", 100, rng, babble_pool={"a": [b], "b": [b]})


def test_ambiences_from_fake_lincity(tmp_path):
    pk = fake_packages(tmp_path, n_lang=1, clips_per_lang=1)
    bank = load_ambiences(pk["lincity-ng-data"])
    assert {"traffic", "crowd", "industry", "rail"} <= set(bank.ambiences)
    # two 2 s files at 11025 Hz -> one loop of about 4 s at 16 kHz
    assert bank.ambiences["traffic"].size == pytest.approx(4 * 16000, rel=0.03)
    assert bank.source("crowd")["files"] == [
        "usr/share/games/lincity-ng/sounds/MarketFull1.wav",
        "usr/share/games/lincity-ng/sounds/SportsCroud1.wav",
    ]
    seg = bank.sample("crowd", 16000 * 10, np.random.default_rng(0))
    assert seg.shape == (160000,) and np.isfinite(seg).all()
