"""``pyro-minvae evaluate``: score enhancement methods on the test mixtures of a manifest.

\b
  pyro-minvae evaluate                                  # all baselines on the demo corpus
  pyro-minvae evaluate --checkpoint minvae=ckpt.pt --methods noisy,minvae-mcem --snr=-5,0 --limit 20
Writes results.csv (per file, resumable), summary.json, summary.md and figures/ under --out; exits 1 when a
file or a method failed (the failures are listed, everything else is still written).
"""

from __future__ import annotations

from pathlib import Path

import click

from pyro_minvae.cli.choices import comma_list, metric_list, snr_list
from pyro_minvae.cli.common import count_option, exit_listing_bad_pairs, resolve_manifest, scoring_options
from pyro_minvae.errors import UserInputError


def _checkpoints(specs: tuple[str, ...]) -> dict[str, Path]:
    """``LABEL=PATH|NAME`` or ``NAME`` items -> ``{label: checkpoint file}`` (a shipped model's name alone is its own
    label: ``avae`` is ``avae=avae``)."""
    from pyro_minvae.pretrained import CATALOGUE, resolve_checkpoint

    out: dict[str, Path] = {}
    for spec in specs:
        label, sep, path = spec.partition("=")
        if not sep and spec in CATALOGUE:
            label, sep, path = spec, "=", spec
        if not sep or not label or not path:
            raise UserInputError(
                f"--checkpoint {spec!r}: expected LABEL=PATH (e.g. --checkpoint mine=run/ckpt.pt) or a shipped "
                f"model's name ({', '.join(CATALOGUE)})"
            )
        if label in out:
            raise UserInputError(f"--checkpoint: label {label!r} given twice; use distinct labels")
        out[label] = resolve_checkpoint(path)  # a file, else a shipped model's name
    _check_family_labels(out)
    return out


def _check_family_labels(ckpts: dict[str, Path]) -> None:
    """A label that names a model family must be that checkpoint's family (``minvae=<an A-VAE file>`` would report
    A-VAE numbers as MIN-VAE's)."""
    import pyro_minvae.models  # noqa: F401  (registers the families)
    from pyro_minvae.evaluation.methods import checkpoint_kind
    from pyro_minvae.registry import MODELS

    for label, path in ckpts.items():
        if label in MODELS and (kind := checkpoint_kind(path)) != label:
            raise UserInputError(
                f"--checkpoint {label}={path}: the label names the {label!r} family but the file "
                f"holds model family {kind!r}; use --checkpoint {kind}={path} or a label that is not "
                "a family name"
            )


@click.command(name="evaluate")
@scoring_options(split="test", split_help="Manifest split to evaluate.", out="evaluation")
@click.option(
    "--methods",
    default=None,
    help="Comma list of methods (default: every baseline plus the methods of each checkpoint).",
)
@click.option(
    "-c",
    "--checkpoint",
    "checkpoints",
    multiple=True,
    metavar="LABEL=PATH|NAME",
    help="A trained model, or a shipped one (minvae, avae, avcvae), to evaluate (repeatable); its methods are "
    "named after LABEL. A shipped model's name alone is its own label (-c avae).",
)
@click.option(
    "--ensemble",
    "ensembles",
    multiple=True,
    metavar="[NAME=]LABEL,LABEL,...",
    help="Checkpoints (by --checkpoint LABEL) that enhance together, their Wiener gains pooled (repeatable); "
    "adds NAME-fast, NAME-mcem, ... (NAME default: ensemble).",
)
@count_option("--threads", 1, "torch threads per worker process (1 is fastest on a busy machine).")
@count_option(
    "--batch-size",
    1,
    "Files per batched MCEM task for the VAE methods that allow it (each scored as alone, same seed); "
    "the other methods run one file per task.",
)
@click.option("--save-audio", is_flag=True, help="Also write enhanced wavs to OUT/audio/<method>/<id>.wav.")
@click.option("--example", default=None, help="File id for the spectrogram figure (default: one near 0 dB).")
@click.option("--figures/--no-figures", default=True, show_default=True, help="Write PNG figures.")
@click.option(
    "--video-degrade",
    default=None,
    metavar="NAME:VALUE",
    help="Degrade the visual stream: drop:P, occlude:F, noise:S or shift:K (robustness experiments).",
)
@click.option(
    "--shard",
    default=None,
    metavar="K/N",
    help="Evaluate only the K-th of N interleaved parts (1 <= K <= N). Shards may share one --out; a final "
    "run without --shard then skips every finished pair and writes the full summary.",
)
@click.option(
    "--restart",
    is_flag=True,
    help="Discard the results already in --out (made with other settings or checkpoints); start over.",
)
@click.option(
    "--redo-changed",
    is_flag=True,
    help="Run again only the methods whose definition or checkpoint changed since the results in --out (their "
    "old rows are dropped, the others kept); every other setting must match. Not with --shard.",
)
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
def command(
    manifest,
    split,
    methods,
    checkpoints,
    ensembles,
    out,
    jobs,
    threads,
    batch_size,
    limit,
    snr,
    noise,
    metrics,
    seed,
    save_audio,
    example,
    figures,
    video_degrade,
    shard,
    restart,
    redo_changed,
    no_progress,
) -> None:
    """Run enhancement methods over the test mixtures and report SI-SDR, SDR, PESQ and (E)STOI."""
    from pyro_minvae.evaluation import EvalConfig, default_checkpoints, resolve_methods, run_evaluation
    from pyro_minvae.evaluation.methods import parse_ensembles
    from pyro_minvae.parallel import parse_shard

    manifest_path = resolve_manifest(manifest)
    metric_names = metric_list(metrics)
    ckpts = _checkpoints(checkpoints) if checkpoints else default_checkpoints()
    chosen = resolve_methods(comma_list(methods, "--methods"), ckpts, parse_ensembles(ensembles))
    if redo_changed and shard is not None:
        raise UserInputError("--redo-changed rewrites results.csv, which shards share; run it without --shard")
    cfg = EvalConfig(
        manifest=manifest_path,
        out_dir=Path(out),
        split=split,
        jobs=jobs,
        threads=threads,
        batch_size=batch_size,
        limit=limit,
        snrs=snr_list(snr),
        noise_types=comma_list(noise, "--noise"),
        metrics=metric_names,
        seed=seed,
        save_audio=save_audio,
        figures=figures,
        example_id=example,
        progress=not no_progress,
        restart=restart,
        redo_changed=redo_changed,
        video_degradation=video_degrade,
        shard=parse_shard(shard) if shard is not None else None,
    )
    report = run_evaluation(cfg, chosen)
    click.echo(
        f"{report.n_items} files x {len(chosen)} methods ({report.n_evaluated} pairs run now) "
        f"in {report.wall_s:.1f} s; results in {out}"
    )
    click.echo(report.table())
    if report.bad:
        exit_listing_bad_pairs(report.bad, "method")
