"""Corpus manifests: JSON lines, one record per clip, paths relative to the manifest's folder.

Record fields (all corpora):

- ``id`` (str, unique, also when letter case is ignored), ``split`` ("train" | "valid" | "test"), ``speaker`` (str),
  ``kind``: "clean" (training material, references), "mixture" (a noisy signal with its clean reference) or
  "noisy" (a noisy recording without a reference, e.g. the user's own: it can be enhanced but not scored)
- ``audio``: wav path (16 kHz mono); for a mixture or a noisy record this is the noisy signal
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
import unicodedata
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from ..atomic import write_text_atomic
from ..errors import UserInputError

SPLITS = ("train", "valid", "test")
KINDS = ("clean", "mixture", "noisy")  # ``enhance --manifest`` takes mixture and noisy records (enhancement.batch)
FILE_FIELDS = ("audio", "clean", "lips", "landmarks", "video")  # record fields holding a path (relative or absolute)
MAX_ID_BYTES = 200  # ids become file names (``ID.wav``): stay below the usual 255-byte limit with room for suffixes

# Characters kept as they are in ids made from file paths; anything else (path separators, ``%``, ``~``, control
# characters, characters some file systems refuse) is written as ``%XX`` (UTF-8 bytes), so the id is injective.
_ID_KEEP = frozenset(" -_.,+=@()[]!#&'")
ID_SEPARATOR = "~"  # joins the folders of a path in an id; never kept inside a part, so ids cannot collide


def id_from_path(parts: Sequence[str]) -> str:
    """A record id for a file at relative path ``parts`` (folders..., file stem): parts joined by ``~``.

    Letters and digits of any script and `` -_.,+=@()[]!#&'`` are kept, every other character is escaped as
    ``%XX``; a leading ``.`` is escaped too. So ``sub/a`` -> ``sub~a`` while ``sub-a`` stays ``sub-a`` and a file
    named ``sub~a`` becomes ``sub%7Ea``: two different paths never give the same id. Ids longer than
    :data:`MAX_ID_BYTES` bytes are cut and end with ``%h`` and a hash of the full id (still unique).
    """
    rid = ID_SEPARATOR.join(_escape_part(p) for p in parts)
    if rid.startswith("."):
        rid = "%2E" + rid[1:]
    if len(rid.encode("utf-8")) > MAX_ID_BYTES:
        digest = hashlib.sha256(rid.encode("utf-8")).hexdigest()[:12]
        head = rid.encode("utf-8")[: MAX_ID_BYTES - 16].decode("utf-8", "ignore")
        rid = f"{head}%h{digest}"
    return rid


def _escape_part(part: str) -> str:
    return "".join(ch if ch.isalnum() or ch in _ID_KEEP else "".join(f"%{b:02X}" for b in _bytes(ch)) for ch in part)


def _bytes(ch: str) -> bytes:
    """UTF-8 of ``ch``; a file-name byte that is not UTF-8 (Python's surrogate escape) gives that byte back."""
    return ch.encode("utf-8", "surrogateescape")


def id_key(rid: str) -> str:
    """What makes two ids the same file name on a case-insensitive (or normalising, e.g. macOS) file system."""
    return unicodedata.normalize("NFC", rid).casefold()


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
    """Write records as JSON lines, atomically. Ids must be unique (also ignoring letter case): a writer that
    produces duplicates has a bug, so this raises ``ValueError``."""
    records = list(records)
    seen: dict[str, int] = {}
    for i, r in enumerate(records):
        j = seen.setdefault(id_key(str(r["id"])), i)
        if j != i:
            raise ValueError(f"duplicate record id {r['id']!r} (and {records[j]['id']!r}) written to {path}")
    lines = [json.dumps(r, sort_keys=True) for r in records]
    write_text_atomic(path, "\n".join(lines) + ("\n" if lines else ""))


def read_manifest(path: str | os.PathLike) -> list[dict]:
    """Read a JSON-lines manifest; raises ``UserInputError`` naming the file and line on bad content."""
    p = Path(path)
    if not p.exists():
        raise UserInputError(f"{p}: manifest not found; run `pyro-minvae prepare` first")
    if p.is_dir():
        raise UserInputError(f"{p}: is a folder; give the manifest.jsonl file inside it")
    if not p.is_file():  # a pipe or device would block or never end
        raise UserInputError(f"{p}: not a regular file (a pipe or device); give a manifest.jsonl file")
    try:
        text = p.read_text(encoding="utf-8-sig")  # a BOM from a Windows editor is not an error
    except UnicodeDecodeError:
        raise UserInputError(
            f"{p}: not a text file (not UTF-8); give a manifest.jsonl written by `pyro-minvae prepare`"
        ) from None
    out = []
    lines: dict[str, tuple[int, str]] = {}
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserInputError(f"{p}:{i}: invalid JSON ({exc.msg}); re-run `pyro-minvae prepare`") from None
        if not isinstance(rec, dict):
            raise UserInputError(f"{p}:{i}: a record must be a JSON object; re-run `pyro-minvae prepare`")
        for key in ("id", "split", "audio"):
            if key not in rec:
                raise UserInputError(f"{p}:{i}: record lacks {key!r}; re-run `pyro-minvae prepare`")
        j, first = lines.setdefault(id_key(str(rec["id"])), (i, str(rec["id"])))
        if j != i:
            case = (
                " (they differ only in letter case, which is the same file name on many systems)"
                if first != str(rec["id"])
                else ""
            )
            raise UserInputError(
                f"{p}:{i}: id {rec['id']!r} is already used on line {j} by {first!r}{case}; "
                "give every record its own id"
            )
        out.append(rec)
    return out


def resolve(manifest_path: str | os.PathLike, rel: str | None) -> Path | None:
    """Absolute path of a manifest-relative path (``None`` stays ``None``)."""
    if rel is None:
        return None
    p = Path(rel)
    return p if p.is_absolute() else Path(manifest_path).parent / p


def select(
    records: Iterable[dict], split: str | None = None, kind: str | Sequence[str] | None = None
) -> Iterator[dict]:
    """Records of ``split`` whose kind is ``kind`` (one kind or several; a record without ``kind`` is "clean")."""
    kinds = (kind,) if isinstance(kind, str) else kind
    for r in records:
        if split is not None and r.get("split") != split:
            continue
        if kinds is not None and r.get("kind", "clean") not in kinds:
            continue
        yield r
