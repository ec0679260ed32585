"""`prepare demo --mouth-style`: the style reaches the renderer, names a different corpus, and leaves the
hash of corpora prepared before the option existed (classic style) unchanged."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pickle

import numpy as np

from pyro_minvae.data.prepare.demo import VALIDATION_SET_FIELDS, DemoConfig, default_backend
from pyro_minvae.visual.align import PhoneSegment


def test_classic_digest_is_the_one_from_before_the_option():
    cfg = DemoConfig()
    d = {
        k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("workers", "mouth_style") + VALIDATION_SET_FIELDS
    }
    assert cfg.digest() == hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]
    assert DemoConfig(mouth_style="ntcd").digest() != cfg.digest()


def test_backend_renders_the_chosen_style_and_pickles_for_workers():
    phones = [PhoneSegment("SIL", 0.0, 0.2), PhoneSegment("AA", 0.2, 0.6)]
    out = {}
    for style in ("classic", "ntcd"):
        backend = pickle.loads(pickle.dumps(default_backend(style)))
        frames, lm = backend.render(phones, 18, 7, 3, 30.0, 67)
        assert frames.shape == (18, 67, 67) and frames.dtype == np.uint8
        out[style] = lm
    width = {s: np.abs(lm[:, 6, 0] - lm[:, 0, 0]).mean() for s, lm in out.items()}
    assert width["ntcd"] > width["classic"]
