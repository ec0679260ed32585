"""``pyro-minvae enhance``: one noisy file, or a whole manifest split, enhanced with a trained checkpoint.

Single file (``--checkpoint`` is a checkpoint file or a shipped model, ``minvae`` (the default), ``avae`` or
``avcvae``; see :mod:`pyro_minvae.pretrained`)::

    pyro-minvae enhance [--checkpoint CKPT] noisy.wav [--video lips.npy|lips.mp4] [--landmarks pts.npy] -o out.wav

Several ``--checkpoint`` enhance together (an ensemble, :mod:`pyro_minvae.infer.ensemble`: each model runs the
E-step and their Wiener gains are pooled), e.g. the best setting measured: ``-c avae -c minvae -c avcvae
--method fast`` with the lips.

Manifest mode (the mixtures or noisy recordings of one split, one ``<id>.wav`` per record; resumable: existing
outputs are skipped; ``--shard k/N`` takes every N-th record starting at the k-th, 1-based; ``--jobs`` worker
processes; Ctrl-C stops within seconds and keeps the finished files; see
:mod:`pyro_minvae.enhancement.batch`). A bad record (unreadable audio, mismatched lips, ...) does not stop the
batch: the others are finished, the bad ones are listed with their reasons and the exit status is 1::

    pyro-minvae enhance --checkpoint CKPT --manifest M.jsonl --split test --out-dir DIR [--shard 1/4]
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import click

from pyro_minvae.cli.choices import ESTEP_CHOICE, KERNEL_CHOICE, LOOP_CHOICE, PRESET_CHOICE
from pyro_minvae.cli.common import choice_option, exit_listing_failures
from pyro_minvae.errors import Interrupted, UserInputError
from pyro_minvae.parallel import parse_shard

log = logging.getLogger("pyro_minvae")


@dataclass(frozen=True)
class _Run:
    """The settings both modes share; ``options``: the E-step's (see :func:`_opts`)."""

    checkpoints: tuple[str, ...]  # several: an ensemble (their Wiener gains pooled)
    method: str
    seed: int
    device: str
    threads: int | None
    overwrite: bool
    options: dict


# ---- inputs --------------------------------------------------------------------------------------------------------
def _load_model(checkpoints: tuple[str, ...], device: str):
    from pyro_minvae.checkpoint import load_models
    from pyro_minvae.enhancement.options import check_device

    return load_models(checkpoints, check_device(device))


def _opts(
    iterations: int | None,
    init: str | None = None,
    kernel: str | None = None,
    loop: str | None = None,
    preset: tuple[str, str] | None = None,
    extra: tuple[str, ...] = (),
) -> dict:
    """The E-step options the flags give; ``preset`` ``(name, method)`` starts from that preset's options, the
    ``--option KEY=VALUE`` items ``extra`` override it, and a named flag may not give the same option again."""
    from pyro_minvae.enhancement.options import parse_key_values
    from pyro_minvae.infer.presets import preset_options

    named = parse_key_values(extra, "--option", "noise_start=0.5")
    flags = {"iterations": iterations, "loop": loop, "init": init, "kernel": kernel}
    for key, value in flags.items():
        if value is not None and key in named:
            raise UserInputError(f"--option {key}=... and --{key}: give {key} once")
    given = {key: value for key, value in flags.items() if value is not None}
    return {**(preset_options(*preset) if preset is not None else {}), **named, **given}


def _check_init(model, init: str | None) -> None:
    from pyro_minvae.enhancement.options import check_model_options

    check_model_options(model, "mcem", {"init": init})


