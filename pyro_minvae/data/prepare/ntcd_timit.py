"""``pyro-minvae prepare ntcd-timit --root DIR``: index a local NTCD-TIMIT copy into a manifest.

Expected content under ``DIR`` (the layout the corpus is published in and the one the MIN-VAE authors' scripts
read; the folder names above these parts do not matter):

- clean speech: ``.../<speaker>/[straightcam/]<sentence>.wav`` (16 kHz), e.g. ``clean/09F/sa1.wav``;
- noisy speech: ``.../<NoiseType>/<SNR>/volunteers/<speaker>/straightcam/<sentence>.wav`` with ``NoiseType``
  in Babble, Cafe, Car, LR (living room), Street, White and ``SNR`` an integer in dB (``-5``, ``5dB``);
- lip ROIs, 67x67 at 30 fps, one file per sentence next to the clean audio or in any other folder carrying the
  speaker's name: ``<sentence>Raw.npy`` (``(4489, N)``, column-major frames), ``<sentence>.npy`` or
  ``<sentence>.mat`` (layouts in ``lips.py``).

Speakers are named like ``09F`` / ``24M`` (volunteers) or ``Lipspkr1``. Test speakers follow the published
protocol (:data:`TEST_SPEAKERS`); validation speakers are ``valid_speakers`` or, by default, every sixth of
the remaining speakers in sorted order; the rest train. Noisy versions are indexed for the test and validation
speakers (all speakers with ``all_noisy``), as ``kind="mixture"`` records with ``gain`` 1.

Output: ``out`` (default ``cache_dir()/corpora/ntcd-timit``) with ``manifest.jsonl`` and
``lips/<speaker>/<sentence>.npy`` ``(N, 67, 67)`` uint8; audio is referenced in place (absolute paths) unless it
had to be resampled or downmixed.

A file that cannot be read (a corrupt or too short wav, a lip array of the wrong shape or length) is skipped
with its reason and the rest is indexed: a bad clean wav or lip file drops that sentence (and its noisy
versions), a bad noisy wav drops that noisy file. :func:`index_ntcd_timit` returns the skipped files;
``prepare ntcd-timit`` lists them and exits 1. When no clean sentence can be read, nothing is written.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Iterable

from ...atomic import OutputWriteError
from ...errors import UserInputError
from ...features.config import FeatureConfig
from ...features.video import check_duration
from ...paths import cache_dir
from ..manifest import id_from_path
from .folder import (
    FolderIndex,
    ingest_audio,
    listing_hash,
    logging_skipped,
    nothing_readable,
    read_stamp,
    save_lips,
    write_index,
)
from .lips import load_lips
from .output import staged_output

log = logging.getLogger("pyro_minvae")

TEST_SPEAKERS = ("09F", "24M", "26M", "27M", "33F", "40F", "47M", "49F", "56M")
NOISE_TYPES = {
    "babble": "Babble",
    "cafe": "Cafe",
    "car": "Car",
    "lr": "LR",
    "livingroom": "LR",
    "street": "Street",
    "white": "White",
}
_SPEAKER_RE = re.compile(r"^(\d{2}[MF]|lipspkr\d+|lipspeaker\d+)$", re.IGNORECASE)
_SNR_RE = re.compile(r"^(-?\d+)\s*(db)?$", re.IGNORECASE)
SKIP_DIRS = {"30degcam"}


def _speaker(parts: tuple[str, ...]) -> str | None:
    for p in reversed(parts[:-1]):
        if _SPEAKER_RE.match(p):
            return p.upper() if p[0].isdigit() else p
    return None


def _noise(parts: tuple[str, ...]) -> tuple[str, int] | None:
    """``(NoiseType, SNR)`` when a noise-type folder is directly followed by an SNR folder."""
    for a, b in zip(parts[:-1], parts[1:-1] + ("",)):
        nt = NOISE_TYPES.get(a.lower())
        m = _SNR_RE.match(b)
        if nt and m:
            return nt, int(m.group(1))
    return None


def _sentence(stem: str) -> str:
    s = stem[:-3] if stem.lower().endswith("raw") else stem
    return s.lower()


def scan(root: Path, exclude: Path | None = None) -> tuple[dict, dict, list]:
    """``(clean {(spk, sent): wav}, lips {(spk, sent): file}, noisy [(spk, sent, type, snr, wav)])``; hidden
    folders and ``exclude`` (a resolved folder, e.g. an output folder inside the root) are not entered."""
    clean: dict[tuple[str, str], Path] = {}
    lips: dict[tuple[str, str], Path] = {}
    noisy: list[tuple[str, str, str, int, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d
            for d in dirnames
            if d.lower() not in SKIP_DIRS
            and not d.startswith(".")
            and (exclude is None or (Path(dirpath) / d).resolve() != exclude)
        )
        for fn in sorted(filenames):
            f = Path(dirpath) / fn
            parts = f.relative_to(root).parts
            ext = f.suffix.lower()
            if ext not in (".wav", ".npy", ".mat"):
                continue
            spk = _speaker(parts)
            if spk is None:
                continue
            key = (spk, _sentence(f.stem))
            noise = _noise(parts)
            if ext == ".wav":
                if noise:
                    noisy.append((spk, key[1], noise[0], noise[1], f))
                else:
                    clean.setdefault(key, f)
            elif not noise:
                # prefer *Raw.npy, then .npy, then .mat when several exist
                rank = {".npy": 0 if f.stem.lower().endswith("raw") else 1, ".mat": 2}[ext]
                old = lips.get(key)
                if (
                    old is None
                    or rank < {".npy": 0 if old.stem.lower().endswith("raw") else 1, ".mat": 2}[old.suffix.lower()]
                ):
                    lips[key] = f
    return clean, lips, noisy


def assign_splits(speakers: Iterable[str], valid_speakers: Iterable[str] | None = None) -> dict[str, str]:
    spk = sorted(set(speakers))
    test = {s for s in spk if s.upper() in TEST_SPEAKERS}
    rest = [s for s in spk if s not in test]
    valid = set(valid_speakers) if valid_speakers is not None else set(rest[5::6])
    return {s: "test" if s in test else "valid" if s in valid else "train" for s in spk}


def index_ntcd_timit(
    root: str | os.PathLike,
    out: str | os.PathLike | None = None,
    valid_speakers: Iterable[str] | None = None,
    all_noisy: bool = False,
    force: bool = False,
    progress: bool = True,
) -> FolderIndex:
    """Index an NTCD-TIMIT tree (module docstring); returns the manifest path and the skipped files
    (``[{"file": path relative to root, "reason": one line}]``). Idempotent."""
    from tqdm.auto import tqdm

    root = Path(root)
    if not root.is_dir():
        raise UserInputError(f"{root}: not a folder; give --root the NTCD-TIMIT folder")
    out_dir = Path(out) if out else cache_dir() / "corpora" / "ntcd-timit"
    clean, lips, noisy = scan(root, exclude=out_dir.resolve())
    if not clean:
        raise UserInputError(
            f"{root}: no clean wavs under speaker folders (09F, 24M, ...); point --root at the "
            "NTCD-TIMIT copy holding clean/<speaker>/<sentence>.wav"
        )
    vs = sorted(valid_speakers) if valid_speakers is not None else None
    if vs is not None:
        known = {k[0] for k in clean}
        unknown = [v for v in vs if v not in known]
        if unknown:
            raise UserInputError(
                f"--valid-speakers: {', '.join(unknown)} not among the speakers found in {root} "
                f"({', '.join(sorted(known))}); give speaker folder names"
            )
    digest = listing_hash(
        sorted(set(clean.values()) | set(lips.values()) | {n[-1] for n in noisy}),
        {"valid": vs, "all_noisy": all_noisy, "v": 2},
    )
    done = read_stamp(out_dir)
    if not force and done.get("hash") == digest:
        log.info("NTCD-TIMIT already indexed in %s; nothing to do", out_dir)
        return FolderIndex(out_dir / "manifest.jsonl", done.get("skipped", []))
    splits = assign_splits({k[0] for k in clean}, vs)
    cfg = FeatureConfig()
    records: list[dict] = []
    skipped: list[dict] = []
    by_key: dict[tuple[str, str], dict] = {}
    n_no_lips = 0

    def skip(f: Path, exc: UserInputError) -> None:
        skipped.append({"file": f.relative_to(root).as_posix(), "reason": str(exc)})

    with staged_output(out_dir, inputs=root) as stage:
        hide = None if progress else True  # None: shown on a terminal only
        for (spk, sent), wav in tqdm(sorted(clean.items()), desc="clean", disable=hide, mininterval=1.0):
            sid = id_from_path([sent])
            lp = lips.get((spk, sent))
            try:
                audio, n, sha = ingest_audio(wav, stage, f"audio/{spk}/{sid}.wav")
                rec = {
                    "id": f"{spk}_{sid}",
                    "split": splits[spk],
                    "speaker": spk,
                    "kind": "clean",
                    "audio": audio,
                    "duration": round(n / cfg.sample_rate, 4),
                    "sha256": sha,
                    "source": {"package": "NTCD-TIMIT", "version": None, "file": wav.relative_to(root).as_posix()},
                }
                if lp is not None:
                    frames = load_lips(lp)
                    check_duration(frames.shape[0], n, cfg, fps=30.0, source=str(lp))
                    save_lips(frames, stage / f"lips/{spk}/{sid}.npy")
                    rec.update(lips=f"lips/{spk}/{sid}.npy", fps=30.0)
                else:
                    n_no_lips += 1
            except OutputWriteError:
                raise
            except UserInputError as exc:  # this sentence only
                (stage / f"audio/{spk}/{sid}.wav").unlink(missing_ok=True)
                skip(lp if lp is not None and str(lp) in str(exc) else wav, exc)
                continue
            records.append(rec)
            by_key[(spk, sent)] = rec
        if not records:
            raise nothing_readable(root, skipped, "clean sentences")
        if n_no_lips:
            log.warning("%d of %d sentences have no lip ROI file; indexed audio-only", n_no_lips, len(records))
        wanted = [x for x in noisy if all_noisy or splits.get(x[0]) in ("test", "valid")]
        n_orphan = 0
        for spk, sent, ntype, snr, wav in tqdm(wanted, desc="noisy", disable=hide, mininterval=1.0):
            c = by_key.get((spk, sent))
            if c is None:
                n_orphan += 1
                continue
            tag = ("m" if snr < 0 else "p") + f"{abs(snr):02d}"
            sid = id_from_path([sent])
            rel = f"audio/noisy/{ntype}/{snr}/{spk}/{sid}.wav"
            try:
                audio, n, sha = ingest_audio(wav, stage, rel)
            except OutputWriteError:
                raise
            except UserInputError as exc:  # this noisy file only
                (stage / rel).unlink(missing_ok=True)
                skip(wav, exc)
                continue
            rec = {
                "id": f"{spk}_{sid}__{ntype}_{tag}",
                "split": c["split"],
                "speaker": spk,
                "kind": "mixture",
                "audio": audio,
                "clean": c["audio"],
                "clean_id": c["id"],
                "noise_type": ntype,
                "snr_db": float(snr),
                "gain": 1.0,
                "duration": round(n / cfg.sample_rate, 4),
                "sha256": sha,
                "source": {"package": "NTCD-TIMIT", "version": None, "file": wav.relative_to(root).as_posix()},
            }
            if "lips" in c:
                rec.update(lips=c["lips"], fps=c["fps"])
            records.append(rec)
        if n_orphan:
            log.warning("%d noisy files have no readable clean counterpart and were skipped", n_orphan)
        write_index(stage, records, digest, skipped)
    n_clean = len(by_key)
    log.info(
        "indexed %d clean and %d noisy NTCD-TIMIT files (%d skipped)", n_clean, len(records) - n_clean, len(skipped)
    )
    return FolderIndex(out_dir / "manifest.jsonl", skipped)


prepare_ntcd_timit = logging_skipped(index_ntcd_timit)
"""Index an NTCD-TIMIT tree like :func:`index_ntcd_timit` (same arguments); logs the skipped files and returns the
manifest path."""
