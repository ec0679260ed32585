"""Phones -> viseme classes -> articulatory targets, and a dominance-function coarticulation model.

Phones are CMU/ARPAbet symbols as pocketsphinx emits them (``AA`` .. ``ZH``, ``SIL``); stress digits
(``AA1``) and lower case are accepted, and common silence spellings (``sil``, ``sp``, ``<sil>``, ``pau``,
``h#``, pocketsphinx noise fillers such as ``+NSN+``, ``+BREATH+``) map to ``SIL``; spoken noise
(``+SPN+``, ``spn``: speech the decoder could not name) maps to ``SPN``, rendered as a neutral half-open mouth.

Each viseme class has one articulatory target vector (the rendering depends on the class and the timing
only, never on the phone inside a class, pitch or voicing). Parameters, all dimensionless in [0, 1]:

==========  ================================================================
opening     inner-lip gap (0 closed, 1 the speaker's widest jaw/lip opening)
width       mouth-corner spread (0 narrow/rounded, 1 widest smile-like spread)
protrusion  lip rounding/pouting (narrows the mouth, rounds the opening)
teeth       visibility of the teeth inside the opening
tongue      visibility of the tongue tip inside the opening
==========  ================================================================

Coarticulation (Cohen & Massaro 1993 style): every phone segment exerts a dominance
``alpha_c,p * exp(-d / tau_c,p)`` on parameter ``p``, where ``d`` is the time (s) from the evaluation instant
to the segment (0 inside it) and ``c`` its viseme class; the trajectory is the dominance-weighted mean of
the segment targets. Strong, short-ranged dominance (bilabial closure) always reaches its target;
weak ones (``HH``) borrow the shape of their neighbours; rounding is anticipated over a longer range.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

PARAMS: tuple[str, ...] = ("opening", "width", "protrusion", "teeth", "tongue")

# viseme class -> target (opening, width, protrusion, teeth, tongue)
VISEME_TARGETS: dict[str, tuple[float, float, float, float, float]] = {
    "silence": (0.03, 0.45, 0.15, 0.00, 0.00),
    "bilabial": (0.00, 0.48, 0.10, 0.00, 0.00),
    "labiodental": (0.12, 0.50, 0.00, 0.95, 0.00),
    "dental": (0.30, 0.58, 0.00, 0.70, 0.90),
    "alveolar": (0.25, 0.58, 0.05, 0.60, 0.30),
    "postalveolar": (0.25, 0.30, 0.85, 0.60, 0.00),
    "velar": (0.35, 0.52, 0.10, 0.30, 0.10),
    "glottal": (0.45, 0.50, 0.10, 0.20, 0.10),
    "rhotic": (0.32, 0.32, 0.55, 0.30, 0.05),
    "rounded": (0.35, 0.12, 0.95, 0.10, 0.00),
    "open": (0.90, 0.62, 0.00, 0.35, 0.20),
    "mid": (0.55, 0.65, 0.00, 0.45, 0.15),
    "spread": (0.42, 0.95, 0.00, 0.75, 0.10),
}

VISEME_CLASSES: tuple[str, ...] = tuple(VISEME_TARGETS)

PHONE_TO_VISEME: dict[str, str] = {
    "SIL": "silence",
    "P": "bilabial",
    "B": "bilabial",
    "M": "bilabial",
    "F": "labiodental",
    "V": "labiodental",
    "TH": "dental",
    "DH": "dental",
    "T": "alveolar",
    "D": "alveolar",
    "N": "alveolar",
    "S": "alveolar",
    "Z": "alveolar",
    "L": "alveolar",
    "SH": "postalveolar",
    "ZH": "postalveolar",
    "CH": "postalveolar",
    "JH": "postalveolar",
    "K": "velar",
    "G": "velar",
    "NG": "velar",
    "HH": "glottal",
    "SPN": "glottal",
    "R": "rhotic",
    "ER": "rhotic",
    "UW": "rounded",
    "UH": "rounded",
    "OW": "rounded",
    "AO": "rounded",
    "OY": "rounded",
    "W": "rounded",
    "AA": "open",
    "AE": "open",
    "AW": "open",
    "AY": "open",
    "AH": "mid",
    "EH": "mid",
    "IY": "spread",
    "IH": "spread",
    "EY": "spread",
    "Y": "spread",
}

_SILENCE_ALIASES = {"SIL", "SP", "<SIL>", "<S>", "</S>", "PAU", "H#", "", "NSN", "(NULL)"}

# Dominance magnitude alpha (unitless) and decay constant tau (seconds) per class and parameter.
# Columns follow PARAMS. Defaults: alpha 1, tau 0.035 s (opening) / 0.045 s (the rest).
_DEFAULT_ALPHA = np.ones(len(PARAMS))
_DEFAULT_TAU = np.array([0.035, 0.045, 0.045, 0.045, 0.045])
_ALPHA_OVERRIDES: dict[str, Sequence[float]] = {
    # closure and lip-teeth contact must be reached: high dominance on opening
    "bilabial": (4.0, 1.0, 0.3, 3.0, 3.0),
    "labiodental": (3.0, 1.0, 0.3, 3.0, 1.0),
    "dental": (1.5, 1.0, 0.3, 1.5, 3.0),
    # consonants barely constrain rounding: vowels' rounding spreads over them
    "alveolar": (1.2, 0.6, 0.2, 1.5, 1.0),
    "postalveolar": (1.2, 1.0, 1.5, 1.0, 1.0),
    "velar": (0.6, 0.4, 0.2, 0.5, 0.5),
    "glottal": (0.15, 0.15, 0.15, 0.15, 0.15),
    "rhotic": (0.8, 1.0, 1.0, 0.6, 0.6),
    "rounded": (1.0, 2.0, 2.0, 1.0, 1.0),
    "silence": (1.5, 1.5, 1.5, 1.5, 1.5),
}
_TAU_OVERRIDES: dict[str, Sequence[float]] = {
    "bilabial": (0.015, 0.045, 0.045, 0.020, 0.020),
    "labiodental": (0.015, 0.045, 0.045, 0.020, 0.020),
    "rounded": (0.050, 0.090, 0.110, 0.050, 0.050),  # anticipatory rounding
    "silence": (0.060, 0.080, 0.080, 0.060, 0.060),
}


def normalize_phone(phone: str) -> str:
    """Upper-case ARPAbet symbol without stress digits; silence spellings and fillers -> ``"SIL"``."""
    p = phone.strip().upper()
    if p.startswith("+") and p.endswith("+"):
        return "SPN" if p == "+SPN+" else "SIL"
    p = p.rstrip("012")
    if p in _SILENCE_ALIASES:
        return "SIL"
    return p


def viseme_of(phone: str) -> str:
    """Viseme class of one phone; ``ValueError`` for a symbol outside ARPAbet."""
    p = normalize_phone(phone)
    try:
        return PHONE_TO_VISEME[p]
    except KeyError:
        raise ValueError(f"unknown phone {phone!r}: expected an ARPAbet symbol (e.g. AA, P, SIL)") from None


def target_of(viseme: str) -> np.ndarray:
    """Articulatory target ``(5,)`` float64 of a viseme class (order: :data:`PARAMS`)."""
    if viseme not in VISEME_TARGETS:
        raise ValueError(f"unknown viseme class {viseme!r}; known: {', '.join(VISEME_CLASSES)}")
    return np.asarray(VISEME_TARGETS[viseme], dtype=np.float64)


def _table(overrides: dict[str, Sequence[float]], default: np.ndarray) -> np.ndarray:
    return np.stack([np.asarray(overrides.get(c, default), dtype=np.float64) for c in VISEME_CLASSES])


TARGET_TABLE = np.stack([target_of(c) for c in VISEME_CLASSES])  # (n_classes, 5)
ALPHA_TABLE = _table(_ALPHA_OVERRIDES, _DEFAULT_ALPHA)  # (n_classes, 5)
TAU_TABLE = _table(_TAU_OVERRIDES, _DEFAULT_TAU)  # (n_classes, 5) seconds


def trajectory(starts: np.ndarray, ends: np.ndarray, visemes: Iterable[str], times: np.ndarray) -> np.ndarray:
    """Coarticulated articulatory parameters at ``times``.

    starts, ends: ``(S,)`` segment bounds in seconds; visemes: S class names; times: ``(N,)`` seconds.
    Returns ``(N, 5)`` float64 in [0, 1] (columns: :data:`PARAMS`). With no segment, the silence target.
    """
    starts = np.asarray(starts, dtype=np.float64)
    ends = np.asarray(ends, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64)
    idx = np.array([VISEME_CLASSES.index(v) for v in visemes], dtype=np.int64)
    if starts.shape != ends.shape or starts.ndim != 1 or idx.shape != starts.shape:
        raise ValueError(f"starts {starts.shape}, ends {ends.shape} and visemes ({idx.shape[0]}) must be (S,)")
    if idx.size == 0:
        return np.tile(target_of("silence"), (times.shape[0], 1))
    # distance (s) from each time to each segment interval, 0 inside: (N, S)
    d = np.maximum(starts[None, :] - times[:, None], 0.0) + np.maximum(times[:, None] - ends[None, :], 0.0)
    alpha, tau, tgt = ALPHA_TABLE[idx], TAU_TABLE[idx], TARGET_TABLE[idx]  # (S, 5)
    # dominance (N, S, 5); work in log space relative to the per-(time, param) maximum for stability
    logd = np.log(alpha)[None] - d[:, :, None] / tau[None]
    logd -= logd.max(axis=1, keepdims=True)
    w = np.exp(logd)
    out = (w * tgt[None]).sum(axis=1) / w.sum(axis=1)
    return np.clip(out, 0.0, 1.0)
