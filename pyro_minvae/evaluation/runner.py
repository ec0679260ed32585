"""The evaluation engine: run every method on every test mixture, score it, summarise, plot.

``run_evaluation(config, methods)`` works file by file (all pending methods of one file in one task, so the input
scores are computed once), in ``config.jobs`` processes (spawned through :func:`pyro_minvae.parallel.run_tasks`,
``config.threads`` torch threads each; ``jobs=1`` runs in this process). With ``config.batch_size`` B > 1, a
method that enhances several records in one pass (``batch_refusal()`` None: the VAE methods with the batched MCEM
E-step) gets its own tasks of up to B files each, every file with its own seed as alone (scores equal to
``batch_size=1`` up to float rounding); its ``enhance_s`` is then the batch's time shared equally. Each finished
task appends its rows to ``out/results.csv`` at once (see :mod:`.results`), so a killed run resumes: finished
(method, file) pairs are skipped, failed ones retried (a batch task still running when stopped is redone whole).
Ctrl-C or SIGTERM stops within seconds, keeps every row already appended and raises
:class:`~pyro_minvae.errors.Interrupted`. A file that cannot be loaded or a method that raises yields rows with
``status="error"`` and the reason; the run goes on.

Outputs in ``config.out_dir``: ``results.csv``, ``summary.json``, ``summary.md``, ``figures/<metric>_vs_snr.png``,
``figures/spectrograms_<id>.png`` and, with ``save_audio``, ``audio/<method>/<id>.wav``.
"""

from __future__ import annotations

import json
import logging
import pickle
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ..atomic import write_text_atomic
from ..contracts import EvaluationMethod, check_contract
from ..errors import Interrupted, UserInputError, one_line
from ..metrics import DEFAULT_METRICS, score, score_input
from ..parallel import deferred_stop, run_tasks, stop_signals, take_shard
from .degrade import parse_degradation
from .items import load_item, select_items
from .results import ResultsFile, drop_method_rows
from .summary import console_table, summarise, to_markdown

log = logging.getLogger("pyro_minvae")

#: files per batched E-step task. 1 (one task per file, today's plan): on the demo A-VAE's test files (default
#: MCEM, one thread per process) batches of 5-10 saved 0-10% of evaluate's CPU time, within the spread of runs on
#: this shared 2-core machine (40 files: 44.8/45.0 CPU s alone, 43.4/45.6 in batches of 5), while a batch in
#: flight is redone whole after Ctrl-C. Batches are the shape a GPU needs.
DEFAULT_BATCH_SIZE = 1


@dataclass
class EvalConfig:
    """Settings of one evaluation run (all stored in summary.json)."""

    manifest: Path
    out_dir: Path
    split: str = "test"
    jobs: int = 2
    threads: int = 1  # torch threads per worker process (1: fastest on a shared machine, see docs/cli.md)
    limit: Optional[int] = None
    snrs: Optional[Sequence[float]] = None
    noise_types: Optional[Sequence[str]] = None
    metrics: Sequence[str] = DEFAULT_METRICS
    sample_rate: int = 16000
    seed: int = 0
    save_audio: bool = False
    figures: bool = True
    example_id: Optional[str] = None
    retry_failed: bool = True
    restart: bool = False  # discard earlier results in out_dir (results.csv, run_identity.json) first
    redo_changed: bool = False  # re-run only the methods whose definition or checkpoint changed (their rows go)
    progress: bool = False
    video_degradation: Optional[str] = None  # e.g. "drop:0.5"; see pyro_minvae.evaluation.degrade
    shard: Optional[Tuple[int, int]] = None  # (k, N), 1 <= k <= N: evaluate every N-th file starting at the k-th
    batch_size: int = DEFAULT_BATCH_SIZE  # files per batched E-step task (1: one file per task, every method)

    def __post_init__(self):
        self.manifest, self.out_dir = Path(self.manifest), Path(self.out_dir)
        if self.jobs < 1:
            raise ValueError(f"jobs must be >= 1; got {self.jobs}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1; got {self.batch_size}")
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1; got {self.threads}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be >= 1; got {self.limit}")
        self.metrics = tuple(self.metrics)
        parse_degradation(self.video_degradation)  # fail early on a bad spec
        if self.redo_changed and self.shard is not None:  # rewriting results.csv would race the other shards' rows
            raise ValueError("redo_changed rewrites results.csv, which shards share: run it without a shard")
        if self.shard is not None:
            k, n = self.shard
            if not (n >= 1 and 1 <= k <= n):
                raise ValueError(f"shard must be (k, N) with 1 <= k <= N; got {self.shard}")
            self.shard = (int(k), int(n))


