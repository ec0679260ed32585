"""Corpora derived from another corpus's manifest (the research scripts' widened or re-mixed copies).

A derived corpus is a new folder holding ``manifest.jsonl`` and the wavs it adds; the base corpus's records it keeps
point back into the base corpus by absolute paths. It is written in full or not at all: the scripts build it in a
staging folder next to ``out`` (:func:`staged_corpus`) that an error or Ctrl-C removes, then rename it.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Iterator

from ..atomic import replace_directory
from ..errors import UserInputError
from .manifest import FILE_FIELDS, resolve


def absolute_paths(records: list[dict], manifest: Path) -> list[dict]:
    """The records with their file fields (:data:`~pyro_minvae.data.manifest.FILE_FIELDS`) resolved against the
    manifest's folder, so that they stay valid from another folder."""
    return [{**r, **{k: str(resolve(manifest, r[k])) for k in FILE_FIELDS if r.get(k)}} for r in records]


@contextlib.contextmanager
def staged_corpus(out: Path) -> Iterator[Path]:
    """Yield an empty staging folder for the corpus that becomes ``out`` when the block ends without an error.

    ``out`` must not exist or be an empty folder (a one-line ``UserInputError`` otherwise: nothing the user had is
    replaced). On an error or Ctrl-C inside the block the staging folder is removed and the exception goes on.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserInputError(f"{out}: exists and is not an empty folder; give a new --out folder")
    staging = out.parent / f".{out.name}.partial"
    shutil.rmtree(staging, ignore_errors=True)  # left by a run killed outright
    staging.mkdir(parents=True)
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    replace_directory(staging, out)


__all__ = ["absolute_paths", "staged_corpus"]
