"""`make pretrained`: the models that ship with the package, from the checkpoints of `make train-best`.

    .venv/bin/python scripts/export_pretrained.py [--runs <cache>/runs/best] [--limit 30] [--jobs 2]

For each of A-VAE, AV-CVAE and MIN-VAE: write ``pyro_minvae/pretrained/<name>.pt`` (weights and settings only,
float16 storage), enhance a few validation mixtures with the float32 original and with the shipped file (same
seed) to measure what the storage costs, evaluate the shipped files on ``--limit`` mixtures of the demo test split
with `pyro-minvae evaluate` (default settings), measure MIN-VAE's lips informativeness on rendered and real
mouths (../shared/real_av when present), and write the model card ``pyro_minvae/pretrained/<name>.md``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pyro_minvae.audio_io import load_audio  # noqa: E402
from pyro_minvae.data.manifest import read_manifest, resolve  # noqa: E402
from pyro_minvae.data.prepare.lips import load_lips  # noqa: E402
from pyro_minvae.enhancement import Enhancer  # noqa: E402
from pyro_minvae.evaluation.results import ResultsFile  # noqa: E402
from pyro_minvae.evaluation.summary import summarise  # noqa: E402
from pyro_minvae.metrics import si_sdr  # noqa: E402
from pyro_minvae.paths import cache_dir  # noqa: E402
from pyro_minvae.pretrained import CATALOGUE  # noqa: E402
from pyro_minvae.pretrained.card import CardInputs, render_card  # noqa: E402
from pyro_minvae.pretrained.export import export_checkpoint  # noqa: E402

PM = [sys.executable, "-m", "pyro_minvae.cli.main"]  # as scripts/make_results.py: the running interpreter's CLI
METRICS = ("si_sdr", "pesq_wb", "pesq_nb", "stoi", "estoi")


def storage_check(source: Path, shipped: Path, manifest: Path, n: int) -> list:
    """SI-SDR of ``n`` validation mixtures enhanced with the float32 source and with the shipped file."""
    mixtures = [r for r in read_manifest(manifest) if r.get("kind") == "mixture" and r["split"] == "valid"]
    step = max(1, len(mixtures) // max(n, 1))
    rows = []
    enhancers = {k: Enhancer.from_checkpoint(p) for k, p in (("float32", source), ("shipped", shipped))}
    for r in mixtures[::step][:n]:
        clean = load_audio(resolve(manifest, r["clean"]), 16000)
        noisy = load_audio(resolve(manifest, r["audio"]), 16000)
        visual = {"lips": load_lips(resolve(manifest, r["lips"])), "fps": float(r["fps"])}
        row = {"id": r["id"]}
        for key, enh in enhancers.items():
            out = enh.enhance_waveform(noisy, 16000, visual, seed=0).waveform.numpy()
            row[f"si_sdr_{key}"] = si_sdr(clean, out)
        rows.append(row)
    return rows


def _portable(command: list) -> str:
    """The command as a user would type it: cache and repository paths written as ``<cache>`` and relative."""
    text = " ".join(command)
    return text.replace(str(cache_dir()), "<cache>").replace(str(REPO) + "/", "")


def lips_table(checkpoint: Path) -> str:
    run = [sys.executable, str(REPO / "scripts" / "lips_informativeness.py"), "--checkpoint", str(checkpoint)]
    return subprocess.run(run, check=True, capture_output=True, text=True).stdout.strip()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, default=cache_dir() / "runs" / "best")
    ap.add_argument("--out", type=Path, default=REPO / "pyro_minvae" / "pretrained")
    ap.add_argument("--manifest", type=Path, default=cache_dir() / "corpora" / "demo" / "manifest.jsonl")
    ap.add_argument("--limit", type=int, default=30, help="test mixtures evaluated per model")
    ap.add_argument("--storage-files", type=int, default=4, help="validation mixtures for the float16 check")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--eval-out", type=Path, default=cache_dir() / "runs" / "pretrained-evaluation")
    args = ap.parse_args(argv)

    sources = {name: args.runs / name / "best.pt" for name in CATALOGUE}
    shipped = {name: args.out / f"{name}.pt" for name in CATALOGUE}
    states = {}
    for name in CATALOGUE:
        states[name] = export_checkpoint(sources[name], shipped[name])
        print(f"{name}: {sources[name]} -> {shipped[name]} ({shipped[name].stat().st_size / 1e6:.2f} MB)", flush=True)

    methods = ["noisy"] + [f"{name}-mcem" for name in CATALOGUE]
    evaluate = ["evaluate", "--methods", ",".join(methods), "--limit", str(args.limit), "--jobs", str(args.jobs)]
    evaluate += ["--metrics", ",".join(METRICS), "--no-figures", "--no-progress", "--restart"]
    evaluate += ["--out", str(args.eval_out), "--manifest", str(args.manifest)]
    for name, path in shipped.items():
        evaluate += ["--checkpoint", f"{name}={path}"]
    subprocess.run(PM + evaluate, check=True)
    rows = ResultsFile(args.eval_out / "results.csv", METRICS).read()

    for name, model in CATALOGUE.items():
        method_rows = [r for r in rows if r["method"] == f"{name}-mcem"]
        summary = summarise(method_rows, METRICS, [f"{name}-mcem"])
        summary["n_files"] = len(method_rows)
        card = CardInputs(
            name=name,
            title=model.title,
            state=states[name],
            path=shipped[name],
            summary=summary,
            storage_check=storage_check(sources[name], shipped[name], args.manifest, args.storage_files),
            lips=lips_table(shipped[name]) if name == "minvae" else None,
            commands=["make train-best", "make pretrained", _portable(["pyro-minvae", *evaluate])],
            caveat=model.caveat,
        )
        (args.out / f"{name}.md").write_text(render_card(card))
        print(f"{name}: card {args.out / f'{name}.md'}", flush=True)
    return 0


if __name__ == "__main__":
    from pyro_minvae.entry import run_script  # one line, no traceback, on a user error or Ctrl-C

    sys.exit(run_script(main))
