"""``pyro-minvae prepare folder --root DIR``: index a folder of the user's own recordings.

Input: ``NAME.wav`` (any rate/channels; resampled to 16 kHz mono with a message) paired with
``NAME.npy`` / ``NAME.mat`` lip ROIs (see ``lips.py`` for layouts, 30 fps unless ``--fps``) or ``NAME.mp4``
video (mouth found with dlib; lip landmarks need
``pip install pyro-minvae[video]``). Sub-folders of
``DIR`` name speakers (files directly in ``DIR`` get speaker ``"speaker0"``). A wav without a visual partner
is indexed audio-only (with a warning). A recording that cannot be read (corrupt wav, lips of the wrong length,
no face in the video) is skipped with its reason and the others are indexed; :func:`index_folder` returns the
skipped ones, and ``prepare folder`` lists them and exits 1. When no recording can be read, nothing is written.

Output (under ``out``, default ``cache_dir()/corpora/folder-<name of DIR>``): ``manifest.jsonl``,
``lips/<speaker>/NAME.npy`` ``(N, 67, 67)`` uint8, converted audio under ``audio/`` when the input was not
16 kHz mono PCM wav. Audio paths in the manifest are absolute when the original file is used as is.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import NamedTuple

import numpy as np
import soundfile as sf

from ...atomic import atomic_path, replace_directory, write_text_atomic
from ...audio_io import load_audio, write_audio
from ...errors import MissingDependencyError, UserInputError
from ...features.config import FeatureConfig
from ...features.video import check_duration
from ...paths import cache_dir
from ..manifest import sha256_file, write_manifest
from .lips import LIP_SIZE, load_lips

log = logging.getLogger("pyro_minvae")

SR = 16000
LIP_EXTS = (".npy", ".mat")
VIDEO_EXTS = (".mp4", ".mov", ".avi", ".mkv")


def ingest_audio(path: Path, out_dir: Path, rel_name: str, sample_rate: int = SR) -> tuple[str, int, str]:
    """Check one audio file; returns ``(manifest path, n_samples, sha256)``.

    A 16 kHz mono PCM wav is used in place (absolute path); anything else (other rate, stereo, other format)
    is converted into ``out_dir / rel_name`` (the conversion is logged). Unreadable, empty or too short
    files raise ``UserInputError``.
    """
    path = Path(path)
    try:
        info = sf.info(str(path)) if path.exists() and path.stat().st_size > 0 else None
    except Exception:
        info = None
    as_is = (info is not None and info.samplerate == sample_rate and info.channels == 1
             and info.format == "WAV" and info.subtype in ("PCM_16", "PCM_24", "PCM_32", "FLOAT"))
    wave = load_audio(path, sample_rate)  # validates; resamples / downmixes and says so
    if as_is:
        return str(path.resolve()), int(wave.shape[0]), sha256_file(path)
    dst = out_dir / rel_name
    write_audio(dst, wave, sample_rate)
    return rel_name, int(wave.shape[0]), sha256_file(dst)


def save_lips(frames: np.ndarray, dst: Path) -> None:
    with atomic_path(dst, suffix=".npy") as tmp:
        np.save(tmp, np.ascontiguousarray(frames, dtype=np.uint8))


@contextlib.contextmanager
def staged_output(out_dir: Path):
    """Yield a fresh staging folder next to ``out_dir``; on success it replaces ``out_dir``, on error it is removed.

    Nothing half-written is ever left under ``out_dir``.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.parent / f".{out_dir.name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    replace_directory(staging, out_dir)


def _speaker_of(wav: Path, root: Path) -> str:
    rel = wav.relative_to(root)
    return rel.parts[0] if len(rel.parts) > 1 else "speaker0"


