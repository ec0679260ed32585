"""What the benchmark scripts share: the model to time, the machine description and the JSON report.

The scripts import it as a sibling (``from _common import ...``): run as ``python benchmarks/X.py``, their folder
is on ``sys.path``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import numpy as np
import torch

FAMILIES = ("avae", "minvae", "avcvae")


def add_model_args(ap: argparse.ArgumentParser) -> None:
    """``--checkpoint CKPT`` and ``--family``: the family of the untrained paper-sized model timed without one."""
    ap.add_argument("--checkpoint", help="time this trained model (default: an untrained paper-sized one)")
    ap.add_argument("--family", default="avae", choices=FAMILIES, help="the untrained model's family")


def load_or_build(family: str, checkpoint: str | None = None, device: str = "cpu"):
    """``(model in eval mode on device, FeatureConfig)``: the checkpoint's, or without one an untrained
    paper-sized model of ``family`` (weights drawn after ``torch.manual_seed(0)``; A-VAE reads audio, the other
    families audio and 67x67 lips). The cost of enhancement does not depend on training."""
    from pyro_minvae.features import FeatureConfig
    from pyro_minvae.models import build_model

    if checkpoint:
        from pyro_minvae.checkpoint import load_model

        model, cfg, _ = load_model(checkpoint, device)
        return model, cfg
    cfg = FeatureConfig()
    dims = {"audio": cfg.n_freq} if family == "avae" else {"audio": cfg.n_freq, "lips": cfg.lip_size**2}
    torch.manual_seed(0)
    return build_model(family, input_dims=dims).to(device).eval(), cfg


def machine_info(threads: int) -> dict:
    """Where the numbers come from: platform, CPUs, torch threads and versions, the 1-minute load average now
    (a report adds ``load_avg_1min_end`` when it is done)."""
    return {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": threads,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "load_avg_1min": round(os.getloadavg()[0], 2),
    }


def write_report(report: dict, out: str | Path | None) -> None:
    """Print ``report`` as indented JSON and, with ``out``, write it there too (atomically)."""
    text = json.dumps(report, indent=2)
    print(text)
    if out:
        from pyro_minvae.atomic import write_text_atomic

        write_text_atomic(Path(out), text + "\n")
