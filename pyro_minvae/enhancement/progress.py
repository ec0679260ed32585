"""A terminal progress bar for one long enhancement: EM iterations across the recording's chunks (tqdm, stderr).

Shown only where someone watches: stderr is a terminal and the ``pyro_minvae`` logger shows INFO (``-q`` hides
it); ``enabled=True`` forces it (tests), ``False`` turns it off.
"""

from __future__ import annotations

import logging
import sys

log = logging.getLogger("pyro_minvae")


def progress_wanted(enabled: bool | None = None) -> bool:
    """``enabled`` when given, else: stderr is a terminal and INFO messages are shown (not ``--quiet``)."""
    if enabled is not None:
        return bool(enabled)
    isatty = getattr(sys.stderr, "isatty", None)  # a replaced stderr (test runners, notebooks) may lack it
    return bool(isatty and isatty()) and log.isEnabledFor(logging.INFO)


class TerminalProgress:
    """:class:`~pyro_minvae.infer.enhance.EnhanceProgress` as one tqdm bar on stderr counting EM iterations over
    all chunks (``iterations`` per chunk when known), with the current chunk in the bar's description."""

    def __init__(self, iterations: int | None = None, desc: str = "enhance", stream=None):
        self.iterations = iterations
        self.desc = desc
        self.stream = stream
        self.bar = None
        self.n_chunks = 1

    def start(self, n_chunks: int) -> None:
        from tqdm import tqdm

        self.n_chunks = n_chunks
        total = None if self.iterations is None else self.iterations * n_chunks
        desc = self.desc if n_chunks == 1 else f"{self.desc} chunk 1/{n_chunks}"
        self.bar = tqdm(
            total=total,
            desc=desc,
            unit="it",
            file=self.stream or sys.stderr,
            leave=False,
            dynamic_ncols=True,
            mininterval=0.5,
        )

    def iteration(self, chunk: int, it: int, info: dict) -> None:
        if self.bar is not None:
            if self.n_chunks > 1:
                self.bar.set_description(f"{self.desc} chunk {chunk + 1}/{self.n_chunks}", refresh=False)
            self.bar.update(1)

    def chunk_done(self, chunk: int) -> None:
        if self.bar is not None and self.iterations is not None:  # an early stop (tol) skips the rest of a chunk
            self.bar.n = max(self.bar.n, (chunk + 1) * self.iterations)
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def make_progress(enabled: bool | None, iterations: int | None, desc: str = "enhance"):
    """A :class:`TerminalProgress` when :func:`progress_wanted`, else ``None``."""
    return TerminalProgress(iterations, desc) if progress_wanted(enabled) else None
