"""``pyro-minvae train``: fit a speech model (vae, avae, avcvae, minvae) on a prepared corpus with SVI.

Reads the manifest's clean ``train`` and ``valid`` records, trains with :func:`pyro_minvae.training.train` and
writes ``last.pt``, ``best.pt``, ``log.csv`` (and ``responsibilities.json`` for MIN-VAE) into ``--out``. A folder
that already holds a run is refused unless ``--resume`` (continue it) or ``--overwrite`` (replace it) is given.
Multi-process: ``torchrun --nproc_per_node N -m pyro_minvae.cli.main train ...`` (``--batch-size`` per process).
"""

from __future__ import annotations

import logging
from pathlib import Path

import click

from pyro_minvae.cli.common import choice_option
from pyro_minvae.errors import UserInputError

log = logging.getLogger("pyro_minvae")


def _default_manifest() -> Path:
    from pyro_minvae.paths import default_manifest

    return default_manifest()


@click.command(name="train")
@click.option(
    "--model",
    "family",
    default="minvae",
    show_default=True,
    help="Model family (registry MODELS): vae, avae, avcvae, minvae, markov-vae, or one you registered.",
)
@click.option(
    "--encoders",
    default=None,
    help="Comma-separated encoders/modalities, e.g. audio,lips "
    "(default: the family's own; vae: one of audio, lips, landmarks).",
)
@click.option(
    "--manifest",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Corpus manifest (default: the demo corpus under the cache dir).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Checkpoint folder (default: <cache>/runs/<model>). A folder holding a run is refused unless "
    "--resume or --overwrite is given.",
)
@click.option(
    "--epochs", default=20, show_default=True, type=int, help="Total epochs (with --resume: may be raised to train on)."
)
@click.option(
    "--batch-size", default=128, show_default=True, type=int, help="Frames per batch (per process under torchrun)."
)
@click.option("--lr", default=1e-3, show_default=True, type=float, help="Adam learning rate (finite, > 0).")
@choice_option("--schedule", ["plateau", "cosine", "constant"], "plateau", "Learning-rate schedule.")
@click.option("--latent-dim", default=32, show_default=True, type=int)
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--patience", default=20, show_default=True, type=int, help="Early stopping: epochs without validation improvement."
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue the run in --out from its last.pt (bit-for-bit); the "
    "settings must be the run's own (only --epochs and --device may change).",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace the run in --out; the old files stay until the new run has finished its first epoch.",
)
@click.option(
    "--init-from",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Warm start from a checkpoint (repeatable; earlier ones win), e.g. A-VAE then V-VAE for MIN-VAE.",
)
@choice_option(
    "--responsibilities",
    ["marginal", "epoch"],
    "marginal",
    "MIN-VAE q(c): optimal per batch, or the paper's per-epoch closed form.",
)
@click.option(
    "--cvae-weight",
    default=0.5,
    show_default=True,
    type=float,
    help="AV-CVAE: weight of the reconstruction-from-prior term.",
)
@click.option(
    "--kl-weight",
    default=1.0,
    show_default=True,
    type=float,
    help="Weight of the latents' KL in the training loss (a beta-VAE; 1: the ELBO). Validation scores the ELBO.",
)
@click.option("--max-frames", default=None, type=int, help="Use at most this many training frames (quick runs).")
@click.option(
    "--segment-frames",
    default=8,
    show_default=True,
    type=int,
    help="A prior that couples frames (markov-vae) trains on contiguous segments of this many frames.",
)
@click.option(
    "--augment",
    default=None,
    metavar="tilt=DB,band=P,warp=W",
    help="Pass each training frame through a random recording channel: spectral tilt up to DB dB/octave, "
    "band-limiting (cut-off 3.4-7.6 kHz) with probability P, frequency warp up to 1 +- W (see docs/algorithms.md).",
)
@click.option(
    "--encoder-option",
    "encoder_option",
    multiple=True,
    metavar="MODALITY.KEY=JSON",
    help="Extra encoder argument for MIN-VAE / V-VAE (repeatable); e.g. lips.pool=1 "
    "lips.hidden=[512,128] gives the paper's visual encoder (default: pool 4, hidden [128]).",
)
@click.option(
    "--model-arg",
    "model_arg",
    multiple=True,
    metavar="KEY=JSON",
    help='Extra argument of the model family\'s builder (repeatable), e.g. prior="mog-mixture" or learn_weights=true.',
)
@click.option(
    "--tensorboard",
    "tensorboard_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Also write the epoch log as TensorBoard scalars to this folder (needs the tensorboard "
    "package: pip install 'pyro-minvae[tensorboard]').",
)
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def command(
    family,
    encoders,
    manifest,
    out_dir,
    epochs,
    batch_size,
    lr,
    schedule,
    latent_dim,
    device,
    seed,
    patience,
    resume,
    overwrite,
    init_from,
    responsibilities,
    cvae_weight,
    kl_weight,
    max_frames,
    segment_frames,
    augment,
    encoder_option,
    model_arg,
    tensorboard_dir,
    no_progress,
):
    """Train a speech model with SVI and write checkpoints."""
    from pyro_minvae.data.datasets import FrameDataset
    from pyro_minvae.parallel import stop_signals
    from pyro_minvae.paths import cache_dir
    from pyro_minvae.training import TrainConfig, required_modalities, train
    from pyro_minvae.training.config import check_device_available
    from pyro_minvae.training.builders import check_model_settings
    from pyro_minvae.training.history import responsibility_line
    from pyro_minvae.training.distributed import exit_worker_process, is_main_process
    from pyro_minvae.training.run_folder import check_run_folder

    enc = tuple(e.strip() for e in encoders.split(",")) if encoders is not None else None
    try:
        import pyro_minvae.models  # noqa: F401  (registers families and components)

        model_kwargs = parse_model_args(model_arg)
        if encoder_option:
            model_kwargs["encoder_options"] = parse_encoder_options(encoder_option)
        cfg = TrainConfig(
            family=family,
            encoders=enc,
            latent_dim=latent_dim,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            schedule=schedule,
            patience=patience,
            responsibilities=responsibilities,
            cvae_weight=cvae_weight,
            kl_weight=kl_weight,
            seed=seed,
            device=device,
            max_frames=max_frames,
            segment_frames=segment_frames,
            model_kwargs=model_kwargs,
            augment=parse_augment(augment),
        )
        modalities = required_modalities(family, enc)
        check_model_settings(family, enc, model_kwargs)
        check_device_available(device)
    except (ValueError, RuntimeError) as exc:
        raise UserInputError(str(exc).splitlines()[0]) from None
    manifest = manifest or _default_manifest()
    out_dir = out_dir or cache_dir() / "runs" / family
    for path in init_from:  # fail before the (slow) data loading
        if not Path(path).exists():
            raise UserInputError(f"{path}: checkpoint not found; train one with `pyro-minvae train`")
    # also before the data loading; train() checks again under the lock (rank 0 holds it under torchrun)
    check_run_folder(out_dir, resume, overwrite, probe_lock=is_main_process())
    train_ds = FrameDataset.from_manifest(manifest, "train", modalities, max_frames=max_frames)
    valid_ds = FrameDataset.from_manifest(manifest, "valid", modalities)
    log.info(
        "training %s on %d frames (%d utterances), validating on %d frames -> %s",
        family,
        len(train_ds),
        len(train_ds.ids),
        len(valid_ds),
        out_dir,
    )
    with stop_signals(raise_now=True):  # SIGTERM stops like Ctrl-C: finished epochs kept, exit 143
        result = train(
            cfg,
            train_ds,
            valid_ds,
            out_dir,
            resume=resume,
            init_from=list(init_from),
            progress=not no_progress,
            tensorboard_dir=tensorboard_dir,
            overwrite=overwrite,
        )
    if result.history:
        last = result.history[-1]
        best = max(r["valid_elbo"] for r in result.history)
        click.echo(
            f"{family}: {last['epoch']} epochs, best valid ELBO {best:.2f} nats/frame, checkpoint {result.best_path}"
        )
    for name, r in result.report.get("components", {}).items():
        click.echo("  " + responsibility_line(name, r))
    exit_worker_process(0)  # under torchrun: skip a teardown that can abort a finished run


