"""Files per hour: the batched E-step against today's per-file worker processes, on the same manifest.

    .venv/bin/python benchmarks/batch_throughput.py [--checkpoint CKPT] [--files 20] [--workers 2]
        [--iterations 30] [--out throughput.json]

A manifest of ``--files`` "noisy" records (synthetic voiced utterances of 2-4 s plus white noise at 0 dB,
``enhance_speed.synthetic_pair``; with fixed random lips at 30 fps when the model reads lips) is enhanced
twice with MCEM at ``--iterations``, seed 0 for every record:

* per file: ``pyro-minvae enhance --manifest M --out-dir A --jobs W`` (W worker processes of 1 torch thread,
  one record per task);
* batched: the same command with ``--batch-size B`` (one task per B records, enhanced together by
  :func:`pyro_minvae.enhancement.batched.enhance_records`, one wav per record).

Both runs are timed in wall seconds and in CPU seconds of all their processes (user + system), which include
process start, checkpoint loading, reading and writing; "files per hour on 2 cores" is the files over half the
CPU seconds, i.e. the rate when the machine's two cores are the run's alone (a shared machine's wall time
is not). The outputs of the two runs are
compared (SI-SDR of the batched output against the per-file one: equal up to float32 rounding unless an MH
decision flips, which then gives a different chain of the same distribution). Without ``--checkpoint`` an
untrained paper-sized model of ``--family`` is used: the cost does not depend on training.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from _common import add_model_args, load_or_build, write_report  # noqa: E402
from enhance_speed import synthetic_pair  # noqa: E402


def children_cpu() -> float:
    """CPU seconds (user + system) of all finished child processes (and theirs) so far."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def make_corpus(folder: Path, n_files: int, with_lips: bool, cfg) -> Path:
    from pyro_minvae.audio_io import write_audio
    from pyro_minvae.data.manifest import write_manifest

    rng = np.random.default_rng(0)
    records = []
    for i in range(n_files):
        seconds = float(rng.uniform(2.0, 4.0))
        _, noisy = synthetic_pair(seconds, cfg.sample_rate, seed=i)
        rid = f"utt{i:03d}"
        write_audio(folder / f"{rid}.wav", noisy, cfg.sample_rate)
        rec = {
            "id": rid,
            "split": "test",
            "speaker": "s0",
            "kind": "noisy",
            "audio": f"{rid}.wav",
            "duration": round(len(noisy) / cfg.sample_rate, 3),
        }
        if with_lips:
            n_v = int(np.ceil(len(noisy) / cfg.sample_rate * 30))
            np.save(folder / f"{rid}_lips.npy", rng.integers(0, 256, (n_v, 67, 67), dtype=np.uint8))
            rec.update(lips=f"{rid}_lips.npy", fps=30.0)
        records.append(rec)
    write_manifest(folder / "manifest.jsonl", records)
    return folder / "manifest.jsonl"


def compare_outputs(dir_a: Path, dir_b: Path) -> dict:
    from pyro_minvae.audio_io import load_audio
    from pyro_minvae.metrics import si_sdr

    scores = []
    for a in sorted(dir_a.glob("*.wav")):
        scores.append(si_sdr(load_audio(a, 16000), load_audio(dir_b / a.name, 16000)))
    scores = np.array(scores)
    return {
        "files": len(scores),
        "si_sdr_batched_vs_per_file_min": round(float(scores.min()), 1),
        "si_sdr_batched_vs_per_file_median": round(float(np.median(scores)), 1),
        "identical_to_float32_rounding (>= 60 dB)": int((scores >= 60).sum()),
    }