# ---- command -------------------------------------------------------------------------------------------------------
@click.command(name="enhance")
@click.argument("noisy", required=False, type=click.Path(dir_okay=False))
@click.option(
    "-c",
    "--checkpoint",
    "checkpoints",
    multiple=True,
    metavar="PATH|NAME",
    help="Trained model checkpoint, or a shipped model: minvae (default), avae, avcvae. Repeat it to enhance "
    "with several models together (an ensemble: their Wiener gains pooled), e.g. -c avae -c minvae -c avcvae "
    "--method fast.",
)
@click.option(
    "--video",
    type=click.Path(dir_okay=False),
    help="Lip ROIs: .npy (N, 67, 67), a mouth-ROI video or a "
    "face video (the mouth is found). Not needed when NOISY is itself a video (talk.mp4).",
)
@click.option("--landmarks", type=click.Path(dir_okay=False), help="Lip landmarks .npy (N, P, 2).")
@click.option(
    "--fps",
    type=float,
    default=None,
    help="Frame rate of --video/--landmarks (default: from the video file, else the checkpoint's).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(),
    help="Output wav (single-file mode), or a video (.mp4, .mkv, "
    ".mov: the input video with the enhanced audio, video stream copied); a folder (ending in / or "
    "existing) gets NOISY's name with .wav. Never one of the inputs.",
)
@click.option(
    "--manifest",
    type=click.Path(dir_okay=False),
    help="Enhance the mixtures (or noisy recordings) of a manifest split.",
)
@click.option("--split", default="test", show_default=True, help="Manifest split (manifest mode).")
@click.option("--out-dir", type=click.Path(file_okay=False), help="Output folder (manifest mode).")
@click.option(
    "--method",
    type=ESTEP_CHOICE,
    default="mcem",
    show_default=True,
    help="mcem: the paper's Monte-Carlo EM; fast (= vem): variational EM.",
)
@click.option(
    "--iterations", type=int, default=None, help="EM iterations (default: the method's; mcem 30, the paper 100)."
)
@click.option(
    "--preset",
    type=PRESET_CHOICE,
    default=None,
    help="Start from a named set of E-step options (paper: the published configuration; mcem: 100 iterations, "
    "free NMF activations, plain Wiener gain); the options given next to it win.",
)
@click.option(
    "--option",
    "extra_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Any option of the E-step by name (repeatable), e.g. --option noise_start=0.5 --option gain_floor=0.05; "
    "values are JSON (numbers, true/false, null) or words. They override --preset. The options and what they do: "
    "docs/algorithms.md.",
)
@click.option(
    "--loop",
    type=LOOP_CHOICE,
    default=None,
    help="mcem only: classic (default; MIN-VAE with its mixture prior and re-estimated weights) or "
    "minvae (MIN-VAE's published variational loop).",
)
@click.option(
    "--init",
    "init_from",
    default=None,
    help="Encoder that initialises z, e.g. audio or lips (default: "
    "MIN-VAE the visual one, as in the paper; others their only encoder).",
)
@click.option(
    "--kernel",
    type=KERNEL_CHOICE,
    default=None,
    help="E-step MCMC kernel by registry name (KERNELS; default frame-mh, "
    "the paper's frame-wise random-walk MH; frame-mh-jump adds jumps between a mixture "
    "prior's components, MIN-VAE).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True, help="torch device, e.g. cpu or cuda.")
@click.option("--jobs", type=int, default=2, show_default=True, help="Worker processes (manifest mode).")
@click.option(
    "--batch-size",
    type=int,
    default=1,
    show_default=True,
    help="Manifest mode, --method mcem: records "
    "enhanced together in one batched E-step (each output as alone, same seed); 8-10 saves CPU on short "
    "files.",
)
@click.option(
    "--threads",
    type=int,
    default=None,
    help="torch threads per process (default 1, in manifest mode per worker: the fastest on a busy machine).",
)
@click.option("--shard", default="1/1", show_default=True, help="k/N: this job's share of the records.")
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace an existing -o file (single file); re-enhance records whose output exists (manifest mode).",
)
@choice_option(
    "--crop",
    ["auto", "face", "none"],
    "auto",
    "Video NOISY: find the mouth in each frame (face), use the frames as they are (none: already cropped mouth "
    "videos), or tell them apart (auto).",
)
@click.option(
    "--save-lips",
    type=click.Path(file_okay=False),
    default=None,
    help="Video NOISY: write the mouth ROIs "
    "the model sees to DIR/<name>.lips.npy and a contact sheet DIR/<name>.lips.png.",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar of EM iterations and chunks on stderr "
    "(single file; default: when stderr is a terminal, not with -q).",
)
def command(
    noisy,
    checkpoints,
    video,
    landmarks,
    fps,
    output,
    manifest,
    split,
    out_dir,
    method,
    iterations,
    preset,
    extra_options,
    loop,
    init_from,
    kernel,
    seed,
    device,
    jobs,
    batch_size,
    threads,
    shard,
    overwrite,
    crop,
    save_lips,
    progress,
):
    """Enhance NOISY.wav (or every mixture of a manifest split) with a trained or shipped model."""
    from pyro_minvae.enhancement.options import check_device, check_method_options, check_seed, check_threads
    from pyro_minvae.pretrained import resolve_checkpoint

    options = _opts(iterations, init_from, kernel, loop, None if preset is None else (preset, method), extra_options)
    check_method_options(method, options)
    check_device(device)
    check_seed(seed)
    if threads is not None:
        check_threads(threads)
    paths = tuple(str(resolve_checkpoint(c)) for c in checkpoints or (None,))
    if len({os.path.realpath(p) for p in paths}) != len(paths):  # also two spellings of one file
        raise UserInputError("--checkpoint: the same model is given twice; an ensemble needs distinct models")
    run = _Run(paths, method, seed, device, threads, overwrite, options)
    if manifest is not None:
        if noisy is not None or output is not None:
            raise UserInputError("give either NOISY -o OUT or --manifest M --out-dir DIR, not both")
        if out_dir is None:
            raise UserInputError("--manifest needs --out-dir DIR for the enhanced files")
        if jobs < 1:
            raise UserInputError(f"--jobs {jobs}: must be >= 1")
        _check_batch_size(batch_size, method, run.options, len(paths))
        _enhance_manifest(run, manifest, split, out_dir, jobs, shard, batch_size)
        return
    if batch_size != 1:
        raise UserInputError(f"--batch-size {batch_size}: applies to manifest mode (--manifest M --out-dir DIR)")
    if noisy is None or output is None or not output.strip():
        raise UserInputError("missing input: give NOISY.wav -o OUT.wav (or --manifest M --out-dir DIR)")
    _enhance_one(run, noisy, output, video, landmarks, fps, progress, _video_reader_options(noisy, crop, save_lips))


