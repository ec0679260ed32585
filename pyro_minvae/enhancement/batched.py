"""Manifest records enhanced in batches: the batched MCEM E-step behind a manifest run with a batch size > 1.

::

    from pyro_minvae.enhancement.batched import enhance_records
    outcome = enhance_records(model, cfg, records, manifest, {r["id"]: out_dir / f"{r['id']}.wav" for r in records},
                              seed=0, iterations=30)   # {id: None (written) or the one-line reason it failed}

Each record is read and checked as :func:`~pyro_minvae.enhancement.file.enhance_record` reads it (noisy audio,
the streams the model reads, frame-aligned visual features); the readable ones are enhanced together by
:func:`pyro_minvae.infer.batched.enhance_waveforms` (one decoder and likelihood pass per MH step for the whole
batch) and written one wav per record, atomically. Every output equals the record's one-by-one output with the
same seed up to float rounding. A record that cannot be read, or whose output is NaN/Inf, fails alone with its
one-line reason; the others are written. Records longer than one chunk (30 s) are enhanced one by one, chunked.
Only ``method="mcem"`` is batched (``ValueError`` otherwise).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from ..audio_io import write_audio
from ..errors import UserInputError, one_line
from ..features import FeatureConfig
from .file import enhance_record
from .inputs import record_input
from .visual import visual_features

CHUNK_SECONDS = 30.0  # enhance_waveform's default chunk: longer records are enhanced alone, chunked


def enhance_records(
    model,
    cfg: FeatureConfig,
    records: Sequence[dict],
    manifest: str | os.PathLike,
    out_paths: Mapping[str, str | os.PathLike],
    *,
    checkpoint: str | None = None,
    method: str = "mcem",
    seed: int = 0,
    device="cpu",
    **options,
) -> dict:
    """Enhance ``records`` (one batch) into ``out_paths[id]``; returns ``{id: None | one-line failure}`` in the
    records' order. ``options`` go to the E-step (:class:`~pyro_minvae.infer.mcem.MCEMConfig` fields)."""
    from ..infer.batched import enhance_waveforms
    from ..infer.enhance import NonFiniteOutputError

    if method != "mcem":
        raise ValueError(f"only --method mcem is batched; got {method!r} (use a batch size of 1)")
    outcome: dict = {}
    ready = []  # (record, waveform, visual features)
    chunk = max(2, int(round(CHUNK_SECONDS * cfg.frame_rate)))
    for rec in records:
        try:
            inp = record_input(rec, manifest, cfg, wanted=model.modalities)
            if cfg.n_frames(inp.wave.shape[0]) > chunk:  # long: chunked, alone
                enhance_record(
                    model,
                    cfg,
                    rec,
                    manifest,
                    out_paths[rec["id"]],
                    checkpoint=checkpoint,
                    method=method,
                    seed=seed,
                    device=device,
                    **options,
                )
                outcome[rec["id"]] = None
                continue
            vis = visual_features(
                model, cfg, inp.streams, inp.wave.shape[0], f"record {rec.get('id')!r} in {manifest} lacks it"
            )
            ready.append((rec, inp, {k: torch.from_numpy(v) for k, v in vis.items()}))
            outcome[rec["id"]] = None
        except (UserInputError, OSError, ValueError) as exc:
            outcome[rec["id"]] = one_line(exc)
    if not ready:
        return outcome
    try:
        results = enhance_waveforms(
            model,
            cfg,
            [inp.wave for _, inp, _ in ready],
            [v for _, _, v in ready],
            seeds=[seed] * len(ready),
            device=device,
            chunk_seconds=CHUNK_SECONDS,
            **options,
        )
    except NonFiniteOutputError:  # which one: enhance them alone, so only the damaged output fails
        results = [None] * len(ready)
    for (rec, _, _), res in zip(ready, results):
        rid = rec["id"]
        try:
            if res is None:
                res = enhance_record(
                    model,
                    cfg,
                    rec,
                    manifest,
                    None,
                    checkpoint=checkpoint,
                    method=method,
                    seed=seed,
                    device=device,
                    **options,
                )
            write_audio(Path(out_paths[rid]), res.waveform.numpy(), cfg.sample_rate)
        except (UserInputError, OSError, ValueError) as exc:
            outcome[rid] = one_line(exc)
    return outcome


__all__ = ["enhance_records"]
