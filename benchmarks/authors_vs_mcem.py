"""pyro-minvae's MCEM against the authors' loops, side by side: speed ratio and equal output.

    .venv/bin/python benchmarks/authors_vs_mcem.py [--checkpoint avae=CKPT --checkpoint minvae=CKPT]
        [--seconds 10] [--repeat 3] [--threads 2] [--out authors.json] [--md authors.md]

For each family (``avae``: the classic MCEM; ``minvae``: the published variational loop) the same decoder weights
and the same input (STFT of a synthetic 0 dB mixture, ``enhance_speed.synthetic_pair``; MIN-VAE gets fixed random
lips) go through ``pyro_minvae.infer.mcem.mcem`` at the paper's settings (100 EM iterations, 40 MH steps, 30
burn-in, K = 10; classic: final 100-step MH) and through ``authors_loop`` (benchmarks/authors_loop.py, a
re-implementation of the published loops in their numpy/torch structure), ``--repeat`` times each, interleaved
(the order alternates between repeats), with seed ``k`` in repeat ``k``. Only the E-step is timed (the STFT,
the initial encoder pass and the inverse STFT are the same for both), in CPU seconds of the process (primary:
with one torch thread this is the compute time, which a busy shared machine inflates far less than the wall
time) and in wall seconds. Each ratio is the median authors' time over the median pyro-minvae time;
``ratio_*_min``/``_max`` are the extremes of the per-repeat ratios.

Equal output: SI-SDR against the clean signal of every run (one per seed and side), their means and standard
deviations, and one extra authors' run on pyro-minvae's own random stream (``TorchDraws``, seed 0), compared with
pyro-minvae's seed-0 output (SI-SDR of one estimate against the other). With untrained models (no
``--checkpoint``) the SI-SDR values say nothing about quality, only that the two implementations agree.
``--manifest`` (a prepared corpus, e.g. the demo's) adds the SI-SDR of both on its first ``--quality-records``
test mixtures at ``--quality-snr`` dB (their lips for MIN-VAE), one run each with seed 0 (``--skip-timing``:
only that).
Writes JSON (``--out``) and a markdown table (``--md``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import authors_loop  # noqa: E402
from _common import load_or_build, machine_info, write_report  # noqa: E402
from enhance_speed import synthetic_pair, visual_for  # noqa: E402

FAMILIES = ("avae", "minvae")


class Timing(NamedTuple):
    """Wall-clock and CPU (process) seconds of one run."""

    wall: float
    cpu: float


class Case:
    """One family's model, input and both implementations, ready to run with a seed."""

    def __init__(self, family: str, checkpoint: str | None, seconds: float, iterations: int, tol: float | None):
        from pyro_minvae.features import stft
        from pyro_minvae.models.speech_vae import as_batch

        self.family = family
        self.model, self.cfg = load_or_build(family, checkpoint)
        if self.model.is_mixture != (family == "minvae"):
            raise SystemExit(f"error: {checkpoint}: not a {family} checkpoint; pass --checkpoint {family}=CKPT")
        self.clean, self.noisy = synthetic_pair(seconds)
        self.spec = stft(torch.from_numpy(self.noisy), self.cfg)  # (F, N) complex64
        n = self.spec.shape[1]
        self.visual = visual_for(self.model, n, "cpu") if self.model.is_mixture else {}
        self.X = self.spec.numpy()
        power = (self.spec.abs() ** 2).T.contiguous()
        batch = as_batch(power, self.visual, self.model.modalities)
        prefer = next((m for m in self.model.modalities if m != "audio"), None) if self.model.is_mixture else None
        self.Z0 = self.model.init_latents(batch, prefer=prefer).numpy().T.copy()  # (L, N)
        self.decoder = authors_loop.Decoder(self.model)
        self.iterations, self.tol = iterations, tol
        self.n_frames = n

    def project(self, seed: int) -> tuple[float, np.ndarray]:
        from pyro_minvae.infer.mcem import mcem

        opts = {"loop": "minvae"} if self.model.is_mixture else {}
        opts["h_block"] = 1  # the authors' NMF: free activations per frame
        t0, c0 = time.perf_counter(), time.process_time()
        res = mcem(self.model, self.spec, self.visual, iterations=self.iterations, seed=seed, **opts)
        return Timing(time.perf_counter() - t0, time.process_time() - c0), res.estimate.numpy()

    def authors(self, seed: int, draws=None) -> tuple[Timing, np.ndarray, int]:
        settings = authors_loop.AuthorsSettings(niter_MCEM=self.iterations)
        t0, c0 = time.perf_counter(), time.process_time()
        if self.model.is_mixture:
            prior = self.model.prior
            a = prior.components.index("audio")
            v = 1 - a
            loc = prior.loc.detach().float().numpy()
            var = prior.log_var.detach().float().exp().numpy()
            res = authors_loop.minvae_loop(
                self.decoder,
                self.X,
                self.Z0,
                loc[a],
                var[a],
                loc[v],
                var[v],
                settings,
                seed=seed,
                draws=draws,
            )
        else:
            res = authors_loop.classic_mcem(
                self.decoder, self.X, self.Z0, settings, seed=seed, draws=draws, tol=self.tol
            )
        return Timing(time.perf_counter() - t0, time.process_time() - c0), res.S_hat, res.iterations

    def si_sdr(self, estimate: np.ndarray, reference: np.ndarray | None = None) -> float:
        from pyro_minvae.features import istft
        from pyro_minvae.metrics import si_sdr

        def wave(s):
            return istft(torch.from_numpy(np.asarray(s, dtype=np.complex64)), self.cfg, len(self.noisy)).numpy()

        ref = self.clean if reference is None else wave(reference)
        return round(float(si_sdr(ref, wave(estimate))), 3)


