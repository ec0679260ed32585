"""Build the embedded audio-visual demo corpus (``pyro-minvae prepare demo``).

Steps (each seeded by ``DemoConfig.seed``):

1. fetch the Debian packages (``debian.py``) - skipped when ``packages`` is given (tests use fake trees);
2. enumerate and deduplicate the speech files (``sources.py``);
3. per clip, in ``workers`` processes: decode, resample to 16 kHz, trim silence, drop clips shorter than
   ``min_clip_s``, normalise loudness, align phones (one ``PhoneAligner`` per process; forced alignment for
   English prompts with a transcript, phone loop otherwise). Results are cached per clip under
   ``cache_dir()/work/demo-clips-<hash>/`` so an interrupted run resumes;
4. concatenate the clips of each speaker into ``utt_min_s``-``utt_max_s`` utterances with short pauses
   (phone timings shifted, pauses labelled ``SIL``);
5. split speakers into train / valid / test (disjoint; the two largest speakers always train);
6. render the mouth ROIs ``(N_v, 67, 67)`` uint8 and lip landmarks ``(N_v, P, 2)`` float32 at 30 fps,
   ``N_v = ceil(T / sr * fps)``, with one appearance per speaker;
7. mix test utterances with noise at every SNR in ``snrs`` (noise type rotating over ``noise_types``) and a few
   validation utterances at ``valid_snrs``;
8. the *validation set* that chooses enhancement settings (``pyro-minvae tune``): ``n_tune_utterances``
   validation utterances (balanced over the validation speakers) mixed at every SNR in ``snrs``, the noise type
   rotating so that every (SNR, noise type) pair gets the same number of mixtures (24 utterances, 5 SNRs and 6
   types: 120 mixtures, 4 per pair). These mixtures are built from the files on disk only (clean wavs, babble
   from the training wavs), so a corpus prepared before the set existed gets exactly the same mixtures;
9. write wavs, npys, ``phones.json`` and ``manifest.jsonl`` (schema in ``data/manifest.py``) into a staging
   folder, then rename it to ``cache_dir()/corpora/demo`` (``demo-small`` with ``small=True``), with a
   ``.done.json`` stamp holding the config hash. A second run with the same config does nothing. A run on a
   corpus whose stamp has the same hash but another (or no) ``validation_set`` entry only adds the missing
   validation-set mixtures: new wavs under ``mixtures/valid/``, then the manifest and the stamp replaced
   atomically; clean, lips and training files are not touched.

Extra manifest fields written here: ``transcript`` (when known), ``noise_source``, ``noise_scale``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import math
import multiprocessing as mp
import os
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ...atomic import atomic_path, replace_directory, write_text_atomic
from ...audio_io import write_audio
from ...errors import MissingDependencyError
from ...paths import cache_dir
from ..manifest import read_manifest, sha256_file, write_manifest
from ..mixing import mix
from .debian import PackageTree, fetch_packages
from .noise import LINCITY, NoiseBank, load_ambiences
from .sources import SPEECH_PACKAGES, SourceClip, clean_clip, decode_clip, enumerate_clips

log = logging.getLogger("pyro_minvae")

RECIPE_VERSION = "1"
VALIDATION_SET_VERSION = "1"
# fields that only shape the validation set: added to an existing corpus without rebuilding it
VALIDATION_SET_FIELDS = ("n_tune_utterances",)
ALL_PACKAGES = SPEECH_PACKAGES + (LINCITY,)


@dataclass(frozen=True)
class DemoConfig:
    """Everything that determines the corpus; its hash names the done-stamp and the clip cache."""

    seed: int = 0
    small: bool = False
    sample_rate: int = 16000
    fps: float = 30.0
    lip_size: int = 67
    min_clip_s: float = 0.5
    utt_min_s: float = 2.0
    utt_max_s: float = 6.0
    pause_s: tuple[float, float] = (0.12, 0.3)
    n_test_speakers: int = 6
    n_valid_speakers: int = 4
    snrs: tuple[int, ...] = (-10, -5, 0, 5, 10)
    noise_types: tuple[str, ...] = ("white", "pink", "babble", "traffic", "crowd", "industry")
    max_test_utterances: int = 42
    valid_snrs: tuple[int, ...] = (0, -5)
    n_valid_mixture_utterances: int = 6
    n_tune_utterances: int = 24
    small_speakers: int = 12
    small_clips_per_speaker: int = 10
    workers: int = 2
    recipe: str = RECIPE_VERSION
    mouth_style: str = "classic"  # pyro_minvae.visual.render.STYLES

    def digest(self, exclude: Sequence[str] = ("workers",) + VALIDATION_SET_FIELDS) -> str:
        """Hash of the base corpus (the validation set is stamped apart: :func:`validation_set_key`)."""
        d = {k: v for k, v in dataclasses.asdict(self).items() if k not in exclude}
        if d.get("mouth_style") == "classic":  # corpora rendered before the style existed stay valid
            del d["mouth_style"]
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    def clip_digest(self) -> str:
        """Hash of what per-clip processing depends on (shared by small and full corpora)."""
        d = {"sr": self.sample_rate, "min": self.min_clip_s, "recipe": self.recipe}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


@dataclass
class VisualBackend:
    """Phone aligner and mouth renderer. ``make_aligner()`` -> object with ``align(wave, transcript)``;
    ``render(phones, n_frames, speaker_seed, seed, fps, size)`` -> ``(frames, landmarks)``. Must be picklable
    (module-level functions) when ``workers > 1``."""

    make_aligner: Callable[[], Any]
    render: Callable[..., tuple[np.ndarray, np.ndarray]]
    segment: Callable[[str, float, float], Any]


def _default_make_aligner():
    from ...visual.align import PhoneAligner

    return PhoneAligner(sample_rate=16000)


def _default_render(phones, n_frames, speaker_seed, seed, fps, size, style: str = "classic"):
    from ...visual.render import SpeakerAppearance, render_clip

    return render_clip(
        phones, n_frames, SpeakerAppearance.from_seed(speaker_seed, style), fps=fps, seed=seed, size=size
    )


def _default_segment(phone, start, end):
    from ...visual.align import PhoneSegment

    return PhoneSegment(phone, start, end)


def default_backend(mouth_style: str = "classic") -> VisualBackend:
    """pocketsphinx phone timings and the package's renderer in ``mouth_style``."""
    try:
        import pyro_minvae.visual.align  # noqa: F401
        import pyro_minvae.visual.render  # noqa: F401
    except ModuleNotFoundError as exc:
        raise MissingDependencyError(f"visual stream module missing ({exc.name}); reinstall pyro-minvae") from None
    render = _default_render if mouth_style == "classic" else functools.partial(_default_render, style=mouth_style)
    return VisualBackend(_default_make_aligner, render, _default_segment)


