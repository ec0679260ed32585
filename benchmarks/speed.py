"""All speed numbers in one run on one machine: training frames/s per model, enhancement real-time factor per
method and family, and peak memory of a long (chunked) enhancement.

    .venv/bin/python benchmarks/speed.py [--out docs/speed.json] [--quick]

Runs ``train_speed.py`` and ``enhance_speed.py`` (one per family) as child processes, one after the other, and
merges their JSON into one file with a markdown summary (``--md``). ``--quick`` shortens every measurement (for
the test suite); numbers for the record come from a run without it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FAMILIES = ("avae", "avcvae", "minvae")


def _run_json(cmd: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        subprocess.run(cmd + ["--out", str(out)], check=True, stdout=subprocess.DEVNULL)
        return json.loads(out.read_text())


def measure(quick: bool, threads: int, checkpoints: dict) -> dict:
    py = sys.executable
    t0 = time.time()
    train_args = ["--rounds", "1", "--steps", "3"] if quick else ["--rounds", "3", "--steps", "15"]
    report = {
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "threads": threads,
            "load_avg_1min_start": round(os.getloadavg()[0], 2),
        },
        "training": _run_json([py, str(HERE / "train_speed.py"), "--threads", str(threads), *train_args]),
        "enhancement": {},
    }
    for family in FAMILIES:
        args = [py, str(HERE / "enhance_speed.py"), "--family", family, "--threads", str(threads)]
        if family in checkpoints:
            args += ["--checkpoint", checkpoints[family]]
        if quick:
            args += ["--seconds", "1", "--skip-long", "--repeat", "1"]
        elif family != "minvae":
            args += ["--skip-long"]  # peak memory is measured once, on the paper's model
        report["enhancement"][family] = _run_json(args)
    report["machine"]["load_avg_1min_end"] = round(os.getloadavg()[0], 2)
    report["wall_s"] = round(time.time() - t0, 1)
    return report


def to_markdown(report: dict) -> str:
    lines = ["| model | training frames/s (median) |", "|---|---:|"]
    for label, v in report["training"]["frames_per_s"].items():
        lines.append(f"| {label} | {v['median']:.0f} |")
    lines += [
        "",
        "| family | method | real-time factor (median) | min - max | runs | seconds | audio s |",
        "|---|---|---:|---|---:|---:|---:|",
    ]
    memory = None
    for family, rep in report["enhancement"].items():
        for r in rep["speed"]:
            spread = f"{r['rtf_min']:.3f} - {r['rtf_max']:.3f}" if "rtf_min" in r else ""
            lines.append(
                f"| {family} | {r['method']} | {r['rtf']:.3f} | {spread} | {r.get('repeats', 1)} | "
                f"{r['wall_s']:.2f} | {r['audio_s']:.1f} |"
            )
        memory = rep.get("memory") or memory
    if memory:
        lines += [
            "",
            f"Peak memory enhancing {memory.get('audio_s', '?')} s of audio: "
            f"{memory.get('peak_rss_mib')} MiB (resident set of the enhancing process).",
        ]
    m = report["machine"]
    lines += [
        "",
        f"Measured in one run ({report['wall_s']} s) on {m['cpus']} CPUs, {m['threads']} torch threads, "
        f"load average {m['load_avg_1min_start']} -> {m['load_avg_1min_end']}.",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="JSON output (default: <cache>/benchmarks/speed.json)")
    ap.add_argument("--md", type=Path, default=None, help="also write the markdown summary here")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        metavar="FAMILY=PATH",
        help="time a trained model instead of an untrained paper-sized one",
    )
    args = ap.parse_args(argv)
    checkpoints = dict(item.split("=", 1) for item in args.checkpoint)
    report = measure(args.quick, args.threads, checkpoints)
    from pyro_minvae.atomic import write_text_atomic
    from pyro_minvae.paths import cache_dir

    out = args.out or cache_dir() / "benchmarks" / "speed.json"
    write_text_atomic(out, json.dumps(report, indent=2) + "\n")
    md = to_markdown(report)
    if args.md:
        write_text_atomic(args.md, md)
    print(md)
    print(f"wrote {out}")
    return report


if __name__ == "__main__":
    main()
