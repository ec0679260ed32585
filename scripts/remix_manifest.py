"""A stress set: a corpus's mixtures re-mixed with noise it does not hold (by default the demo's validation mixtures
with knocks and clicks), written as a new manifest that ``evaluate`` and ``tune`` read like any other.

    .venv/bin/python scripts/remix_manifest.py --noise transient --out RUNS/exp/s31/transient
    pyro-minvae tune -c avae --estep fast --manifest RUNS/exp/s31/transient/manifest.jsonl --setting default ...
    pyro-minvae evaluate --split valid --manifest RUNS/exp/s31/transient/manifest.jsonl -c avae --methods avae-fast

Every mixture record of ``--split`` (default ``valid``; keep choosing settings off the test split) is mixed again
from its clean reference at its own SNR with each ``--noise`` type (repeatable): ``transient`` (synthetic knocks
and clicks, ``data.prepare.noise.transient_noise``), ``white``, ``pink``, or a lincity ambience the demo corpus
leaves out (``rail``, ``construction``). Ids become ``<id>__as_<type>``; speaker, SNR and lips are the record's,
so scores pair with the original mixtures through ``remixed_from``. ``OUT`` must be new (or an empty folder); it
is written in full or not at all. Measured use: docs/algorithms.md, "Transient noise (stop 31)".
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build(base_manifest: Path, noise_types: list[str], out: Path, split: str = "valid", seed: int = 0, bank=None):
    """Write ``out/manifest.jsonl`` with the re-mixed records and their wavs; returns its path. ``bank``: a
    ``NoiseBank`` (default: :func:`noise_bank` for ``noise_types``)."""
    from pyro_minvae.data.derived import staged_corpus
    from pyro_minvae.data.manifest import read_manifest, write_manifest
    from pyro_minvae.data.remix import remixed_records

    with staged_corpus(out) as staging:
        records = read_manifest(base_manifest)
        bank = bank or noise_bank(noise_types)
        new = remixed_records(records, base_manifest, bank, noise_types, staging, split, seed)
        write_manifest(staging / "manifest.jsonl", new)
    print(f"{out / 'manifest.jsonl'}: {len(new)} {split} mixtures ({', '.join(noise_types)})")
    return out / "manifest.jsonl"


def noise_bank(noise_types: list[str]):
    """The demo corpus's noise bank: the synthetic types, plus the lincity ambiences (fetched into the cache like
    ``prepare demo``'s packages) when a requested type is not synthetic."""
    from pyro_minvae.data.prepare.debian import fetch_package
    from pyro_minvae.data.prepare.noise import LINCITY, SYNTHETIC, NoiseBank, load_ambiences
    from pyro_minvae.paths import cache_dir

    if all(t in SYNTHETIC for t in noise_types):
        return NoiseBank()
    return load_ambiences(fetch_package(LINCITY, cache_dir() / "debian"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--noise", action="append", required=True, help="noise type to mix in (repeatable)")
    ap.add_argument("--manifest", type=Path, help="base corpus manifest (default: the demo corpus)")
    ap.add_argument("--split", default="valid", help="split whose mixtures are re-mixed (default: valid)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the noise draws (default: 0)")
    ap.add_argument("--out", type=Path, required=True, help="new folder for the manifest and its wavs")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from pyro_minvae.paths import default_manifest

    build(args.manifest or default_manifest(), args.noise, args.out, args.split, args.seed)
    return 0


if __name__ == "__main__":
    from pyro_minvae.entry import run_script  # one line, no traceback, on a user error or Ctrl-C

    sys.exit(run_script(main))
