"""``pyro-minvae prepare``: build the demo corpus or index users' own data into a manifest.

\b
  pyro-minvae prepare demo [--stats] [--preview OUT.png] [--small]
  pyro-minvae prepare ntcd-timit --root DIR
  pyro-minvae prepare folder --root DIR
  pyro-minvae prepare stats [MANIFEST]
"""

from __future__ import annotations

import contextlib
import json
import signal
from pathlib import Path

import click

from pyro_minvae.cli.common import choice_option, count_option, echo_names, exit_listing_failures
from pyro_minvae.errors import UserInputError


@click.group(name="prepare")
def command() -> None:
    """Prepare a corpus: writes wavs, lip arrays and a manifest.jsonl under the cache directory."""


@command.command("demo")
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Cache root (default $PYRO_MINVAE_CACHE or ~/.cache/pyro-minvae).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for splits, utterances, noise, video.")
@click.option("--small", is_flag=True, help="A tiny corpus (12 speakers, 10 clips each) for quick checks.")
@count_option("--workers", 2, "Worker processes.")
@click.option("--stats", "show_stats", is_flag=True, help="Print minutes/speakers per split and mixture counts.")
@click.option(
    "--preview",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write a PNG (spectrogram, phones, mouth frames) of one test clip.",
)
@click.option("--force", is_flag=True, help="Rebuild even if the corpus is already prepared.")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
@choice_option(
    "--mouth-style",
    ["classic", "ntcd"],
    "classic",
    "Rendered mouths: 'classic' (small centred lips) or 'ntcd' (NTCD-TIMIT-like ROIs: the mouth "
    "fills the frame, teeth, skin texture).",
)
def demo(cache_dir, seed, small, workers, show_stats, preview, force, no_progress, mouth_style) -> None:
    """Build the embedded audio-visual demo corpus from Debian packages (idempotent)."""
    from pyro_minvae.data.prepare.demo import DemoConfig, prepare_demo

    if preview:
        from pyro_minvae.atomic import check_writable

        check_writable(preview)  # now, not after the build
    cfg = DemoConfig(seed=seed, small=small, workers=workers, mouth_style=mouth_style)
    res = prepare_demo(cache_dir, cfg, progress=not no_progress, force=force)
    if res.skipped:
        click.echo(f"demo corpus already prepared at {res.out_dir}; nothing to do (use --force to rebuild)")
    else:
        click.echo(f"demo corpus written to {res.out_dir} in {res.seconds:.0f} s")
    click.echo(f"manifest: {res.manifest}")
    if show_stats:
        _print_stats(res.manifest)
    if preview:
        write_corpus_preview(res.manifest, Path(preview))
        click.echo(f"preview written to {preview}")


@command.command("ntcd-timit")
@click.option("--root", type=click.Path(file_okay=False), required=True, help="NTCD-TIMIT root folder.")
@click.option(
    "--out", type=click.Path(file_okay=False), default=None, help="Output folder (default <cache>/corpora/ntcd-timit)."
)
@click.option(
    "--valid-speakers",
    default=None,
    help="Comma-separated validation speakers (default: every sixth non-test speaker).",
)
@click.option("--all-noisy", is_flag=True, help="Index noisy files of training speakers too.")
@click.option("--stats", "show_stats", is_flag=True, help="Print counts per split.")
@click.option("--force", is_flag=True, help="Re-index even if the copy is unchanged since the last run.")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
def ntcd_timit(root, out, valid_speakers, all_noisy, show_stats, force, no_progress) -> None:
    """Index an NTCD-TIMIT copy (clean + noisy audio, 67x67 lip ROIs) into a manifest.

    Test speakers follow the published protocol (09F 24M 26M 27M 33F 40F 47M 49F 56M). Files that cannot be
    read are skipped and listed (exit status 1); the rest is indexed.
    """
    from pyro_minvae.data.prepare.ntcd_timit import index_ntcd_timit

    vs = [v.strip() for v in valid_speakers.split(",") if v.strip()] if valid_speakers else None
    with _stoppable(out):
        path, skipped = index_ntcd_timit(
            root, out, valid_speakers=vs, all_noisy=all_noisy, force=force, progress=not no_progress
        )
    echo_names(f"manifest: {path}")
    if show_stats:
        _print_stats(path)
    _exit_if_skipped(skipped, "file(s)")


