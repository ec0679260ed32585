"""Enhancement speed and memory: real-time factor per method on a 10 s utterance, peak memory on 10 minutes.

    .venv/bin/python benchmarks/enhance_speed.py [--checkpoint CKPT] [--threads 2] [--out results.json]

Real-time factor (RTF) = wall-clock seconds / audio seconds (targets: paper MCEM <= 0.5, ``fast`` <= 0.05); each
method runs ``--repeat`` times (default 3) and the median is reported with the min and max, because the same
command varies by about 15% from run to run on a shared 2-core VM.
Methods: ``mcem`` (defaults, 30 EM iterations), ``mcem-paper`` (100 iterations; for a mixture prior, i.e. MIN-VAE,
the published loop) and ``fast``. The loop follows the model (the checkpoint's prior), never ``--family``, which
only picks the untrained model's family when there is no ``--checkpoint``; every row names its family and loop.
The signal is a synthetic voiced "utterance" (harmonic bursts + white noise at 0 dB); the cost of every method
depends on the number of frames and the network sizes, not on the content. Without ``--checkpoint`` a
paper-sized untrained model is used (``--family``). Peak memory is the maximum resident set size of a fresh
child process enhancing ``--long-seconds`` of audio (chunked, see ``pyro_minvae.infer.enhance``); as memory does
not grow with the iteration count, that run uses ``--long-iterations`` EM iterations to keep it short.
Writes JSON (to stdout and ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
import torch
from _common import add_model_args, load_or_build, machine_info, write_report

METHODS = {  # label -> (E-step name in ESTEPS, options); a mixture prior's paper loop adds loop="minvae"
    "mcem": ("mcem", {}),  # defaults: 30 EM iterations x 40 MH steps (30 burn-in), final 100-step MH
    "mcem-paper": ("mcem", {"iterations": 100, "h_block": 1}),  # the paper's 100 iterations, free activations
    "fast": ("fast", {}),  # variational EM defaults
}


def method_options(label: str, model) -> tuple[str, dict]:
    """``(E-step name, options)`` for ``label`` on ``model``: the paper's MCEM of a mixture prior (MIN-VAE) is
    its published loop, whatever family was asked for on the command line."""
    estep, opts = METHODS.get(label, (label, {}))
    if label == "mcem-paper" and model.is_mixture:
        opts = {**opts, "loop": "minvae"}
    return estep, dict(opts)


def model_family(model) -> str:
    """The family the model was built as (stored in every checkpoint)."""
    return str(model.spec.get("family", "?"))


def synthetic_utterance(seconds: float, sr: int = 16000, seed: int = 0) -> np.ndarray:
    return synthetic_pair(seconds, sr, seed)[1]


def synthetic_pair(seconds: float, sr: int = 16000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(clean, noisy)`` float32 waveforms: voiced bursts and the same plus white noise at 0 dB, both scaled by
    the factor that brings the noisy peak to 0.5."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voiced = sum(np.sin(k * phase) / k for k in range(1, 15))
    env = (np.sin(2 * np.pi * 2.0 * t) > 0).astype(float)
    speech = voiced * env
    noise = rng.standard_normal(t.shape)
    noise *= np.sqrt(np.mean(speech**2) / np.mean(noise**2))
    x = speech + noise
    k = 0.5 / np.abs(x).max()
    return (k * speech).astype(np.float32), (k * x).astype(np.float32)


def visual_for(model, n_frames: int, device):
    dims = {"lips": 67 * 67, "landmarks": 40}
    return {
        m: torch.rand(n_frames, dims[m], generator=torch.Generator().manual_seed(1)).to(device)
        for m in model.modalities
        if m in dims
    }


def run_once(args, seconds: float, method: str, opts: dict) -> dict:
    from pyro_minvae.infer.enhance import enhance_waveform

    model, cfg = load_or_build(args.family, args.checkpoint, args.device)
    estep, base = method_options(method, model)
    opts = {**base, **opts}
    x = synthetic_utterance(seconds)
    vis = visual_for(model, cfg.n_frames(len(x)), args.device)
    t0 = time.perf_counter()
    res = enhance_waveform(model, cfg, x, vis, method=estep, seed=0, device=args.device, **opts)
    wall = time.perf_counter() - t0
    assert res.waveform.shape[0] == len(x)
    return {
        "method": method,
        "family": model_family(model),
        "loop": opts.get("loop", "classic") if estep == "mcem" else None,
        "options": opts,
        "audio_s": seconds,
        "wall_s": round(wall, 3),
        "rtf": round(wall / seconds, 4),
        "chunks": len(res.chunks),
    }


def child(args) -> None:
    """Run one enhancement in this (fresh) process and print its JSON with the peak RSS."""
    torch.set_num_threads(args.threads)
    out = run_once(args, args.long_seconds, args.child, {"iterations": args.long_iterations})
    out["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_args(ap)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--methods", default="mcem,mcem-paper,fast")
    ap.add_argument("--repeat", type=int, default=3, help="runs per method; the median is reported (with min, max)")
    ap.add_argument("--long-seconds", type=float, default=600.0)
    ap.add_argument("--long-iterations", type=int, default=2)
    ap.add_argument("--long-method", default="mcem")
    ap.add_argument("--skip-long", action="store_true")
    ap.add_argument("--out")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    torch.set_num_threads(args.threads)
    report = {
        "machine": machine_info(args.threads),
        "model": args.checkpoint or f"untrained {args.family} (paper sizes)",
        "device": args.device,
        "speed": [],
    }
    for method in args.methods.split(","):
        runs = [run_once(args, args.seconds, method, {}) for _ in range(args.repeat)]
        walls = sorted(r["wall_s"] for r in runs)
        mid = statistics.median(walls)
        r = {
            **runs[0],
            "wall_s": round(mid, 3),
            "rtf": round(mid / args.seconds, 4),
            "rtf_min": round(walls[0] / args.seconds, 4),
            "rtf_max": round(walls[-1] / args.seconds, 4),
            "repeats": args.repeat,
        }
        report["speed"].append(r)
        print(json.dumps(r), file=sys.stderr)
    if not args.skip_long:
        cmd = [
            sys.executable,
            __file__,
            "--child",
            args.long_method,
            "--family",
            args.family,
            "--device",
            args.device,
            "--threads",
            str(args.threads),
            "--long-seconds",
            str(args.long_seconds),
            "--long-iterations",
            str(args.long_iterations),
        ] + (["--checkpoint", args.checkpoint] if args.checkpoint else [])
        out = subprocess.run(cmd, check=True, capture_output=True, text=True)
        report["memory"] = json.loads(out.stdout.strip().splitlines()[-1])
    report["machine"]["load_avg_1min_end"] = round(os.getloadavg()[0], 2)
    write_report(report, args.out)


if __name__ == "__main__":
    main()
