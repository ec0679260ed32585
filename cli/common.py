"""What several commands share: option helpers and groups, the default manifest, the way a command lists the items that
failed and exits 1, and printing file names that are not UTF-8. (User errors, exit 2, are handled once, in
:class:`pyro_minvae.cli.main.FriendlyGroup`.)"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Sequence

import click

from pyro_minvae.errors import UserInputError


def echo_names(text: str, err: bool = False) -> None:
    """``click.echo`` for text holding file names: a name that is not UTF-8 (Linux names are bytes) is shown with
    a replacement character, as ``ls`` does, instead of failing to print."""
    click.echo(text.encode("utf-8", "surrogateescape").decode("utf-8", "replace"), err=err)


def exit_listing_failures(header: str, lines: Iterable[str], err: bool = False) -> None:
    """Print ``header``, then each of ``lines`` indented by two spaces, and exit with status 1: some items failed,
    the others' results are written (``err``: on stderr)."""
    echo_names(header, err=err)
    for line in lines:
        echo_names(f"  {line}", err=err)
    click.get_current_context().exit(1)


def exit_listing_bad_pairs(bad: list[dict], kind: str) -> None:
    """``evaluate``/``tune``: list the (``kind``, file) pairs that failed, on stderr, and exit 1 (the results of
    the others are written). ``bad``: dicts with ``method`` (the method or setting), ``id`` and ``reason``."""
    lines = (f"{b['method']} {b['id']}: {b['reason']}" for b in bad)
    exit_listing_failures(f"{len(bad)} failed ({kind}, file) pair(s):", lines, err=True)


def resolve_manifest(manifest: str | None) -> Path:
    """``--manifest``, else the one default (:func:`pyro_minvae.paths.default_manifest`); a one-line error when
    the file does not exist."""
    from pyro_minvae.paths import default_manifest

    path = Path(manifest) if manifest else default_manifest()
    if not path.exists():
        hint = "run `pyro-minvae prepare demo` first" if manifest is None else "check --manifest"
        raise UserInputError(f"{path}: manifest not found; {hint}")
    return path


def _stacked(*decorators: Callable) -> Callable:
    """One decorator that applies ``decorators`` as if written one above the other (help lists them in order)."""

    def apply(function: Callable) -> Callable:
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return apply


def choice_option(name: str, choices: Sequence[str], default: str | None, help: str) -> Callable:
    """``name`` taking one of ``choices`` (click refuses others with its usage error); ``--help`` shows the
    default when there is one."""
    return click.option(
        name, type=click.Choice(list(choices)), default=default, show_default=default is not None, help=help
    )


def count_option(name: str, default: int | None, help: str) -> Callable:
    """``name N`` for a count (processes, threads, files): a whole number >= 1 (click refuses others with its
    usage error); ``--help`` shows the default when there is one."""
    return click.option(name, type=click.IntRange(min=1), default=default, show_default=default is not None, help=help)


def scoring_options(*, split: str, split_help: str, out: str) -> Callable:
    """The options of the commands that enhance a manifest's mixtures and score them (``evaluate``, ``tune``):
    which mixtures (``--manifest``, ``--split`` defaulting to ``split``, ``--limit``, ``--snr``, ``--noise``),
    where the resumable results go (``--out``, default ``out``), ``--jobs``, ``--metrics`` and the base ``--seed``.
    """
    return _stacked(
        click.option(
            "--manifest",
            type=click.Path(dir_okay=False),
            default=None,
            help="Manifest with the mixtures (default: the demo corpus, <cache>/corpora/demo/manifest.jsonl, "
            "else demo-small).",
        ),
        click.option("--split", default=split, show_default=True, help=split_help),
        click.option(
            "--out",
            type=click.Path(file_okay=False),
            default=out,
            show_default=True,
            help="Output folder; re-running with the same folder resumes.",
        ),
        count_option("--jobs", 2, "Worker processes."),
        count_option("--limit", None, "At most N files, balanced over SNR and noise type."),
        click.option("--snr", default=None, help="Comma list of SNRs (dB) to keep, e.g. --snr=-5,0."),
        click.option("--noise", default=None, help="Comma list of noise types to keep."),
        click.option(
            "--metrics", default=None, help="Comma list of metrics (default: si_sdr,sdr,pesq_wb,pesq_nb,stoi,estoi)."
        ),
        click.option(
            "--seed", type=int, default=0, show_default=True, help="Base seed (per-file seeds derive from it)."
        ),
    )