@command.command("folder")
@click.option(
    "--root",
    type=click.Path(file_okay=False),
    required=True,
    help="Folder of NAME.wav + NAME.npy (N,67,67) or NAME.mp4 pairs.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    help="Output folder (default <cache>/corpora/folder-<name>).",
)
@choice_option("--split", ["train", "valid", "test"], "test", "Split recorded for every clip.")
@click.option("--fps", type=float, default=30.0, show_default=True, help="Frame rate of the .npy/.mat lip arrays.")
@choice_option(
    "--kind",
    ["noisy", "clean"],
    None,
    "noisy: recordings to enhance (default for --split test); clean: training speech (default for train/valid).",
)
@click.option(
    "--valid-speakers",
    default=None,
    help="With --split train: comma-separated speakers (sub-folders) held out for validation (default: "
    "every sixth speaker, at least one; one speaker: every tenth recording).",
)
@click.option("--force", is_flag=True, help="Re-index even if the folder is unchanged since the last run.")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
def folder(root, out, split, fps, kind, valid_speakers, force, no_progress) -> None:
    """Index a folder of your own recordings (wav + lip arrays or mp4 video) into a manifest.

    Record ids are the file paths below --root without the extension, folders joined by '~'
    (alice/take1.wav -> alice~take1); they name the files `enhance --manifest` writes.
    """
    from pyro_minvae.data.prepare.folder import index_folder

    vs = [v.strip() for v in valid_speakers.split(",") if v.strip()] if valid_speakers else None
    with _stoppable(out):
        path, skipped = index_folder(
            root, out, split=split, fps=fps, kind=kind, force=force, progress=not no_progress, valid_speakers=vs
        )
    echo_names(f"manifest: {path}")
    _exit_if_skipped(skipped, "recording(s)")


@contextlib.contextmanager
def _stoppable(out):
    """Ctrl-C and SIGTERM stop an index at once; the staging folder is removed and the previous index kept."""
    from pyro_minvae.errors import Interrupted
    from pyro_minvae.parallel import stop_signals

    try:
        with stop_signals(raise_now=True):
            yield
    except KeyboardInterrupt as exc:
        if isinstance(exc, Interrupted) and exc.message:  # it already says what happened to the index
            raise
        signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
        where = out or "the output folder"
        raise Interrupted(signum, f"{where} was left as it was; run the command again") from None


def _exit_if_skipped(skipped: list, what: str) -> None:
    """List the skipped inputs and exit with status 1 (the index of the others is written)."""
    if skipped:
        exit_listing_failures(
            f"{len(skipped)} {what} skipped; fix or remove them and run again:", (item["reason"] for item in skipped)
        )


@command.command("stats")
@click.argument("manifest", type=click.Path(), required=False)
@click.option("--small", is_flag=True, help="Stats of the --small demo corpus.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def stats(manifest, small, as_json) -> None:
    """Counts of a prepared corpus (default: the demo corpus)."""
    from pyro_minvae.data.prepare.demo import corpus_dir

    path = Path(manifest) if manifest else corpus_dir(small) / "manifest.jsonl"
    if path.is_dir():  # the folder a prepare command wrote
        path = path / "manifest.jsonl"
    _print_stats(path, as_json)


def _print_stats(path: Path, as_json: bool = False) -> None:
    from pyro_minvae.data.prepare.stats import corpus_stats, format_stats

    st = corpus_stats(path)
    click.echo(json.dumps(st, indent=1) if as_json else format_stats(st))


def write_corpus_preview(manifest: Path, out_png: Path) -> None:
    """Preview of the first clean test utterance of a demo manifest (needs its ``phones.json``)."""
    import numpy as np

    from pyro_minvae.audio_io import load_audio
    from pyro_minvae.data.manifest import read_manifest, resolve
    from pyro_minvae.visual.align import PhoneSegment
    from pyro_minvae.visual.preview import write_preview

    recs = [r for r in read_manifest(manifest) if r.get("kind", "clean") == "clean" and r.get("lips")]
    if not recs:
        raise UserInputError(f"{manifest}: no clean clip with lips to preview; re-run `pyro-minvae prepare demo`")
    rec = next(
        (r for r in recs if r["split"] == "test" and 3.0 <= r.get("duration", 0) <= 6.0),
        next((r for r in recs if r["split"] == "test"), recs[0]),
    )
    phones_path = Path(manifest).parent / "phones.json"
    phones = []
    if phones_path.exists():
        phones = [PhoneSegment(p, s, e) for p, s, e in json.loads(phones_path.read_text()).get(rec["id"], [])]
    wave = load_audio(resolve(manifest, rec["audio"]))
    frames = np.load(resolve(manifest, rec["lips"]))
    lm_path = resolve(manifest, rec.get("landmarks"))
    landmarks = np.load(lm_path) if lm_path is not None and lm_path.exists() else None
    write_preview(
        wave,
        16000,
        phones,
        frames,
        out_png,
        landmarks=landmarks,
        fps=float(rec.get("fps", 30.0)),
        title=f"{rec['id']} ({rec['speaker']}, {rec['split']})",
    )
