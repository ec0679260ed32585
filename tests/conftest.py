"""Shared test set-up: an isolated cache directory, seeded RNGs, few torch threads; the tiny fake corpus of
tests/models/fake_corpus.py (session-scoped) and its frame datasets."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("PYRO_MINVAE_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(autouse=True)
def _seeded():
    import pyro

    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    np.random.seed(0)
    yield
    pyro.clear_param_store()


@pytest.fixture(scope="session")
def fake_manifest(tmp_path_factory) -> Path:
    sys.path.insert(0, str(Path(__file__).parent / "models"))
    from fake_corpus import make_fake_corpus

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


def pytest_configure(config):
    torch.set_num_threads(min(2, os.cpu_count() or 1))