@dataclass
class Clip:
    """A processed clip: 16 kHz wave ``(T,)`` float32 and phone segments (seconds) as ``(phone, start, end)``."""

    source: SourceClip
    wave: np.ndarray
    phones: list[tuple[str, float, float]]
    method: str = "unknown"  # "forced" | "phone_loop" | "none" (from the aligner)


@dataclass
class Utterance:
    id: str
    speaker: str
    wave: np.ndarray
    phones: list[tuple[str, float, float]]
    parts: list[SourceClip]
    split: str = "train"

    @property
    def transcript(self) -> str | None:
        ts = [p.transcript for p in self.parts]
        return " | ".join(ts) if all(t for t in ts) else None


@dataclass
class DemoResult:
    out_dir: Path
    manifest: Path
    skipped: bool
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    added: int = 0  # validation-set mixtures added to an existing corpus


def stable_seed(*parts: Any) -> int:
    """A 32-bit seed from any printable parts (stable across processes and runs)."""
    return int(hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:8], 16)


def corpus_dir(small: bool = False, cache: str | os.PathLike | None = None) -> Path:
    return cache_dir(cache) / "corpora" / ("demo-small" if small else "demo")


# ----------------------------------------------------------------------------------------------- per-clip work
_ALIGNER = None
_BACKEND: VisualBackend | None = None