@dataclass
class EvalReport:
    """What a run produced: the summary dict, the failed pairs and where the files are."""

    summary: dict
    bad: List[dict]
    n_items: int
    n_evaluated: int
    wall_s: float
    paths: Dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.bad

    def table(self, metrics: Sequence[str] | None = None) -> str:
        return console_table(self.summary, metrics)


def file_seed(seed: int, item_id: str) -> int:
    """Per-file seed, independent of the order files are processed in."""
    return (int(seed) * 1_000_003 + zlib.crc32(item_id.encode())) % (2**31)


def _call(method: EvaluationMethod, item, sample_rate: int, seed: int) -> np.ndarray:
    """Run one method on one item; only oracle methods (``needs_clean``) see the clean reference."""
    clean = item.clean if method.needs_clean else None
    return method(item.noisy.copy(), sample_rate, clean=clean, video=item.video, seed=file_seed(seed, item.id))


def _enhance(method: EvaluationMethod, items: list, sample_rate: int, seed: int) -> Tuple[list, float]:
    """``([waveform or the exception raised] per item, seconds per item)``: one call for one item, one
    ``enhance_batch`` call for several."""
    t0 = time.perf_counter()
    if len(items) == 1:
        try:
            out = [_call(method, items[0], sample_rate, seed)]
        except Exception as exc:
            out = [exc]
    else:
        try:
            out = list(
                method.enhance_batch(
                    [it.noisy.copy() for it in items],
                    sample_rate,
                    clean=[it.clean if method.needs_clean else None for it in items],
                    video=[it.video for it in items],
                    seeds=[file_seed(seed, it.id) for it in items],
                )
            )
            if len(out) != len(items):
                raise RuntimeError(f"enhance_batch returned {len(out)} outputs for {len(items)} records")
        except Exception as exc:  # the batch as a whole failed: every record's row says why
            out = [exc] * len(items)
    return out, (time.perf_counter() - t0) / max(1, len(items))


def _load(rec: dict, manifest, sample_rate: int, seed: int, need_video: bool, video_degradation: Optional[str]):
    item = load_item(rec, manifest, sample_rate, need_video=need_video)
    deg = parse_degradation(video_degradation)
    if deg is not None and item.video:
        item.video = deg(item.video, np.random.default_rng(file_seed(seed, item.id) + 1))
    return item


def _row_base(rec: dict) -> dict:
    return {
        "id": rec["id"],
        "speaker": str(rec.get("speaker", "")),
        "noise_type": str(rec.get("noise_type", "")),
        "snr_db": float(rec.get("snr_db", 0.0)),
    }


def evaluate_records(
    recs: Sequence[dict],
    manifest: str,
    methods: Mapping[str, EvaluationMethod],
    pending: Sequence[str],
    metrics: Sequence[str],
    sample_rate: int,
    seed: int,
    audio_dir: Optional[str],
    video_degradation: Optional[str] = None,
) -> List[dict]:
    """Run the ``pending`` methods on the records ``recs`` and score them: one row per (record, method), records
    in order; never raises for a bad file or a failing method. Several records reach a method through one
    ``enhance_batch`` call (the runner groups them only for methods whose ``batch_refusal()`` is None).

    ``video_degradation`` (a spec such as ``"drop:0.5"``) degrades the visual streams before the methods see them.
    """
    need_video = any(methods[m].needs_video for m in pending)
    loaded = []  # (row base, item, input scores) or (row base, None, why the file failed)
    for rec in recs:
        try:
            item = _load(rec, manifest, sample_rate, seed, need_video, video_degradation)
            loaded.append((_row_base(rec), item, score_input(item.clean, item.noisy, sample_rate, metrics)))
        except Exception as exc:  # the file is bad: one error row per method, the run goes on
            loaded.append((_row_base(rec), None, f"file: {one_line(exc)}"))
    items = [item for _, item, _ in loaded if item is not None]
    outputs = {name: _enhance(methods[name], items, sample_rate, seed) for name in pending} if items else {}
    rows, k = [], 0
    for base, item, inp in loaded:
        if item is None:
            rows += [dict(base, method=m, status="error", reason=inp) for m in pending]
            continue
        for name in pending:
            out, elapsed = outputs[name]
            rows.append(_score_row(base, name, item, out[k], elapsed, inp, metrics, sample_rate, audio_dir))
        k += 1
    return rows