def parse_encoder_options(items) -> dict:
    """``["lips.pool=4", "lips.hidden=[128]"]`` -> ``{"lips": {"pool": 4, "hidden": [128]}}`` (values are JSON)."""
    import json

    out: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        modality, dot, name = key.partition(".")
        if not sep or not dot or not modality or not name:
            raise UserInputError(f"--encoder-option {item!r}: expected MODALITY.KEY=VALUE, e.g. lips.pool=4")
        try:
            out.setdefault(modality, {})[name] = json.loads(value)
        except json.JSONDecodeError:
            raise UserInputError(f"--encoder-option {item!r}: the value must be JSON, e.g. 4 or [128]") from None
    return out


def parse_augment(spec: str | None) -> dict:
    """``"tilt=6,band=0.3"`` -> ``{"tilt": 6.0, "band": 0.3}`` (``None``: no augmentation); checked by TrainConfig."""
    if spec is None:
        return {}
    out: dict = {}
    for item in spec.split(","):
        key, sep, value = item.strip().partition("=")
        try:
            if not sep or not key:
                raise ValueError
            out[key] = float(value)
        except ValueError:
            example = "tilt=6,band=0.3,warp=0.1"
            raise UserInputError(f"--augment {spec!r}: expected KEY=NUMBER,..., e.g. {example}") from None
    return out


def parse_model_args(items) -> dict:
    """``["prior=\"mixture\"", "learn_weights=true"]`` -> ``{"prior": "mixture", "learn_weights": True}``.

    Values are JSON; a bare word that is not JSON is taken as a string (``prior=mog-mixture``).
    """
    from pyro_minvae.enhancement.options import parse_key_values

    return parse_key_values(items, "--model-arg", "learn_weights=true")
