"""Manifest-mode enhancement (``pyro-minvae enhance --manifest M --out-dir DIR``): every record of a split to
enhance, one wav per record, in worker processes, resumable and stoppable.

- Which records: those of ``split`` whose ``kind`` is in :data:`ENHANCEABLE_KINDS` (prepared mixtures and the
  user's own noisy recordings from ``prepare folder --split test``), sorted by id, then the ``--shard k/N`` part.
- Where each goes: ``DIR/<id>.wav``; an id may name sub-folders (``spk1/utt1`` -> ``DIR/spk1/utt1.wav``).
  :func:`output_paths` refuses, in one line, ids that would leave ``DIR`` (absolute, ``..``, a symlinked
  sub-folder), duplicate ids (also ids equal but for case, which share a file on case-insensitive file systems)
  and an output that is one of the manifest's input files.
- What made them: ``DIR/enhance-stamp.json`` records the checkpoint's sha256, the method and its options and the
  seed. A run with other ones refuses (one line naming what differs) instead of skipping the other model's files
  as "already enhanced"; ``--overwrite`` re-enhances the run's records and re-stamps. Outputs found without a
  stamp are refused likewise. Two runs into one ``DIR`` refuse through :func:`pyro_minvae.locks.run_lock`.
- Resuming and stopping: records whose output exists are skipped; temporary files of a killed write are
  removed; work runs through :func:`pyro_minvae.parallel.run_tasks` (Ctrl-C/SIGTERM stop within seconds,
  finished files are kept, :class:`~pyro_minvae.errors.Interrupted` says how to resume).

:func:`enhance_one_record` is the one per-record call (a batched E-step plugs in there).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from ..atomic import remove_stale_temps, write_text_atomic
from ..data.manifest import FILE_FIELDS, read_manifest, resolve, select, sha256_file
from ..errors import Interrupted, UserInputError
from ..parallel import deferred_stop, run_tasks, stop_signals, take_shard

log = logging.getLogger("pyro_minvae")

ENHANCEABLE_KINDS = ("mixture", "noisy")
STAMP_NAME = "enhance-stamp.json"
DEFAULT_BATCH_THREADS = 1  # torch threads per worker; 1 is fastest on a shared 2-core machine (docs/cli.md)


@dataclass(frozen=True)
class BatchSettings:
    """How a manifest is enhanced. ``options``: the E-step's options (``iterations``, ``init``, ``kernel``,
    ``loop``); ``threads``: torch threads per worker process; ``shard``: ``(k, N)``; ``batch_size`` > 1: records
    enhanced together in one batched MCEM pass per task (:mod:`pyro_minvae.enhancement.batched`; each output as
    alone with the same seed, up to float rounding)."""

    method: str = "mcem"
    seed: int = 0
    device: str = "cpu"
    options: Mapping = field(default_factory=dict)
    jobs: int = 2
    threads: int = DEFAULT_BATCH_THREADS
    shard: Tuple[int, int] = (1, 1)
    overwrite: bool = False
    batch_size: int = 1


@dataclass
class BatchReport:
    """``n_records`` in the shard, ``n_done_before`` skipped (output present), ``written`` ids, ``failed``:
    ``{id: one-line reason}`` (nothing was written for them)."""

    n_records: int
    n_done_before: int
    written: List[str]
    failed: Dict[str, str]


# ---- records and their output files ----------------------------------------------------------------------------
def batch_records(manifest: str | os.PathLike, split: str) -> List[dict]:
    """The split's records to enhance (kinds :data:`ENHANCEABLE_KINDS`), sorted by id."""
    recs = [r for r in select(read_manifest(manifest), split=split) if r.get("kind", "clean") in ENHANCEABLE_KINDS]
    if not recs:
        raise UserInputError(
            f"{manifest}: no records to enhance in split {split!r} (kind mixture or noisy); choose "
            "another --split, or index your noisy recordings with `pyro-minvae prepare folder "
            "--split test`"
        )
    return sorted(recs, key=lambda r: str(r["id"]))


def record_file_name(rid: object, manifest: str | os.PathLike) -> PurePosixPath:
    """The output path of record ``rid`` relative to the output folder: ``<id>.wav``; ids that are not plain
    relative names are refused."""
    text = rid if isinstance(rid, str) else None
    parts = PurePosixPath(text).parts if text else ()
    bad = (
        text is None
        or not text.strip()
        or "\\" in text
        or "\0" in text
        or text.startswith("/")
        or any(p in (".", "..") for p in text.split("/"))
        or "" in text.split("/")
    )
    if bad or not parts:
        raise UserInputError(
            f"{manifest}: record id {rid!r} cannot name an output file (ids become DIR/<id>.wav: "
            "no absolute paths, '..', '.', empty parts or backslashes); fix the id in the manifest"
        )
    if any(len(p.encode("utf-8", "surrogateescape")) > 251 for p in text.split("/")):  # + ".wav": 255-byte names
        raise UserInputError(
            f"{manifest}: record id {text[:40]!r}... is too long to name a file (DIR/<id>.wav: at "
            "most 251 bytes between slashes); shorten the id in the manifest"
        )
    return PurePosixPath(text + ".wav")


