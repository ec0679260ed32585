"""Helpers for the evaluation tests: synthetic speech-like signals, noise and a tiny mixture manifest.

(A uniquely named module rather than a conftest.py, so that ``import`` never picks another directory's conftest.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SR = 16000


def make_speech(duration_s: float = 2.0, sr: int = SR, seed: int = 0) -> np.ndarray:
    """Speech-like test signal ``(T,)`` float32: syllables of harmonic sound (gliding f0, two moving formants)
    separated by short pauses, with a few fricative noise bursts; peak about 0.5."""
    rng = np.random.default_rng(seed)
    n = int(duration_s * sr)
    out = np.zeros(n)
    t0 = int(0.1 * sr)
    while t0 < n - int(0.15 * sr):
        length = int(rng.uniform(0.15, 0.3) * sr)
        length = min(length, n - t0)
        t = np.arange(length) / sr
        f0 = rng.uniform(110, 220) * (1 + 0.15 * np.sin(2 * np.pi * rng.uniform(1, 4) * t))
        phase = 2 * np.pi * np.cumsum(f0) / sr
        f1, f2 = rng.uniform(300, 800), rng.uniform(900, 2500)
        seg = np.zeros(length)
        for k in range(1, 30):
            fk = k * f0
            amp = np.exp(-(((fk - f1) / 150.0) ** 2)) + 0.5 * np.exp(-(((fk - f2) / 250.0) ** 2)) + 0.02 / k
            seg += amp * np.sin(k * phase) * (fk < sr / 2)
        if rng.random() < 0.3:  # fricative onset
            m = int(0.05 * sr)
            seg[:m] += 0.3 * rng.standard_normal(m)
        seg *= np.hanning(length)
        out[t0 : t0 + length] += seg
        t0 += length + int(rng.uniform(0.03, 0.15) * sr)
    return (0.5 * out / np.max(np.abs(out))).astype(np.float32)


def make_noise(n: int, kind: str = "white", seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(n)
    if kind == "pink":
        spec = np.fft.rfft(w)
        f = np.arange(spec.size)
        spec[1:] /= np.sqrt(f[1:])
        w = np.fft.irfft(spec, n)
    elif kind == "hum":
        t = np.arange(n) / SR
        w = sum(np.sin(2 * np.pi * 100 * k * t + k) / k for k in range(1, 6)) + 0.1 * w
    return (w / np.std(w)).astype(np.float32)


def mix(clean: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    ps, pn = np.mean(clean.astype(np.float64) ** 2), np.mean(noise.astype(np.float64) ** 2)
    return (clean + noise * np.sqrt(ps / (pn * 10 ** (snr_db / 10)))).astype(np.float32)


def build_manifest(
    root: Path,
    snrs=(-5, 5),
    noises=("white", "pink"),
    n_clean: int = 2,
    duration_s: float = 2.0,
    with_video: bool = True,
) -> Path:
    """Write a tiny corpus of mixtures (kind "mixture", split "test") plus lips/landmarks arrays under ``root``
    and return the manifest path."""
    import soundfile as sf

    from pyro_minvae.data.manifest import write_manifest

    root.mkdir(parents=True, exist_ok=True)
    recs = []
    for c in range(n_clean):
        clean = make_speech(duration_s, seed=10 + c)
        cpath = root / f"clean{c}.wav"
        sf.write(cpath, clean, SR, subtype="PCM_16")
        n_v = int(round(duration_s * 30))
        lips_rel = lm_rel = None
        if with_video:
            rng = np.random.default_rng(c)
            np.save(root / f"lips{c}.npy", rng.integers(0, 255, size=(n_v, 67, 67), dtype=np.uint8))
            lm = np.zeros((n_v, 8, 2), np.float32)
            ang = np.linspace(0, 2 * np.pi, 8, endpoint=False)
            opening = 5 + 4 * np.sin(np.linspace(0, 6, n_v))
            lm[:, :, 0] = 33 + 15 * np.cos(ang)
            lm[:, :, 1] = 40 + opening[:, None] * np.sin(ang)
            np.save(root / f"lm{c}.npy", lm)
            lips_rel, lm_rel = f"lips{c}.npy", f"lm{c}.npy"
        for k, nt in enumerate(noises):
            for snr in snrs:
                noisy = mix(clean, make_noise(clean.size, nt, seed=100 * c + k), snr)
                gain = min(1.0, 0.99 / float(np.max(np.abs(noisy))))
                sf.write(root / f"mix{c}_{nt}_{snr}.wav", noisy * gain, SR, subtype="PCM_16")
                sf.write(root / f"ref{c}_{nt}_{snr}.wav", clean * gain, SR, subtype="PCM_16")
                rec = {
                    "id": f"c{c}_{nt}_{snr}",
                    "split": "test",
                    "speaker": f"spk{c}",
                    "kind": "mixture",
                    "audio": f"mix{c}_{nt}_{snr}.wav",
                    "clean": f"ref{c}_{nt}_{snr}.wav",
                    "clean_id": f"clean{c}",
                    "noise_type": nt,
                    "snr_db": snr,
                    "gain": gain,
                    "fps": 30.0,
                    "duration": duration_s,
                    "sha256": "",
                }
                if with_video:
                    rec["lips"], rec["landmarks"] = lips_rel, lm_rel
                recs.append(rec)
    path = root / "manifest.jsonl"
    write_manifest(path, recs)
    return path
