"""What several commands share: the way a command lists the items that failed and exits 1, and printing file
names that are not UTF-8. (User errors, exit 2, are handled once, in :class:`pyro_minvae.cli.main.FriendlyGroup`.)
"""

from __future__ import annotations

from typing import Iterable

import click


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
