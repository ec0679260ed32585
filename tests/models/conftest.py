"""Fixtures for the model/training tests: a tiny fake corpus (module-scoped) and its frame datasets."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fake_corpus import make_fake_corpus  # noqa: E402


@pytest.fixture(scope="session")
def fake_manifest(tmp_path_factory) -> Path:
    return make_fake_corpus(tmp_path_factory.mktemp("fake_corpus"))


@pytest.fixture
def datasets(fake_manifest):
    """(train, valid) FrameDatasets with audio, lips and landmarks."""
    from pyro_minvae.data.datasets import FrameDataset

    mods = ("audio", "lips", "landmarks")
    return (
        FrameDataset.from_manifest(fake_manifest, "train", mods),
        FrameDataset.from_manifest(fake_manifest, "valid", mods),
    )
