"""A tiny synthetic audio-visual corpus written on the fly, for the examples' ``--small`` runs (no download).

``make_tiny_corpus(root)`` writes a manifest in the same schema as ``pyro-minvae prepare demo``
(see :mod:`pyro_minvae.data.manifest`): voiced "speech" (harmonics of a gliding f0 under a syllable envelope),
a matching mouth ROI video (an ellipse whose height follows the envelope, ``(N, 67, 67)`` uint8 at 30 fps), 20
lip-contour landmarks ``(N, 20, 2)``, and 0 dB white-noise mixtures of the test clips. ``demo_manifest()`` is the
real demo corpus used by the full settings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pyro_minvae.audio_io import write_audio
from pyro_minvae.data.manifest import read_manifest, resolve, select, write_manifest
from pyro_minvae.data.mixing import mix
from pyro_minvae.paths import cache_dir

SR, FPS, ROI, N_POINTS = 16000, 30.0, 67, 20
SPLITS = {"train": 6, "valid": 2, "test": 2}


def demo_manifest() -> Path:
    """The demo corpus (``pyro-minvae prepare demo``); a one-line error when it is missing."""
    path = cache_dir() / "corpora" / "demo" / "manifest.jsonl"
    if not path.exists():
        raise SystemExit(f"{path}: demo corpus not found; run `pyro-minvae prepare demo` (or use --small)")
    return path


def _clip(rng: np.random.Generator, seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """Waveform ``(T,)`` and mouth opening per video frame ``(N_v,)`` in [0, 1]."""
    t = np.arange(int(seconds * SR)) / SR
    rate = rng.uniform(3.0, 5.0)  # syllables per second
    env = np.clip(np.sin(np.pi * rate * t + rng.uniform(0, np.pi)), 0, None) ** 2
    f0 = rng.uniform(110, 220) * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    formant = rng.uniform(2, 6)
    wave = sum(np.sin(k * phase) * np.exp(-k / formant) for k in range(1, 25)) * env
    wave = 0.5 * wave / np.abs(wave).max() + 1e-3 * rng.standard_normal(t.size)
    n_video = int(round(seconds * FPS))
    opening = np.interp(np.arange(n_video) / FPS, t, env)
    return wave.astype(np.float32), opening


def _mouth(opening: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mouth ROIs ``(N, 67, 67)`` uint8 and contour landmarks ``(N, 20, 2)`` for an opening track."""
    yy, xx = np.mgrid[0:ROI, 0:ROI]
    c = (ROI - 1) / 2
    angles = np.linspace(0, 2 * np.pi, N_POINTS, endpoint=False)
    frames, points = [], []
    for o in opening:
        a, b = 18.0 - 4 * o, 3.0 + 14 * o  # half-width, half-height in pixels
        inside = ((xx - c) / a) ** 2 + ((yy - c) / b) ** 2 <= 1
        frames.append(np.where(inside, 40, 170).astype(np.uint8))
        points.append(np.stack([c + a * np.cos(angles), c + b * np.sin(angles)], -1))
    return np.stack(frames), np.stack(points).astype(np.float32)


def make_tiny_corpus(root: str | Path, seed: int = 0, seconds: float = 1.5) -> Path:
    """Write the tiny corpus under ``root``; returns its ``manifest.jsonl`` (idempotent for a given root)."""
    root = Path(root)
    manifest = root / "manifest.jsonl"
    if manifest.exists():
        return manifest
    rng = np.random.default_rng(seed)
    records = []
    for split, n in SPLITS.items():
        for i in range(n):
            rid = f"tiny-{split}-{i}"
            wave, opening = _clip(rng, seconds)
            lips, landmarks = _mouth(opening)
            (root / "clean").mkdir(parents=True, exist_ok=True)
            (root / "video").mkdir(parents=True, exist_ok=True)
            write_audio(root / "clean" / f"{rid}.wav", wave, SR)
            np.save(root / "video" / f"{rid}-lips.npy", lips)
            np.save(root / "video" / f"{rid}-landmarks.npy", landmarks)
            rec = {
                "id": rid,
                "split": split,
                "speaker": f"spk{i % 2}",
                "kind": "clean",
                "fps": FPS,
                "duration": seconds,
                "audio": f"clean/{rid}.wav",
                "lips": f"video/{rid}-lips.npy",
                "landmarks": f"video/{rid}-landmarks.npy",
            }
            records.append(rec)
            if split == "test":
                m = mix(wave, rng.standard_normal(wave.size), 0.0, SR)
                (root / "mixtures").mkdir(parents=True, exist_ok=True)
                write_audio(root / "mixtures" / f"{rid}-white-0dB.wav", m.mixture, SR)
                write_audio(root / "mixtures" / f"{rid}-ref.wav", m.reference, SR)
                records.append(
                    {
                        **rec,
                        "id": f"{rid}-white-0dB",
                        "kind": "mixture",
                        "audio": f"mixtures/{rid}-white-0dB.wav",
                        "clean": f"mixtures/{rid}-ref.wav",
                        "clean_id": rid,
                        "noise_type": "white",
                        "snr_db": 0.0,
                        "gain": m.gain,
                    }
                )
    write_manifest(manifest, records)
    return manifest


def first_mixture(manifest: str | Path, split: str = "test") -> dict:
    """The first mixture record of ``split`` (sorted by id) with absolute ``audio``/``clean`` paths added."""
    recs = sorted(select(read_manifest(manifest), split=split, kind="mixture"), key=lambda r: r["id"])
    if not recs:
        raise SystemExit(f"{manifest}: no mixture records in split {split!r}")
    rec = recs[0]
    return {**rec, "audio_path": resolve(manifest, rec["audio"]), "clean_path": resolve(manifest, rec["clean"])}