def _init_worker(backend: VisualBackend, one_thread: bool = True) -> None:
    global _ALIGNER, _BACKEND
    if _BACKEND is not backend:
        _ALIGNER = None
    _BACKEND = backend
    if one_thread:  # a pool worker: one torch thread, and no per-clip alignment chatter on the console
        # The parent coordinates Ctrl-C; SIGTERM (Pool.terminate) must kill at once. The handlers a forked worker
        # inherits from the CLI raise in Python, which a worker blocked in a lock may never get to run.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        logging.getLogger("pyro_minvae.visual.align").setLevel(logging.ERROR)
        try:
            import torch

            torch.set_num_threads(1)
        except ImportError:  # pragma: no cover
            pass


def _aligner():
    global _ALIGNER
    if _ALIGNER is None:
        _ALIGNER = _BACKEND.make_aligner()
    return _ALIGNER


def _process_clip(args: tuple[SourceClip, Path, int, float]) -> Clip | None:
    """Decode, clean and align one clip (cached in ``cache_path``); ``None`` when dropped."""
    clip, cache_path, sr, min_s = args
    if cache_path.exists():
        with np.load(cache_path, allow_pickle=False) as z:
            if z["wave"].size == 0:
                return None
            wave = z["wave"].astype(np.float32) / 32767.0
            phones = [(str(p), float(s), float(e)) for p, s, e in zip(z["phone"], z["start"], z["end"])]
            method = str(z["method"]) if "method" in z.files else "unknown"
        return Clip(clip, wave, phones, method)
    x, sr_in = decode_clip(clip.path)
    y = clean_clip(x, sr_in, sr, min_s)
    if y is None:
        _save_clip(cache_path, np.zeros(0, np.int16), [], "none")
        return None
    y16 = np.round(np.clip(y, -1, 1) * 32767).astype(np.int16)
    y = y16.astype(np.float32) / 32767.0
    phones, method = _align(y, clip.align_text, sr)
    _save_clip(cache_path, y16, phones, method)
    return Clip(clip, y, phones, method)


def _align(wave: np.ndarray, text: str | None, sr: int = 16000) -> tuple[list[tuple[str, float, float]], str]:
    """Phones of one clip and the method that produced them (forced alignment falls back to the phone loop)."""
    aligner = _aligner()
    segs = None
    if text:
        try:
            segs = aligner.align(wave, text)
        except Exception as exc:  # an out-of-vocabulary word: fall back to the phone loop
            log.debug("forced alignment failed (%s); phone loop instead", exc)
    if not segs:
        try:
            segs = aligner.align(wave, None)
        except Exception as exc:
            log.warning("phone decoding failed (%s); clip rendered as one open vowel", exc)
            segs = []
    out = [(str(s.phone), float(s.start), float(s.end)) for s in segs]
    method = str(getattr(aligner, "last_method", "forced" if text else "phone_loop"))
    if not out:
        out, method = [("AA", 0.0, len(wave) / sr)], "none"
    return out, method


def _save_clip(path: Path, wave16: np.ndarray, phones: list[tuple[str, float, float]], method: str) -> None:
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(
                f,
                wave=wave16,
                method=np.array(method),
                phone=np.array([p for p, _, _ in phones], dtype="U8"),
                start=np.array([s for _, s, _ in phones], np.float64),
                end=np.array([e for _, _, e in phones], np.float64),
            )


def _render_utterance(args: tuple) -> tuple[str, int]:
    """Render and write one utterance's lips and landmarks; returns ``(id, n_frames)``."""
    uid, phones, n_samples, sr, fps, size, speaker_seed, seed, lips_path, lm_path = args
    segs = [_BACKEND.segment(p, s, e) for p, s, e in phones]
    n_frames = int(math.ceil(n_samples / sr * fps - 1e-9))
    frames, landmarks = _BACKEND.render(segs, n_frames, speaker_seed, seed, fps, size)
    frames = np.asarray(frames)
    landmarks = np.asarray(landmarks, dtype=np.float32)
    if frames.shape != (n_frames, size, size) or frames.dtype != np.uint8:
        raise ValueError(
            f"renderer returned {frames.shape} {frames.dtype}, expected ({n_frames}, {size}, {size}) uint8"
        )
    if landmarks.ndim != 3 or landmarks.shape[0] != n_frames or landmarks.shape[2] != 2:
        raise ValueError(f"renderer returned landmarks {landmarks.shape}, expected ({n_frames}, P, 2)")
    for path, arr in ((lips_path, frames), (lm_path, landmarks)):
        with atomic_path(path, suffix=".npy") as tmp:
            np.save(tmp, arr)
    return uid, n_frames


