"""Fake Debian package trees, NTCD-TIMIT trees and a stand-in visual backend for the data-preparation tests.

Nothing here downloads anything: the trees mimic the real packages' layouts with synthetic speech-like audio.
"""

from __future__ import annotations

import gzip
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from pyro_minvae.data.prepare.debian import PackageTree
from pyro_minvae.data.prepare.demo import VisualBackend

SR = 16000


def speechlike(duration: float, seed: int, sr: int = SR, lead: float = 0.2) -> np.ndarray:
    """Voiced 'syllables' (harmonics of a wandering f0 under a smooth envelope) with silent lead-in/out."""
    rng = np.random.default_rng(seed)
    n = int(duration * sr)
    t = np.arange(n) / sr
    f0 = 110 + 80 * rng.random() + 15 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    x = sum(np.sin(k * phase) / k for k in range(1, 12))
    syl = 0.5 - 0.5 * np.cos(2 * np.pi * t * (3 + rng.random()))
    env = syl * ((t > lead) & (t < duration - lead))
    y = 0.3 * x * env + 1e-4 * rng.standard_normal(n)
    return (y / np.abs(y).max() * 0.5).astype(np.float32)


def write_g722(path: Path, wave: np.ndarray, sr: int = SR) -> None:
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="g722") as out:
        st = out.add_stream("g722", rate=sr)
        st.layout = "mono"
        frame = av.AudioFrame.from_ndarray((wave * 32767).astype(np.int16)[None], format="s16", layout="mono")
        frame.sample_rate = sr
        for p in st.encode(frame):
            out.mux(p)
        for p in st.encode(None):
            out.mux(p)


def _sf(path: Path, wave: np.ndarray, sr: int, fmt: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), wave, sr, format=fmt)


def fake_packages(root: Path, n_lang: int = 7, clips_per_lang: int = 6) -> dict[str, PackageTree]:
    """Extracted-package trees in the real layouts: asterisk en/es/fr (G.722), the English transcripts,
    klettres (ogg), ktuberling (wav, with ``sr@latin`` copies and a file duplicated from klettres), lincity."""
    pk: dict[str, PackageTree] = {}

    def tree(name: str, version: str = "1.0-1") -> Path:
        r = root / name / "tree"
        r.mkdir(parents=True, exist_ok=True)
        pk[name] = PackageTree(name, version, r, "0" * 64)
        return r

    seed = 0
    lines = ["; Core Asterisk Sounds in English", ""]
    for lang, voice in (("en", "en_US_f_Allison"), ("es", "es_MX_f_Allison"), ("fr", "fr_CA_f_June")):
        r = tree(f"asterisk-core-sounds-{lang}-g722", "1.6.1-1")
        base = r / "usr/share/asterisk/sounds" / voice
        for i in range(6):
            seed += 1
            name = f"prompt-{i}" if i < 5 else "digits/1"
            write_g722(base / f"{name}.g722", speechlike(1.4 + 0.3 * (i % 3), seed))
            if lang == "en" and i != 4:  # prompt-4 has no transcript: phone-loop fallback
                lines.append(f"{name}: Please enter your number." if i < 5 else "digits/1: one")
        write_g722(base / "beep.g722", 0.3 * np.sin(2 * np.pi * 1000 * np.arange(8000) / SR).astype(np.float32))
        write_g722(base / "silence/1.g722", np.zeros(16000, np.float32))
    lines.append("beep: [this is a simple beep tone]")
    r = tree("asterisk-core-sounds-en", "1.6.1-1")
    doc = r / "usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz"
    doc.parent.mkdir(parents=True)
    with gzip.open(doc, "wt") as f:
        f.write("\n".join(lines) + "\n")

    kl = tree("klettres-data", "4:22.12.3-1")
    kt = tree("ktuberling-data", "4:22.12.3-1")
    langs = [f"l{i}" for i in range(n_lang)]
    for li, lang in enumerate(langs):
        for j in range(clips_per_lang):
            seed += 1
            w = speechlike(0.9 + 0.1 * (j % 4), seed)
            if j % 2:
                _sf(kl / f"usr/share/klettres/{lang}/alpha/{chr(65 + j)}.ogg", w, 22050 if li % 2 else 16000, "OGG")
            else:
                _sf(kt / f"usr/share/ktuberling/sounds/{lang}/word{j}.wav", w, 44100 if li % 2 else 16000)
    # a too-short clip (dropped after trimming), sr@latin copies, a cross-package duplicate
    _sf(kl / "usr/share/klettres/l0/syllab/x.ogg", speechlike(0.5, 999, lead=0.15), SR, "OGG")
    (kt / "usr/share/ktuberling/sounds/sr").mkdir(parents=True)
    (kt / "usr/share/ktuberling/sounds/sr@latin").mkdir(parents=True)
    for j in range(3):
        w = speechlike(1.2, 500 + j)
        _sf(kt / f"usr/share/ktuberling/sounds/sr/w{j}.wav", w, SR)
        _sf(kt / f"usr/share/ktuberling/sounds/sr@latin/w{j}.wav", w, SR)
    dup = sorted((kl / "usr/share/klettres").rglob("*.ogg"))[0]
    (kt / "usr/share/ktuberling/sounds/l0").mkdir(parents=True, exist_ok=True)
    (kt / "usr/share/ktuberling/sounds/l0/dup.ogg").write_bytes(dup.read_bytes())

    li = tree("lincity-ng-data", "2.9-5")
    snd = li / "usr/share/games/lincity-ng/sounds"
    rng = np.random.default_rng(7)
    for name in ("TraficHigh1", "TraficLow2", "SportsCroud1", "MarketFull1", "IndustryHigh1", "RailTrain1"):
        x = rng.standard_normal((int(11025 * 2.0), 2 if name.startswith("Sports") else 1)) * 0.1
        x = np.cumsum(x, axis=0) * 0.05 if "Trafic" in name else x
        _sf(snd / f"{name}.wav", (x / np.abs(x).max() * 0.5).squeeze(), 11025)
    return pk