def batch_size_sweep(family: str, sizes: list, n_files: int, iterations: int, loop: str) -> list:
    """CPU seconds per file of :func:`~pyro_minvae.infer.batched.mcem_batch` in this process (1 torch thread,
    no file I/O) for each batch size, on ``n_files`` spectrograms of 2-4 s."""
    import torch

    from pyro_minvae.features import stft
    from pyro_minvae.infer.batched import mcem_batch

    torch.set_num_threads(1)
    model, cfg = load_or_build(family)
    rng = np.random.default_rng(0)
    specs = [
        stft(torch.from_numpy(synthetic_pair(float(rng.uniform(2.0, 4.0)), seed=i)[1]), cfg) for i in range(n_files)
    ]
    visuals = [{"lips": torch.rand(s.shape[1], cfg.lip_size**2)} if "lips" in model.modalities else None for s in specs]
    rows = []
    for size in sizes:
        c0 = time.process_time()
        for start in range(0, n_files, size):
            mcem_batch(
                model,
                specs[start : start + size],
                visuals[start : start + size],
                [0] * len(specs[start : start + size]),
                iterations=iterations,
                loop=loop,
            )
        cpu = time.process_time() - c0
        rows.append(
            {
                "batch_size": size,
                "cpu_s_per_file": round(cpu / n_files, 3),
                "files_per_hour_2_cores": round(2 * 3600 * n_files / cpu),
            }
        )
        print(json.dumps(rows[-1]), file=sys.stderr)
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_args(ap)
    ap.add_argument("--files", type=int, default=20)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=10)
    ap.add_argument("--iterations", type=int, default=30)
    ap.add_argument("--loop", default="auto")
    ap.add_argument(
        "--sweep",
        help="batch sizes (e.g. 1,5,10,20): time mcem_batch in this process instead "
        "(CPU seconds per file, untrained --family model, no file I/O)",
    )
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    if args.sweep:
        rows = batch_size_sweep(
            args.family, [int(x) for x in args.sweep.split(",")], args.files, args.iterations, args.loop
        )
        sweep = {
            "family": args.family,
            "files": args.files,
            "iterations": args.iterations,
            "loop": args.loop,
            "load_avg_1min": round(os.getloadavg()[0], 2),
            "sweep": rows,
        }
        write_report(sweep, args.out)
        return
    from pyro_minvae.checkpoint import save_checkpoint

    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    with tempfile.TemporaryDirectory(prefix="throughput-") as tmp:
        tmp = Path(tmp)
        model, cfg = load_or_build(args.family, args.checkpoint)
        ckpt = Path(args.checkpoint) if args.checkpoint else save_checkpoint(tmp / "model.pt", model, cfg)
        (tmp / "corpus").mkdir()
        manifest = make_corpus(tmp / "corpus", args.files, "lips" in model.modalities, cfg)
        audio_s = sum(r["duration"] for r in map(json.loads, manifest.read_text().splitlines()))
        load0 = os.getloadavg()[0]
        cli = (
            [sys.executable, "-m", "cli.main"]
            if not (ROOT / ".venv" / "bin" / "pyro-minvae").exists()
            else [str(ROOT / ".venv" / "bin" / "pyro-minvae")]
        )
        cmd = cli + [
            "enhance",
            "-c",
            str(ckpt),
            "--manifest",
            str(manifest),
            "--out-dir",
            str(tmp / "per_file"),
            "--jobs",
            str(args.workers),
            "--iterations",
            str(args.iterations),
            "--no-progress",
        ]
        if args.loop != "auto":
            cmd += ["--loop", args.loop]
        t0, c0 = time.perf_counter(), children_cpu()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        per_file, per_file_cpu = time.perf_counter() - t0, children_cpu() - c0
        if proc.returncode != 0:
            raise SystemExit(f"per-file run failed: {' '.join(cmd)}\n{proc.stderr[-3000:]}")
        t0, c0 = time.perf_counter(), children_cpu()
        at = cmd.index("--out-dir") + 1
        batched_cmd = cmd[:at] + [str(tmp / "batched")] + cmd[at + 1 :] + ["--batch-size", str(args.batch_size)]
        proc = subprocess.run(batched_cmd, env=env, capture_output=True, text=True)
        batched, batched_cpu = time.perf_counter() - t0, children_cpu() - c0
        if proc.returncode != 0:
            raise SystemExit(f"batched run failed:\n{proc.stderr[-3000:]}")
        report = {
            "machine": {
                "platform": platform.platform(),
                "cpu_count": os.cpu_count(),
                "load_avg_1min_start": round(load0, 2),
                "load_avg_1min_end": round(os.getloadavg()[0], 2),
            },
            "model": str(args.checkpoint or f"untrained {args.family} (paper sizes)"),
            "files": args.files,
            "audio_s": round(audio_s, 1),
            "workers": args.workers,
            "torch_threads": 1,
            "iterations": args.iterations,
            "loop": args.loop,
            "batch_size": args.batch_size,
            "per_file_wall_s": round(per_file, 2),
            "batched_wall_s": round(batched, 2),
            "per_file_cpu_s": round(per_file_cpu, 2),
            "batched_cpu_s": round(batched_cpu, 2),
            "per_file_files_per_hour_wall": round(args.files / per_file * 3600),
            "batched_files_per_hour_wall": round(args.files / batched * 3600),
            # the machine's 2 cores all ours: files per hour = files / (CPU seconds / 2) * 3600
            "per_file_files_per_hour_2_cores": round(args.files / (per_file_cpu / 2) * 3600),
            "batched_files_per_hour_2_cores": round(args.files / (batched_cpu / 2) * 3600),
            "speedup_wall": round(per_file / batched, 2),
            "speedup_cpu": round(per_file_cpu / batched_cpu, 2),
            "outputs": compare_outputs(tmp / "per_file", tmp / "batched"),
        }
    write_report(report, args.out)


if __name__ == "__main__":
    main()