def _map(
    func, items: list, workers: int, backend: VisualBackend, desc: str, progress: bool, chunksize: int = 4
) -> list:
    from tqdm.auto import tqdm

    bar = dict(total=len(items), desc=desc, disable=not progress, unit="it", mininterval=1.0)
    if workers <= 1 or len(items) < 2 * workers:
        _init_worker(backend, one_thread=False)
        return [func(it) for it in tqdm(items, **bar)]
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context("spawn")
    pool = ctx.Pool(workers, initializer=_init_worker, initargs=(backend,))
    try:
        out = list(tqdm(pool.imap(func, items, chunksize=chunksize), **bar))
    except BaseException:  # an error or Ctrl-C: stop the workers now (they die on SIGTERM, see _init_worker)
        pool.terminate()
        pool.join()
        raise
    # Done: let the workers leave on their own. Pool's context manager would SIGTERM them instead, and a worker
    # that inherited a Python-level SIGTERM handler could miss it while entering a blocking wait and hang the join.
    pool.close()
    pool.join()
    return out


# ------------------------------------------------------------------------------------------------ corpus logic
def select_small(clips: list[SourceClip], cfg: DemoConfig) -> list[SourceClip]:
    """The ``--small`` subset: ``small_speakers`` speakers (seeded; both asterisk voices kept) and
    ``small_clips_per_speaker`` clips each."""
    rng = np.random.default_rng(stable_seed(cfg.seed, "small"))
    speakers = sorted({c.speaker for c in clips})
    first = [s for s in speakers if s.startswith("asterisk-")]
    rest = [s for s in speakers if s not in first]
    rng.shuffle(rest)
    keep = set((first + rest)[: cfg.small_speakers])
    out = []
    for s in sorted(keep):
        mine = [c for c in clips if c.speaker == s]
        idx = rng.permutation(len(mine))[: cfg.small_clips_per_speaker]
        out += [mine[i] for i in sorted(idx)]
    return out


def build_utterances(clips: list[Clip], cfg: DemoConfig) -> list[Utterance]:
    """Concatenate each speaker's clips (seeded order) into ``utt_min_s``..``utt_max_s`` utterances.

    A clip longer than ``utt_max_s`` stays alone; pauses of ``pause_s`` seconds (low dither) separate clips.
    """
    sr = cfg.sample_rate
    by_spk: dict[str, list[Clip]] = {}
    for c in clips:
        by_spk.setdefault(c.source.speaker, []).append(c)
    out: list[Utterance] = []
    for spk in sorted(by_spk):
        rng = np.random.default_rng(stable_seed(cfg.seed, "utt", spk))
        mine = sorted(by_spk[spk], key=lambda c: c.source.file)
        order = rng.permutation(len(mine))
        groups: list[list[Clip]] = []
        cur: list[Clip] = []
        cur_s = 0.0
        target = rng.uniform(cfg.utt_min_s, cfg.utt_max_s)
        for i in order:
            c = mine[i]
            d = len(c.wave) / sr
            if cur and cur_s + d > cfg.utt_max_s and cur_s >= cfg.utt_min_s:
                groups.append(cur)
                cur, cur_s = [], 0.0
                target = rng.uniform(cfg.utt_min_s, cfg.utt_max_s)
            cur.append(c)
            cur_s += d + 0.2
            if cur_s >= target:
                groups.append(cur)
                cur, cur_s = [], 0.0
                target = rng.uniform(cfg.utt_min_s, cfg.utt_max_s)
        if cur:
            prev_s = sum(len(c.wave) for c in groups[-1]) / sr if groups else 0.0
            if cur_s < cfg.utt_min_s and groups and prev_s + cur_s <= 1.5 * cfg.utt_max_s:
                groups[-1].extend(cur)
            else:
                groups.append(cur)
        for k, g in enumerate(groups):
            out.append(_join(f"{spk}-{k:04d}", spk, g, cfg, rng))
    return out


