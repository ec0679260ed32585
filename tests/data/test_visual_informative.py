"""The rendered visual stream is informative (issue 3, "Done when"):

1. a logistic regression on rendered mouth frames, trained on some speakers, tells speech from silence
   frames of UNSEEN speakers (different ``SpeakerAppearance`` seeds) far above chance;
2. the mouth-opening trace correlates positively with the speech envelope.

Both use SYNTHETIC alignments (random syllable sequences with pauses, phone durations in natural ranges);
the envelope test also uses a synthetic waveform whose per-phone loudness follows the phonetic sonority
scale (vowels > glides > liquids > nasals > fricatives > stops > silence), which the renderer never sees.
"""

from __future__ import annotations

import numpy as np

from pyro_minvae.visual.align import PhoneSegment
from pyro_minvae.visual.render import SpeakerAppearance, mouth_opening, render_clip

FPS = 30.0
VOWELS = "AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW".split()
CONSONANTS = "B CH D DH F G HH JH K L M N NG P R S SH T TH V W Y Z ZH".split()
SONORITY = {
    **{v: 1.0 for v in VOWELS},
    "W": 0.6,
    "Y": 0.6,
    "R": 0.55,
    "L": 0.5,
    "M": 0.35,
    "N": 0.35,
    "NG": 0.35,
    "V": 0.25,
    "DH": 0.25,
    "Z": 0.25,
    "ZH": 0.25,
    "HH": 0.15,
    "F": 0.15,
    "TH": 0.15,
    "S": 0.2,
    "SH": 0.2,
    "JH": 0.12,
    "CH": 0.12,
    "B": 0.08,
    "D": 0.08,
    "G": 0.08,
    "P": 0.06,
    "T": 0.06,
    "K": 0.06,
    "SIL": 0.0,
}


def synthetic_alignment(rng: np.random.Generator, duration: float) -> list[PhoneSegment]:
    """Phrases of CV(C) syllables separated by 0.15-0.6 s pauses, starting and ending in silence."""
    segs, t = [PhoneSegment("SIL", 0.0, s := rng.uniform(0.2, 0.5))], 0.0
    t = s
    while t < duration - 0.6:
        for _ in range(rng.integers(2, 7)):  # syllables in the phrase
            for ph in (rng.choice(CONSONANTS), rng.choice(VOWELS)) + (
                (rng.choice(CONSONANTS),) if rng.random() < 0.4 else ()
            ):
                d = rng.uniform(0.08, 0.2) if ph in VOWELS else rng.uniform(0.04, 0.11)
                segs.append(PhoneSegment(str(ph), t, t + d))
                t += d
        pause = rng.uniform(0.15, 0.6)
        segs.append(PhoneSegment("SIL", t, t + pause))
        t += pause
    return segs


def speech_labels(phones: list[PhoneSegment], n: int) -> np.ndarray:
    t = (np.arange(n) + 0.5) / FPS
    lab = np.zeros(n, dtype=bool)
    for p in phones:
        if p.phone != "SIL":
            lab[(t >= p.start) & (t < p.end)] = True
    return lab


def frame_features(frames: np.ndarray) -> np.ndarray:
    """(N, 67, 67) uint8 -> (N, 257): 4x4-pooled pixels of the central 64x64, standardised per frame, + bias."""
    x = frames[:, 1:65, 1:65].astype(np.float64).reshape(-1, 16, 4, 16, 4).mean(axis=(2, 4)).reshape(-1, 256)
    x = (x - x.mean(axis=1, keepdims=True)) / (x.std(axis=1, keepdims=True) + 1e-6)
    return np.hstack([x, np.ones((x.shape[0], 1))])


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, iters: int = 25) -> np.ndarray:
    """L2-regularised logistic regression by Newton's method (IRLS), classes weighted to balance them."""
    w = np.zeros(x.shape[1])
    cw = np.where(y, 0.5 / y.mean(), 0.5 / (1 - y.mean()))
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-x @ w))
        g = x.T @ (cw * (p - y)) + l2 * w
        h = (x * (cw * p * (1 - p))[:, None]).T @ x + l2 * np.eye(x.shape[1])
        w -= np.linalg.solve(h, g)
    return w


def balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    return 0.5 * (pred[y].mean() + (~pred[~y]).mean())


def render_speakers(seeds, clips_per_speaker=2, duration=8.0):
    xs, ys = [], []
    for s in seeds:
        rng = np.random.default_rng(1000 + s)
        app = SpeakerAppearance.from_seed(s)
        for c in range(clips_per_speaker):
            phones = synthetic_alignment(rng, duration)
            n = int(phones[-1].end * FPS)
            frames, _ = render_clip(phones, n, app, fps=FPS, seed=10 * s + c)
            xs.append(frame_features(frames))
            ys.append(speech_labels(phones, n))
    return np.vstack(xs), np.concatenate(ys)


def test_speech_vs_silence_from_mouth_frames_of_unseen_speakers():
    x_tr, y_tr = render_speakers(range(0, 8))
    x_te, y_te = render_speakers(range(100, 106))  # appearance seeds never seen in training
    assert 0.2 < y_te.mean() < 0.9
    w = fit_logistic(x_tr, y_tr)
    bacc = balanced_accuracy(y_te, x_te @ w > 0)
    assert bacc > 0.75, f"balanced accuracy on unseen speakers {bacc:.3f}"
    # control: the same classifier trained on shuffled labels is at chance, so the margin above is real
    w_shuf = fit_logistic(x_tr, np.random.default_rng(0).permutation(y_tr))
    assert abs(balanced_accuracy(y_te, x_te @ w_shuf > 0) - 0.5) < 0.1


def synthetic_wave(rng: np.random.Generator, phones: list[PhoneSegment], sr: int = 16000) -> np.ndarray:
    """Sonority-scaled buzz (vowels, voiced) and noise bursts, with a small noise floor; (T,) float32."""
    n = int(round(phones[-1].end * sr))
    t = np.arange(n) / sr
    amp = np.zeros(n)
    for p in phones:
        amp[int(p.start * sr) : int(p.end * sr)] = SONORITY[p.phone]
    amp = np.convolve(amp, np.hanning(161) / np.hanning(161).sum(), mode="same")  # 10 ms ramps
    f0 = 120.0 + 20.0 * np.sin(2 * np.pi * 0.7 * t)
    buzz = np.sign(np.sin(2 * np.pi * np.cumsum(f0) / sr)) * 0.5 + 0.5 * rng.standard_normal(n)
    return (0.3 * amp * buzz + 1e-3 * rng.standard_normal(n)).astype(np.float32)


def test_mouth_opening_follows_the_speech_envelope():
    corrs = []
    for s in (200, 201, 202):
        rng = np.random.default_rng(s)
        phones = synthetic_alignment(rng, 10.0)
        wave = synthetic_wave(rng, phones)
        n = int(phones[-1].end * FPS)
        _, lm = render_clip(phones, n, SpeakerAppearance.from_seed(s), fps=FPS, seed=s)
        hop = int(16000 / FPS)
        env = np.sqrt((wave[: n * hop].astype(np.float64).reshape(n, hop) ** 2).mean(axis=1))
        corrs.append(np.corrcoef(mouth_opening(lm), env)[0, 1])
    assert min(corrs) > 0.4, f"correlations {np.round(corrs, 3)}"
