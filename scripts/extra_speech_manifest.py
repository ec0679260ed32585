"""A training corpus widened by extra voices: a copy of a corpus manifest plus the prompts of more Debian speech
packages as *training-only* speakers. The base records are kept as they are (their paths made absolute), so the
validation and test splits do not change; the new records are clean audio only (no lips), so the audio-only models
train on them (``avae``, ``markov-vae``, ``vae --encoders audio``); a family that reads the lips refuses them in one
line.

    .venv/bin/python scripts/extra_speech_manifest.py --package asterisk-core-sounds-it-g722 --out RUNS/exp/s30/broad
    pyro-minvae train --model avae --manifest RUNS/exp/s30/broad/manifest.jsonl --epochs 40 --patience 5 --lr 3e-4

``--package`` (repeatable) takes ``asterisk-core-sounds-<lang>-g722`` packages (fetched into the cache with
``apt-get download`` like ``prepare demo``'s). Each spoken prompt becomes one record (resampled to 16 kHz, silence
trimmed, loudness normalised as the demo corpus's clips); prompts already in the base corpus (same checksum) and
ones shorter than 0.5 s after trimming are left out. A voice that is already a speaker of the base corpus is
refused: it would join the training split from another split. ``OUT`` must be new (or an empty folder); it is
written in full or not at all. Measured use: docs/algorithms.md, "Training-data breadth (stop 30, not pursued)".
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Mapping

ROOT = Path(__file__).resolve().parents[1]


def extra_records(packages: Mapping, base: list[dict], staging: Path) -> list[dict]:
    """Clean training records for every prompt of ``packages`` (``{name: PackageTree}``), wavs written under
    ``staging/clean/<speaker>/``; paths in the records are relative to ``staging``."""
    from pyro_minvae.audio_io import write_audio
    from pyro_minvae.data.manifest import sha256_file
    from pyro_minvae.data.prepare.sources import asterisk_clips, clean_clip, decode_clip
    from pyro_minvae.errors import UserInputError

    known_speakers = {r.get("speaker") for r in base}
    known_sources = {p.get("sha256") for r in base for p in r.get("source", {}).get("parts", [])}
    out: list[dict] = []
    for name, pkg in sorted(packages.items()):
        clips = asterisk_clips(pkg)
        clash = sorted({c.speaker for c in clips} & known_speakers)
        if clash:
            raise UserInputError(
                f"{name}: voice {clash[0]} is already a speaker of the base corpus; leave out --package {name}"
            )
        count: dict[str, int] = {}
        for clip in clips:
            digest = sha256_file(clip.path)
            if digest in known_sources:
                continue
            known_sources.add(digest)
            try:
                wave, sr = decode_clip(clip.path)
            except UserInputError:  # an empty prompt (the Russian voice has one): nothing to train on
                continue
            wave = clean_clip(wave, sr)
            if wave is None:
                continue
            k = count.setdefault(clip.speaker, 0)
            count[clip.speaker] = k + 1
            uid = f"{clip.speaker}-{k:04d}"
            rel = f"clean/{clip.speaker}/{uid}.wav"
            write_audio(staging / rel, wave, 16000)
            out.append(
                {
                    "id": uid,
                    "split": "train",
                    "kind": "clean",
                    "speaker": clip.speaker,
                    "audio": rel,
                    "duration": round(len(wave) / 16000, 4),
                    "sha256": sha256_file(staging / rel),
                    "source": {
                        "package": name,
                        "version": pkg.version,
                        "file": clip.file,
                        "parts": [{"package": name, "version": pkg.version, "file": clip.file, "sha256": digest}],
                    },
                }
            )
    return out


def build(base_manifest: Path, packages: Mapping, out: Path) -> Path:
    """Write ``out/manifest.jsonl`` (base records + the packages' prompts) and the new wavs; returns its path."""
    from pyro_minvae.data.derived import absolute_paths, staged_corpus
    from pyro_minvae.data.manifest import read_manifest, write_manifest
    from pyro_minvae.errors import UserInputError

    with staged_corpus(out) as staging:
        base = read_manifest(base_manifest)
        extra = extra_records(packages, base, staging)
        if not extra:
            raise UserInputError(f"{', '.join(sorted(packages))}: no speech prompts found; check the package names")
        write_manifest(staging / "manifest.jsonl", absolute_paths(base, base_manifest) + extra)
    minutes = sum(r["duration"] for r in extra) / 60
    speakers = sorted({r["speaker"] for r in extra})
    print(
        f"{out / 'manifest.jsonl'}: {len(base)} base records + {len(extra)} training prompts "
        f"({minutes:.1f} min; speakers {', '.join(speakers)})"
    )
    return out / "manifest.jsonl"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--package", action="append", required=True, help="asterisk-core-sounds-<lang>-g722 (repeatable)")
    ap.add_argument("--manifest", type=Path, help="base corpus manifest (default: the demo corpus)")
    ap.add_argument("--out", type=Path, required=True, help="new folder for the widened manifest and its wavs")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from pyro_minvae.data.prepare.debian import fetch_packages
    from pyro_minvae.errors import UserInputError
    from pyro_minvae.paths import cache_dir, default_manifest

    bad = [p for p in args.package if not (p.startswith("asterisk-core-sounds-") and p.endswith("-g722"))]
    if bad:
        raise UserInputError(f"--package {bad[0]}: only asterisk-core-sounds-<lang>-g722 packages are read")
    packages = fetch_packages(args.package, cache_dir() / "debian")
    build(args.manifest or default_manifest(), packages, args.out)
    return 0


if __name__ == "__main__":
    from pyro_minvae.entry import run_script  # one line, no traceback, on a user error or Ctrl-C

    sys.exit(run_script(main))
