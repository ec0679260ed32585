"""Shared test set-up: an isolated cache directory, seeded RNGs, few torch threads."""

from __future__ import annotations

import os

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


def pytest_configure(config):
    torch.set_num_threads(min(2, os.cpu_count() or 1))