def output_paths(
    records: Sequence[dict],
    out_dir: str | os.PathLike,
    manifest: str | os.PathLike,
    all_records: Optional[Sequence[dict]] = None,
) -> Dict[str, Path]:
    """``{id: output path}`` under ``out_dir`` for ``records``; one-line ``UserInputError`` for ids that would
    escape ``out_dir``, share an output file (equal, or equal but for case) or replace an input file of
    ``all_records`` (default ``records``) or the manifest."""
    out = Path(out_dir)
    root = out.resolve()
    paths: Dict[str, Path] = {}
    seen: Dict[str, str] = {}
    for r in records:
        rid = r.get("id")
        rel = record_file_name(rid, manifest)
        key = str(rel).casefold()
        if key in seen:
            other = seen[key]
            how = f"{rid!r} given twice" if other == rid else f"{other!r} and {rid!r} equal but for case"
            raise UserInputError(
                f"{manifest}: record ids {how}; both would write {out / rel}; make the ids unique "
                "(re-run `pyro-minvae prepare`)"
            )
        seen[key] = rid
        path = out / rel
        if not path.resolve().is_relative_to(root):
            raise UserInputError(
                f"{manifest}: record {rid!r} would be written outside {out} (a symlinked "
                "sub-folder); choose another --out-dir"
            )
        paths[rid] = path
    inputs = {Path(manifest).resolve(): "the manifest"}
    for r in all_records if all_records is not None else records:
        for key in FILE_FIELDS:
            if isinstance(r.get(key), str):
                inputs[resolve(manifest, r[key]).resolve()] = f"the {key} input of record {r.get('id')!r}"
    for rid, path in paths.items():
        what = inputs.get(path.resolve())
        if what is not None:
            raise UserInputError(f"{path}: the output of record {rid!r} would replace {what}; choose another --out-dir")
    return paths


# ---- what made the outputs ---------------------------------------------------------------------------------------
def run_stamp(checkpoint: str | os.PathLike, settings: BatchSettings) -> dict:
    """What decides the audio of a run: the checkpoint's contents, the method, its options as given and as they
    resolve with this version's defaults and the model's restart schedule (``config``: a changed default, e.g. the
    fast E-step's restarts, is a change of settings too), and the seed."""
    from ..checkpoint import checkpoint_paths, load_models
    from ..infer.estep_common import scheduled_config
    from .options import estep_config

    paths = checkpoint_paths(checkpoint)
    config = estep_config(settings.method, settings.options)
    if config.restarts > 1:  # the NMF starts of the restarts: the model's (or ensemble's) schedule
        config = scheduled_config(config, load_models(paths, "cpu")[0])
    stamp = {
        "checkpoint_sha256": "+".join(sha256_file(p) for p in paths),  # an ensemble: each
        "method": settings.method,
        "options": {k: settings.options[k] for k in sorted(settings.options)},
        "config": dict(sorted(config.plain_options().items())),
        "seed": settings.seed,
    }
    return json.loads(json.dumps(stamp))  # as the folder's stamp file reads back (a tuple is a list there)


def check_stamp(out_dir: Path, stamp: dict, n_existing: int, overwrite: bool) -> None:
    """Refuse to add to a folder written with another stamp, or to one holding outputs without a stamp; write
    ``stamp`` otherwise (with ``overwrite`` it replaces an old one)."""
    path = out_dir / STAMP_NAME
    old = None
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError):
            old = {}
    if not overwrite:
        if old is not None and old != stamp:
            diff = [f"{k} {_short(old.get(k))} -> {_short(v)}" for k, v in stamp.items() if old.get(k) != v] or [
                f"{path.name} unreadable"
            ]
            raise UserInputError(
                f"{out_dir}: holds files enhanced with other settings ({'; '.join(diff)}); use a "
                "new --out-dir, or --overwrite to re-enhance every record"
            )
        if old is None and n_existing:
            raise UserInputError(
                f"{out_dir}: holds {n_existing} output file(s) but no {STAMP_NAME} saying which "
                "checkpoint and settings made them; use a new --out-dir, or --overwrite to "
                "re-enhance every record"
            )
    if old != stamp:
        write_text_atomic(path, json.dumps(stamp, indent=1, sort_keys=True) + "\n")


def _short(v) -> str:
    text = json.dumps(v, sort_keys=True) if not isinstance(v, str) else v
    return text[:12] + "..." if len(text) > 40 else text


# ---- workers -----------------------------------------------------------------------------------------------------
_WORKER: dict = {}


def _init_worker(checkpoints: tuple, device: str, level: int) -> None:
    from ..checkpoint import checkpoint_name, load_models

    logging.getLogger("pyro_minvae").setLevel(level)
    model, cfg, _ = load_models(checkpoints, device)
    _WORKER.update(model=model, cfg=cfg, device=device, checkpoint=checkpoint_name(checkpoints))


