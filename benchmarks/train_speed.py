"""Training throughput (frames per second) of every model family on this machine.

Each measurement runs the real training step (objective from :mod:`pyro_minvae.training.objectives`,
``backward``, fused Adam) on synthetic batches of paper-sized features (513 power bins, 67x67 lips). Families are
measured *interleaved* over several rounds so that load from other processes hits all of them alike; the table
reports the median and the spread, and the MIN-VAE / A-VAE cost ratio per round.

    python benchmarks/train_speed.py [--threads 2] [--rounds 5] [--steps 20] [--batch-size 128] [--out FILE]

Writes JSON (default ``<cache>/benchmarks/train_speed.json``) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

PAPER_LIPS = {"encoder_options": {"lips": {"pool": 1, "hidden": [512, 128]}}}  # nn.encoders.PAPER_LIPS
FAMILIES = {  # label -> (family, encoders, responsibilities, extra model arguments)
    "avae": ("avae", None, "marginal", {}),
    "vvae (lips)": ("vae", ("lips",), "marginal", {}),
    "avcvae": ("avcvae", None, "marginal", {}),
    "minvae (marginal q)": ("minvae", None, "marginal", {}),  # default: pooled lips encoder
    "minvae (epoch q)": ("minvae", None, "epoch", {}),
    "minvae (paper lips)": ("minvae", None, "marginal", PAPER_LIPS),
}


def make_runner(label: str, batch_size: int, seed: int = 0):
    """Return ``step()`` running one training step of ``label`` on a fixed synthetic batch."""
    import pyro

    from pyro_minvae.data.datasets import FrameDataset
    from pyro_minvae.training import OBJECTIVES, TrainConfig, make_model
    from pyro_minvae.training.loop import make_optimizer
    from pyro_minvae.training.objectives import default_objective

    family, encoders, resp, model_kwargs = FAMILIES[label]
    pyro.set_rng_seed(seed)
    g = torch.Generator().manual_seed(seed)
    n = 8 * batch_size
    audio = torch.rand(n, 513, generator=g) * 3 + 1e-3
    lips = (torch.rand(n, 4489, generator=g) * 255).to(torch.uint8)
    ds = FrameDataset(audio, {"lips": lips}, torch.tensor([0, n]), ["synthetic"], None)
    model = make_model(TrainConfig(family=family, encoders=encoders, model_kwargs=model_kwargs), ds.input_dims).train()
    obj = OBJECTIVES.build(default_objective(model, resp))
    opt = make_optimizer([p for p in model.parameters() if p.requires_grad], 1e-4)
    epoch_hook_s = 0.0
    if obj.needs_epoch_hook:  # per-epoch cost of the closed-form responsibilities, amortised per frame below
        t = time.perf_counter()
        obj.start_epoch(model, ds, batch_size, seed)
        epoch_hook_s = (time.perf_counter() - t) / n
    batches = [torch.arange(i * batch_size, (i + 1) * batch_size) for i in range(8)]
    state = {"i": 0}

    def step():
        idx = batches[state["i"] % len(batches)]
        state["i"] += 1
        loss, _ = obj.loss(model, ds.batch(idx), idx)
        opt.zero_grad(set_to_none=True)
        (loss / idx.numel()).backward()
        opt.step()

    return step, epoch_hook_s


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--families", default=",".join(FAMILIES))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    labels = [s.strip() for s in args.families.split(",") if s.strip()]
    unknown = [lab for lab in labels if lab not in FAMILIES]
    if unknown:
        ap.error(f"unknown --families label(s) {', '.join(map(repr, unknown))}; valid: {', '.join(FAMILIES)}")
    runners = {}
    for lab in labels:
        step, hook = make_runner(lab, args.batch_size)
        for _ in range(3):  # warm-up
            step()
        runners[lab] = (step, hook)
    fps = {lab: [] for lab in labels}
    for _ in range(args.rounds):
        for lab in labels:
            step, hook = runners[lab]
            t = time.perf_counter()
            for _ in range(args.steps):
                step()
            dt = (time.perf_counter() - t) / (args.steps * args.batch_size) + hook
            fps[lab].append(1.0 / dt)
    ratios = [a / m for a, m in zip(fps.get("avae", []), fps.get("minvae (marginal q)", []))]
    paper = [a / m for a, m in zip(fps.get("avae", []), fps.get("minvae (paper lips)", []))]
    result = {
        "threads": args.threads,
        "batch_size": args.batch_size,
        "rounds": args.rounds,
        "steps": args.steps,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            "load_avg_at_end": os.getloadavg(),
        },
        "frames_per_s": {
            lab: {"median": statistics.median(v), "min": min(v), "max": max(v), "all": v} for lab, v in fps.items()
        },
        "minvae_over_avae_cost": {"median": statistics.median(ratios), "all": ratios} if ratios else None,
        "minvae_paper_lips_over_avae_cost": ({"median": statistics.median(paper), "all": paper} if paper else None),
    }
    print(
        f"training throughput, {args.threads} torch threads, batch {args.batch_size}, {args.rounds} interleaved "
        f"rounds x {args.steps} steps (load average at end: {os.getloadavg()[0]:.1f})\n"
    )
    print("| model | frames/s (median) | min | max | cost vs A-VAE |")
    print("|---|---:|---:|---:|---:|")
    base = statistics.median(fps["avae"]) if "avae" in fps else None
    for lab, v in fps.items():
        med = statistics.median(v)
        rel = f"{base / med:.2f}x" if base else "-"
        print(f"| {lab} | {med:.0f} | {min(v):.0f} | {max(v):.0f} | {rel} |")
    if ratios:
        print(f"\nMIN-VAE / A-VAE per-epoch cost (per round): {', '.join(f'{r:.2f}' for r in ratios)}")
    if paper:
        print(f"MIN-VAE (paper lips) / A-VAE per-epoch cost (per round): {', '.join(f'{r:.2f}' for r in paper)}")
    out = args.out
    if out is None:
        from pyro_minvae.paths import cache_dir

        out = cache_dir() / "benchmarks" / "train_speed.json"
    from pyro_minvae.atomic import write_text_atomic

    write_text_atomic(out, json.dumps(result, indent=2))
    print(f"\nwrote {out}")
    return result


if __name__ == "__main__":
    main()
