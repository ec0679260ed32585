"""Visual degradations for the robustness experiments."""

from __future__ import annotations

import numpy as np
import pytest

from pyro_minvae.errors import UserInputError
from pyro_minvae.evaluation.degrade import VIDEO_DEGRADATIONS, parse_degradation


@pytest.fixture
def video():
    rng = np.random.default_rng(0)
    n = 300
    lips = np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None], (n, 67, 67)).copy()  # frame k is all k%256
    lm = rng.normal(30, 5, size=(n, 8, 2)).astype(np.float32)
    return {"lips": lips, "landmarks": lm, "fps": 30.0}


def test_drop_freezes_the_last_received_frame(video):
    out = parse_degradation("drop:0.5")(video, np.random.default_rng(1))
    shown = out["lips"][:, 0, 0].astype(int)
    assert out["lips"].shape == video["lips"].shape and out["landmarks"].shape == video["landmarks"].shape
    assert np.all(np.diff(shown[:256]) >= 0) and shown[0] == 0  # never shows a future frame (first 256 frames)
    frac_lost = np.mean(shown[:256] != np.arange(256))
    assert 0.4 < frac_lost < 0.6
    # landmarks frozen on the same frames as the lips
    src = shown[:256]
    np.testing.assert_array_equal(out["landmarks"][:256], video["landmarks"][src])
    assert parse_degradation("drop:0")(video, np.random.default_rng(1))["lips"].tobytes() == video["lips"].tobytes()


def test_shift_delays_the_video(video):
    out = parse_degradation("shift:3")(video, np.random.default_rng(0))
    np.testing.assert_array_equal(out["lips"][3:], video["lips"][:-3])
    np.testing.assert_array_equal(out["lips"][:3], np.repeat(video["lips"][:1], 3, axis=0))
    back = parse_degradation("shift:-3")(video, np.random.default_rng(0))
    np.testing.assert_array_equal(back["landmarks"][:-3], video["landmarks"][3:])


def test_occlusion_hides_a_fixed_patch(video):
    out = parse_degradation("occlude:0.25")(video, np.random.default_rng(2))
    changed = (out["lips"] != video["lips"]).any(axis=0) | (out["lips"] == 128).all(axis=0)
    assert (out["lips"][:, changed] == 128).all()
    assert changed.sum() == pytest.approx(0.25 * 67 * 67, rel=0.1)
    np.testing.assert_array_equal(out["landmarks"], video["landmarks"])


def test_sensor_noise_has_the_requested_spread(video):
    v = dict(video, lips=np.full_like(video["lips"], 100))
    out = parse_degradation("noise:20")(v, np.random.default_rng(3))
    assert out["lips"].dtype == np.uint8
    assert np.std(out["lips"].astype(float) - 100) == pytest.approx(20, rel=0.05)
    assert np.std(out["landmarks"] - v["landmarks"]) == pytest.approx(2.0, rel=0.05)
    assert v["lips"].max() == 100  # input untouched


@pytest.mark.parametrize(
    "spec, msg",
    [
        ("blur:1", "NAME one of drop, noise, occlude, shift"),
        ("drop", "NAME:VALUE"),
        ("drop:1.5", "drop probability"),
        ("shift:1.5", "whole number"),
    ],
)
def test_bad_specs_are_user_errors(spec, msg):
    with pytest.raises(UserInputError, match=msg):
        parse_degradation(spec)


def test_all_registered():
    assert VIDEO_DEGRADATIONS.names() == ["drop", "noise", "occlude", "shift"]
    assert parse_degradation(None) is None and parse_degradation("none") is None
