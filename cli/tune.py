"""``pyro-minvae tune``: compare enhancement settings on the validation mixtures (never the test split).

\b
  pyro-minvae tune --checkpoint runs/demo/avae/best.pt --estep fast \\
      --setting default --setting floor10:gain_floor=0.1 --setting paper:preset=paper
Each --setting NAME[:key=value,...] names E-step options (those of `enhance`'s E-step functions, e.g.
iterations=20, rank=5, h_block=16, gain_floor=0.1; preset=paper starts from the published configuration); the
first one (or --reference) is the reference. Writes results.csv
(resumable), tune.json and tune.md under --out: per SNR, per noise type and overall, each setting's mean,
improvement over the noisy input and paired difference from the reference, with 95% intervals.
"""

from __future__ import annotations

from pathlib import Path

import click

from pyro_minvae.cli.choices import comma_list, metric_list, snr_list
from pyro_minvae.cli.common import exit_listing_bad_pairs, resolve_manifest, scoring_options
from pyro_minvae.errors import UserInputError


@click.command(name="tune")
@click.option(
    "-c",
    "--checkpoint",
    "checkpoints",
    multiple=True,
    required=True,
    metavar="PATH|NAME",
    help="Trained model (best.pt) or a shipped model (minvae, avae, avcvae); repeat it to tune an ensemble of "
    "several (their Wiener gains pooled).",
)
@click.option(
    "--setting",
    "settings",
    multiple=True,
    required=True,
    metavar="NAME[:key=value,...]",
    help="A setting to compare (repeatable); options are the E-step's keyword arguments.",
)
@click.option("--reference", default=None, help="Setting the others are compared with (default: the first).")
@click.option("--estep", default="mcem", show_default=True, help="E-step (mcem, fast).")
@click.option("--init", default=None, help="Encoder to initialise z from (e.g. audio); default: the model's.")
@scoring_options(split="valid", split_help="Split to tune on (the test split is refused).", out="tuning")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
def command(
    checkpoints,
    settings,
    reference,
    estep,
    init,
    manifest,
    split,
    out,
    jobs,
    limit,
    snr,
    noise,
    metrics,
    seed,
    no_progress,
) -> None:
    """Compare E-step settings of one checkpoint on the validation mixtures; writes tune.md and tune.json."""
    from pyro_minvae.evaluation.summary import LABELS
    from pyro_minvae.evaluation.tuning import Setting, TuneConfig, comparison_table, run_tuning
    from pyro_minvae.infer import enhance  # noqa: F401  (registers the E-steps)
    from pyro_minvae.pretrained import resolve_checkpoint
    from pyro_minvae.registry import ESTEPS

    manifest_path = resolve_manifest(manifest)
    checkpoints = tuple(resolve_checkpoint(c) for c in checkpoints)  # a file, else a shipped model's name
    if estep not in ESTEPS:
        raise UserInputError(f"--estep {estep!r}: unknown; valid: {', '.join(ESTEPS.names())}")
    metric_names = metric_list(metrics)
    snrs = snr_list(snr)
    cfg = TuneConfig(
        manifest=manifest_path,
        out_dir=Path(out),
        checkpoint=checkpoints,
        settings=[Setting.parse(s) for s in settings],
        estep=estep,
        reference=reference,
        split=split,
        metrics=metric_names,
        jobs=jobs,
        limit=limit,
        snrs=snrs,
        noise_types=comma_list(noise, "--noise"),
        seed=seed,
        init=init,
        progress=not no_progress,
    )
    report = run_tuning(cfg)  # checks every setting before any file is enhanced
    click.echo(f"{report.table['n_files']} files x {len(cfg.settings)} settings; tables in {report.paths['markdown']}")
    for m in metric_names:
        click.echo(f"\n{LABELS.get(m, m)}, paired difference from {cfg.reference}:")
        click.echo(comparison_table(report.table, f"paired_{m}"))
    if report.bad:
        exit_listing_bad_pairs(report.bad, "setting")
