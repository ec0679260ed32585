"""Speech sources of the demo corpus: enumerate, deduplicate and decode clips from extracted Debian packages.

Packages and speakers (see ``/work/shared/DATA.md``):

- ``asterisk-core-sounds-{en,es,fr}-g722``: raw G.722 prompts under ``usr/share/asterisk/sounds/<voice>/``;
  the speaker is the voice's name (``en_US_f_Allison`` and ``es_MX_f_Allison`` are one speaker,
  ``asterisk-Allison``). English transcripts come from ``asterisk-core-sounds-en``
  (``usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz``, ``name: text`` a line); prompts whose
  transcript is only a bracketed description (``[ascending tones]``) are tones, not speech, and are skipped.
- ``klettres-data`` (``usr/share/klettres/<lang>/{alpha,syllab}/*``) and ``ktuberling-data``
  (``usr/share/ktuberling/sounds/<lang>/*``): one language is one speaker across both packages
  (``lang-<code>``); the ``sr@*`` folders are copies of ``sr``.

Byte-identical files are dropped (first one in sorted order kept). :func:`decode_clip` returns mono float32
at the file's own rate; :func:`clean_clip` resamples to 16 kHz, trims silence and normalises loudness.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np

from ...audio_io import resample
from ...errors import UserInputError
from .debian import PackageTree

log = logging.getLogger("pyro_minvae")

ASTERISK_PACKAGES = ("asterisk-core-sounds-en-g722", "asterisk-core-sounds-es-g722", "asterisk-core-sounds-fr-g722")
TRANSCRIPT_PACKAGE = "asterisk-core-sounds-en"
TRANSCRIPT_FILE = "usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz"
KLETTRES = "klettres-data"
KTUBERLING = "ktuberling-data"
SPEECH_PACKAGES = ASTERISK_PACKAGES + (TRANSCRIPT_PACKAGE, KLETTRES, KTUBERLING)
AUDIO_EXTS = (".ogg", ".wav", ".opus", ".flac", ".g722")
SKIP_ASTERISK_DIRS = {"silence"}


@dataclass(frozen=True)
class SourceClip:
    """One speech file. ``align_text`` is the English transcript used for forced alignment (or ``None``)."""

    path: Path
    package: str
    version: str
    file: str  # path inside the package
    speaker: str
    language: str
    transcript: str | None
    align_text: str | None
    sha256: str


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_asterisk_transcripts(packages: Mapping[str, PackageTree]) -> dict[str, str]:
    """``{prompt name (e.g. "digits/1"): text}`` from the English transcript file; empty if absent."""
    pkg = packages.get(TRANSCRIPT_PACKAGE)
    if pkg is None:
        return {}
    path = pkg.root / TRANSCRIPT_FILE
    if not path.exists():
        log.warning("%s: transcript file missing; English prompts fall back to phone-loop alignment", path)
        return {}
    out = {}
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith(";") or ":" not in line:
                continue
            name, text = line.split(":", 1)
            out[name.strip()] = text.strip()
    return out


def spoken_text(text: str | None) -> str | None:
    """Transcript without bracketed descriptions; ``None`` when nothing spoken is left."""
    if text is None:
        return None
    t = re.sub(r"\[[^\]]*\]", " ", text)
    t = " ".join(t.split())
    return t or None


def asterisk_clips(pkg: PackageTree, transcripts: Mapping[str, str] | None = None) -> list[SourceClip]:
    """The spoken prompts of one ``asterisk-core-sounds-<lang>-g722`` package, one speaker per voice folder
    (``asterisk-<name>``); English ones carry their text from ``transcripts``. ``sha256`` is left empty
    (:func:`enumerate_clips` fills it)."""
    transcripts = transcripts or {}
    base = pkg.root / "usr/share/asterisk/sounds"
    if not base.is_dir():
        raise UserInputError(
            f"{pkg.root}: package {pkg.name} has no usr/share/asterisk/sounds; "
            f"delete this folder from the cache and re-run `pyro-minvae prepare demo`"
        )
    lang = pkg.name.split("-")[3]
    out = []
    for voice in sorted(p for p in base.iterdir() if p.is_dir()):
        speaker = "asterisk-" + voice.name.split("_")[-1]
        for f in sorted(voice.rglob("*.g722")):
            rel = f.relative_to(voice)
            if rel.parts[0] in SKIP_ASTERISK_DIRS:
                continue
            key = rel.with_suffix("").as_posix()
            text = transcripts.get(key)
            if text is not None and spoken_text(text) is None:
                continue  # a tone, not speech
            is_en = lang == "en"
            out.append(
                SourceClip(
                    f,
                    pkg.name,
                    pkg.version,
                    f.relative_to(pkg.root).as_posix(),
                    speaker,
                    lang,
                    text if is_en else None,
                    spoken_text(text) if is_en else None,
                    "",
                )
            )
    return out


def _lang_speaker(code: str) -> str:
    return "lang-" + code.split("@")[0]


def _language_clips(
    pkg: PackageTree, base: str, files: Callable[[Path], Iterable[Path]], transcript: Callable[[str], str]
) -> list[SourceClip]:
    """The audio files of a package holding one folder per language under ``base`` (one language is one speaker,
    :func:`_lang_speaker`): ``files(language folder)`` lists the candidates, ``transcript(file stem)`` names them."""
    root = pkg.root / base
    out = []
    for lang in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        for f in sorted(files(lang)):
            if f.suffix.lower() in AUDIO_EXTS and f.is_file():
                rel = f.relative_to(pkg.root).as_posix()
                speaker = _lang_speaker(lang.name)
                out.append(SourceClip(f, pkg.name, pkg.version, rel, speaker, lang.name, transcript(f.stem), None, ""))
    return out


def _klettres_clips(pkg: PackageTree) -> list[SourceClip]:
    return _language_clips(pkg, "usr/share/klettres", lambda lang: lang.rglob("*"), lambda stem: stem)


def _ktuberling_clips(pkg: PackageTree) -> list[SourceClip]:
    return _language_clips(
        pkg,
        "usr/share/ktuberling/sounds",
        lambda lang: [] if "@" in lang.name else lang.iterdir(),  # sr@latin etc. are byte-identical copies of sr
        lambda stem: stem.replace("_", " "),
    )


def enumerate_clips(packages: Mapping[str, PackageTree]) -> list[SourceClip]:
    """All speech clips of the given packages (any subset), deduplicated by checksum, in a stable order."""
    transcripts = read_asterisk_transcripts(packages)
    clips: list[SourceClip] = []
    for name in ASTERISK_PACKAGES:
        if name in packages:
            clips += asterisk_clips(packages[name], transcripts)
    if KLETTRES in packages:
        clips += _klettres_clips(packages[KLETTRES])
    if KTUBERLING in packages:
        clips += _ktuberling_clips(packages[KTUBERLING])
    seen: set[str] = set()
    out = []
    n_dup = 0
    for c in clips:
        digest = _sha256(c.path)
        if digest in seen:
            n_dup += 1
            continue
        seen.add(digest)
        out.append(
            SourceClip(c.path, c.package, c.version, c.file, c.speaker, c.language, c.transcript, c.align_text, digest)
        )
    log.info("%d speech files, %d duplicates dropped", len(out), n_dup)
    return out


def decode_clip(path: Path) -> tuple[np.ndarray, int]:
    """Decode a speech file to mono float32 ``(T,)`` in [-1, 1] and its sample rate.

    Raw ``.g722`` goes through PyAV's G.722 demuxer; other formats through soundfile, then PyAV.
    Raises ``UserInputError`` for unreadable or empty files.
    """
    path = Path(path)
    if path.suffix.lower() == ".g722":
        x, sr = _decode_av(path, fmt="g722")
    else:
        try:
            import soundfile as sf

            data, sr = sf.read(str(path), dtype="float32", always_2d=True)
            x = data.mean(axis=1)
        except Exception:
            x, sr = _decode_av(path)
    if x.size == 0 or not np.isfinite(x).all():
        raise UserInputError(f"{path}: empty or non-finite audio; delete it from the cache and re-run")
    return x.astype(np.float32), int(sr)


def _decode_av(path: Path, fmt: str | None = None) -> tuple[np.ndarray, int]:
    import av

    try:
        with av.open(str(path), format=fmt) as container:
            stream = next(s for s in container.streams if s.type == "audio")
            chunks = []
            for frame in container.decode(stream):
                a = frame.to_ndarray()
                if frame.format.is_planar or a.shape[0] == len(frame.layout.channels):
                    a = a.reshape(len(frame.layout.channels), -1)
                else:
                    a = a.reshape(-1, len(frame.layout.channels)).T
                chunks.append(a)
            sr = stream.rate
    except Exception as exc:
        raise UserInputError(
            f"{path}: not a decodable audio file ({type(exc).__name__}); re-download the package or remove the file"
        ) from None
    if not chunks:
        raise UserInputError(f"{path}: no audio frames; re-download the package or remove the file")
    arr = np.concatenate(chunks, axis=1)
    if arr.dtype.kind == "i":
        arr = arr.astype(np.float32) / float(np.iinfo(arr.dtype).max + 1)
    return arr.mean(axis=0).astype(np.float32), int(sr)


def frame_energy_db(x: np.ndarray, sr: int, frame_s: float = 0.01) -> np.ndarray:
    """Per-frame energy in dB of non-overlapping ``frame_s`` frames; ``(ceil(T / frame),)``."""
    n = max(1, int(round(frame_s * sr)))
    pad = (-len(x)) % n
    f = np.pad(x, (0, pad)).reshape(-1, n)
    return 10.0 * np.log10(np.mean(f.astype(np.float64) ** 2, axis=1) + 1e-12)


def trim_silence(x: np.ndarray, sr: int, top_db: float = 40.0, margin_s: float = 0.05) -> np.ndarray:
    """Cut leading and trailing frames more than ``top_db`` below the loudest 10 ms frame (keeps a margin).

    Digital silence (every frame below -100 dBFS) trims to an empty signal.
    """
    e = frame_energy_db(x, sr)
    if e.max() < -100.0:  # digital silence
        return x[:0]
    active = np.flatnonzero(e > e.max() - top_db)
    if active.size == 0:
        return x[:0]
    n = int(round(0.01 * sr))
    m = int(round(margin_s * sr))
    start = max(0, active[0] * n - m)
    end = min(len(x), (active[-1] + 1) * n + m)
    return x[start:end]


def normalize_loudness(x: np.ndarray, sr: int, target_dbfs: float = -26.0, peak: float = 0.9) -> np.ndarray:
    """Scale to ``target_dbfs`` active-speech level (frames within 40 dB of the loudest), peak at most ``peak``."""
    from ..mixing import active_speech_power

    p = active_speech_power(x, sr)
    if p <= 0:
        return x
    y = x * np.float32(10 ** (target_dbfs / 20) / np.sqrt(p))
    m = float(np.abs(y).max())
    if m > peak:
        y = y * np.float32(peak / m)
    return y.astype(np.float32)


def clean_clip(x: np.ndarray, sr: int, target_sr: int = 16000, min_duration_s: float = 0.5) -> np.ndarray | None:
    """Resample to ``target_sr``, trim silence, normalise loudness; ``None`` when shorter than ``min_duration_s``."""
    y = resample(x, sr, target_sr)
    y = y - np.float32(y.mean())
    y = trim_silence(y, target_sr)
    if len(y) < min_duration_s * target_sr:
        return None
    return normalize_loudness(y, target_sr)
