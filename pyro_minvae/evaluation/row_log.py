"""The rows of a resumable script run (``scripts/distortion_budget.py``, ``scripts/channel_robustness.py``): one
JSON object per line of a file, appended file by file, so a stopped run keeps every finished file and the same
command resumes."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Iterator

from ..errors import Interrupted
from ..parallel import deferred_stop


class RowLog:
    """``rows``: what ``path`` held when opened plus what :meth:`add` appended since."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.rows: list[dict] = (
            [json.loads(line) for line in self.path.read_text().splitlines()] if self.path.exists() else []
        )

    def add(self, new: list[dict]) -> None:
        """Append one file's rows; a stop signal waits until they are written (never half a line to resume from)."""
        with deferred_stop(), open(self.path, "a") as f:
            f.write("".join(json.dumps(r) + "\n" for r in new))
        self.rows += new

    @contextlib.contextmanager
    def resumable(self) -> Iterator["RowLog"]:
        """A stop inside the block ends with one line that says where the finished rows are and how to resume."""
        try:
            yield self
        except Interrupted as exc:
            raise Interrupted(
                exc.signum, f"the finished files' rows are in {self.path}; the same command resumes"
            ) from None