def _score_row(base, name, item, est, elapsed, inp, metrics, sample_rate, audio_dir) -> dict:
    """The row of one (record, method): scores of ``est`` (a waveform, or the exception the method raised)."""
    duration = item.noisy.size / sample_rate
    try:
        if isinstance(est, Exception):
            raise est
        est = np.asarray(est, dtype=np.float32)
        if est.shape != item.noisy.shape:
            raise RuntimeError(f"output shape {est.shape} differs from the input {item.noisy.shape}")
        row = dict(base, method=name, duration_s=duration)
        row.update(score(item.clean, est, item.noisy, sample_rate, metrics, input_scores=inp))
        row.update(status="ok", reason="", enhance_s=elapsed, rtf=elapsed / duration)
        if audio_dir is not None:
            from ..audio_io import write_audio

            peak = float(np.max(np.abs(est))) if est.size else 0.0
            write_audio(Path(audio_dir) / name / f"{item.id}.wav", est / peak if peak > 1.0 else est, sample_rate)
        return row
    except Exception as exc:
        return dict(base, method=name, duration_s=duration, status="error", reason=f"method: {one_line(exc)}")


def evaluate_file(rec: dict, manifest: str, methods: Mapping[str, EvaluationMethod], pending: Sequence[str], *args):
    """:func:`evaluate_records` for one record (``args``: ``metrics, sample_rate, seed, audio_dir[,
    video_degradation]``)."""
    return evaluate_records([rec], manifest, methods, pending, *args)


# --- worker processes -------------------------------------------------------------------------------------------

_WORKER_METHODS: Dict[str, EvaluationMethod] = {}


def _init_worker(methods_blob: bytes) -> None:
    global _WORKER_METHODS
    _WORKER_METHODS = pickle.loads(methods_blob)


def _use_methods(methods: Mapping[str, EvaluationMethod]) -> None:
    global _WORKER_METHODS
    _WORKER_METHODS = dict(methods)


def _worker_task(recs, manifest, pending, metrics, sample_rate, seed, audio_dir, video_degradation):
    return evaluate_records(
        recs, manifest, _WORKER_METHODS, pending, metrics, sample_rate, seed, audio_dir, video_degradation
    )