def _listing_hash(files: list[Path], extra: dict) -> str:
    h = hashlib.sha256(json.dumps(extra, sort_keys=True).encode())
    for f in files:
        st = f.stat()
        h.update(f"{f}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


class FolderIndex(NamedTuple):
    """``manifest`` path, and ``skipped``: ``[{"file": path relative to root, "reason": one line}]``."""

    manifest: Path
    skipped: list


def prepare_folder(root: str | os.PathLike, out: str | os.PathLike | None = None, split: str = "test",
                   fps: float = 30.0, force: bool = False) -> Path:
    """Index ``root`` (see module docstring); returns the manifest path (skipped files are logged)."""
    manifest, skipped = index_folder(root, out, split, fps, force)
    for item in skipped:
        log.warning("skipped %s", item["reason"])
    return manifest


def index_folder(root: str | os.PathLike, out: str | os.PathLike | None = None, split: str = "test",
                 fps: float = 30.0, force: bool = False) -> FolderIndex:
    """Index ``root`` (see module docstring). Idempotent for an unchanged folder (the skipped list is kept)."""
    root = Path(root)
    if not root.is_dir():
        raise UserInputError(f"{root}: not a folder; give --root the folder holding NAME.wav + NAME.npy/mp4 pairs")
    wavs = sorted(p for p in root.rglob("*") if p.suffix.lower() == ".wav" and p.is_file())
    if not wavs:
        raise UserInputError(f"{root}: no .wav files found; put NAME.wav next to NAME.npy (lips) or NAME.mp4")
    out_dir = Path(out) if out else cache_dir() / "corpora" / f"folder-{root.resolve().name}"
    manifest = out_dir / "manifest.jsonl"
    stamp = out_dir / ".done.json"
    companions = [p for w in wavs for p in (w.with_suffix(e) for e in LIP_EXTS + VIDEO_EXTS) if p.exists()]
    digest = _listing_hash(wavs + companions, {"split": split, "fps": fps, "v": 1})
    done = json.loads(stamp.read_text()) if manifest.exists() and stamp.exists() else {}
    if not force and done.get("hash") == digest:
        log.info("%s already indexed in %s; nothing to do", root, manifest)
        return FolderIndex(manifest, done.get("skipped", []))
    with staged_output(out_dir) as stage:
        cfg = FeatureConfig()
        records, skipped = [], []
        n_audio_only = 0
        for wav in wavs:
            stem = wav.relative_to(root).with_suffix("").as_posix()
            try:
                rec, audio_only = _index_one(wav, root, stem, stage, cfg, split, fps)
            except UserInputError as exc:  # this recording only; MissingDependencyError stops the whole run
                for rel in (f"audio/{stem}.wav", f"lips/{stem}.npy", f"landmarks/{stem}.npy"):
                    (stage / rel).unlink(missing_ok=True)
                skipped.append({"file": wav.relative_to(root).as_posix(), "reason": str(exc)})
                continue
            records.append(rec)
            n_audio_only += audio_only
        if not records:
            raise UserInputError(skipped[0]["reason"] if len(skipped) == 1 else
                                 f"{root}: none of the {len(skipped)} recordings could be read; first: "
                                 f"{skipped[0]['reason']}")
        if n_audio_only:
            log.warning("%d of %d recordings have no NAME.npy/.mat/.mp4 partner and are indexed audio-only",
                        n_audio_only, len(wavs))
        write_manifest(stage / "manifest.jsonl", records)
        write_text_atomic(stage / ".done.json", json.dumps({"hash": digest, "records": len(records),
                                                            "skipped": skipped}))
    log.info("indexed %d recordings from %s (%d skipped)", len(records), root, len(skipped))
    return FolderIndex(manifest, skipped)


def _index_one(wav: Path, root: Path, stem: str, stage: Path, cfg: FeatureConfig, split: str,
               fps: float) -> tuple[dict, bool]:
    """Ingest one recording into ``stage``: ``(manifest record, audio_only)``; unreadable input raises
    ``UserInputError`` naming the file."""
    spk = _speaker_of(wav, root)
    audio, n, sha = ingest_audio(wav, stage, f"audio/{stem}.wav")
    rec = {"id": stem.replace("/", "-"), "split": split, "speaker": spk, "kind": "clean", "audio": audio,
           "duration": round(n / SR, 4), "sha256": sha,
           "source": {"package": "user-folder", "version": None, "file": wav.relative_to(root).as_posix()}}
    lip_file = next((wav.with_suffix(e) for e in LIP_EXTS if wav.with_suffix(e).exists()), None)
    video = next((wav.with_suffix(e) for e in VIDEO_EXTS if wav.with_suffix(e).exists()), None)
    frames, landmarks, v_fps = None, None, fps
    if lip_file is not None:
        frames = load_lips(lip_file)
        check_duration(frames.shape[0], n, cfg, fps=v_fps, source=str(lip_file))
    elif video is not None:
        frames, landmarks, v_fps = crop_mouth_video(video)
        check_duration(frames.shape[0], n, cfg, fps=v_fps, source=str(video))
    if frames is None:
        return rec, True
    save_lips(frames, stage / f"lips/{stem}.npy")
    rec.update(lips=f"lips/{stem}.npy", fps=float(v_fps))
    if landmarks is not None:
        with atomic_path(stage / f"landmarks/{stem}.npy", suffix=".npy") as tmp:
            np.save(tmp, landmarks.astype(np.float32))
        rec["landmarks"] = f"landmarks/{stem}.npy"
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
