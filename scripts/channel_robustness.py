"""Enhancement through other recording channels: the validation mixtures and their clean references passed through
the same linear filter (telephone band, dull or bright microphone, a room), scored per channel.

    .venv/bin/python scripts/channel_robustness.py --checkpoint avae=RUNS/best/avae/best.pt \
        --checkpoint aug=RUNS/avae-aug/best.pt --methods avae-fast,aug-fast --limit 40 --out /tmp/channels

Channels: :mod:`pyro_minvae.evaluation.channels` (``none`` = as recorded). Methods: any name ``pyro-minvae
evaluate --methods`` takes (baselines, ``<label>-fast``, ``<label>-mcem``, ...), run with their default options;
``--variant NAME:key=value,...`` (repeatable) adds ``<method>+NAME`` for every checkpoint method, with those E-step
options (values as in ``pyro-minvae tune --setting``, e.g. ``full:band_floor_db=null``); ``--ensemble
[NAME=]LABEL,LABEL`` adds ``NAME-fast``, ... as in ``evaluate``.
Rows go to ``OUT/rows.jsonl`` (one line per file, method and channel; a rerun resumes) and the tables to
``OUT/channels.md``: per channel, each method's scores over the input and its paired difference from the first
method, with 95% intervals. Validation split only.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

METRICS = ("si_sdr", "pesq_wb", "pesq_nb", "stoi", "estoi")


def _rows_for_file(rec, manifest, methods, channels, done, seed) -> list[dict]:
    from pyro_minvae.evaluation.items import load_item
    from pyro_minvae.evaluation.runner import file_seed
    from pyro_minvae.metrics import score, score_input

    item = load_item(rec, manifest, 16000, need_video=any(m.needs_video for m in methods.values()))
    rows = []
    for ch_name, channel in channels.items():
        clean = item.clean if channel is None else channel(item.clean)
        noisy = item.noisy if channel is None else channel(item.noisy)
        inp = score_input(clean, noisy, item.sample_rate, METRICS)
        for name, method in methods.items():
            if (rec["id"], name, ch_name) in done:
                continue
            est = method(noisy, item.sample_rate, clean=clean, video=item.video, seed=file_seed(seed, item.id))
            row = {"id": rec["id"], "snr_db": rec["snr_db"], "noise_type": rec["noise_type"], "status": "ok"}
            row.update(method=f"{name}@{ch_name}", channel=ch_name, base_method=name)
            row.update(score(clean, est, noisy, item.sample_rate, METRICS, input_scores=inp))
            rows.append(row)
    return rows


def _variants(methods: dict, settings: list) -> dict:
    """``<method>+<setting>``: each checkpoint (or ensemble) method again with the setting's E-step options."""
    from pyro_minvae.evaluation.vae_methods import CheckpointMethod

    out = {}
    for name, m in methods.items():
        if isinstance(m, CheckpointMethod):
            for s in settings:
                opts = {**m.opts, **s.resolved(m.estep)}
                out[f"{name}+{s.name}"] = type(m)(m.path, m.estep, m.init, m.device, **opts)
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", action="append", default=[], metavar="LABEL=PATH")
    ap.add_argument("--methods", required=True, help="comma list; the first is the reference of the paired columns")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME:key=value,...")
    ap.add_argument("--ensemble", action="append", default=[], metavar="[NAME=]LABEL,LABEL,...")
    ap.add_argument("--channels", default="none,phone,dull,bright,reverb")
    ap.add_argument("--manifest", type=Path, default=None)
    ap.add_argument("--limit", type=int, default=None, help="files, balanced over SNR and noise type")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    import torch

    from pyro_minvae.atomic import write_text_atomic
    from pyro_minvae.errors import UserInputError
    from pyro_minvae.evaluation.channels import RECORDING_CHANNELS
    from pyro_minvae.evaluation.items import select_items
    from pyro_minvae.evaluation.methods import parse_ensembles, resolve_methods
    from pyro_minvae.evaluation.row_log import RowLog
    from pyro_minvae.evaluation.tuning import Setting, compare, comparison_table
    from pyro_minvae.paths import cache_dir

    torch.set_num_threads(1)
    checkpoints = dict(spec.partition("=")[::2] for spec in args.checkpoint)
    ensembles = parse_ensembles(args.ensemble)
    methods = resolve_methods([m.strip() for m in args.methods.split(",")], checkpoints, ensembles)
    methods.update(_variants(methods, [Setting.parse(v) for v in args.variant]))
    names = [c.strip() for c in args.channels.split(",")]
    unknown = [c for c in names if c != "none" and c not in RECORDING_CHANNELS]
    if unknown:
        valid = ", ".join(["none", *RECORDING_CHANNELS.names()])
        raise UserInputError(f"--channels: unknown {', '.join(unknown)}; valid: {valid}")
    channels = {c: None if c == "none" else RECORDING_CHANNELS.build(c, sample_rate=16000) for c in names}
    manifest = args.manifest or cache_dir() / "corpora" / "demo" / "manifest.jsonl"
    recs = select_items(manifest, "valid", limit=args.limit)
    args.out.mkdir(parents=True, exist_ok=True)
    log = RowLog(args.out / "rows.jsonl")
    done = {(r["id"], r["base_method"], r["channel"]) for r in log.rows}
    t0 = time.time()
    with log.resumable():
        for i, rec in enumerate(recs):
            log.add(_rows_for_file(rec, manifest, methods, channels, done, args.seed))
            print(f"{i + 1}/{len(recs)} {rec['id']} ({time.time() - t0:.0f} s)", flush=True)
    rows = log.rows
    command = " ".join(["scripts/channel_robustness.py"] + list(argv if argv is not None else sys.argv[1:]))
    md = [f"# Enhancement through other recording channels: {len(recs)} validation mixtures", "", f"`{command}`", ""]
    for ch in names:
        mine = [r for r in rows if r["channel"] == ch]
        settings = [f"{m}@{ch}" for m in methods]
        table = compare(mine, METRICS, settings, settings[0])
        md += [f"## channel `{ch}`", ""]
        for m in METRICS:
            md += [f"### delta_{m}", "", comparison_table(table, f"delta_{m}"), ""]
            md += [f"### paired_{m} (from {settings[0]})", "", comparison_table(table, f"paired_{m}"), ""]
    write_text_atomic(args.out / "channels.md", "\n".join(md) + "\n")
    print(f"wrote {args.out / 'channels.md'}")


if __name__ == "__main__":
    from pyro_minvae.entry import run_script  # one line, no traceback, on a user error or Ctrl-C

    sys.exit(run_script(main))
