"""Enumerating, deduplicating and decoding the demo corpus' speech sources (fake package trees)."""

from __future__ import annotations

import numpy as np
import pytest

from pyro_minvae.data.prepare.sources import clean_clip, decode_clip, enumerate_clips, spoken_text, trim_silence
from pyro_minvae.errors import UserInputError
from prepare_fakes import SR, fake_packages, speechlike, write_g722


@pytest.fixture(scope="module")
def packages(tmp_path_factory):
    return fake_packages(tmp_path_factory.mktemp("debs"))


def test_speakers_transcripts_and_dedupe(packages):
    clips = enumerate_clips(packages)
    files = [c.file for c in clips]
    speakers = {c.speaker for c in clips}
    # Allison speaks English and Spanish: one speaker; sr@latin is not a speaker of its own
    assert "asterisk-Allison" in speakers and "asterisk-June" in speakers
    assert not any("@" in s for s in speakers) and "lang-sr" in speakers
    assert not any("sr@latin" in f for f in files)
    # tones and the silence folder are not speech
    assert not any(f.endswith("beep.g722") or "/silence/" in f for f in files)
    # the klettres file copied into ktuberling is dropped (byte-identical)
    assert not any(f.endswith("dup.ogg") for f in files)
    assert len({c.sha256 for c in clips}) == len(clips)
    en = {c.file.rsplit("/", 1)[-1]: c for c in clips if c.package == "asterisk-core-sounds-en-g722"}
    assert en["prompt-0.g722"].align_text == "Please enter your number."
    assert en["prompt-4.g722"].align_text is None  # missing transcript -> phone loop
    es = [c for c in clips if c.package == "asterisk-core-sounds-es-g722"]
    assert all(c.align_text is None for c in es)  # the English dictionary does not fit Spanish
    assert all(c.version == "1.6.1-1" for c in es)


def test_spoken_text():
    assert spoken_text("[ascending tones]") is None
    assert spoken_text("at [@]") == "at"
    assert spoken_text(None) is None


def test_decode_g722_and_ogg(tmp_path, packages):
    w = speechlike(1.0, 1)
    write_g722(tmp_path / "a.g722", w)
    x, sr = decode_clip(tmp_path / "a.g722")
    assert sr == SR and x.shape == (SR,)
    lag = 22  # G.722's QMF filter-bank delay in samples
    assert np.corrcoef(x[100 + lag : -100 + lag], w[100:-100])[0, 1] > 0.99
    ogg = next(c for c in enumerate_clips(packages) if c.file.endswith(".ogg"))
    y, sr2 = decode_clip(ogg.path)
    assert y.ndim == 1 and sr2 in (16000, 22050)


def test_decode_rejects_corrupt_and_empty(tmp_path):
    bad = tmp_path / "bad.ogg"
    bad.write_bytes(b"this is not audio at all" * 10)
    with pytest.raises(UserInputError, match="bad.ogg"):
        decode_clip(bad)
    empty = tmp_path / "e.g722"
    empty.write_bytes(b"")
    with pytest.raises(UserInputError, match="e.g722"):
        decode_clip(empty)


def test_clean_clip_trims_resamples_and_drops_short():
    w = speechlike(2.0, 3, sr=22050, lead=0.4)
    y = clean_clip(w, 22050)
    assert y is not None
    assert 1.1 * SR < y.size < 1.4 * SR  # 0.4 s of silence trimmed at both ends (plus small margins)
    assert np.abs(y).max() <= 0.9 + 1e-6
    assert clean_clip(speechlike(0.5, 4, lead=0.1), SR) is None  # < 0.5 s of speech after trimming
    assert trim_silence(np.zeros(1600, np.float32), SR).size == 0