def compare(case: Case, repeat: int) -> dict:
    ours, theirs, iters = [], [], []
    sdr_ours, sdr_theirs = [], []
    est0 = None
    for k in range(repeat):
        order = ("project", "authors") if k % 2 == 0 else ("authors", "project")
        for side in order:
            if side == "project":
                wall, est = case.project(k)
                ours.append(wall)
                sdr_ours.append(case.si_sdr(est))
                est0 = est if k == 0 else est0
            else:
                wall, est, it = case.authors(k)
                theirs.append(wall)
                iters.append(it)
                sdr_theirs.append(case.si_sdr(est))
        print(
            f"{case.family} repeat {k}: pyro-minvae {ours[-1].cpu:.2f} s CPU ({ours[-1].wall:.2f} wall), authors "
            f"{theirs[-1].cpu:.2f} s CPU ({theirs[-1].wall:.2f} wall): {theirs[-1].cpu / ours[-1].cpu:.2f}x",
            file=sys.stderr,
        )
    _, shared, _ = case.authors(0, draws=authors_loop.TorchDraws(0))
    out = {
        "family": case.family,
        "frames": case.n_frames,
        "iterations": case.iterations,
        "authors_iterations_run": iters,
    }
    for kind in ("cpu", "wall"):
        a = [getattr(t, kind) for t in theirs]
        o = [getattr(t, kind) for t in ours]
        ratios = [x / y for x, y in zip(a, o)]
        out.update(
            {
                f"pyro_minvae_{kind}_s": [round(x, 3) for x in o],
                f"authors_{kind}_s": [round(x, 3) for x in a],
                f"pyro_minvae_{kind}_median_s": round(statistics.median(o), 3),
                f"authors_{kind}_median_s": round(statistics.median(a), 3),
                f"ratio_{kind}": round(statistics.median(a) / statistics.median(o), 2),
                f"ratio_{kind}_min": round(min(ratios), 2),
                f"ratio_{kind}_max": round(max(ratios), 2),
            }
        )
    return {
        **out,
        "si_sdr_noisy": case.si_sdr(case.X),
        "si_sdr_pyro_minvae": sdr_ours,
        "si_sdr_authors": sdr_theirs,
        "si_sdr_pyro_minvae_mean": round(float(np.mean(sdr_ours)), 3),
        "si_sdr_authors_mean": round(float(np.mean(sdr_theirs)), 3),
        "si_sdr_pyro_minvae_sd": round(float(np.std(sdr_ours, ddof=1)), 3) if repeat > 1 else None,
        "si_sdr_authors_sd": round(float(np.std(sdr_theirs, ddof=1)), 3) if repeat > 1 else None,
        "shared_draws_si_sdr_authors": case.si_sdr(shared),
        "shared_draws_si_sdr_between": case.si_sdr(shared, reference=est0),
    }


def quality(case: Case, manifest: str, n_records: int, snr_db: float) -> dict:
    """SI-SDR of both implementations (seed 0 each) on the first ``n_records`` test mixtures at ``snr_db`` of a
    prepared corpus (noisy input, clean reference and lips from the manifest), with ``case``'s model."""
    from pyro_minvae.audio_io import load_audio
    from pyro_minvae.data.manifest import read_manifest, resolve
    from pyro_minvae.enhancement.inputs import record_input
    from pyro_minvae.enhancement.visual import visual_features
    from pyro_minvae.features import stft
    from pyro_minvae.models.speech_vae import as_batch

    records = [
        r
        for r in read_manifest(manifest)
        if r.get("split") == "test" and r.get("kind") == "mixture" and float(r.get("snr_db", 1e9)) == snr_db
    ][:n_records]
    rows = []
    for rec in records:
        inp = record_input(rec, manifest, case.cfg, wanted=case.model.modalities)
        peak = float(np.abs(inp.wave).max())
        case.noisy = inp.wave / peak
        case.clean = load_audio(resolve(manifest, rec["clean"]), case.cfg.sample_rate) / peak
        vis = visual_features(case.model, case.cfg, inp.streams, inp.wave.shape[0])
        case.visual = {k: torch.from_numpy(v) for k, v in vis.items()}
        case.spec = stft(torch.from_numpy(case.noisy), case.cfg)
        case.X = case.spec.numpy()
        batch = as_batch((case.spec.abs() ** 2).T.contiguous(), case.visual, case.model.modalities)
        prefer = next((m for m in case.model.modalities if m != "audio"), None) if case.model.is_mixture else None
        case.Z0 = case.model.init_latents(batch, prefer=prefer).numpy().T.copy()
        _, ours = case.project(0)
        _, theirs, _ = case.authors(0)
        rows.append(
            {
                "id": rec["id"],
                "noisy": case.si_sdr(case.X),
                "pyro_minvae": case.si_sdr(ours),
                "authors": case.si_sdr(theirs),
            }
        )
        print(json.dumps(rows[-1]), file=sys.stderr)

    def mean(k):
        return round(float(np.mean([r[k] for r in rows])), 2)

    return {
        "manifest": manifest,
        "snr_db": snr_db,
        "files": len(rows),
        "si_sdr_noisy_mean": mean("noisy"),
        "si_sdr_pyro_minvae_mean": mean("pyro_minvae"),
        "si_sdr_authors_mean": mean("authors"),
        "si_sdr_difference_sd": round(float(np.std([r["pyro_minvae"] - r["authors"] for r in rows], ddof=1)), 2)
        if len(rows) > 1
        else None,
        "rows": rows,
    }


