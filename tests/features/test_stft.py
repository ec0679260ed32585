import numpy as np
import pytest
import torch

from pyro_minvae.features import FeatureConfig, istft, power, power_frames, stft
from pyro_minvae.features.stft import analysis_window, peak_normalise


@pytest.mark.parametrize("hop", [533, 256])
def test_perfect_reconstruction(hop):
    cfg = FeatureConfig(hop_length=hop)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(16000 + 123).astype(np.float32) * 0.1
    y = istft(stft(x, cfg), cfg, length=x.shape[0]).numpy()
    assert y.shape == x.shape
    np.testing.assert_allclose(y, x, atol=1e-5)


def test_paper_shapes():
    cfg = FeatureConfig()
    assert cfg.n_freq == 513
    assert abs(cfg.frame_rate - 30.02) < 0.01
    x = torch.zeros(160000)
    assert stft(x, cfg).shape == (513, 301)  # a 10 s clip gives 301 frames at hop 533
    assert cfg.n_frames(160000) == 301


def test_sine_window_matches_definition():
    cfg = FeatureConfig()
    w = analysis_window(cfg, dtype=torch.float64).numpy()
    n = np.arange(1024)
    np.testing.assert_allclose(w, np.sin(np.pi * (n + 0.5) / 1024))


def test_power_of_sinusoid_peaks_at_its_bin():
    cfg = FeatureConfig()
    t = np.arange(16000) / 16000
    x = np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    p = power_frames(x, cfg)
    assert p.shape == (cfg.n_frames(16000), 513)
    assert int(p[10].argmax()) == round(1000 * 1024 / 16000)
    assert torch.allclose(power(stft(x, cfg)).T, p)


def test_bad_input_shapes():
    cfg = FeatureConfig()
    with pytest.raises(ValueError, match="empty"):
        stft(torch.zeros(0), cfg)
    with pytest.raises(ValueError, match="shape"):
        stft(torch.zeros(2, 2, 100), cfg)
    with pytest.raises(ValueError):
        FeatureConfig(hop_length=2000)


def test_config_round_trip_and_unknown_keys():
    cfg = FeatureConfig(hop_length=256)
    assert FeatureConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown feature settings"):
        FeatureConfig.from_dict({"hop": 3})


def test_peak_normalise():
    y, s = peak_normalise(np.array([0.0, -0.25, 0.1], dtype=np.float32))
    assert np.max(np.abs(y)) == pytest.approx(1.0)
    assert s == pytest.approx(4.0)
    z, s0 = peak_normalise(np.zeros(4, dtype=np.float32))
    assert s0 == 1.0 and not np.any(z)


def test_tail_beyond_last_frame_is_zero_filled_without_warning():
    cfg = FeatureConfig()
    n = 533 * 30 + 530  # T mod hop > n_fft / 2: the last 18 samples lie beyond the last frame's support
    x = np.random.default_rng(1).standard_normal(n).astype(np.float32)
    y = istft(stft(x, cfg), cfg, length=n).numpy()  # warnings are errors in the suite
    covered = (cfg.n_frames(n) - 1) * cfg.hop_length + cfg.n_fft // 2
    assert y.shape == x.shape and covered == n - 18
    np.testing.assert_allclose(y[:covered], x[:covered], atol=1e-4)
    assert not np.any(y[covered:])
