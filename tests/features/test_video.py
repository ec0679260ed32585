import numpy as np
import pytest

from pyro_minvae.errors import UserInputError
from pyro_minvae.features import FeatureConfig
from pyro_minvae.features.video import align_to_stft, check_duration, landmarks_to_features, lips_to_features


def test_align_one_to_one_at_paper_hop():
    cfg = FeatureConfig()
    frames = np.arange(90)
    out = align_to_stft(frames, 90, cfg)
    # hop 533 at 16 kHz is 30.02 frames/s: nearly the identity, never ahead of the video
    assert (out <= np.arange(90)).all() and (np.arange(90) - out <= 1).all()


def test_align_resamples_when_hop_differs_and_repeats_last_frame():
    cfg = FeatureConfig(hop_length=256)  # 62.5 STFT frames per second
    frames = np.arange(30)  # one second of video
    out = align_to_stft(frames, cfg.n_frames(16000 + 4000), cfg)
    assert out[0] == 0 and out[1] == 0  # two STFT frames per video frame
    assert out[-1] == 29  # past the end: last frame repeated
    t = np.arange(out.shape[0]) * 256 / 16000
    np.testing.assert_array_equal(out, np.minimum(np.floor(t * 30 + 1e-9), 29))


def test_check_duration_tolerates_small_offsets_and_rejects_large():
    cfg = FeatureConfig()
    check_duration(31, 16000, cfg)  # 1.033 s vs 1 s
    with pytest.raises(UserInputError, match="frames at 30 fps"):
        check_duration(60, 16000, cfg, source="lips.npy")


def test_lip_and_landmark_features():
    lips = (np.random.default_rng(0).random((5, 67, 67)) * 255).astype(np.uint8)
    f = lips_to_features(lips)
    assert f.shape == (5, 4489) and f.dtype == np.float32 and 0 <= f.min() and f.max() <= 1
    with pytest.raises(ValueError, match="NaN"):
        lips_to_features(np.full((2, 67, 67), np.nan, dtype=np.float32))
    lm = np.random.default_rng(1).random((5, 20, 2)).astype(np.float32) * 60
    g = landmarks_to_features(lm)
    assert g.shape == (5, 40) and abs(g.mean()) < 1e-5
