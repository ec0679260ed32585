"""results.csv: one row per (method, file), appended atomically so an interrupted run resumes where it stopped.

Columns: ``method, id, speaker, noise_type, snr_db, status ("ok" | "error"), reason, duration_s, enhance_s,
rtf, metric_errors`` then, per metric ``m``: ``m, input_m, delta_m``. A metric that could not be computed is an
empty cell (its reason is in ``metric_errors``), never NaN. When a pair appears twice (a failed pair retried),
the last row wins.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Dict, Iterable, List, Sequence, Tuple

from ..atomic import write_text_atomic
from ..errors import UserInputError, flatten

BASE_COLUMNS = (
    "method",
    "id",
    "speaker",
    "noise_type",
    "snr_db",
    "status",
    "reason",
    "duration_s",
    "enhance_s",
    "rtf",
    "metric_errors",
)
FLOAT_COLUMNS = ("snr_db", "duration_s", "enhance_s", "rtf")


def columns(metrics: Sequence[str]) -> list[str]:
    cols = list(BASE_COLUMNS)
    for m in metrics:
        cols += [m, f"input_{m}", f"delta_{m}"]
    return cols


def drop_method_rows(path: str | Path, methods: Sequence[str]) -> None:
    """Rewrite the results CSV at ``path`` (atomically) without the rows of ``methods``; no file, nothing to do.
    Not for a file that shards are appending to (their rows could be lost)."""
    path = Path(path)
    if not path.exists():
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    col, dropped = rows[0].index("method"), set(methods)
    kept = [rows[0]] + [r for r in rows[1:] if len(r) > col and r[col] not in dropped]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(kept)
    write_text_atomic(path, buf.getvalue())


class ResultsFile:
    """Append-only CSV of per-file results with a fixed header (the metric list of the run)."""

    def __init__(self, path: str | Path, metrics: Sequence[str]):
        self.path = Path(path)
        self.metrics = tuple(metrics)
        self.columns = columns(self.metrics)
        self._open()

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        header = self._format(dict(zip(self.columns, self.columns))).encode("utf-8")
        try:  # O_EXCL: concurrent shards sharing one --out never clobber each other's rows
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            pass
        else:
            try:
                os.write(fd, header)
                os.fsync(fd)
            finally:
                os.close(fd)
            return
        if self.path.stat().st_size == 0:  # created by a process killed before it wrote the header
            write_text_atomic(self.path, header.decode("utf-8"))
            return
        with open(self.path, newline="") as f:
            header = next(csv.reader(f), None)
        if header != self.columns:
            raise UserInputError(
                f"{self.path}: written with other metrics or by another version; "
                "use a fresh --out directory (or delete the file) to start over"
            )
        self._repair_tail()

    def _repair_tail(self) -> None:
        """Drop a partial last line left by a process killed mid-write."""
        with open(self.path, "rb+") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            if size == 0:
                return
            f.seek(size - 1)
            if f.read(1) == b"\n":
                return
            data = self.path.read_bytes()
            f.truncate(data.rfind(b"\n") + 1)

    def _format(self, row: dict) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow([_cell(row.get(c)) for c in self.columns])
        return buf.getvalue()

    def append(self, rows: Iterable[dict]) -> None:
        """Append rows with one ``write`` on an ``O_APPEND`` descriptor each, flushed to disk.

        Unknown keys raise ``ValueError``; text fields are flattened to one line.
        """
        rows = list(rows)
        for r in rows:
            extra = set(r) - set(self.columns)
            if extra:
                raise ValueError(f"result row has unknown columns {sorted(extra)}")
        data = "".join(self._format(r) for r in rows).encode("utf-8")
        if not data:
            return
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

    def read(self) -> List[dict]:
        """All complete rows, numbers as floats, empty cells left out; last row per (method, id) wins."""
        return read_rows(self.path)

    def done_pairs(self, retry_failed: bool = True) -> set:
        """(method, id) pairs already finished (failed ones too unless ``retry_failed``)."""
        return {(r["method"], r["id"]) for r in self.read() if r.get("status") == "ok" or not retry_failed}


def read_rows(path: str | Path) -> List[dict]:
    """The complete rows of a results.csv (read only; its metric columns are the header's), numbers as floats,
    empty cells left out; last row per (method, id) wins."""
    latest: Dict[Tuple[str, str], dict] = {}
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        numeric = set(reader.fieldnames or ()) - (set(BASE_COLUMNS) - set(FLOAT_COLUMNS))
        for raw in reader:
            if None in raw or any(v is None for v in raw.values()):
                continue  # malformed (truncated) line
            row = {k: float(v) if k in numeric else v for k, v in raw.items() if not (v == "" and k in numeric)}
            latest[(row["method"], row["id"])] = row
    return list(latest.values())


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            return ""  # never write NaN/Inf; callers record the reason
        return repr(round(v, 6) + 0.0)  # + 0.0 turns -0.0 into 0.0
    return flatten(v)
