"""Regenerate docs/results.md and its figures from scratch: evaluation of every method on the demo test set
(speakers unseen in training), the robustness runs, and the speed benchmark, all on this machine.

    .venv/bin/python scripts/make_results.py [--limit 60] [--runs DIR | --shipped] [--skip-speed] [--skip-robustness]

Needs trained checkpoints in ``<cache>/runs/demo/{avae,avcvae,minvae}/best.pt`` (``make demo`` writes them), or
``--shipped``: the models in ``pyro_minvae/pretrained`` (evaluated under ``<cache>/results/evaluation-shipped``).
``--limit N`` evaluates a subset of N test files balanced over SNR and noise type (the documented quick setting);
``--limit 0`` evaluates the full test set (the setting for the record). The main evaluation shares
``make demo``'s folder ``<cache>/runs/demo/evaluation`` (evaluate resumes, so nothing is scored twice); the rest
is written under ``<cache>/results``; docs/results.md and docs/figures/results/*.png are then replaced atomically.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
PM = [sys.executable, "-m", "pyro_minvae.cli.main"]
FAMILIES = ("avae", "avcvae", "minvae")
ROBUSTNESS = ("drop:0.5", "occlude:0.5", "shift:5")


def run(cmd: list[str]) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


HAND_WRITTEN = re.compile(r"^<!-- begin: [^\n]*\(hand-written\) -->\n.*?^<!-- end: [^\n]* -->$", re.M | re.S)


def hand_written_sections(page: str) -> list[str]:
    """The ``<!-- begin: ... (hand-written) -->`` ... ``<!-- end: ... -->`` blocks of the current page, kept
    verbatim: measurements that need more than this script runs (speed on other loops, real mouths)."""
    return HAND_WRITTEN.findall(page)


def kept_sections(page: str, discussion: str) -> list[str]:
    """The hand-written sections of ``page`` to carry over, once each, leaving out those that
    ``discussion`` already holds (the page ends with the discussion, so they would appear twice)."""
    return [s for s in dict.fromkeys(hand_written_sections(page)) if s not in discussion]


def section(md: str, title: str) -> str:
    """The text of a '## title' section of an evaluation summary.md (without the heading)."""
    parts = md.split("\n## ")
    for p in parts:
        if p.startswith(title):
            return p.split("\n", 1)[1].strip()
    return ""


class TrainingRow(NamedTuple):
    """One model's line of the training table: ``epochs`` and ``seconds`` of its run (or up to its best epoch),
    ``elbo`` the best validation ELBO (nats/frame), ``resp`` its responsibilities in words ("" for one encoder)."""

    model: str
    epochs: int | None
    elbo: float | None
    seconds: float | None
    resp: str


def summary_rows(runs: Path) -> list[TrainingRow]:
    """The training table's rows from each run's ``summary.json`` under ``runs`` (the runs of ``make train-best``)."""
    rows = []
    for name in ("avae", "avcvae", "vvae", "minvae"):
        p = runs / name / "summary.json"
        if not p.exists():
            continue
        s = json.loads(p.read_text())
        comps = (s.get("responsibilities") or {}).get("components") or {}
        resp = ", ".join(
            f"{k} {v['mean_q']:.2f} (speech {v['win_rate_speech']:.0%}, silence "
            f"{v['win_rate_silence']:.0%} of frames won)"
            for k, v in comps.items()
        )
        rows.append(TrainingRow(name, s.get("epochs_run"), s.get("best_valid_elbo"), s.get("elapsed_s"), resp))
    return rows


def checkpoint_rows(ckpts: dict) -> list[TrainingRow]:
    """The training table's rows from the checkpoints' own records (the shipped models keep their run's log up to
    the best epoch, not a ``summary.json``): epochs and time up to the best epoch, its validation ELBO and, for
    mixtures, the mean validation responsibilities of that epoch."""
    from pyro_minvae.checkpoint import load_checkpoint

    rows = []
    for name, path in ckpts.items():
        ck = load_checkpoint(path)
        last = (ck.get("history") or [{}])[-1]
        resp = ", ".join(f"{k[len('valid_q_') :]} {v:.2f}" for k, v in last.items() if k.startswith("valid_q_"))
        rows.append(TrainingRow(name, last.get("epoch"), ck.get("best_valid_elbo"), last.get("elapsed_s"), resp))
    return rows


def training_table(rows: list[TrainingRow], *, to_best: bool = False) -> str:
    """Markdown table of :func:`summary_rows` or (``to_best``) :func:`checkpoint_rows`."""
    upto = " up to the best epoch" if to_best else ""
    lines = [
        f"| model | epochs{upto} | best validation ELBO (nats/frame) | time{upto} (s) | responsibilities (mean q) |",
        "|---|---:|---:|---:|---|",
    ]
    for r in rows:
        elbo, secs = (float("nan") if v is None else v for v in (r.elbo, r.seconds))
        lines.append(f"| {r.model} | {r.epochs} | {elbo:.1f} | {secs:.0f} | {r.resp or '-'} |")
    return "\n".join(lines)


def real_clips_section(root: Path, ckpts: dict) -> str:
    """Every default method on the real NTCD-TIMIT clips of ``root`` (``""`` when the folder is absent)."""
    from pyro_minvae.evaluation.real_clips import clip_dirs

    if not clip_dirs(root):
        return ""
    import real_clips  # scripts/real_clips.py (main puts scripts/ on the path)

    from pyro_minvae.evaluation.methods import resolve_methods
    from pyro_minvae.evaluation.real_clips import score_clips

    available = resolve_methods(None, {k: str(v) for k, v in ckpts.items()}, real_clips.ensembles(ckpts))
    methods = {m: available[m] for m in real_clips.DEFAULT_METHODS if m in available}
    rows = list(score_clips(root, methods, real_clips.METRICS))
    return (
        "Two real NTCD-TIMIT recordings with real mouth images (`../shared/real_av`, see its README): "
        "`ntcd_av_dkf` has a clean reference; `ntcd_avse_vae` has none, so only its output level is shown. "
        "Each cell: the output's score (its change over the noisy input).\n\n" + real_clips.table(rows)
    )


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=30, help="test files (0: all); 30 = the make demo subset")
    models = ap.add_mutually_exclusive_group()
    models.add_argument("--runs", type=Path, default=None, help="training runs (default: <cache>/runs/demo)")
    models.add_argument(
        "--shipped",
        action="store_true",
        help="evaluate the models that ship with the package (pyro_minvae/pretrained) instead of <runs>; "
        "no training needed, the training table is read from their checkpoints",
    )
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--robust-limit", type=int, default=10, help="test files per visual degradation")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-robustness", action="store_true")
    ap.add_argument(
        "--real-av",
        type=Path,
        default=ROOT.parent / "shared" / "real_av",
        help="real NTCD-TIMIT clips for the sanity-check section (skipped when absent)",
    )
    args = ap.parse_args(argv)
    sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]  # the package, and scripts/real_clips.py
    from pyro_minvae.atomic import write_text_atomic
    from pyro_minvae.evaluation.summary import PESQ_NOTE
    from pyro_minvae.paths import cache_dir

    runs = args.runs or cache_dir() / "runs" / "demo"
    out = cache_dir() / "results"
    if args.shipped:
        from pyro_minvae.pretrained import pretrained_path

        ckpts = {f: pretrained_path(f) for f in FAMILIES}
        main_dir = out / "evaluation-shipped"
    else:
        ckpts = {f: runs / f / "best.pt" for f in FAMILIES}
        # the main evaluation shares make demo's folder: evaluate resumes, so pairs the demo scored are not redone
        main_dir = runs / "evaluation"
    missing = [str(p) for p in ckpts.values() if not p.exists()]
    if missing:
        sys.exit(f"error: missing checkpoints {', '.join(missing)}; run `make demo` first (or pass --shipped)")
    t0 = time.time()
    limit = ["--limit", str(args.limit)] if args.limit else []
    ck_args = [a for f, p in ckpts.items() for a in ("--checkpoint", f"{f}={p}")]
    import real_clips

    ck_args += ["--ensemble", ",".join(real_clips.ENSEMBLE)]  # the three families together: ensemble-fast, ...
    redo = ["--redo-changed"]  # a method whose definition or checkpoint changed since is run again alone
    run(PM + ["evaluate", "--out", str(main_dir), "--jobs", str(args.jobs), "--no-progress", *redo, *limit, *ck_args])
    robust = {}
    if not args.skip_robustness:
        # degraded lips: the visual-initialised methods only (their audio-only twins do not read the video)
        methods = "noisy,minvae-mcem,minvae-fast,minvae-audio-init,avcvae-fast"
        for deg in ROBUSTNESS:
            d = out / f"video-{deg.replace(':', '-')}"
            run(
                PM
                + [
                    "evaluate",
                    "--out",
                    str(d),
                    "--jobs",
                    str(args.jobs),
                    "--no-progress",
                    "--snr=-5,0",
                    "--limit",
                    str(args.robust_limit),
                    "--metrics",
                    "si_sdr,estoi",
                    "--methods",
                    methods,
                    "--video-degrade",
                    deg,
                    "--no-figures",
                    *redo,
                    *ck_args,
                ]
            )
            text = section((d / "summary.md").read_text(), "All noise types")
            robust[deg] = text.replace("\n### ", "\n#### ").replace("### ", "#### ", 1)
    speed_md = ""
    if not args.skip_speed:
        spd = out / "speed.json"
        run(
            [
                sys.executable,
                "benchmarks/speed.py",
                "--out",
                str(spd),
                "--md",
                str(out / "speed.md"),
                *[a for f, p in ckpts.items() for a in ("--checkpoint", f"{f}={p}")],
            ]
        )
        speed_md = (out / "speed.md").read_text()
    real_md = real_clips_section(args.real_av, ckpts)
    summary = (main_dir / "summary.md").read_text()
    figs_src = main_dir / "figures"
    figs_dst = ROOT / "docs" / "figures" / "results"
    if figs_dst.exists():
        shutil.rmtree(figs_dst)
    figs_dst.mkdir(parents=True)
    figures = []
    for png in sorted(figs_src.glob("*.png")):
        shutil.copy2(png, figs_dst / png.name)
        figures.append(f"![{png.stem}](figures/results/{png.name})")
    discussion = (ROOT / "docs" / "results-discussion.md").read_text()
    settings = json.loads((main_dir / "summary.json").read_text())["settings"]
    subset = f"a subset balanced over SNR and noise type (--limit {args.limit})" if args.limit else "all files"
    parts = [
        "# Results",
        "*Generated by `make results` (scripts/make_results.py); do not edit by hand. The discussion at the end "
        "is docs/results-discussion.md.*",
        f"Test set: {settings['n_files']} noisy mixtures of the demo corpus's test split (speakers unseen in "
        f"training), {subset}; "
        f"methods: {', '.join(settings['methods'])}. Cells are mean ± 95% confidence interval over files. "
        f"Wall time of this page: {time.time() - t0:.0f} s on this machine.",
        PESQ_NOTE,
        "## Training",
        training_table(checkpoint_rows(ckpts), to_best=True) if args.shipped else training_table(summary_rows(runs)),
        "## All noise types",
        section(summary, "All noise types"),
        "## Improvement over the noisy input",
        section(summary, "Improvement over the noisy input"),
        "## Per noise type",
        section(summary, "Per noise type"),
    ]
    if real_md:
        parts += ["## Real recordings (sanity check, never tuned on)", real_md]
    if robust:
        parts.append("## Robustness: degraded lips (SNR -5 and 0 dB)")
        for deg, text in robust.items():
            parts += [f"### `--video-degrade {deg}`", text]
    if speed_md:
        parts += ["## Speed", speed_md]
    parts += ["## Figures", "\n\n".join(figures), discussion]
    page = ROOT / "docs" / "results.md"
    parts += kept_sections(page.read_text() if page.exists() else "", discussion)
    write_text_atomic(page, "\n\n".join(parts) + "\n")
    print(f"wrote docs/results.md in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    from pyro_minvae.entry import run_script  # one line, no traceback, on a user error or Ctrl-C

    sys.exit(run_script(main))
