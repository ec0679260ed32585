"""Sanity check on the real NTCD-TIMIT clips (../shared/real_av): every default method's scores, never tuned on.

    .venv/bin/python scripts/real_clips.py --checkpoint avae=RUNS/avae/best.pt --checkpoint minvae=... \
        [--methods noisy,avae-mcem,...] [--real-av ../shared/real_av] [--json OUT.json]

Prints a markdown table: per clip and method, SI-SDR, PESQ wide-/narrow-band, STOI and ESTOI with their change
over the noisy input where the clip has a clean reference (``ntcd_av_dkf``), else the output level change.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METRICS = ("si_sdr", "pesq_wb", "pesq_nb", "stoi", "estoi")
DEFAULT_METHODS = (
    "noisy",
    "spectral-gating",
    "avae-mcem",
    "avae-fast",
    "avcvae-mcem",
    "avcvae-fast",
    "minvae-mcem",
    "minvae-fast",
    "ensemble-fast",
)
# the labels whose checkpoints make the method "ensemble-<E-step>" when all are given (docs/algorithms.md)
ENSEMBLE = ("avae", "minvae", "avcvae")


def ensembles(ckpts: dict) -> dict:
    """``{"ensemble": [labels]}`` when every label of :data:`ENSEMBLE` has a checkpoint, else ``{}``."""
    return {"ensemble": list(ENSEMBLE)} if all(label in ckpts for label in ENSEMBLE) else {}


def table(rows: list[dict]) -> str:
    head = "| clip | method | " + " | ".join(f"{m} (Δ)" for m in METRICS) + " |"
    lines = [head, "|---|---|" + "---|" * len(METRICS)]
    for r in rows:
        if r["has_reference"]:
            cells = [f"{r[m]:.2f} ({r[f'delta_{m}']:+.2f})" if m in r else "–" for m in METRICS]
        else:
            cells = [f"no reference; output level {r['out_in_db']:+.1f} dB"] + [""] * (len(METRICS) - 1)
        lines.append(f"| {r['clip']} | {r['method']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", action="append", default=[], metavar="LABEL=PATH")
    ap.add_argument("--methods", default=",".join(DEFAULT_METHODS))
    ap.add_argument("--real-av", default=str(ROOT.parent / "shared" / "real_av"))
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    import torch

    from pyro_minvae.evaluation.methods import resolve_methods
    from pyro_minvae.evaluation.real_clips import clip_dirs, score_clips

    torch.set_num_threads(1)
    if not clip_dirs(args.real_av):
        print(f"{args.real_av}: no real clips (noisy.wav + lips.npy); nothing to do")
        return 0
    ckpts = dict(c.split("=", 1) for c in args.checkpoint)
    methods = resolve_methods([m for m in args.methods.split(",") if m], ckpts, ensembles(ckpts))
    rows = list(score_clips(args.real_av, methods, METRICS))
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    from pyro_minvae.entry import run_script  # one line, no traceback, on a user error or Ctrl-C

    sys.exit(run_script(main))