def _check_batch_size(batch_size: int, method: str, opts: dict, n_models: int = 1) -> None:
    from pyro_minvae.infer.batched import batch_refusal

    if batch_size < 1:
        raise UserInputError(f"--batch-size {batch_size}: must be >= 1")
    reason = batch_refusal(method, opts, n_models) if batch_size > 1 else None
    if reason:
        raise UserInputError(f"--batch-size {batch_size}: {reason}; use --batch-size 1")


def _enhance_manifest(run: _Run, manifest, split, out_dir, jobs: int, shard: str, batch_size: int = 1) -> None:
    """Manifest mode: a thin wrapper of :func:`pyro_minvae.enhancement.batch.enhance_manifest`."""
    from pyro_minvae.enhancement.batch import DEFAULT_BATCH_THREADS, BatchSettings, enhance_manifest

    _check_init(_load_model(run.checkpoints, "cpu")[0], run.options.get("init"))  # fail early: bad checkpoint/--init
    settings = BatchSettings(
        method=run.method,
        seed=run.seed,
        device=run.device,
        options=run.options,
        jobs=jobs,
        threads=run.threads or DEFAULT_BATCH_THREADS,
        shard=parse_shard(shard),
        overwrite=run.overwrite,
        batch_size=batch_size,
    )
    report = enhance_manifest(run.checkpoints, manifest, split, out_dir, settings)
    click.echo(f"enhanced {len(report.written)} file(s) into {out_dir}")
    if report.failed:
        exit_listing_failures(
            f"{len(report.failed)} file(s) failed; nothing was written for them:",
            (f"{rid}: {report.failed[rid]}" for rid in sorted(report.failed)),
        )


def _video_reader_options(noisy: str, crop: str, save_lips: str | None) -> dict | None:
    """``reader_options`` for a video NOISY (``--crop``, ``--save-lips``); refused for other inputs."""
    from pathlib import Path

    from pyro_minvae.video import VIDEO_SUFFIXES, VideoOptions

    if Path(noisy).suffix.lower() in VIDEO_SUFFIXES:
        return {"video": VideoOptions(crop=crop, save_lips=save_lips)}
    if crop != "auto" or save_lips is not None:
        raise UserInputError(
            f"--crop/--save-lips apply to a video input (talk.mp4), not {noisy}; a face video "
            "given with --video is cropped automatically"
        )
    return None


def _enhance_one(run: _Run, noisy, output, video, landmarks, fps, progress, reader_options: dict | None = None) -> None:
    """Single-file mode: a thin wrapper of :meth:`pyro_minvae.enhancement.Enhancer.enhance_file`."""
    import torch

    from pyro_minvae.enhancement import Enhancer
    from pyro_minvae.enhancement.file import resolve_output
    from pyro_minvae.enhancement.options import DEFAULT_THREADS

    resolve_output(output, noisy, [noisy, video, landmarks, *run.checkpoints], run.overwrite)  # before loading
    torch.set_num_threads(run.threads or DEFAULT_THREADS)
    enh = Enhancer.from_checkpoint(
        run.checkpoints, device=run.device, method=run.method, seed=run.seed, progress=progress, **run.options
    )
    try:
        res = enh.enhance_file(
            noisy, output, video, landmarks, fps=fps, overwrite=run.overwrite, reader_options=reader_options
        )
    except Interrupted as exc:  # Ctrl-C/SIGTERM: the output is only written, atomically, once enhanced
        raise Interrupted(exc.signum, f"nothing was written to {output}") from None
    encoders = "encoder" if len(run.checkpoints) == 1 else "encoders, one per model"  # an ensemble: "audio / lips"
    log.info(
        "%s: %.1f s of audio enhanced in %.1f s (%s, z initialised from the %s %s)",
        res.output,
        res.result.waveform.shape[0] / enh.sample_rate,
        res.result.seconds,
        run.method,
        res.result.init,
        encoders,
    )
    click.echo(f"wrote {res.output}")
