"""The mixtures of a corpus re-mixed with other noise: stress sets of noise the corpus does not hold (validation
only, e.g. the demo's validation mixtures with knocks and clicks, ``scripts/remix_manifest.py``).

Each mixture record's clean reference is mixed again, at the record's own SNR (active-speech power, as
:func:`~pyro_minvae.data.mixing.mix`), with each requested noise type of a
:class:`~pyro_minvae.data.prepare.noise.NoiseBank`; the speaker, SNR, lips and landmarks stay the record's, so a
method's scores on the stress set pair file by file with its scores on the original mixtures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..audio_io import load_audio, write_audio
from ..errors import UserInputError
from .derived import absolute_paths
from .manifest import sha256_file
from .mixing import mix
from .prepare.noise import NoiseBank

POOLED_TYPES = ("babble",)  # need a pool of training speech; the corpus holds them already


def remix_id(record_id: str, noise_type: str) -> str:
    """The id of ``record_id`` re-mixed with ``noise_type`` (distinct for every record and type)."""
    return f"{record_id}__as_{noise_type}"


def remixed_records(
    records: list[dict],
    manifest: Path,
    bank: NoiseBank,
    noise_types: list[str],
    out_dir: Path,
    split: str = "valid",
    seed: int = 0,
) -> list[dict]:
    """Mixture records of ``split`` re-mixed with every type of ``noise_types``; wavs written under ``out_dir``.

    ``records`` are a manifest's records (paths relative to ``manifest``'s folder or absolute). Returns the new
    records, their ``audio``/``clean`` paths relative to ``out_dir`` and ``lips``/``landmarks`` absolute, with
    ``remixed_from`` naming the original record. The noise of a (record, type) pair is drawn from a generator
    seeded by ``seed``, the record's id and the type, so a rebuild writes the same samples.
    """
    from .prepare.demo import stable_seed

    unknown = [t for t in noise_types if t not in bank.types]
    if unknown:
        raise UserInputError(f"noise type {unknown[0]!r} is not available; choose from {', '.join(bank.types)}")
    pooled = [t for t in noise_types if t in POOLED_TYPES]
    if pooled:
        raise UserInputError(f"noise type {pooled[0]!r} needs a pool of training speech; choose another type")
    mixtures = [r for r in records if r.get("kind") == "mixture" and r.get("split") == split]
    if not mixtures:
        raise UserInputError(f"{manifest}: no mixture records in split {split!r}; choose another --split")
    out: list[dict] = []
    sr = bank.sample_rate
    for r in absolute_paths(mixtures, manifest):
        reference = load_audio(r["clean"], sr)  # resampled to the bank's rate if needed
        for ntype in noise_types:
            rid = remix_id(r["id"], ntype)
            rng = np.random.default_rng(stable_seed(seed, "remix", rid))
            m = mix(reference, bank.sample(ntype, len(reference), rng), float(r["snr_db"]), sr)
            rel, rel_clean = f"mixtures/{split}/{rid}.wav", f"mixtures/{split}/{rid}.clean.wav"
            write_audio(out_dir / rel, m.mixture, sr)
            write_audio(out_dir / rel_clean, m.reference, sr)
            new = {
                **r,  # its other file fields (lips, landmarks, video) absolute
                "id": rid,
                "audio": rel,
                "clean": rel_clean,
                "noise_type": ntype,
                "gain": round(m.gain, 6),
                "noise_scale": round(m.noise_scale, 6),
                "sha256": sha256_file(out_dir / rel),
                "noise_source": bank.source(ntype),
                "remixed_from": r["id"],
            }
            out.append(new)
    return out


__all__ = ["POOLED_TYPES", "remix_id", "remixed_records"]
