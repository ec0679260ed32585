"""Pocketsphinx phone aligner on synthetic signals (the en-us model ships in the pocketsphinx wheel)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from scipy.signal import lfilter

from pyro_minvae.visual.align import PhoneAligner, PhoneSegment, fill_silence, normalize_transcript
from pyro_minvae.visual.visemes import viseme_of

SR = 16000


@pytest.fixture(scope="module")
def aligner():
    return PhoneAligner()  # one decoder for the whole module, as in corpus preparation


FORMANTS = {"a": (730, 1090, 2440), "i": (270, 2290, 3010), "u": (300, 870, 2240)}  # Peterson & Barney


def vowels(seq: str, seed: int = 0, sr: int = SR, syllable: float = 0.3, gap: float = 0.12):
    """Formant-synthesised vowels (impulse train at ~170 Hz through three resonators), 0.3 s of silence at each
    end. Returns ``(wave (T,) float32, centres of the vowels in s, duration in s)``."""
    rng = np.random.default_rng(seed)
    n = int((0.6 + len(seq) * (syllable + gap)) * sr)
    out, centres, s0 = np.zeros(n), [], int(0.3 * sr)
    for v in seq:
        m = int(syllable * sr)
        f0 = 170.0 + 20.0 * np.sin(2 * np.pi * 2.0 * np.arange(m) / sr)
        x = (np.diff(np.floor(np.cumsum(f0) / sr), prepend=0.0) > 0).astype(float)
        for f, bw in zip(FORMANTS[v], (80.0, 100.0, 120.0)):
            r, th = np.exp(-np.pi * bw / sr), 2 * np.pi * f / sr
            x = lfilter([1 - r], [1, -2 * r * np.cos(th), r * r], x)
        out[s0 : s0 + m] += x * np.hanning(m)
        centres.append((s0 + m / 2) / sr)
        s0 += m + int(gap * sr)
    out = out / np.abs(out).max() * 0.5 + 1e-3 * rng.standard_normal(n)
    return out.astype(np.float32), centres, n / sr


def assert_covers(segs: list[PhoneSegment], duration: float):
    assert segs, "no segments"
    assert segs[0].start == 0.0
    assert segs[-1].end == pytest.approx(duration, abs=1e-9)
    for a, b in zip(segs, segs[1:]):
        assert a.end == pytest.approx(b.start) and a.end > a.start
        assert not (a.phone == "SIL" and b.phone == "SIL")
    for s in segs:
        viseme_of(s.phone)  # every emitted phone is a known ARPAbet symbol


def phone_at(segs, t):
    return next(s.phone for s in segs if s.start <= t < s.end)


def test_phone_loop_decoding_covers_the_clip_and_hears_the_vowels(aligner):
    seq = "iuiuaiu"
    wave, centres, dur = vowels(seq)
    segs = aligner.align(wave)
    assert aligner.last_method == "phone_loop"
    assert_covers(segs, dur)
    assert phone_at(segs, 0.1) == "SIL" and phone_at(segs, dur - 0.05) == "SIL"
    heard = [viseme_of(phone_at(segs, t)) for v, t in zip(seq, centres)]
    assert "silence" not in heard
    expect = {"i": "spread", "u": "rounded"}
    hits = [h == expect[v] for v, h in zip(seq, heard) if v in expect]
    assert np.mean(hits) >= 0.8, list(zip(seq, heard))
    # the decoder is reused but keeps no state between clips: same answer after another clip
    aligner.align(vowels("aaa", seed=3)[0] * 0.1)
    assert aligner.align(wave) == segs


def test_forced_alignment_and_fallback(aligner, caplog):
    wave, _, dur = vowels("iu", seed=1)
    segs = aligner.align(wave, "E. You.")
    assert_covers(segs, dur)
    assert aligner.last_method in ("forced", "phone_loop")
    if aligner.last_method == "forced":  # the aligned phones are the dictionary pronunciations, in order
        assert [s.phone for s in segs if s.phone != "SIL"] == "IY Y UW".split()
    with caplog.at_level(logging.WARNING, logger="pyro_minvae.visual.align"):
        segs = aligner.align(wave, "glorbnax zqwv")  # not in the dictionary
    assert aligner.last_method == "phone_loop"
    assert "forced alignment failed" in caplog.text
    assert_covers(segs, dur)


def test_silence_short_and_resampled_inputs_never_crash(aligner):
    assert aligner.align(np.zeros(SR, np.float32), "hello")[-1].end == pytest.approx(1.0)
    tiny = aligner.align(np.zeros(50, np.float32))
    assert tiny == [PhoneSegment("SIL", 0.0, 50 / SR)]
    a8 = PhoneAligner(sample_rate=8000)
    wave8, _, dur8 = vowels("ia", sr=8000)
    assert_covers(a8.align(wave8), dur8)
    with pytest.raises(ValueError, match="non-empty"):
        aligner.align(np.zeros((2, 100), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        aligner.align(np.full(1000, np.nan, np.float32))


def test_normalize_transcript_and_fill():
    assert normalize_transcript("Press 1, then [beep] Waldo's #5.") == ["press", "one", "then", "waldo's", "five"]
    assert normalize_transcript("[ascending tones]") == []
    segs = fill_silence([("AA", 0.1, 0.3), ("SIL", 0.3, 0.4), ("P", 0.5, 0.9)], 0.8)
    assert segs == [
        PhoneSegment("SIL", 0.0, 0.1),
        PhoneSegment("AA", 0.1, 0.3),
        PhoneSegment("SIL", 0.3, 0.5),
        PhoneSegment("P", 0.5, 0.8),
    ]
