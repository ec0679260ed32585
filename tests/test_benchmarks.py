"""The enhancement speed benchmark runs (1 s of audio, untrained paper-sized model) and reports a median RTF
with its spread; the numbers for the record come from full runs (docs/results.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_enhance_speed_reports_median_and_spread(tmp_path):
    out = tmp_path / "speed.json"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "enhance_speed.py"), "--seconds", "1",
                           "--skip-long", "--repeat", "2", "--methods", "fast,mcem", "--threads", "1",
                           "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert [r["method"] for r in report["speed"]] == ["fast", "mcem"]
    for r in report["speed"]:
        assert r["repeats"] == 2 and r["audio_s"] == 1.0 and r["chunks"] == 1
        assert 0 < r["rtf_min"] <= r["rtf"] <= r["rtf_max"]


def test_enhance_speed_takes_the_loop_from_the_checkpoint(tmp_path):
    """A MIN-VAE checkpoint timed without ``--family minvae`` runs (and is labelled) the published loop."""
    import torch

    from pyro_minvae.checkpoint import save_checkpoint
    from pyro_minvae.features import FeatureConfig
    from pyro_minvae.models import build_model

    cfg = FeatureConfig()
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "minvae.pt", build_model(
        "minvae", input_dims={"audio": cfg.n_freq, "lips": cfg.lip_size ** 2}, latent_dim=4), cfg)
    out = tmp_path / "speed.json"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "enhance_speed.py"), "--checkpoint", str(ckpt),
                           "--seconds", "0.3", "--skip-long", "--repeat", "1", "--methods", "mcem-paper,mcem",
                           "--threads", "1", "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {r["method"]: r for r in json.loads(out.read_text())["speed"]}
    assert rows["mcem-paper"]["family"] == "minvae" and rows["mcem-paper"]["loop"] == "minvae"
    assert rows["mcem-paper"]["options"] == {"iterations": 100, "loop": "minvae"}
    assert rows["mcem"]["family"] == "minvae" and rows["mcem"]["loop"] == "classic"