@dataclass
class StandInSegment:
    phone: str
    start: float
    end: float


class StandInAligner:
    """Records its calls; optional failure for forced alignment (to test the phone-loop fallback)."""

    calls: list = []

    def __init__(self, fail_forced: bool = False):
        self.fail_forced = fail_forced

    def align(self, wave, transcript=None):
        StandInAligner.calls.append(transcript)
        if transcript is not None and self.fail_forced:
            raise RuntimeError("word not in dictionary")
        d = len(wave) / SR
        cuts = np.linspace(0.0, d, 6)
        names = ["SIL", "M", "AA", "P", "IY"]
        return [StandInSegment(n, float(a), float(b)) for n, a, b in zip(names, cuts[:-1], cuts[1:])]


def standin_render(phones, n_frames, speaker_seed, seed, fps, size):
    rng = np.random.default_rng(seed)
    t = (np.arange(n_frames) + 0.5) / fps
    opening = np.zeros(n_frames)
    for p in phones:
        if p.phone not in ("SIL", "M", "P"):
            opening[(t >= p.start) & (t < p.end)] = 1.0
    frames = np.full((n_frames, size, size), 120 + speaker_seed % 50, np.uint8)
    for k in range(n_frames):
        h = int(2 + 10 * opening[k])
        frames[k, size // 2 - h // 2 : size // 2 + h // 2 + 1, 15:52] = 30
    frames = np.clip(frames + rng.integers(0, 3, frames.shape), 0, 255).astype(np.uint8)
    lm = np.zeros((n_frames, 4, 2), np.float32)
    lm[:, :, 1] = opening[:, None]
    return frames, lm


def standin_backend(fail_forced: bool = False) -> VisualBackend:
    StandInAligner.calls = []
    return VisualBackend(lambda: StandInAligner(fail_forced), standin_render, StandInSegment)


def n_video_frames(n_samples: int, sr: int = SR, fps: float = 30.0) -> int:
    return int(math.ceil(n_samples / sr * fps - 1e-9))