def _with_worker_model(enhance, *args, **kwargs):
    """``enhance(model, cfg, *args, checkpoint=, device=, **kwargs)`` with the model this worker loaded."""
    w = _WORKER
    return enhance(w["model"], w["cfg"], *args, checkpoint=w["checkpoint"], device=w["device"], **kwargs)


def enhance_one_record(record: dict, manifest: str, out_path: str, method: str, seed: int, options: dict) -> str:
    """Enhance one record with the worker's model and write ``out_path`` atomically; returns the id. A bad record
    raises (the pool reports its one-line reason)."""
    from .file import enhance_record

    _with_worker_model(enhance_record, record, manifest, out_path, method=method, seed=seed, **options)
    return record["id"]


def enhance_record_batch(records: list, manifest: str, out_paths: list, method: str, seed: int, options: dict) -> dict:
    """Enhance ``records`` together (one batched E-step) with the worker's model; ``{id: None | reason}``."""
    from .batched import enhance_records

    outs = {r["id"]: path for r, path in zip(records, out_paths)}
    return _with_worker_model(enhance_records, records, manifest, outs, method=method, seed=seed, **options)


# ---- driver ------------------------------------------------------------------------------------------------------
def enhance_manifest(
    checkpoint: str | os.PathLike | Sequence[str | os.PathLike],
    manifest: str | os.PathLike,
    split: str,
    out_dir: str | os.PathLike,
    settings: BatchSettings,
) -> BatchReport:
    """Enhance the shard's records of ``split`` that have no output yet into ``out_dir`` (see the module doc).
    SIGINT/SIGTERM at any point raise :class:`~pyro_minvae.errors.Interrupted`; finished files stay."""
    with stop_signals(raise_now=True):
        try:
            return _enhance_manifest(checkpoint, manifest, split, out_dir, settings)
        except Interrupted as exc:
            if exc.message:
                raise
            raise Interrupted(exc.signum, "finished files are kept; run the same command again to resume") from None


def _enhance_manifest(checkpoint, manifest, split, out_dir, settings: BatchSettings) -> BatchReport:
    from ..locks import run_lock

    all_records = read_manifest(manifest)
    records = take_shard(batch_records(manifest, split), settings.shard)
    out = Path(out_dir)
    paths = output_paths(records, out, manifest, all_records)
    k, n = settings.shard
    with run_lock(out, "enhance"):
        todo = [r for r in records if settings.overwrite or not paths[r["id"]].exists()]
        with deferred_stop():
            check_stamp(out, run_stamp(checkpoint, settings), len(records) - len(todo), settings.overwrite)
        for r in todo:  # temporary files of a run killed mid-write
            remove_stale_temps(paths[r["id"]])
        log.info(
            "%d record(s) in shard %d/%d, %d to do, %d already enhanced",
            len(records),
            k,
            n,
            len(todo),
            len(records) - len(todo),
        )
        written: List[str] = []
        failed: Dict[str, str] = {}
        if todo:
            _run(checkpoint, str(manifest), todo, paths, settings, written, failed)
    return BatchReport(len(records), len(records) - len(todo), written, failed)


def _run(
    checkpoint, manifest: str, todo: List[dict], paths, settings: BatchSettings, written: list, failed: dict
) -> None:
    from tqdm import tqdm

    from ..checkpoint import checkpoint_paths

    level = logging.getLogger("pyro_minvae").getEffectiveLevel()
    bar = tqdm(total=len(todo), desc="enhance", unit="file", disable=None)

    def on_result(i, rid):
        written.append(rid)
        bar.update(1)

    def on_error(i, reason):
        failed[todo[i]["id"]] = reason
        bar.update(1)

    tasks = [(r, manifest, str(paths[r["id"]]), settings.method, settings.seed, dict(settings.options)) for r in todo]
    fn = enhance_one_record
    if settings.batch_size > 1:  # one task per batch of records; results and failures still per record
        groups = [todo[i : i + settings.batch_size] for i in range(0, len(todo), settings.batch_size)]
        tasks = [
            (g, manifest, [str(paths[r["id"]]) for r in g], settings.method, settings.seed, dict(settings.options))
            for g in groups
        ]
        fn = enhance_record_batch

        def on_result(i, outcome):
            for rid, reason in outcome.items():
                if reason is None:
                    written.append(rid)
                else:
                    failed[rid] = reason
                bar.update(1)

        def on_error(i, reason):
            for r in groups[i]:
                failed[r["id"]] = reason
                bar.update(1)

    try:
        run_tasks(
            fn,
            tasks,
            jobs=settings.jobs,
            threads=settings.threads,
            initializer=_init_worker,
            initargs=(checkpoint_paths(checkpoint), settings.device, level),
            on_result=on_result,
            on_error=on_error,
        )
    except Interrupted as exc:
        raise Interrupted(
            exc.signum, f"{len(written)} file(s) enhanced now and kept; run the same command again to enhance the rest"
        ) from None
    finally:
        bar.close()
        _WORKER.clear()