def markdown(report: dict) -> str:
    rows = [
        "| family | loop | frames | pyro-minvae CPU s (median) | authors CPU s (median) | ratio CPU (min - max) | "
        "ratio wall (min - max) | SI-SDR pyro-minvae | SI-SDR authors | SI-SDR noisy |",
        "|---|---|---:|---:|---:|---|---|---|---|---:|",
    ]
    for r in report["results"]:
        loop = "published variational loop" if r["family"] == "minvae" else "classic MCEM"

        def ms(mean, sd):
            return f"{mean:.2f}" + (f" ± {sd:.2f}" if sd is not None else "")

        rows.append(
            f"| {r['family']} | {loop} | {r['frames']} | {r['pyro_minvae_cpu_median_s']:.2f} | "
            f"{r['authors_cpu_median_s']:.2f} | {r['ratio_cpu']:.2f}x ({r['ratio_cpu_min']:.2f} - "
            f"{r['ratio_cpu_max']:.2f}) | {r['ratio_wall']:.2f}x ({r['ratio_wall_min']:.2f} - "
            f"{r['ratio_wall_max']:.2f}) | "
            f"{ms(r['si_sdr_pyro_minvae_mean'], r['si_sdr_pyro_minvae_sd'])} | "
            f"{ms(r['si_sdr_authors_mean'], r['si_sdr_authors_sd'])} | {r['si_sdr_noisy']:.2f} |"
        )
    m = report["machine"]
    for family, q in report.get("quality", {}).items():
        rows.append("")
        rows.append(
            f"{family}, {q['files']} test mixtures at {q['snr_db']:g} dB, seed 0: SI-SDR pyro-minvae "
            f"{q['si_sdr_pyro_minvae_mean']:.2f} dB, authors {q['si_sdr_authors_mean']:.2f} dB, noisy "
            f"{q['si_sdr_noisy_mean']:.2f} dB (sd of the per-file difference {q['si_sdr_difference_sd']} dB)."
        )
    rows.append("")
    rows.append(
        f"{report['repeat']} interleaved runs per side, {report['seconds']} s of audio, "
        f"{m['torch_threads']} torch threads, load average {m['load_avg_1min']} -> {m['load_avg_1min_end']}."
    )
    return "\n".join(rows) + "\n"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", action="append", default=[], metavar="FAMILY=CKPT")
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--tol", type=float, default=1e-5, help="the classic loop's stop test (authors: 1e-5); <= 0: off")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (1: CPU time is then the compute time, robust on a shared machine)",
    )
    ap.add_argument("--manifest", help="a prepared corpus: also compare SI-SDR on its test mixtures")
    ap.add_argument("--quality-records", type=int, default=5)
    ap.add_argument("--quality-snr", type=float, default=0.0)
    ap.add_argument("--skip-timing", action="store_true")
    ap.add_argument("--out")
    ap.add_argument("--md")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    ckpts = dict(c.split("=", 1) for c in args.checkpoint)
    report = {
        "machine": machine_info(args.threads),
        "seconds": args.seconds,
        "repeat": args.repeat,
        "models": {f: ckpts.get(f, f"untrained {f} (paper sizes)") for f in args.families.split(",")},
        "results": [],
    }
    for family in args.families.split(","):
        case = Case(family, ckpts.get(family), args.seconds, args.iterations, args.tol if args.tol > 0 else None)
        if not args.skip_timing:
            report["results"].append(compare(case, args.repeat))
        if args.manifest:
            report.setdefault("quality", {})[family] = quality(
                case, args.manifest, args.quality_records, args.quality_snr
            )
    report["machine"]["load_avg_1min_end"] = round(os.getloadavg()[0], 2)
    write_report(report, args.out)
    if args.md:
        from pyro_minvae.atomic import write_text_atomic

        write_text_atomic(Path(args.md), markdown(report))


if __name__ == "__main__":
    main()
