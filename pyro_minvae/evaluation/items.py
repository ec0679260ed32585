"""Test items: mixture records of a manifest and the arrays an evaluation needs from them.

An :class:`EvalItem` holds ``noisy`` and ``clean`` float32 ``(T,)`` at ``sample_rate`` and ``video``, a dict with
the record's raw streams at video rate, e.g. ``"lips"`` ``(N_v, 67, 67)`` uint8 and/or ``"landmarks"``
``(N_v, P, 2)`` float32 (one per registered modality the record has), plus ``"fps"`` (the record's, checked:
0/NaN/negative are refused; absent: 30). Streams the record lacks are left out; an empty dict when it has none.
Their content is checked where they are aligned to the STFT (``Modality.from_array``), as for ``enhance``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..audio_io import load_audio
from ..data import modalities as _modalities  # noqa: F401  (registers "lips", "landmarks")
from ..data.manifest import read_manifest, resolve, select
from ..data.modalities import record_fps
from ..errors import UserInputError
from ..features import FeatureConfig
from ..registry import MODALITIES

REQUIRED = ("clean", "noise_type", "snr_db")


@dataclass
class EvalItem:
    id: str
    noisy: np.ndarray
    clean: np.ndarray
    video: dict
    sample_rate: int
    meta: dict = field(default_factory=dict)


def record_meta(rec: dict) -> dict:
    """The per-file columns of results.csv taken from a record."""
    return {
        "id": rec["id"],
        "speaker": str(rec.get("speaker", "")),
        "noise_type": str(rec["noise_type"]),
        "snr_db": float(rec["snr_db"]),
    }


def select_items(
    manifest: str | Path,
    split: str = "test",
    snrs: Sequence[float] | None = None,
    noise_types: Sequence[str] | None = None,
    limit: int | None = None,
) -> list[dict]:
    """Mixture records of ``split``, optionally restricted to ``snrs`` / ``noise_types``.

    ``limit`` keeps a subset balanced over (SNR, noise type): records are taken round-robin from each group in
    manifest order. Raises ``UserInputError`` if a mixture record lacks ``clean``/``noise_type``/``snr_db`` or if
    nothing is left.
    """
    recs = list(select(read_manifest(manifest), split=split, kind="mixture"))
    for r in recs:
        missing = [k for k in REQUIRED if r.get(k) is None]
        if missing:
            raise UserInputError(
                f"{manifest}: mixture record {r['id']!r} lacks {', '.join(missing)}; re-run `pyro-minvae prepare`"
            )
    if snrs is not None:
        wanted = {float(s) for s in snrs}
        recs = [r for r in recs if float(r["snr_db"]) in wanted]
    if noise_types is not None:
        recs = [r for r in recs if str(r["noise_type"]) in set(noise_types)]
    if not recs:
        raise UserInputError(
            f"{manifest}: no mixture records in split {split!r} for the chosen SNRs/noise types; "
            "check --split/--snr or prepare a corpus with mixtures"
        )
    ids = [r["id"] for r in recs]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})[:3]
        raise UserInputError(f"{manifest}: duplicate record ids {dup}; re-run `pyro-minvae prepare`")
    if limit is not None and limit < len(recs):
        recs = _balanced_subset(recs, limit)
    return recs


def _balanced_subset(recs: list[dict], limit: int) -> list[dict]:
    groups: dict = {}
    for r in recs:
        groups.setdefault((float(r["snr_db"]), str(r["noise_type"])), []).append(r)
    queues = [list(g) for _, g in sorted(groups.items())]
    out: list[dict] = []
    while len(out) < limit:
        for q in queues:
            if q and len(out) < limit:
                out.append(q.pop(0))
    keep = {r["id"] for r in out}
    return [r for r in recs if r["id"] in keep]


def load_item(rec: dict, manifest: str | Path, sample_rate: int = 16000, need_video: bool = True) -> EvalItem:
    """Load the noisy and clean audio and the visual streams of a mixture record.

    Raises ``UserInputError`` (file named) for unreadable audio or arrays and when the clean reference and the
    mixture differ in length by more than 10 ms (they are trimmed to the shorter otherwise).
    """
    noisy = load_audio(resolve(manifest, rec["audio"]), sample_rate)
    clean_path = resolve(manifest, rec["clean"])
    clean = load_audio(clean_path, sample_rate)
    if abs(noisy.size - clean.size) > 0.01 * sample_rate:
        raise UserInputError(
            f"{clean_path}: clean reference has {clean.size} samples, the mixture {noisy.size}; regenerate the mixture"
        )
    n = min(noisy.size, clean.size)
    video: dict = {}
    if need_video:  # the raw streams at video rate; methods align them (data.modalities, the one stream path)
        for name in MODALITIES.names():
            mod = MODALITIES.get(name)
            if rec.get(mod.field):
                video[name] = mod.load_array(rec, manifest)
        if video:
            video["fps"] = record_fps(rec, FeatureConfig(sample_rate=sample_rate), manifest)
    return EvalItem(
        id=rec["id"], noisy=noisy[:n], clean=clean[:n], video=video, sample_rate=sample_rate, meta=record_meta(rec)
    )


def ids_of(recs: Iterable[dict]) -> list[str]:
    return [r["id"] for r in recs]
