"""Lips-informativeness figure: the statistics against numpy/brute-force oracles, and the whole figure on a
stand-in model whose 'lips encoder' reads the speech energy off the mouth brightness (an informative mouth),
against the same model on lips that carry nothing."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from pyro_minvae.evaluation.lips_informativeness import lips_figure, pearson, rank_auc, summarise
from pyro_minvae.features.config import FeatureConfig
from pyro_minvae.features.stft import peak_normalise, power_frames

REAL_AV = Path(__file__).resolve().parents[3] / "shared" / "real_av"


def test_pearson_matches_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=50), rng.normal(size=50)
    b = b + 0.7 * a
    assert pearson(a, b) == pytest.approx(np.corrcoef(a, b)[0, 1], abs=1e-12)
    assert math.isnan(pearson(np.ones(5), a[:5]))


def test_rank_auc_matches_pairwise_count_with_ties():
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 6, size=40).astype(float)  # many ties
    labels = rng.random(40) < 0.4
    pairs = [(1.0 if p > n else 0.5 if p == n else 0.0) for p, n in itertools.product(scores[labels], scores[~labels])]
    assert rank_auc(scores, labels) == pytest.approx(np.mean(pairs), abs=1e-12)
    assert math.isnan(rank_auc(scores, np.ones(40, bool)))


class BrightnessModel(torch.nn.Module):
    """Stand-in for a checkpoint: z = mean brightness of the mouth, sigma^2(z) = z on every bin."""

    modalities = ["audio", "lips"]
    is_mixture = False

    def init_latents(self, batch, prefer=None):
        assert prefer == "lips"
        return batch["lips"].mean(-1, keepdim=True)

    def speech_log_var(self, z, batch):
        return torch.log(z + 1e-4).expand(-1, batch["audio"].shape[-1])


def _speech_and_lips(cfg: FeatureConfig, informative: bool):
    rng = np.random.default_rng(2)
    sr, n = cfg.sample_rate, cfg.sample_rate * 3
    t = np.arange(n) / sr
    edges = np.cumsum(rng.uniform(0.1, 0.5, size=20))  # speech on/off in random 0.1-0.5 s segments
    bursts = (np.searchsorted(edges, t) % 2).astype(np.float64)
    wave = (bursts * np.sin(2 * np.pi * 220 * t) + 0.003 * rng.normal(size=n)).astype(np.float32)
    n_video = int(3 * 30)
    if informative:  # the mouth is bright exactly when the speech energy is high
        energy = power_frames(peak_normalise(wave)[0], cfg).mean(-1).numpy()
        idx = np.clip((np.arange(n_video) / 30 * sr / cfg.hop_length).astype(int), 0, len(energy) - 1)
        level = energy[idx] / energy.max()
    else:
        level = rng.random(n_video)
    frames = np.repeat((level * 255).astype(np.uint8)[:, None, None], 67, 1).repeat(67, 2)
    return wave, frames


def test_informative_lips_score_high_and_uninformative_near_chance():
    cfg = FeatureConfig()
    model = BrightnessModel()
    wave, lips = _speech_and_lips(cfg, informative=True)
    good = lips_figure(model, cfg, wave, lips, fps=30.0)
    assert good.r > 0.8 and good.auc > 0.9
    assert good.r_shifted < 0.3
    assert math.isnan(good.lips_responsibility)
    wave, lips = _speech_and_lips(cfg, informative=False)
    bad = lips_figure(model, cfg, wave, lips, fps=30.0)
    assert abs(bad.r) < 0.3 and 0.3 < bad.auc < 0.7
    s = summarise([good, bad])
    assert s["n"] == 2 and s["r"]["mean"] == pytest.approx((good.r + bad.r) / 2)


@pytest.mark.skipif(not (REAL_AV / "ntcd_av_dkf" / "lips.npy").exists(), reason="../shared/real_av not present")
def test_real_ntcd_clip_runs_through_a_mixture_model():
    from pyro_minvae.audio_io import load_audio
    from pyro_minvae.data.prepare.lips import load_lips
    from pyro_minvae.models import build_model

    torch.manual_seed(0)
    cfg = FeatureConfig()
    model = build_model("minvae", input_dims={"audio": cfg.n_freq, "lips": 67 * 67}, encoders=["audio", "lips"])
    clip = REAL_AV / "ntcd_av_dkf"
    fig = lips_figure(
        model,
        cfg,
        load_audio(clip / "clean.wav", cfg.sample_rate),
        load_lips(clip / "lips.npy"),
        fps=30.0,
        clip="ntcd_av_dkf",
    )
    assert fig.n_frames > 100
    assert -1.0 <= fig.r <= 1.0 and 0.0 <= fig.auc <= 1.0 and 0.0 <= fig.lips_responsibility <= 1.0
