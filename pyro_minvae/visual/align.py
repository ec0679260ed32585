"""Phone timings from pocketsphinx: forced alignment with an English transcript, phone-loop decoding otherwise.

One :class:`PhoneAligner` holds one pocketsphinx decoder (start-up costs about 1 s) and is reused across
clips. Times are seconds; pocketsphinx works in 10 ms frames. The returned segments are contiguous, start
at 0 and end at the clip duration (gaps and the tail are filled with ``"SIL"``).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass

import numpy as np

from ..errors import MissingDependencyError
from .visemes import normalize_phone

log = logging.getLogger(__name__)

MODEL_SAMPLE_RATE = 16000

_DIGITS = {
    "0": "zero",
    "1": "one",
    "2": "two",
    "3": "three",
    "4": "four",
    "5": "five",
    "6": "six",
    "7": "seven",
    "8": "eight",
    "9": "nine",
}


@dataclass(frozen=True)
class PhoneSegment:
    """One phone: ARPAbet symbol (``"SIL"`` for silence), start and end in seconds."""

    phone: str
    start: float
    end: float


def normalize_transcript(text: str) -> list[str]:
    """Lower-case words for the CMU dictionary: bracketed notes (``[beep]``) dropped, punctuation removed,
    single digits spelled out. ``"Press 1, then #."`` -> ``["press", "one", "then"]``."""
    text = re.sub(r"\[[^\]]*\]|\([^)]*\)", " ", text.lower())
    text = re.sub(r"(?<=\d)(?=\D)|(?<=\D)(?=\d)", " ", text)
    words = []
    for w in re.sub(r"[^a-z0-9']+", " ", text).split():
        w = w.strip("'")
        if not w:
            continue
        words.extend(_DIGITS[c] for c in w) if w.isdigit() else words.append(w)
    return words


def _to_pcm16(wave: np.ndarray) -> bytes:
    x = np.asarray(wave, dtype=np.float32)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"wave must be a non-empty (T,) array; got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("wave contains NaN or Inf")
    peak = float(np.abs(x).max())
    if peak > 1.0:  # keep the shape of the signal, avoid wrap-around
        x = x / peak
    return (x * 32767.0).astype("<i2").tobytes()


def fill_silence(segments, duration: float) -> list[PhoneSegment]:
    """``[(phone, start_s, end_s), ...]`` -> contiguous PhoneSegments covering ``[0, duration]``: sorted, clipped,
    overlaps trimmed, gaps and the tail filled with ``SIL``, adjacent ``SIL`` merged."""
    out: list[PhoneSegment] = []
    t = 0.0
    for phone, s, e in sorted(segments, key=lambda z: z[1]):
        s, e = max(s, t), min(e, duration)
        if e <= s + 1e-9:
            continue
        if s > t + 1e-9:
            out.append(PhoneSegment("SIL", t, s))
        out.append(PhoneSegment(phone, s, e))
        t = e
    if duration > t + 1e-9:
        out.append(PhoneSegment("SIL", t, duration))
    merged: list[PhoneSegment] = []
    for seg in out:
        if merged and seg.phone == "SIL" and merged[-1].phone == "SIL":
            merged[-1] = PhoneSegment("SIL", merged[-1].start, seg.end)
        else:
            merged.append(seg)
    return merged


class PhoneAligner:
    """Pocketsphinx phone aligner holding one decoder (built lazily, reused across clips).

    ``sample_rate``: rate of the waves given to :meth:`align`; anything else than 16 kHz is resampled.
    ``model_dir``: pocketsphinx model folder (default: the model bundled in the wheel).
    After each call, ``last_method`` is ``"forced"``, ``"phone_loop"`` or ``"none"`` (all silence).
    """

    def __init__(self, sample_rate: int = MODEL_SAMPLE_RATE, model_dir: str | os.PathLike | None = None):
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive; got {sample_rate}")
        self.sample_rate = int(sample_rate)
        self._model_dir = model_dir
        self._decoder = None
        self._frate = 100
        self.last_method = "none"

    # -- decoder -----------------------------------------------------------------------------------
    def _get_decoder(self):
        if self._decoder is None:
            try:
                import pocketsphinx
            except ImportError as e:  # pragma: no cover - pocketsphinx is a hard dependency
                raise MissingDependencyError(
                    "pocketsphinx is not installed; run `pip install 'pocketsphinx>=5,<6'`"
                ) from e
            model = str(self._model_dir or pocketsphinx.get_model_path())
            phone_lm = os.path.join(model, "en-us", "en-us-phone.lm.bin")
            if not os.path.exists(phone_lm):
                raise MissingDependencyError(
                    f"{phone_lm}: pocketsphinx phone language model missing; reinstall pocketsphinx>=5"
                )
            dec = pocketsphinx.Decoder(samprate=MODEL_SAMPLE_RATE, bestpath=False, loglevel="FATAL")
            dec.add_allphone_file("allphone", phone_lm)
            self._frate = int(dec.config["frate"])
            self._decoder = dec
        return self._decoder

    def _decode(self, pcm: bytes, fresh: bool = True) -> None:
        """One utterance. ``fresh`` resets feature extraction (cepstral mean) first, so that the result does not
        depend on which clips the decoder saw before (live CMN otherwise carries over between utterances)."""
        dec = self._decoder
        if fresh:
            dec.reinit_feat()
        dec.start_utt()
        dec.process_raw(pcm, no_search=False, full_utt=True)
        dec.end_utt()

    def _forced(self, pcm: bytes, words: list[str]) -> list[tuple[str, float, float]] | None:
        dec = self._get_decoder()
        missing = [w for w in words if dec.lookup_word(w) is None]
        if missing:
            log.info("forced alignment skipped: words not in the dictionary: %s", " ".join(missing))
            return None
        try:
            dec.set_align_text(" ".join(words))
            self._decode(pcm)
            if dec.hyp() is None:
                log.info("forced alignment failed (word pass found no path)")
                return None
            dec.set_alignment()
            self._decode(pcm, fresh=False)  # keep the cepstral mean adapted to this clip by the first pass
            alignment = dec.get_alignment()
        except RuntimeError as e:
            log.info("forced alignment failed: %s", e)
            return None
        if alignment is None:
            return None
        f = float(self._frate)
        segs = [(normalize_phone(p.name), p.start / f, (p.start + p.duration) / f) for word in alignment for p in word]
        return segs or None

    def _phone_loop(self, pcm: bytes) -> list[tuple[str, float, float]] | None:
        dec = self._get_decoder()
        try:
            dec.activate_search("allphone")
            self._decode(pcm)
            found = dec.seg() if dec.hyp() is not None else None
            segs = list(found) if found is not None else []
        except RuntimeError as e:
            log.warning("phone-loop decoding failed: %s", e)
            return None
        f = float(self._frate)
        return [(normalize_phone(s.word), s.start_frame / f, (s.end_frame + 1) / f) for s in segs]

    # -- public ------------------------------------------------------------------------------------
    def align(self, wave: np.ndarray, transcript: str | None = None) -> list[PhoneSegment]:
        """Phone segments of ``wave`` ``(T,)`` float (at ``sample_rate``), contiguous from 0 to its duration.

        With an English ``transcript``: forced alignment; when it fails (out-of-vocabulary words, no path)
        phone-loop decoding is used and logged. Without one: phone-loop decoding. Audio too short or too
        odd to decode gives one ``SIL`` segment (logged), never an exception.
        """
        wave = np.asarray(wave, dtype=np.float32)
        if wave.ndim != 1 or wave.size == 0:
            raise ValueError(f"wave must be a non-empty (T,) array; got shape {wave.shape}")
        duration = wave.shape[0] / self.sample_rate
        if self.sample_rate != MODEL_SAMPLE_RATE:
            from ..audio_io import resample

            wave = resample(wave, self.sample_rate, MODEL_SAMPLE_RATE)
        pcm = _to_pcm16(wave)
        segs = None
        if transcript is not None:
            words = normalize_transcript(transcript)
            segs = self._forced(pcm, words) if words else None
            if segs is None:
                log.warning("forced alignment failed for transcript %r; using phone-loop decoding", transcript)
            else:
                self.last_method = "forced"
        if segs is None:
            segs = self._phone_loop(pcm)
            self.last_method = "phone_loop" if segs else "none"
        if not segs:
            log.warning("no phones decoded in a %.2f s clip; marking it all silence", duration)
            segs = []
        return fill_silence(segs, duration)
