"""Lips informativeness of a checkpoint on rendered and real mouths (issue 14, item 3).

    .venv/bin/python scripts/lips_informativeness.py --checkpoint CKPT [--manifest M] [--split test]
        [--limit 40] [--real-av ../shared/real_av] [--json OUT.json]

Rendered: the clean records of ``--split`` (speakers unseen in training) with their rendered lips. Real: every
folder under ``--real-av`` holding ``clean.wav`` and ``lips.npy`` (NTCD-TIMIT ROIs, 30 fps). Prints a markdown
table of :mod:`pyro_minvae.evaluation.lips_informativeness` figures (mean and 95% half-width over clips).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pyro_minvae.audio_io import load_audio
from pyro_minvae.checkpoint import load_model
from pyro_minvae.data.manifest import read_manifest, resolve
from pyro_minvae.data.prepare.lips import load_lips
from pyro_minvae.evaluation.lips_informativeness import lips_figure, summarise
from pyro_minvae.paths import cache_dir

NTCD_FPS = 30.0


def rendered_figures(model, cfg, manifest: Path, split: str, limit: int):
    recs = [r for r in read_manifest(manifest) if r.get("kind") == "clean" and r["split"] == split and r.get("lips")]
    for r in recs[:limit] if limit else recs:
        wave = load_audio(resolve(manifest, r["audio"]), cfg.sample_rate)
        lips = load_lips(resolve(manifest, r["lips"]))
        yield lips_figure(model, cfg, wave, lips, float(r.get("fps") or cfg.video_fps), clip=r["id"])


def real_figures(model, cfg, root: Path):
    for d in sorted(p for p in root.iterdir() if (p / "clean.wav").exists() and (p / "lips.npy").exists()):
        wave = load_audio(d / "clean.wav", cfg.sample_rate)
        yield lips_figure(model, cfg, wave, load_lips(d / "lips.npy"), NTCD_FPS, clip=d.name)


def _row(label: str, s: dict) -> str:
    def cell(k):
        return f"{s[k]['mean']:.3f} ± {s[k]['ci95']:.3f}" if s["n"] > 1 else f"{s[k]['mean']:.3f}"

    return f"| {label} | {s['n']} | {cell('r')} | {cell('r_shifted')} | {cell('auc')} | {cell('lips_responsibility')} |"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--manifest", default=str(cache_dir() / "corpora" / "demo" / "manifest.jsonl"))
    ap.add_argument("--split", default="test")
    ap.add_argument("--limit", type=int, default=40, help="rendered clips (0 = all)")
    ap.add_argument("--real-av", default=str(Path(__file__).resolve().parents[2] / "shared" / "real_av"))
    ap.add_argument("--json", help="also write every clip's figures here")
    args = ap.parse_args(argv)
    model, cfg, _ = load_model(args.checkpoint)
    rendered = list(rendered_figures(model, cfg, Path(args.manifest), args.split, args.limit))
    real_root = Path(args.real_av)
    real = list(real_figures(model, cfg, real_root)) if real_root.is_dir() else []
    print(
        "| mouths | clips | r (decoded-lips vs speech energy) | r, lips shifted | speech/silence AUC "
        "| lips responsibility |"
    )
    print("|---|---|---|---|---|---|")
    print(_row(f"rendered ({args.split} speakers)", summarise(rendered)))
    for f in real:
        print(_row(f"real NTCD-TIMIT ({f.clip})", summarise([f])))
    if args.json:
        out = {
            "checkpoint": args.checkpoint,
            "rendered": [f.as_dict() for f in rendered],
            "real": [f.as_dict() for f in real],
        }
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    from pyro_minvae.entry import run_script  # one line, no traceback, on a user error or Ctrl-C

    sys.exit(run_script(main))
