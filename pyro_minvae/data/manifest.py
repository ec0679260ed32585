"""Corpus manifests: JSON lines, one record per clip, paths relative to the manifest's folder.

Record fields (all corpora):

- ``id`` (str, unique), ``split`` ("train" | "valid" | "test"), ``speaker`` (str), ``kind`` ("clean" | "mixture")
- ``audio``: wav path (16 kHz mono); for a mixture this is the noisy signal
- ``lips``: npy path, ``(N_v, 67, 67)`` uint8 mouth ROIs at ``fps`` (optional)
- ``landmarks``: npy path, ``(N_v, P, 2)`` float32 lip-contour points in ROI pixels (optional)
- ``fps`` (float), ``duration`` (s), ``sha256`` of the audio file
- ``source``: dict with ``package``, ``version``, ``file`` (where the speech came from)

Mixture records add ``clean`` (wav path of the clean reference), ``clean_id``, ``noise_type``, ``snr_db`` and
``gain`` (scale applied to the mixture to avoid clipping; the clean reference is scaled alike).

Optional extras: ``transcript`` (str), ``noise_source`` (dict: package/version/files or {"generated": type}),
``noise_scale`` (factor applied to the unit-power noise before ``gain``); ``source`` may list ``parts`` (one entry
per concatenated source clip, each with ``package``, ``version``, ``file``, ``sha256``).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Iterable, Iterator

from ..atomic import write_text_atomic
from ..errors import UserInputError

SPLITS = ("train", "valid", "test")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def write_manifest(path: str | os.PathLike, records: Iterable[dict]) -> None:
    """Write records as JSON lines, atomically."""
    lines = [json.dumps(r, sort_keys=True) for r in records]
    write_text_atomic(path, "\n".join(lines) + ("\n" if lines else ""))


def read_manifest(path: str | os.PathLike) -> list[dict]:
    """Read a JSON-lines manifest; raises ``UserInputError`` naming the file and line on bad content."""
    p = Path(path)
    if not p.exists():
        raise UserInputError(f"{p}: manifest not found; run `pyro-minvae prepare` first")
    out = []
    for i, line in enumerate(p.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserInputError(f"{p}:{i}: invalid JSON ({exc.msg}); re-run `pyro-minvae prepare`") from None
        for key in ("id", "split", "audio"):
            if key not in rec:
                raise UserInputError(f"{p}:{i}: record lacks {key!r}; re-run `pyro-minvae prepare`")
        out.append(rec)
    return out


def resolve(manifest_path: str | os.PathLike, rel: str | None) -> Path | None:
    """Absolute path of a manifest-relative path (``None`` stays ``None``)."""
    if rel is None:
        return None
    p = Path(rel)
    return p if p.is_absolute() else Path(manifest_path).parent / p


def select(records: Iterable[dict], split: str | None = None, kind: str | None = None) -> Iterator[dict]:
    for r in records:
        if split is not None and r.get("split") != split:
            continue
        if kind is not None and r.get("kind", "clean") != kind:
            continue
        yield r
