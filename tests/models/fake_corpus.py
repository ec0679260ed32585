"""A tiny fake audio-visual corpus for training tests: random speech-like wavs, lip ROIs and landmarks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from pyro_minvae.data.manifest import sha256_file, write_manifest

SR = 16000
FPS = 30.0
N_POINTS = 6


def _utterance(rng: np.random.Generator, seconds: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Wave (T,), lips (N_v, 67, 67) uint8 and landmarks (N_v, P, 2): bursts of tones whose loudness the lips
    follow (open mouth = bright rows), so the visual stream carries information about the audio."""
    n = int(seconds * SR)
    n_v = int(np.ceil(seconds * FPS))
    env_v = (rng.random(n_v) > 0.4).astype(np.float64) * rng.uniform(0.3, 1.0, n_v)
    env = np.repeat(env_v, int(np.ceil(SR / FPS)))[:n]
    t = np.arange(n) / SR
    f0 = rng.uniform(120, 300)
    wave = env * sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 6)) + 0.003 * rng.standard_normal(n)
    wave = (0.5 * wave / np.abs(wave).max()).astype(np.float32)
    lips = rng.integers(0, 40, size=(n_v, 67, 67)).astype(np.uint8)
    for k, e in enumerate(env_v):
        h = int(2 + 25 * e)
        lips[k, 33 - h // 2 : 33 + h // 2 + 1, 10:57] = 200
    base = np.stack(
        [
            np.cos(np.linspace(0, 2 * np.pi, N_POINTS, endpoint=False)),
            np.sin(np.linspace(0, 2 * np.pi, N_POINTS, endpoint=False)),
        ],
        -1,
    )
    landmarks = (33 + 10 * base[None] * (1 + env_v[:, None, None])).astype(np.float32)
    return wave, lips, landmarks


def make_fake_corpus(root: Path, n_train: int = 4, n_valid: int = 2, seconds: float = 1.0, seed: int = 0) -> Path:
    """Write wavs + npys + manifest.jsonl under ``root``; returns the manifest path."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    for sub in ("clean", "lips", "landmarks"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    records = []
    for split, count in (("train", n_train), ("valid", n_valid), ("test", 1)):
        for i in range(count):
            uid = f"{split}-{i:02d}"
            wave, lips, lm = _utterance(rng, seconds)
            sf.write(root / "clean" / f"{uid}.wav", wave, SR, subtype="PCM_16")
            np.save(root / "lips" / f"{uid}.npy", lips)
            np.save(root / "landmarks" / f"{uid}.npy", lm)
            records.append(
                {
                    "id": uid,
                    "split": split,
                    "speaker": f"spk{i % 2}",
                    "kind": "clean",
                    "audio": f"clean/{uid}.wav",
                    "lips": f"lips/{uid}.npy",
                    "landmarks": f"landmarks/{uid}.npy",
                    "fps": FPS,
                    "duration": seconds,
                    "sha256": sha256_file(root / "clean" / f"{uid}.wav"),
                    "source": {"package": "fake", "version": "0", "file": uid},
                }
            )
    manifest = root / "manifest.jsonl"
    write_manifest(manifest, records)
    return manifest