def _join(uid: str, spk: str, group: list[Clip], cfg: DemoConfig, rng: np.random.Generator) -> Utterance:
    sr = cfg.sample_rate
    pieces, phones = [], []
    t = 0
    for j, c in enumerate(group):
        if j:
            n = int(rng.uniform(*cfg.pause_s) * sr)
            pieces.append(np.zeros(n, np.float32))
            phones.append(("SIL", t / sr, (t + n) / sr))
            t += n
        pieces.append(c.wave)
        phones += [(p, s + t / sr, e + t / sr) for p, s, e in c.phones]
        t += len(c.wave)
    wave = np.concatenate(pieces)
    wave = wave + (1e-4 * rng.standard_normal(len(wave))).astype(np.float32)
    return Utterance(uid, spk, wave.astype(np.float32), phones, [c.source for c in group])


def split_speakers(durations: Mapping[str, float], cfg: DemoConfig) -> dict[str, str]:
    """Speaker -> split. The two speakers with most speech always train; test and valid speakers are drawn
    (seeded) from the others, preferring speakers with 0.5-6 minutes."""
    speakers = sorted(durations)
    n = len(speakers)
    if n < 3:
        raise ValueError(f"need at least 3 speakers for speaker-disjoint splits, got {n}")
    rng = np.random.default_rng(stable_seed(cfg.seed, "split"))
    big = sorted(speakers, key=lambda s: -durations[s])[:2]
    pool = [s for s in speakers if s not in big]
    mid = [s for s in pool if 30.0 <= durations[s] <= 360.0]
    other = [s for s in pool if s not in mid]
    rng.shuffle(mid)
    rng.shuffle(other)
    ranked = mid + other
    n_test = max(1, min(cfg.n_test_speakers, (n - 1) // 3))
    n_valid = max(1, min(cfg.n_valid_speakers, (n - 1) // 4))
    out = {s: "train" for s in speakers}
    for s in ranked[:n_test]:
        out[s] = "test"
    for s in ranked[n_test : n_test + n_valid]:
        out[s] = "valid"
    return out


def _source_record(u: Utterance) -> dict:
    first = u.parts[0]
    return {
        "package": first.package,
        "version": first.version,
        "file": first.file,
        "parts": [{"package": p.package, "version": p.version, "file": p.file, "sha256": p.sha256} for p in u.parts],
    }


def _pick_balanced(
    utts: list, n: int, rng: np.random.Generator, speaker: Callable[[Any], str] = lambda u: u.speaker
) -> list:
    """Up to ``n`` utterances, round-robin over speakers (seeded)."""
    by: dict[str, list] = {}
    for u in utts:
        by.setdefault(speaker(u), []).append(u)
    queues = {s: [v[i] for i in rng.permutation(len(v))] for s, v in sorted(by.items())}
    out: list[Utterance] = []
    while len(out) < n and any(queues.values()):
        for s in sorted(queues):
            if queues[s] and len(out) < n:
                out.append(queues[s].pop())
    return out


def _snr_tag(snr: float) -> str:
    return ("m" if snr < 0 else "p") + f"{abs(int(snr)):02d}"


# ------------------------------------------------------------------------------------------------ orchestrator
def prepare_demo(
    cache: str | os.PathLike | None = None,
    config: DemoConfig = DemoConfig(),
    packages: Mapping[str, PackageTree] | None = None,
    backend: VisualBackend | None = None,
    progress: bool = True,
    force: bool = False,
) -> DemoResult:
    """Build the demo corpus (idempotent). ``packages`` replaces the Debian download (tests pass fake trees)."""
    t0 = time.time()
    cfg = config
    out_dir = corpus_dir(cfg.small, cache)
    stamp = out_dir / ".done.json"
    digest = cfg.digest()
    if not force and stamp.exists() and (out_dir / "manifest.jsonl").exists():
        try:
            done = json.loads(stamp.read_text())
        except json.JSONDecodeError:
            done = {}
        if done.get("config_hash") == digest:
            if done.get("validation_set") == validation_set_key(cfg):
                log.debug("demo corpus already prepared at %s (config %s); nothing to do", out_dir, digest)
                return DemoResult(out_dir, out_dir / "manifest.jsonl", True, time.time() - t0)
            return _extend_validation_set(out_dir, done, cfg, packages, cache_dir(cache), progress, t0)
    backend = backend or default_backend(cfg.mouth_style)
    root = cache_dir(cache)
    timings: dict[str, float] = {}

    def tick(name: str, since: float) -> float:
        now = time.time()
        timings[name] = round(now - since, 2)
        log.info("%s: %.1f s", name, now - since)
        return now

    t = time.time()
    if packages is None:
        log.info("fetching Debian packages into %s", root / "debian")
        packages = fetch_packages(ALL_PACKAGES, root / "debian")
    t = tick("fetch", t)

    clips_src = enumerate_clips(packages)
    if cfg.small:
        clips_src = select_small(clips_src, cfg)
    if not clips_src:
        raise MissingDependencyError(
            "no speech files found in the demo packages; delete "
            f"{root / 'debian'} and re-run `pyro-minvae prepare demo`"
        )
    work = root / "work" / f"demo-clips-{cfg.clip_digest()}"
    work.mkdir(parents=True, exist_ok=True)
    items = [(c, work / f"{c.sha256[:24]}.npz", cfg.sample_rate, cfg.min_clip_s) for c in clips_src]
    processed = _map(_process_clip, items, cfg.workers, backend, "decode+align clips", progress, chunksize=8)
    clips = [c for c in processed if c is not None]
    log.info("%d of %d clips kept (>= %.1f s after trimming)", len(clips), len(processed), cfg.min_clip_s)
    methods: dict[str, int] = {}
    for c in clips:
        methods[c.method] = methods.get(c.method, 0) + 1
    log.info("phone timings: %s", ", ".join(f"{k} {v}" for k, v in sorted(methods.items())))
    t = tick("decode+align", t)

    utts = build_utterances(clips, cfg)
    dur: dict[str, float] = {}
    for u in utts:
        dur[u.speaker] = dur.get(u.speaker, 0.0) + len(u.wave) / cfg.sample_rate
    splits = split_speakers(dur, cfg)
    for u in utts:
        u.split = splits[u.speaker]

    staging = out_dir.parent / f".{out_dir.name}.partial-{digest}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    records: list[dict] = []
    render_items = []
    for u in utts:
        rel_audio = f"clean/{u.split}/{u.speaker}/{u.id}.wav"
        write_audio(staging / rel_audio, u.wave, cfg.sample_rate)
        render_items.append(
            (
                u.id,
                u.phones,
                len(u.wave),
                cfg.sample_rate,
                cfg.fps,
                cfg.lip_size,
                stable_seed(cfg.seed, "speaker", u.speaker),
                stable_seed(cfg.seed, "render", u.id),
                staging / f"lips/{u.id}.npy",
                staging / f"landmarks/{u.id}.npy",
            )
        )
        rec = {
            "id": u.id,
            "split": u.split,
            "speaker": u.speaker,
            "kind": "clean",
            "audio": rel_audio,
            "lips": f"lips/{u.id}.npy",
            "landmarks": f"landmarks/{u.id}.npy",
            "fps": cfg.fps,
            "duration": round(len(u.wave) / cfg.sample_rate, 4),
            "sha256": sha256_file(staging / rel_audio),
            "source": _source_record(u),
        }
        if u.transcript:
            rec["transcript"] = u.transcript
        records.append(rec)
    _map(_render_utterance, render_items, cfg.workers, backend, "render mouths", progress, chunksize=2)
    write_text_atomic(
        staging / "phones.json",
        json.dumps({u.id: [[p, round(s, 3), round(e, 3)] for p, s, e in u.phones] for u in utts}),
    )
    t = tick("write+render", t)

    bank = _noise_bank(packages, cfg)
    records += _make_mixtures(utts, records, bank, cfg, staging, progress)
    records += validation_set_mixtures(records, bank, cfg, staging, progress)
    t = tick("mixtures", t)

    write_manifest(staging / "manifest.jsonl", records)
    versions = {n: p.version for n, p in sorted(packages.items())}
    info = {
        "config_hash": digest,
        "validation_set": validation_set_key(cfg),
        "config": dataclasses.asdict(cfg),
        "packages": versions,
        "alignment": methods,
        "clips": {"found": len(processed), "kept": len(clips)},
        "timings_s": timings,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_text_atomic(staging / ".done.json", json.dumps(info, indent=1, sort_keys=True))
    replace_directory(staging, out_dir)
    total = time.time() - t0
    log.debug("demo corpus written to %s in %.0f s", out_dir, total)
    return DemoResult(out_dir, out_dir / "manifest.jsonl", False, total, timings)


def _noise_bank(packages: Mapping[str, PackageTree], cfg: DemoConfig) -> NoiseBank:
    sr = cfg.sample_rate
    return load_ambiences(packages[LINCITY], sr) if LINCITY in packages else NoiseBank(sr)


def _noise_types(bank: NoiseBank, cfg: DemoConfig, n_train_speakers: int, warn: bool = True) -> list[str]:
    """The configured noise types the bank has (babble needs 4 training speakers), in config order."""
    types = [t for t in cfg.noise_types if t in bank.types]
    missing = [t for t in cfg.noise_types if t not in bank.types]
    if missing and warn:
        log.warning("noise types %s unavailable (no %s); using %s", missing, LINCITY, types)
    return [t for t in types if t != "babble"] if n_train_speakers < 4 else types


def _mixture_record(
    mid: str,
    split: str,
    clean: dict,
    ntype: str,
    snr: float,
    m,
    bank: NoiseBank,
    cfg: DemoConfig,
    root: Path,
    rel: str,
    rel_clean: str,
) -> dict:
    return {
        "id": mid,
        "split": split,
        "speaker": clean["speaker"],
        "kind": "mixture",
        "audio": rel,
        "clean": rel_clean,
        "clean_id": clean["id"],
        "noise_type": ntype,
        "snr_db": float(snr),
        "gain": round(m.gain, 6),
        "noise_scale": round(m.noise_scale, 6),
        "lips": clean["lips"],
        "landmarks": clean["landmarks"],
        "fps": cfg.fps,
        "duration": clean["duration"],
        "sha256": sha256_file(root / rel),
        "source": clean["source"],
        "noise_source": bank.source(ntype),
    }


def _make_mixtures(
    utts: list[Utterance], clean_records: list[dict], bank: NoiseBank, cfg: DemoConfig, staging: Path, progress: bool
) -> list[dict]:
    from tqdm.auto import tqdm

    sr = cfg.sample_rate
    rec_by_id = {r["id"]: r for r in clean_records}
    train_pool: dict[str, list[np.ndarray]] = {}
    for u in utts:
        if u.split == "train":
            train_pool.setdefault(u.speaker, []).append(u.wave)
    types = _noise_types(bank, cfg, len(train_pool))
    rng = np.random.default_rng(stable_seed(cfg.seed, "mix-pick"))
    jobs = []
    test = _pick_balanced([u for u in utts if u.split == "test"], cfg.max_test_utterances, rng)
    for i, u in enumerate(test):
        for j, snr in enumerate(cfg.snrs):
            jobs.append((u, "test", types[(i + j) % len(types)], snr))
    valid = _pick_balanced([u for u in utts if u.split == "valid"], cfg.n_valid_mixture_utterances, rng)
    for i, u in enumerate(valid):
        for j, snr in enumerate(cfg.valid_snrs):
            jobs.append((u, "valid", types[(i + j) % len(types)], snr))
    out = []
    for u, split, ntype, snr in tqdm(jobs, desc="mixtures", disable=not progress, mininterval=1.0):
        mid = f"{u.id}__{ntype}_{_snr_tag(snr)}"
        mrng = np.random.default_rng(stable_seed(cfg.seed, "mix", mid))
        noise = bank.sample(ntype, len(u.wave), mrng, babble_pool=train_pool)
        m = mix(u.wave, noise, float(snr), sr)
        rel = f"mixtures/{split}/{mid}.wav"
        rel_clean = f"mixtures/{split}/{mid}.clean.wav"
        write_audio(staging / rel, m.mixture, sr)
        write_audio(staging / rel_clean, m.reference, sr)
        out.append(_mixture_record(mid, split, rec_by_id[u.id], ntype, snr, m, bank, cfg, staging, rel, rel_clean))
    return out


# ------------------------------------------------------------------------------------------ the validation set
def validation_set_key(cfg: DemoConfig) -> dict:
    """What the stamp records about the validation set (a change adds mixtures, see :func:`prepare_demo`)."""
    return {"version": VALIDATION_SET_VERSION, **{k: getattr(cfg, k) for k in VALIDATION_SET_FIELDS}}


def _read_wav(path: Path) -> np.ndarray:
    import soundfile as sf

    return sf.read(str(path), dtype="float32")[0]


class _WavList:
    """A lazily read list of mono wavs (the babble pool reads only the few utterances it draws)."""

    def __init__(self, paths: list[Path]):
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> np.ndarray:
        return _read_wav(self.paths[i])


def validation_set_mixtures(
    records: list[dict], bank: NoiseBank, cfg: DemoConfig, root: Path, progress: bool = False
) -> list[dict]:
    """The validation-set mixtures (module docstring, step 8) missing from ``records``; wavs written under ``root``.

    Reads only files under ``root`` (clean validation wavs; training wavs for babble), so a fresh build and an
    extension of an older corpus give the same mixtures. Mixtures whose id is already in ``records`` are kept.
    """
    from tqdm.auto import tqdm

    clean = sorted((r for r in records if r.get("kind") == "clean"), key=lambda r: r["id"])
    pool_paths: dict[str, list[Path]] = {}
    for r in clean:
        if r["split"] == "train":
            pool_paths.setdefault(r["speaker"], []).append(root / r["audio"])
    pool = {s: _WavList(p) for s, p in pool_paths.items()}
    types = _noise_types(bank, cfg, len(pool), warn=False)
    have = {r["id"] for r in records}
    picked = _pick_balanced(
        [r for r in clean if r["split"] == "valid"],
        cfg.n_tune_utterances,
        np.random.default_rng(stable_seed(cfg.seed, "valid-set")),
        lambda r: r["speaker"],
    )
    jobs = [(c, types[(i + j) % len(types)], snr) for i, c in enumerate(picked) for j, snr in enumerate(cfg.snrs)]
    out = []
    for c, ntype, snr in tqdm(jobs, desc="validation mixtures", disable=not progress, mininterval=1.0):
        mid = f"{c['id']}__{ntype}_{_snr_tag(snr)}"
        if mid in have:
            continue
        wave = _read_wav(root / c["audio"])
        noise = bank.sample(
            ntype, len(wave), np.random.default_rng(stable_seed(cfg.seed, "mix", mid)), babble_pool=pool
        )
        m = mix(wave, noise, float(snr), cfg.sample_rate)
        rel, rel_clean = f"mixtures/valid/{mid}.wav", f"mixtures/valid/{mid}.clean.wav"
        write_audio(root / rel, m.mixture, cfg.sample_rate)
        write_audio(root / rel_clean, m.reference, cfg.sample_rate)
        out.append(_mixture_record(mid, "valid", c, ntype, snr, m, bank, cfg, root, rel, rel_clean))
        have.add(mid)
    return out


def _extend_validation_set(
    out_dir: Path,
    done: dict,
    cfg: DemoConfig,
    packages: Mapping[str, PackageTree] | None,
    root: Path,
    progress: bool,
    t0: float,
) -> DemoResult:
    """Add the validation set to a prepared corpus: new wavs first, then the manifest, then the stamp."""
    manifest = out_dir / "manifest.jsonl"
    records = read_manifest(manifest)
    if packages is None:
        packages = fetch_packages((LINCITY,), root / "debian")
    new = validation_set_mixtures(records, _noise_bank(packages, cfg), cfg, out_dir, progress)
    if new:
        write_manifest(manifest, records + new)
    write_text_atomic(
        out_dir / ".done.json",
        json.dumps({**done, "validation_set": validation_set_key(cfg)}, indent=1, sort_keys=True),
    )
    log.info("demo corpus at %s: %d validation-set mixtures added", out_dir, len(new))
    return DemoResult(out_dir, manifest, False, time.time() - t0, added=len(new))