def plan_tasks(
    recs: Sequence[dict],
    pending: Mapping[str, Sequence[str]],
    methods: Mapping[str, EvaluationMethod],
    batch_size: int,
    jobs: int = 1,
) -> List[Tuple[list, list]]:
    """The tasks ``(records, method names)`` (every name run on every record) for the pending pairs ``pending``
    ``{record id: names}``: with ``batch_size`` > 1, each method that can batch (``batch_refusal()`` None) gets
    tasks of at most ``batch_size`` records, sizes as equal as possible and at least ``jobs`` tasks where there
    are records enough (no worker idles), first; every record's other pending methods form one task of that
    record (all of them with ``batch_size`` 1)."""
    batched = [m for m in methods if batch_size > 1 and methods[m].batch_refusal() is None]
    tasks: List[Tuple[list, list]] = []
    for name in batched:
        group = [r for r in recs if name in pending.get(r["id"], ())]
        n = len(group)
        n_tasks = max(-(-n // batch_size), min(n, jobs))
        tasks += [(group[k * n // n_tasks : (k + 1) * n // n_tasks], [name]) for k in range(n_tasks)]
    for r in recs:
        rest = [m for m in pending.get(r["id"], ()) if m not in batched]
        if rest:
            tasks.append(([r], rest))
    return tasks


# --- driver -----------------------------------------------------------------------------------------------------


def run_evaluation(config: EvalConfig, methods: Mapping[str, EvaluationMethod]) -> EvalReport:
    """Evaluate ``methods`` (name -> enhancement callable) on the mixtures of ``config.manifest``.

    SIGINT/SIGTERM at any point raise :class:`~pyro_minvae.errors.Interrupted` (after the finished rows are in
    results.csv; files are written atomically).
    """
    with stop_signals(raise_now=True):
        try:
            return _run_evaluation(config, methods)
        except Interrupted as exc:
            if exc.message:
                raise
            raise Interrupted(
                exc.signum,
                f"finished rows are in {config.out_dir / 'results.csv'}; run the same command again to resume",
            ) from None


def _run_evaluation(config: EvalConfig, methods: Mapping[str, EvaluationMethod]) -> EvalReport:
    if not methods:
        raise ValueError("no methods to evaluate")
    for name, m in methods.items():
        check_contract("evaluation method", name, m, EvaluationMethod)
    t_start = time.perf_counter()
    out = config.out_dir
    out.mkdir(parents=True, exist_ok=True)
    recs = select_items(config.manifest, config.split, config.snrs, config.noise_types, config.limit)
    if config.shard is not None:
        recs = take_shard(recs, config.shard)
        if not recs:
            k, n = config.shard
            raise UserInputError(f"shard {k}/{n} has no files ({config.manifest}); use fewer shards")
    if config.restart:
        _discard_results(out)
    with deferred_stop():
        _check_run_identity(config, methods)
        results = ResultsFile(out / "results.csv", config.metrics)
    done = results.done_pairs(retry_failed=config.retry_failed)
    names = list(methods)
    pending = {r["id"]: [m for m in names if (m, r["id"]) not in done] for r in recs}
    tasks = plan_tasks(recs, pending, methods, config.batch_size, config.jobs)
    n_pairs = sum(len(g) * len(p) for g, p in tasks)
    log.info(
        "evaluate: %d files x %d methods; %d pairs to run (%d already done) with %d process(es)",
        len(recs),
        len(names),
        n_pairs,
        len(recs) * len(names) - n_pairs,
        config.jobs,
    )
    audio_dir = str(out / "audio") if config.save_audio else None
    common = (str(config.manifest),)
    tail = (tuple(config.metrics), config.sample_rate, config.seed, audio_dir, config.video_degradation)
    bar = _progress(n_pairs, config.progress)
    kept = [0]

    def on_result(i: int, rows: List[dict]) -> None:
        results.append(rows)  # flushed at once: an interruption keeps it
        kept[0] += len(rows)
        bar.update(len(rows))

    def on_error(i: int, reason: str) -> None:  # a worker died (e.g. out of memory): record, keep going
        group, task_methods = tasks[i]
        on_result(
            i,
            [
                dict(_row_base(r), method=m, status="error", reason=f"worker: {reason}")
                for r in group
                for m in task_methods
            ],
        )

    if config.jobs == 1:
        init, initargs = _use_methods, (methods,)
    else:
        init, initargs = _init_worker, (pickle.dumps(dict(methods)),)
    try:
        run_tasks(
            _worker_task,
            [(group, *common, task_methods, *tail) for group, task_methods in tasks],
            jobs=config.jobs,
            threads=config.threads,
            initializer=init,
            initargs=initargs,
            on_result=on_result,
            on_error=on_error,
        )
    except Interrupted as exc:
        raise Interrupted(
            exc.signum,
            f"{kept[0]} (method, file) pair(s) finished now and kept in "
            f"{results.path}; run the same command again to resume",
        ) from None
    finally:
        bar.close()
        _use_methods({})

    ids = {r["id"] for r in recs}
    rows = [r for r in results.read() if r["id"] in ids and r["method"] in methods]
    bad = sorted(
        (
            {"method": r["method"], "id": r["id"], "reason": r.get("reason", "")}
            for r in rows
            if r.get("status") != "ok"
        ),
        key=lambda b: (b["id"], b["method"]),
    )
    summary = summarise(rows, config.metrics, names)
    settings = _settings(config, names, len(recs))
    paths = {
        "results": str(out / "results.csv"),
        "summary_json": str(out / "summary.json"),
        "summary_md": str(out / "summary.md"),
    }
    with deferred_stop():
        write_text_atomic(out / "summary.json", json.dumps({"settings": settings, **summary, "bad": bad}, indent=1))
        write_text_atomic(out / "summary.md", to_markdown(summary, settings=settings, bad=bad))
    if config.figures:  # not deferred: the example figure may run the methods again
        paths.update(_figures(config, summary, recs, rows, methods, reuse=n_pairs == 0))
    wall = time.perf_counter() - t_start
    log.info("evaluate: done in %.1f s; %d failed pair(s)", wall, len(bad))
    return EvalReport(summary=summary, bad=bad, n_items=len(recs), n_evaluated=n_pairs, wall_s=wall, paths=paths)


# settings that change every score: rows written under other values must not be mixed with new ones
_IDENTITY = ("sample_rate", "seed", "video_degradation")


def _definition(method) -> str:
    """``repr(method)``, or its class name where the repr is the default one (it holds a memory address)."""
    text = repr(method)
    return type(method).__qualname__ if " at 0x" in text else text


def _comparable(definition: str) -> str:
    """A method's definition without the checkpoint path(s) a checkpoint method names first: checkpoints are compared
    by their contents (:func:`_checkpoint_hashes`), so the same files read from elsewhere (another clone, a moved
    folder) make the same method, and ``--redo-changed`` keeps its rows."""
    if not definition.startswith("CheckpointMethod("):
        return definition
    return "CheckpointMethod(" + ", ".join(_arguments(definition)[1:]) + ")"


def _checkpoint_hashes(methods: Mapping[str, EvaluationMethod]) -> Dict[str, str]:
    """``{method name: sha256 of its checkpoint file}`` for the methods built from a checkpoint: results are tied
    to the model's contents, not to its path (a re-trained model at the same path is another model)."""
    from ..data.manifest import sha256_file
    from .vae_methods import CheckpointMethod

    by_path: Dict[str, str] = {}
    out = {}
    for name, m in methods.items():
        if isinstance(m, CheckpointMethod):
            for path in m.checkpoint_paths():
                if path not in by_path:
                    try:
                        by_path[path] = sha256_file(path)
                    except OSError as exc:
                        raise UserInputError(
                            f"{path}: cannot read the checkpoint ({exc.strerror or exc}); check --checkpoint"
                        ) from None
            out[name] = "+".join(by_path[path] for path in m.checkpoint_paths())
    return out


def _check_run_identity(config: EvalConfig, methods: Mapping[str, EvaluationMethod]) -> None:
    """Refuse to resume into a folder whose results came from other settings, another package version (whose
    method defaults may differ), a method of the same name defined differently (its ``repr``) or another
    checkpoint (its contents' sha256). With ``config.redo_changed`` and the same settings, the rows of the methods
    redefined or re-trained are dropped instead, so that only they run again; every other method's rows stay."""
    from .. import __version__

    path = config.out_dir / "run_identity.json"
    ident = {k: getattr(config, k) for k in _IDENTITY}
    ident["package_version"] = __version__
    defs = {name: _definition(m) for name, m in methods.items()}
    hashes = _checkpoint_hashes(methods)
    try:
        old = json.loads(path.read_text()) if path.exists() else None
    except (OSError, ValueError):
        raise UserInputError(f"{path}: unreadable; use a new --out directory or --restart") from None
    if old is not None:
        settings = {k: (old.get(k), v) for k, v in ident.items() if old.get(k) != v}
        old_defs, old_hashes = old.get("methods", {}), old.get("checkpoints", {})
        redefined = {
            n: (old_defs[n], d) for n, d in defs.items() if n in old_defs and _comparable(old_defs[n]) != _comparable(d)
        }
        changed = sorted(n for n, h in hashes.items() if n in old_defs and old_hashes.get(n) != h)
        stale = sorted(set(redefined) | set(changed))
        if stale and config.redo_changed and not settings:  # nothing is dropped while other settings refuse
            drop_method_rows(config.out_dir / "results.csv", stale)
            old_defs = {n: d for n, d in old_defs.items() if n not in stale}
            old_hashes = {n: h for n, h in old_hashes.items() if n not in stale}
            log.info("evaluate: %s changed; their earlier rows are dropped and they run again", ", ".join(stale))
            redefined, changed = {}, []
        redo = "" if settings else ", --redo-changed (those methods only)"
        if changed:
            raise UserInputError(
                f"{config.out_dir}: earlier results of {', '.join(changed)} were made with another "
                "checkpoint (its contents changed, e.g. re-trained at the same path); use a new "
                f"--out directory{redo} or --restart"
            )
        diff = {**settings, **{f"method {n}": change for n, change in redefined.items()}}
        if diff:
            what = ", ".join(_describe_change(k, o, n) for k, (o, n) in diff.items())
            raise UserInputError(
                f"{config.out_dir}: earlier results were made with other settings ({what}); "
                f"use a new --out directory{redo} or --restart"
            )
        defs = {**old_defs, **defs}
        hashes = {**old_hashes, **hashes}
    write_text_atomic(path, json.dumps({**ident, "methods": defs, "checkpoints": hashes}))


def _describe_change(key: str, old, new) -> str:
    """``"KEY was OLD, now NEW"``; for two long method definitions only the arguments that differ
    (``"method avae-fast: +restart_starts=(None, 0.5)"``), so the one-line error stays readable."""
    if not key.startswith("method ") or len(str(old)) + len(str(new)) <= 160:
        return f"{key} was {old!r}, now {new!r}"
    before, after = _arguments(str(old)), _arguments(str(new))
    changes = [f"-{a}" for a in before if a not in after] + [f"+{a}" for a in after if a not in before]
    return f"{key}: {' '.join(changes) or 'another definition'}"


def _arguments(definition: str) -> list:
    """The top-level arguments of ``"Name(a, b=(1, 2), c=3)"``: ``["a", "b=(1, 2)", "c=3"]``."""
    inner = definition[definition.find("(") + 1 : definition.rfind(")")] if "(" in definition else definition
    items, depth, start = [], 0, 0
    for i, c in enumerate(inner):
        depth += (c in "([{") - (c in ")]}")
        if c == "," and depth == 0:
            items.append(inner[start:i].strip())
            start = i + 1
    return [a for a in items + [inner[start:].strip()] if a]


def _discard_results(out: Path) -> None:
    """``--restart``: forget the folder's earlier results (rows, identity, summaries) before a fresh run."""
    for name in ("results.csv", "run_identity.json", "summary.json", "summary.md"):
        (out / name).unlink(missing_ok=True)


def _settings(config: EvalConfig, names: Sequence[str], n_items: int) -> dict:
    d = asdict(config)
    d = {
        k: (str(v) if isinstance(v, Path) else (list(v) if isinstance(v, tuple) else v))
        for k, v in d.items()
        if k not in ("progress", "figures", "retry_failed", "restart")
    }
    d["methods"] = list(names)
    d["n_files"] = n_items
    return d


class _NoBar:
    def update(self, n):
        pass

    def close(self):
        pass


def _progress(total: int, enabled: bool):
    if not enabled or total == 0:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, unit="pair", desc="evaluate")


_EXAMPLE_STAMP = "example.json"  # which file and methods the example figures were drawn for


def _figures(
    config: EvalConfig,
    summary: dict,
    recs: List[dict],
    rows: List[dict],
    methods: Mapping[str, EvaluationMethod],
    reuse: bool = False,
) -> Dict[str, str]:
    """metric-vs-SNR plots, the spectrograms of one example (recomputed here unless saved) and, for methods that
    report ``last_info["responsibilities"]`` after a call (``reports_info``), responsibilities next to the mouth
    opening.

    ``reuse``: no pair ran in this call (a resume with nothing left), so the example figures an earlier call drew
    for the same methods (recorded in ``figures/example.json``) are still right and are kept, not recomputed.
    """
    from .plots import plot_metric_vs_snr, plot_spectrograms

    fig_dir = config.out_dir / "figures"
    paths = {}
    for m in config.metrics:
        paths[f"fig_{m}"] = str(plot_metric_vs_snr(summary, m, fig_dir / f"{m}_vs_snr.png"))
    rec = _pick_example(config, recs, rows, list(methods))
    if rec is None:
        return paths
    stamp_path = fig_dir / _EXAMPLE_STAMP
    stamp = {"id": rec["id"], "methods": list(methods)}
    if reuse:
        kept = _kept_example_figures(fig_dir, stamp)
        if kept is not None:
            return {**paths, **kept}
    stamp_path.unlink(missing_ok=True)  # the figures below replace the recorded ones
    try:
        item = _load(rec, config.manifest, config.sample_rate, config.seed, True, config.video_degradation)
        estimates = {}
        for name, fn in methods.items():
            saved = config.out_dir / "audio" / name / f"{item.id}.wav"
            if saved.exists() and not fn.reports_info:
                from ..audio_io import load_audio

                estimates[name] = load_audio(saved, config.sample_rate)
            else:
                estimates[name] = _call(fn, item, config.sample_rate, config.seed)
                paths.update(_responsibility_figure(fig_dir, name, fn, item))
        estimates.pop("noisy", None)  # already a panel
        p = plot_spectrograms(
            fig_dir / f"spectrograms_{item.id}.png",
            item.clean,
            item.noisy,
            estimates,
            config.sample_rate,
            title=f"{item.id} ({rec['noise_type']}, {rec['snr_db']:g} dB)",
        )
        paths["fig_spectrograms"] = str(p)
        example = {
            k: Path(v).name
            for k, v in paths.items()
            if k == "fig_spectrograms" or k.startswith("fig_responsibilities_")
        }
        write_text_atomic(stamp_path, json.dumps({**stamp, "files": example}, indent=1))
    except Exception as exc:  # a figure must not sink the evaluation
        log.warning("example figures skipped: %s", one_line(exc))
    return paths


def _kept_example_figures(fig_dir: Path, stamp: dict) -> Optional[Dict[str, str]]:
    """The example figures recorded in ``fig_dir``'s stamp when they were drawn for ``stamp`` (same file and
    methods) and all still exist there; else ``None``."""
    try:
        recorded = json.loads((fig_dir / _EXAMPLE_STAMP).read_text())
    except (OSError, ValueError):
        return None
    files = recorded.get("files") if isinstance(recorded, dict) else None
    if {k: recorded.get(k) for k in stamp} != stamp or not isinstance(files, dict) or "fig_spectrograms" not in files:
        return None
    kept = {k: fig_dir / str(name) for k, name in files.items()}
    if not all(p.is_file() for p in kept.values()):
        return None
    log.info("example figures kept from the earlier run (nothing new to score): %s", kept["fig_spectrograms"])
    return {k: str(p) for k, p in kept.items()}


def _responsibility_figure(fig_dir: Path, name: str, method, item) -> Dict[str, str]:
    """Plot ``method.last_info`` = ``{"responsibilities": (N,) or (N, M), "frame_rate": float,
    "component_names": [...] (optional)}`` against the mouth opening from the item's landmarks."""
    from .plots import mouth_opening_from_landmarks, plot_responsibilities

    info = method.last_info
    if "responsibilities" not in info:
        return {}
    if "landmarks" not in item.video:
        log.info("responsibility figure of %s skipped: the record has no landmarks for the mouth opening", name)
        return {}
    p = plot_responsibilities(
        fig_dir / f"responsibilities_{name}_{item.id}.png",
        info["responsibilities"],
        float(info["frame_rate"]),
        mouth_opening_from_landmarks(item.video["landmarks"]),
        float(item.video["fps"]),
        info.get("component_names"),
        title=f"{name}: {item.id}",
    )
    return {f"fig_responsibilities_{name}": str(p)}


def _pick_example(config: EvalConfig, recs: List[dict], rows: List[dict], names: List[str]) -> Optional[dict]:
    by_id = {r["id"]: r for r in recs}
    if config.example_id is not None:
        if config.example_id not in by_id:
            log.warning("example %r is not among the evaluated files; spectrograms skipped", config.example_id)
            return None
        return by_id[config.example_id]
    ok_ids = {
        i
        for i in by_id
        if all(any(r["id"] == i and r["method"] == m and r.get("status") == "ok" for r in rows) for m in names)
    }
    if not ok_ids:
        return None
    # the file whose SNR is closest to 0 dB (ties: manifest order)
    return min((by_id[i] for i in ok_ids), key=lambda r: (abs(float(r["snr_db"])), recs.index(r)))
