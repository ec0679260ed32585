"""``pyro-minvae prepare folder --root DIR``: index a folder of the user's own recordings.

Input: audio files ``NAME.wav`` (also ``.flac``, ``.ogg``, ``.mp3``, ``.m4a``; any rate and channel count,
converted to 16 kHz mono with a message) paired with ``NAME.npy`` / ``NAME.mat`` lip ROIs (see ``lips.py`` for
layouts, 30 fps unless ``--fps``) or ``NAME.mp4`` video (mouth found with dlib; lip landmarks need
``pip install pyro-minvae[video]``). Sub-folders of ``DIR`` name speakers (files directly in ``DIR`` get speaker
``"speaker0"``); symbolic links are followed (each folder once, so link loops end), hidden files and folders
(``.name``) are ignored. A recording without a visual partner is indexed audio-only (with a warning). A
recording that cannot be read (corrupt audio, lips of the wrong length, no face in the video, a broken link, an
unreadable folder) or whose id would clash with another's is skipped with its reason and the others are indexed;
:func:`index_folder` returns the skipped ones, and ``prepare folder`` lists them and exits 1. When no recording
can be read, nothing is written.

Record ids: the path below ``DIR`` without the extension, folders joined by ``~`` and unusual characters escaped
(:func:`pyro_minvae.data.manifest.id_from_path`): ``alice/take 1.wav`` -> ``alice~take 1``. Ids are safe file
names and unique even ignoring letter case; ``x.wav`` next to ``x.WAV`` or ``x.flac`` (or ``X.wav``) would be one
id, so all of them are skipped with a line asking to rename them.

Records: ``kind`` "noisy" for ``split="test"`` (recordings to enhance, no clean reference; ``enhance --manifest``
takes them) and "clean" for train/valid (training material), unless ``kind`` is given. ``split="train"`` holds
some speakers (or recordings) out as "valid", since ``train`` needs both splits (:func:`assign_splits`).

Output (under ``out``, default ``cache_dir()/corpora/folder-<name of DIR>``; see ``output.py`` for what may be
replaced): ``manifest.jsonl``, ``lips/ID.npy`` ``(N, 67, 67)`` uint8, ``landmarks/ID.npy`` from videos, converted
audio ``audio/ID.wav`` when the input was not 16 kHz mono PCM wav. Audio paths in the manifest are absolute when
the original file is used as is.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Callable, NamedTuple, ParamSpec

import numpy as np
import soundfile as sf

from ...atomic import OutputWriteError, atomic_path, write_text_atomic
from ...audio_io import load_audio, write_audio
from ...errors import MissingDependencyError, UserInputError
from ...features.config import FeatureConfig
from ...features.video import check_duration, check_fps
from ...paths import cache_dir
from ..manifest import id_from_path, id_key, read_manifest, sha256_file, write_manifest
from .lips import LIP_SIZE, load_lips
from .output import staged_output

log = logging.getLogger("pyro_minvae")

SR = 16000
AUDIO_EXTS = (".wav", ".flac", ".ogg", ".mp3", ".m4a")
LIP_EXTS = (".npy", ".mat")
VIDEO_EXTS = (".mp4", ".mov", ".avi", ".mkv")
FOLDER_KINDS = ("clean", "noisy")
_P = ParamSpec("_P")


def ingest_audio(path: Path, out_dir: Path, rel_name: str, sample_rate: int = SR) -> tuple[str, int, str]:
    """Check one audio file; returns ``(manifest path, n_samples, sha256)``.

    A 16 kHz mono PCM wav is used in place (absolute path); anything else (other rate, stereo, other format)
    is converted into ``out_dir / rel_name`` (the conversion is logged). Unreadable, empty or too short
    files raise ``UserInputError``.
    """
    path = Path(path)
    try:
        info = sf.info(os.fsencode(path)) if path.is_file() and path.stat().st_size > 0 else None
    except Exception:
        info = None
    as_is = (
        info is not None
        and info.samplerate == sample_rate
        and info.channels == 1
        and info.format == "WAV"
        and info.subtype in ("PCM_16", "PCM_24", "PCM_32", "FLOAT")
    )
    wave = load_audio(path, sample_rate)  # validates; resamples / downmixes and says so
    if as_is:
        return str(path.resolve()), int(wave.shape[0]), sha256_file(path)
    dst = out_dir / rel_name
    write_audio(dst, wave, sample_rate)
    return rel_name, int(wave.shape[0]), sha256_file(dst)


def save_lips(frames: np.ndarray, dst: Path) -> None:
    with atomic_path(dst, suffix=".npy") as tmp:
        np.save(tmp, np.ascontiguousarray(frames, dtype=np.uint8))


def listing_hash(files: list[Path], extra: dict) -> str:
    h = hashlib.sha256(json.dumps(extra, sort_keys=True).encode())
    for f in files:
        try:
            st = f.stat()
        except OSError:  # removed since the scan: reading it will say so
            h.update(f"{f}|gone\n".encode("utf-8", "surrogateescape"))
            continue
        h.update(f"{f}|{st.st_size}|{st.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()[:16]


def read_stamp(out_dir: Path) -> dict:
    """The ``.done.json`` of an earlier complete index in ``out_dir``; ``{}`` when absent, unreadable, or when a
    file the manifest names inside ``out_dir`` is missing (deleted by hand: the index must be written again)."""
    stamp, manifest = out_dir / ".done.json", out_dir / "manifest.jsonl"
    try:
        done = json.loads(stamp.read_text()) if manifest.is_file() and stamp.is_file() else {}
        if not isinstance(done, dict):
            return {}
        for rec in read_manifest(manifest) if done else []:
            for key in ("audio", "lips", "landmarks", "clean"):
                rel = rec.get(key)
                if isinstance(rel, str) and not Path(rel).is_absolute() and not (out_dir / rel).is_file():
                    log.info("%s: %s is missing; indexing again", manifest, rel)
                    return {}
    except (OSError, ValueError):  # UserInputError (a damaged manifest) is a ValueError
        return {}
    return done


def write_index(stage: Path, records: list[dict], digest: str, skipped: list[dict], **extra) -> None:
    """Write ``manifest.jsonl`` and the ``.done.json`` stamp :func:`read_stamp` reads (``digest``: the
    :func:`listing_hash` of the input, ``skipped`` kept for an unchanged re-run, ``extra`` stamped too)."""
    write_manifest(stage / "manifest.jsonl", records)
    stamp = {"hash": digest, "records": len(records), **extra, "skipped": skipped}
    write_text_atomic(stage / ".done.json", json.dumps(stamp))


def nothing_readable(root: Path, skipped: list[dict], what: str) -> UserInputError:
    """The error when none of the ``what`` (e.g. "recordings") under ``root`` could be read: the one reason, or
    how many failed and the first reason."""
    if len(skipped) == 1:
        return UserInputError(skipped[0]["reason"])
    return UserInputError(f"{root}: none of the {len(skipped)} {what} could be read; first: {skipped[0]['reason']}")


class FolderIndex(NamedTuple):
    """``manifest`` path, and ``skipped``: ``[{"file": path relative to root, "reason": one line}]``."""

    manifest: Path
    skipped: list


def logging_skipped(index: Callable[_P, FolderIndex]) -> Callable[_P, Path]:
    """``index`` (same arguments) logging each skipped file as a warning and returning the manifest path only."""

    @functools.wraps(index, assigned=("__module__",))  # sets __wrapped__: inspect.signature shows index's
    def prepare(*args: _P.args, **kwargs: _P.kwargs) -> Path:
        manifest, skipped = index(*args, **kwargs)
        for item in skipped:
            log.warning("skipped %s", item["reason"])
        return manifest

    prepare.__doc__ = f"Like ``{index.__name__}`` (same arguments); logs the skipped files, returns the manifest path."
    return prepare


class Recording(NamedTuple):
    """One audio file found under the root, its record id, speaker and visual partner (if any)."""

    audio: Path
    rel: str  # path below the root, with "/"
    id: str
    speaker: str
    lips: Path | None
    video: Path | None


def scan_folder(root: Path, exclude: Path | None = None) -> tuple[list[Recording], list[dict]]:
    """Recordings under ``root`` (module docstring) and the problems found while looking: ``[{"file",
    "reason"}]`` for unreadable folders, broken links, special files and clashing ids. ``exclude`` (a resolved
    folder, e.g. the output inside the root) is not entered."""
    problems: list[dict] = []
    found: list[tuple[Path, tuple[str, ...]]] = []
    partners: dict[tuple[Path, str], dict[str, Path]] = {}
    seen_dirs: set[tuple[int, int]] = set()

    def rel(p: Path) -> str:
        try:
            return p.relative_to(root).as_posix()
        except ValueError:
            return str(p)

    def on_error(exc: OSError) -> None:
        where = Path(exc.filename) if exc.filename else root
        problems.append(
            {"file": rel(where), "reason": f"{where}: cannot open the folder ({exc.strerror}); check its permissions"}
        )

    for dirpath, dirnames, filenames in os.walk(root, onerror=on_error, followlinks=True):
        d = Path(dirpath)
        try:
            st = d.stat()
        except OSError:
            dirnames[:] = []
            continue
        if (st.st_dev, st.st_ino) in seen_dirs:  # a link back to a folder already indexed (or a loop)
            dirnames[:] = []
            continue
        seen_dirs.add((st.st_dev, st.st_ino))
        keep = []
        for n in sorted(dirnames):
            sub = d / n
            if n.startswith("."):
                continue
            if sub.is_symlink() and not sub.exists():
                problems.append(
                    {
                        "file": rel(sub),
                        "reason": f"{sub}: broken symbolic link (its target is missing "
                        "or loops); fix or remove the link",
                    }
                )
                continue
            if exclude is not None and sub.resolve() == exclude:
                continue
            keep.append(n)
        dirnames[:] = keep
        for fn in sorted(filenames):
            if fn.startswith("."):
                continue
            f = d / fn
            ext = f.suffix.lower()
            if ext not in AUDIO_EXTS + LIP_EXTS + VIDEO_EXTS:
                continue
            if not f.is_file():
                why = (
                    "broken symbolic link (its target is missing or loops); fix or remove the link"
                    if f.is_symlink() and not f.exists()
                    else "not a regular file (a pipe or device); remove it"
                )
                if ext in AUDIO_EXTS:
                    problems.append({"file": rel(f), "reason": f"{f}: {why}"})
                continue
            if ext in AUDIO_EXTS:
                found.append((f, (*f.relative_to(root).parent.parts, f.stem)))
            else:
                partners.setdefault((d, f.stem), {}).setdefault(ext, f)

    by_key: dict[str, list[tuple[Path, str]]] = {}
    for f, parts in found:
        rid = id_from_path(parts)
        by_key.setdefault(id_key(rid), []).append((f, rid))
    recs = []
    for f, parts in found:
        rid = id_from_path(parts)
        group = by_key[id_key(rid)]
        if len(group) > 1:
            others = ", ".join(rel(g) for g, _ in group if g != f)
            problems.append(
                {
                    "file": rel(f),
                    "reason": f"{f}: has the same name as {others} apart from letter case "
                    "or extension (one record id for both); rename one of them",
                }
            )
            continue
        own = partners.get((f.parent, f.stem), {})
        lips = next((own[e] for e in LIP_EXTS if e in own), None)
        video = next((own[e] for e in VIDEO_EXTS if e in own), None)
        speaker = parts[0] if len(parts) > 1 else "speaker0"
        recs.append(Recording(f, rel(f), rid, speaker, lips, video))
    return recs, problems


def assign_splits(recordings: list[Recording], split: str, valid_speakers: list[str] | None = None) -> dict[str, str]:
    """``{record id: split}``. ``split`` "valid"/"test": every recording. ``split`` "train": training needs a
    validation split too, so some are held out as "valid": the recordings of ``valid_speakers``, by default every
    sixth speaker in sorted order (at least one when there are two or more speakers); a single speaker gives
    every tenth of its recordings (at least one; then the splits share that speaker)."""
    if split != "train":
        if valid_speakers:
            raise UserInputError(
                "--valid-speakers: only with --split train (it picks the speakers held out for validation)"
            )
        return {r.id: split for r in recordings}
    speakers = sorted({r.speaker for r in recordings})
    if valid_speakers:
        unknown = [v for v in valid_speakers if v not in speakers]
        if unknown:
            raise UserInputError(
                f"--valid-speakers: {', '.join(unknown)} not among the speakers (sub-folders) "
                f"found: {', '.join(speakers)}"
            )
        if set(valid_speakers) >= set(speakers):
            raise UserInputError("--valid-speakers: that leaves no speaker to train on; hold out fewer speakers")
        held = set(valid_speakers)
    elif len(speakers) >= 2:
        held = set(speakers[5::6] or speakers[-1:])
    else:
        ids = sorted(r.id for r in recordings)
        valid_ids = set(ids[9::10] or ids[-1:]) if len(ids) >= 2 else set()
        log.info(
            "one speaker: %d of its %d recordings are held out for validation (not speaker-disjoint)",
            len(valid_ids),
            len(ids),
        )
        return {i: "valid" if i in valid_ids else "train" for i in ids}
    log.info("validation speakers (held out from training): %s", ", ".join(sorted(held)))
    return {r.id: "valid" if r.speaker in held else "train" for r in recordings}


def index_folder(
    root: str | os.PathLike,
    out: str | os.PathLike | None = None,
    split: str = "test",
    fps: float = 30.0,
    force: bool = False,
    kind: str | None = None,
    progress: bool = False,
    valid_speakers: list[str] | None = None,
) -> FolderIndex:
    """Index ``root`` (see module docstring). Idempotent for an unchanged folder (the skipped list is kept).
    With ``split="train"`` some recordings are held out as "valid" (:func:`assign_splits`)."""
    root = Path(root)
    fps = check_fps(fps, "--fps")
    kind = kind or ("noisy" if split == "test" else "clean")
    if kind not in FOLDER_KINDS:
        raise UserInputError(
            f"--kind {kind}: a folder of recordings is 'clean' (training speech) or 'noisy' (recordings to enhance)"
        )
    if not root.is_dir():
        raise UserInputError(f"{root}: not a folder; give --root the folder holding NAME.wav + NAME.npy/mp4 pairs")
    if not os.access(root, os.R_OK | os.X_OK):
        raise UserInputError(f"{root}: cannot open the folder (Permission denied); check its permissions")
    out_dir = Path(out) if out else cache_dir() / "corpora" / f"folder-{root.resolve().name}"
    recordings, problems = scan_folder(root, exclude=out_dir.resolve())
    if not recordings and not problems:
        raise UserInputError(
            f"{root}: no audio files ({', '.join(AUDIO_EXTS)}) found; put NAME.wav next to "
            "NAME.npy (lips) or NAME.mp4 (the sound of a video is not read: export it as NAME.wav)"
        )
    splits = assign_splits(recordings, split, valid_speakers)
    manifest = out_dir / "manifest.jsonl"
    files = [p for r in recordings for p in (r.audio, r.lips, r.video) if p is not None]
    digest = listing_hash(
        files,
        {
            "split": split,
            "fps": fps,
            "kind": kind,
            "problems": problems,
            "v": 2,
            "valid": sorted(valid_speakers) if valid_speakers else None,
        },
    )
    done = read_stamp(out_dir)
    if not force and done.get("hash") == digest:
        log.info("%s already indexed in %s; nothing to do", root, manifest)
        return FolderIndex(manifest, done.get("skipped", []))
    if done.get("root") and done["root"] != str(root.resolve()):  # e.g. two folders of one name, default --out
        log.warning(
            "%s held the index of %s; it is replaced by the index of %s (give --out to keep both)",
            out_dir,
            done["root"],
            root.resolve(),
        )
    if not recordings:
        raise nothing_readable(root, problems, "recordings")
    from tqdm.auto import tqdm

    with staged_output(out_dir, inputs=root) as stage:
        cfg = FeatureConfig()
        records, skipped = [], list(problems)
        n_audio_only = 0
        bar = tqdm(recordings, desc="index", unit="file", disable=None if progress else True, mininterval=1.0)
        for r in bar:
            try:
                rec, audio_only = _index_one(r, stage, cfg, splits[r.id], fps, kind)
            except (OutputWriteError, MissingDependencyError):  # where the output goes / a missing tool: stop
                raise
            except UserInputError as exc:  # this recording only
                for sub in (f"audio/{r.id}.wav", f"lips/{r.id}.npy", f"landmarks/{r.id}.npy"):
                    (stage / sub).unlink(missing_ok=True)
                skipped.append({"file": r.rel, "reason": str(exc)})
                continue
            records.append(rec)
            n_audio_only += audio_only
        skipped.sort(key=lambda s: s["file"])
        if not records:
            raise nothing_readable(root, skipped, "recordings")
        if n_audio_only:
            log.warning(
                "%d of %d recordings have no NAME.npy/.mat/.mp4 partner and are indexed audio-only",
                n_audio_only,
                len(records),
            )
        write_index(stage, records, digest, skipped, root=str(root.resolve()))
    log.info("indexed %d recordings from %s (%d skipped)", len(records), root, len(skipped))
    return FolderIndex(manifest, skipped)


prepare_folder = logging_skipped(index_folder)
"""Index ``root`` like :func:`index_folder` (same arguments); logs the skipped files and returns the manifest path."""


def _index_one(r: Recording, stage: Path, cfg: FeatureConfig, split: str, fps: float, kind: str) -> tuple[dict, bool]:
    """Ingest one recording into ``stage``: ``(manifest record, audio_only)``; unreadable input raises
    ``UserInputError`` naming the file."""
    audio, n, sha = ingest_audio(r.audio, stage, f"audio/{r.id}.wav")
    rec = {
        "id": r.id,
        "split": split,
        "speaker": r.speaker,
        "kind": kind,
        "audio": audio,
        "duration": round(n / SR, 4),
        "sha256": sha,
        "source": {"package": "user-folder", "version": None, "file": r.rel},
    }
    frames, landmarks, v_fps = None, None, fps
    if r.lips is not None:
        frames = load_lips(r.lips)
        check_duration(frames.shape[0], n, cfg, fps=v_fps, source=str(r.lips))
    elif r.video is not None:
        frames, landmarks, v_fps = crop_mouth_video(r.video)
        check_duration(frames.shape[0], n, cfg, fps=v_fps, source=str(r.video))
    if frames is None:
        return rec, True
    save_lips(frames, stage / f"lips/{r.id}.npy")
    rec.update(lips=f"lips/{r.id}.npy", fps=float(v_fps))
    if landmarks is not None:
        with atomic_path(stage / f"landmarks/{r.id}.npy", suffix=".npy") as tmp:
            np.save(tmp, landmarks.astype(np.float32))
        rec["landmarks"] = f"landmarks/{r.id}.npy"
    return rec, False


def crop_mouth_video(path: Path, size: int = LIP_SIZE) -> tuple[np.ndarray, np.ndarray | None, float]:
    """Mouth ROIs ``(N, size, size)`` uint8, lip landmarks ``(N, 20, 2)`` in ROI pixels (``None`` without dlib's
    landmark model, ``pip install pyro-minvae[video]``) and the video's fps.

    The mouth is found by :func:`pyro_minvae.video.track_mouth` (the same code as ``enhance talk.mp4``; an
    already-cropped mouth video is used as it is); frames without a face get boxes and landmarks interpolated
    between their neighbours. A video without any face raises ``UserInputError``.
    """
    from ...video import MouthConfig, track_mouth
    from ...video.mouth import fill_and_smooth

    track = track_mouth(path, MouthConfig(size=size))
    frames = np.round(track.rois * 255.0).astype(np.uint8)
    lips = track.lips
    if lips is not None:
        n = lips.shape[0]
        lips = fill_and_smooth(lips.reshape(n, -1).astype(np.float64), 0).reshape(n, -1, 2).astype(np.float32)
    return frames, lips, track.fps
