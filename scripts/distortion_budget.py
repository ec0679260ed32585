"""Where the quality goes: oracle estimators, the E-step's own output and gain rules on the validation mixtures.

    .venv/bin/python scripts/distortion_budget.py --checkpoint avae=RUNS/avae/best.pt [--estep fast] \
        [--limit 60] [--rule floor10:floor=0.1 --rule exp05:exponent=0.5] --out /tmp/budget

For each validation mixture (never the test split) and checkpoint: the oracle gains of
:mod:`pyro_minvae.evaluation.distortion`, the E-step (``--estep``, default options) and, applied to that same
E-step's posterior-mean gain, each ``--rule`` (:class:`~pyro_minvae.infer.gain_rule.GainRule`; the same numbers
``--gain-floor``/``--gain-exponent`` give with the same seed). Scores (SI-SDR, PESQ wb/nb, STOI, ESTOI, deltas over
the input) and the gain budget (speech loss, noise left, over-suppressed speech, NMF absorption) go to
``OUT/rows.jsonl`` (resumable per file) and ``OUT/budget.md``: means ± 95% intervals per SNR and paired
differences from the E-step (reference ``<label>-<estep>``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METRICS = ("si_sdr", "pesq_wb", "pesq_nb", "stoi", "estoi")
BUDGET = ("speech_loss_db", "noise_left_db", "over_suppressed", "absorbed_db")


def _rule(spec: str):
    from pyro_minvae.evaluation.tuning import Setting
    from pyro_minvae.infer.gain_rule import GainRule

    s = Setting.parse(spec)
    return s.name, GainRule(**s.options)


def file_rows(
    label, model, cfg, item, rec, estep, rules, seed, nmf_variants=(), estep_options=None, lsa=False, known_noise=False
) -> list[dict]:
    import numpy as np
    import torch

    from pyro_minvae.evaluation.distortion import absorbed_db, gain_budget, known_noise_states, oracle_gains
    from pyro_minvae.evaluation.runner import file_seed
    from pyro_minvae.evaluation.vae_methods import CheckpointMethod
    from pyro_minvae.features.stft import stft
    from pyro_minvae.infer.synthesis import synthesise
    from pyro_minvae.metrics import score, score_input
    from pyro_minvae.registry import ESTEPS

    sr = item.sample_rate
    noisy = torch.from_numpy(item.noisy.astype(np.float32))
    clean = torch.from_numpy(item.clean.astype(np.float32))
    peak = float(noisy.abs().max())
    scale = 1.0 / peak if peak > 1e-8 else 1.0
    x, s = stft(noisy * scale, cfg), stft(clean * scale, cfg)
    n = x - s
    vis = {
        k: torch.from_numpy(v)
        for k, v in CheckpointMethod("unused").visual_features(model, cfg, item.video, len(item.noisy)).items()
    }
    gains = oracle_gains(model, s, n, vis)
    diag = gains.pop("_nmf")
    for vname, opts in nmf_variants:  # the NMF oracles again with other NMF options
        more = oracle_gains(model, s, n, vis, **opts)
        more_diag = more.pop("_nmf")
        for k in ("vae-oracle-nmf", "true-speech-nmf"):
            gains[f"{k}+{vname}"] = more[k]
            diag[f"{k}+{vname}"] = more_diag[k]
    t0 = time.perf_counter()
    res = ESTEPS.get(estep)(model, x, vis, seed=file_seed(seed, item.id), **(estep_options or {}))
    elapsed = time.perf_counter() - t0

    def as_gain(estimate):  # the real gain an estimate applied to the noisy STFT
        return (estimate / torch.where(x.abs() > 0, x, torch.ones_like(x))).real.clamp(0, 1)

    g_method = as_gain(res.estimate)
    name = f"{label}-{estep}"
    gains[name] = g_method
    if known_noise:  # the same E-step with the noise model known and fixed: what the noise estimate costs
        for kname, state in known_noise_states(n).items():
            kres = ESTEPS.get(estep)(
                model,
                x,
                vis,
                seed=file_seed(seed, item.id),
                noise=state,
                fix_noise=True,
                **(estep_options or {}),
            )
            gains[f"{name}+{kname}"] = as_gain(kres.estimate)
    inp = score_input(item.clean, item.noisy, sr, METRICS)
    base = {"id": item.id, "snr_db": float(rec["snr_db"]), "noise_type": rec["noise_type"], "status": "ok"}
    rows = []
    # every gain is synthesised as the E-step's own output is (its synthesis_density), so the rows compare gains only
    density = ESTEPS.get(estep).make_config(None, **(estep_options or {})).synthesis_density
    for key, g in gains.items():
        wave = (synthesise(noisy * scale, x, g.to(x.real.dtype) * x, cfg, density) / scale).numpy()
        row = dict(base, method=key if key.startswith(label) else f"{label}:{key}")
        row.update(score(item.clean, wave, item.noisy, sr, METRICS, input_scores=inp))
        row.update(gain_budget(g, s, n))
        if key in diag:
            row["absorbed_db"] = absorbed_db(diag[key], s, n)
        if key == name:
            row["absorbed_db"] = absorbed_db(res.nmf, s, n)
            row["enhance_s"] = elapsed
        rows.append(row)
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", action="append", required=True, metavar="LABEL=PATH")
    ap.add_argument("--manifest", type=Path, default=None)
    ap.add_argument("--estep", default="fast")
    ap.add_argument("--limit", type=int, default=None, help="files, balanced over SNR and noise type")
    ap.add_argument("--rule", action="append", default=[], metavar="NAME:key=value,...")
    ap.add_argument(
        "--nmf",
        action="append",
        default=[],
        metavar="NAME:rank=5,h_block=8",
        help="also fit the two NMF oracles with these NMF options",
    )
    ap.add_argument("--lsa", action="store_true", help="also the log-spectral amplitude gain of the E-step")
    ap.add_argument(
        "--known-noise", action="store_true", help="also the E-step with the noise model known (true power, NMF of it)"
    )
    ap.add_argument("--estep-options", default="", metavar="key=value,...", help="options of the E-step run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    import torch

    from pyro_minvae.atomic import write_text_atomic
    from pyro_minvae.checkpoint import load_model
    from pyro_minvae.evaluation.items import load_item, select_items
    from pyro_minvae.evaluation.row_log import RowLog
    from pyro_minvae.evaluation.tuning import compare, comparison_table
    from pyro_minvae.infer import enhance  # noqa: F401  (registers the E-steps)
    from pyro_minvae.paths import cache_dir

    torch.set_num_threads(1)
    manifest = args.manifest or cache_dir() / "corpora" / "demo" / "manifest.jsonl"
    recs = select_items(manifest, "valid", limit=args.limit)
    from pyro_minvae.evaluation.tuning import Setting

    rules = [_rule(r) for r in args.rule]
    nmf_variants = [(s.name, dict(s.options)) for s in map(Setting.parse, args.nmf)]
    estep_options = dict(Setting.parse("x:" + args.estep_options).options)
    args.out.mkdir(parents=True, exist_ok=True)
    log = RowLog(args.out / "rows.jsonl")
    t0 = time.time()
    with log.resumable():
        for spec in args.checkpoint:
            label, _, path = spec.partition("=")
            model, cfg = load_model(path)[:2]
            done = {r["id"] for r in log.rows if r["method"] == f"{label}-{args.estep}"}
            for i, rec in enumerate(recs):
                if rec["id"] in done:
                    continue
                item = load_item(rec, manifest, cfg.sample_rate, need_video=True)
                log.add(
                    file_rows(
                        label,
                        model,
                        cfg,
                        item,
                        rec,
                        args.estep,
                        rules,
                        args.seed,
                        nmf_variants,
                        estep_options,
                        args.lsa,
                        args.known_noise,
                    )
                )
                print(f"{label} {i + 1}/{len(recs)} {rec['id']} ({time.time() - t0:.0f} s)", flush=True)
    rows = log.rows
    md = [
        f"# Distortion budget on {len(recs)} validation mixtures",
        "",
        f"`{' '.join(['scripts/distortion_budget.py'] + list(argv if argv is not None else sys.argv[1:]))}`",
        "",
    ]
    for spec in args.checkpoint:
        label = spec.partition("=")[0]
        mine = [r for r in rows if r["method"].startswith(label)]
        names = sorted({r["method"] for r in mine}, key=lambda m: (not m.startswith(label + ":"), m))
        table = compare(mine, METRICS + BUDGET, names, f"{label}-{args.estep}")
        md += [f"## {label}", ""]
        for col in [f"delta_{m}" for m in METRICS] + list(BUDGET):
            md += [f"### {col}", "", comparison_table(table, col), ""]
        md += [f"### paired difference from {label}-{args.estep}", ""]
        for m in METRICS:
            md += [f"#### {m}", "", comparison_table(table, f"paired_{m}"), ""]
    write_text_atomic(args.out / "budget.md", "\n".join(md) + "\n")
    print(f"wrote {args.out / 'budget.md'}")


if __name__ == "__main__":
    from pyro_minvae.entry import run_script  # one line, no traceback, on a user error or Ctrl-C

    sys.exit(run_script(main))
