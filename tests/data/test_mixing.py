"""Mixing at a target SNR: oracle checks of the SNR definition, the no-clipping gain and determinism."""

from __future__ import annotations

import numpy as np
import pytest

from pyro_minvae.data.mixing import active_speech_power, mix, noise_segment, snr_db

SR = 16000


def _speech_with_pauses(rng):
    x = np.zeros(SR * 3)
    x[SR // 2 : SR] = 0.3 * rng.standard_normal(SR // 2)
    x[2 * SR : 2 * SR + SR // 2] = 0.3 * rng.standard_normal(SR // 2)
    return x


def test_active_power_ignores_pauses():
    rng = np.random.default_rng(0)
    x = _speech_with_pauses(rng)
    voiced = np.concatenate([x[SR // 2 : SR], x[2 * SR : 2 * SR + SR // 2]])
    assert active_speech_power(x, SR) == pytest.approx(np.mean(voiced**2), rel=0.02)
    # plain mean power counts the pauses and is three times smaller
    assert np.mean(x**2) < 0.4 * active_speech_power(x, SR)
    assert active_speech_power(np.zeros(SR), SR) == 0.0


@pytest.mark.parametrize("snr", [-10, -5, 0, 5, 10])
def test_mix_hits_target_snr_and_never_clips(snr):
    rng = np.random.default_rng(snr + 20)
    clean = _speech_with_pauses(rng)
    noise = rng.standard_normal(clean.size) * 3.0  # loud noise: forces a gain below one at low SNR
    m = mix(clean, noise, snr, SR)
    assert np.abs(m.mixture).max() <= 0.99 + 1e-6
    # oracle: the SNR of (reference, mixture - reference) equals the target
    assert snr_db(m.reference.astype(np.float64), (m.mixture - m.reference).astype(np.float64), SR) == pytest.approx(
        snr, abs=0.01
    )
    # the recorded gain explains the scaling of the reference
    np.testing.assert_allclose(m.reference, m.gain * clean, atol=1e-6)
    np.testing.assert_allclose(m.mixture, m.reference + m.noise, atol=1e-6)
    assert 0 < m.gain <= 1


def test_quiet_mix_keeps_gain_one():
    rng = np.random.default_rng(3)
    clean = 0.05 * _speech_with_pauses(rng)
    m = mix(clean, rng.standard_normal(clean.size), 10, SR)
    assert m.gain == 1.0
    np.testing.assert_allclose(m.reference, clean, atol=1e-7)


def test_mix_rejects_bad_shapes_and_silence():
    with pytest.raises(ValueError):
        mix(np.ones(10), np.ones(11), 0, SR)
    with pytest.raises(ValueError):
        mix(np.zeros(SR), np.ones(SR), 0, SR)


def test_noise_segment_is_seeded_and_loops():
    noise = np.arange(100, dtype=np.float32)
    a = noise_segment(noise, 250, np.random.default_rng(1))
    b = noise_segment(noise, 250, np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (250,)
    assert set(np.unique(a)) <= set(noise)
    assert np.all((np.diff(a) == 1) | (np.diff(a) == -99))  # contiguous with wrap-around
