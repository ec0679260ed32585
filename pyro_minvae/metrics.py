"""Speech-enhancement metrics, returned Asteroid-style: the estimate's score, the noisy input's score and the
improvement side by side.

All functions take 1-D float waveforms ``(T,)`` in [-1, 1] at ``sample_rate`` Hz. Units: SI-SDR and SDR in dB,
PESQ in MOS-LQO (wide-band 1.04..4.64, narrow-band 1.02..4.55), STOI and ESTOI in [0, 1] (ESTOI may dip
slightly below 0).

Metrics that cannot be computed for a given pair (PESQ finds no utterance, the clip is too short for STOI, the
estimate is silent...) are *left out* of the result and the reason is written to the ``metric_errors`` entry:
tables never contain NaN. Problems with the inputs themselves (silent or non-finite reference, lengths that
differ by more than a tolerance) raise ``ValueError``.

Extending: ``register_metric(name, fn)`` with ``fn(reference, estimate, sample_rate) -> float`` raising
:class:`MetricUnavailable` (or ``ValueError``) when the value is undefined.
"""

from __future__ import annotations

import warnings
from typing import Callable, Dict, Iterable, Mapping

import numpy as np
from scipy.linalg import solve_toeplitz
from scipy.signal import fftconvolve

__all__ = [
    "MetricUnavailable",
    "METRICS",
    "DEFAULT_METRICS",
    "register_metric",
    "si_sdr",
    "sdr",
    "pesq_wb",
    "pesq_nb",
    "stoi",
    "estoi",
    "check_pair",
    "compute_metrics",
    "score",
    "score_input",
    "LENGTH_TOLERANCE_S",
]

# Length difference (seconds) between reference and estimate that is silently trimmed; larger raises.
LENGTH_TOLERANCE_S = 0.05
# A reference whose RMS is below this (about -120 dBFS) is treated as silent.
SILENCE_RMS = 1e-6
_EPS = 1e-12


class MetricUnavailable(Exception):
    """A metric is undefined for this pair (e.g. PESQ found no utterance); the message is the reason."""


def _as_wave(x, what: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{what} must be a 1-D waveform (T,); got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{what} is empty (0 samples)")
    if not np.isfinite(a).all():
        raise ValueError(f"{what} contains NaN or Inf samples")
    return a


def check_pair(
    reference, estimate, sample_rate: int, what: str = "estimate", length_tolerance_s: float = LENGTH_TOLERANCE_S
) -> tuple[np.ndarray, np.ndarray]:
    """Validate a (reference, estimate) pair and trim both to the common length.

    Returns float64 copies ``(T,)``. Raises ``ValueError`` if either is not a finite 1-D waveform, if the
    reference is silent, or if the lengths differ by more than ``length_tolerance_s`` seconds.
    """
    ref = _as_wave(reference, "reference")
    est = _as_wave(estimate, what)
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive; got {sample_rate}")
    diff = abs(ref.size - est.size)
    if diff > length_tolerance_s * sample_rate:
        raise ValueError(
            f"reference has {ref.size} samples but the {what} has {est.size} "
            f"({diff / sample_rate:.3f} s apart, tolerance {length_tolerance_s:g} s); "
            "compare signals of the same recording"
        )
    n = min(ref.size, est.size)
    ref, est = ref[:n], est[:n]
    rms = float(np.sqrt(np.mean(ref**2)))
    if rms < SILENCE_RMS:
        raise ValueError(f"reference is silent (RMS {rms:.2e}); metrics need a reference with speech")
    return ref, est


def _require_not_silent(est: np.ndarray) -> None:
    if float(np.sqrt(np.mean(est**2))) < SILENCE_RMS:
        raise MetricUnavailable("estimate is silent")


# ----------------------------------------------------------------------------------------------- SDR family


def si_sdr(reference, estimate, sample_rate: int = 16000) -> float:
    """Scale-invariant SDR (Le Roux et al. 2019) in dB, both signals made zero-mean first.

    With ``alpha = <s, e> / ||s||^2``: ``10 log10(||alpha s||^2 / ||e - alpha s||^2)``; a perfect estimate
    scores the cap of 120 dB rather than infinity.
    """
    s, e = check_pair(reference, estimate, sample_rate)
    _require_not_silent(e)
    s = s - s.mean()
    e = e - e.mean()
    alpha = float(np.dot(s, e) / (np.dot(s, s) + _EPS))
    target = alpha * s
    resid = e - target
    t_pow, r_pow = float(np.dot(target, target)), float(np.dot(resid, resid))
    if t_pow <= _EPS * e.size:
        raise MetricUnavailable("estimate is uncorrelated with the reference (SI-SDR = -inf)")
    return 10.0 * np.log10(t_pow / max(r_pow, _EPS * t_pow))


def sdr(reference, estimate, sample_rate: int = 16000, filter_length: int = 512) -> float:
    """Single-source BSS-eval SDR (Vincent et al. 2006, as in ``mir_eval.separation.bss_eval_sources``), dB.

    The estimate is projected on ``filter_length`` delayed copies of the reference (a time-invariant FIR
    filter is allowed); SDR = ``10 log10(||P e||^2 / ||e - P e||^2)`` over the zero-padded signals.
    """
    s, e = check_pair(reference, estimate, sample_rate)
    _require_not_silent(e)
    L = int(min(filter_length, s.size))
    n_out = s.size + L - 1
    # autocorrelation r[k] = sum_t s[t] s[t-k], cross-correlation c[k] = sum_t e[t] s[t-k], k = 0..L-1
    r = fftconvolve(s, s[::-1])[s.size - 1 : s.size - 1 + L]
    c = fftconvolve(e, s[::-1])[s.size - 1 : s.size - 1 + L]
    r = r.copy()
    r[0] += 1e-10 * r[0] + _EPS  # tiny ridge: the Gram matrix of a band-limited signal is near-singular
    h = solve_toeplitz(r, c)
    proj = fftconvolve(s, h)[:n_out]
    e_pad = np.zeros(n_out)
    e_pad[: e.size] = e
    resid = e_pad - proj
    p_pow, r_pow = float(np.dot(proj, proj)), float(np.dot(resid, resid))
    if p_pow <= _EPS * e.size:
        raise MetricUnavailable("estimate is uncorrelated with the reference (SDR = -inf)")
    return 10.0 * np.log10(p_pow / max(r_pow, _EPS * p_pow))


# ----------------------------------------------------------------------------------------------- PESQ


def _to_rate(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    if sr_in == sr_out:
        return x
    from .audio_io import resample

    return resample(x.astype(np.float32), sr_in, sr_out).astype(np.float64)


def _pesq(reference, estimate, sample_rate: int, mode: str) -> float:
    s, e = check_pair(reference, estimate, sample_rate)
    _require_not_silent(e)
    import pesq as _pesq_mod

    if mode == "wb" and sample_rate < 16000:
        raise MetricUnavailable(f"wide-band PESQ needs 16 kHz audio; got {sample_rate} Hz")
    rate = 16000 if sample_rate >= 16000 else 8000
    s, e = _to_rate(s, sample_rate, rate), _to_rate(e, sample_rate, rate)
    n = min(s.size, e.size)
    try:
        return float(_pesq_mod.pesq(rate, s[:n], e[:n], mode))
    except _pesq_mod.PesqError as exc:
        msg = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise MetricUnavailable(f"PESQ {type(exc).__name__}: {msg}") from None


def pesq_wb(reference, estimate, sample_rate: int = 16000) -> float:
    """Wide-band PESQ (ITU-T P.862.2), MOS-LQO; audio at other rates is resampled to 16 kHz."""
    return _pesq(reference, estimate, sample_rate, "wb")


def pesq_nb(reference, estimate, sample_rate: int = 16000) -> float:
    """Narrow-band PESQ (ITU-T P.862 + P.862.1 mapping), MOS-LQO."""
    return _pesq(reference, estimate, sample_rate, "nb")


# ----------------------------------------------------------------------------------------------- STOI


def _stoi(reference, estimate, sample_rate: int, extended: bool) -> float:
    s, e = check_pair(reference, estimate, sample_rate)
    _require_not_silent(e)
    from pystoi import stoi as _pystoi

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = float(_pystoi(s, e, sample_rate, extended=extended))
    if caught:
        # pystoi warns and returns 1e-5 when too few non-silent frames remain: that is no score
        raise MetricUnavailable(f"{'ESTOI' if extended else 'STOI'}: {str(caught[0].message).split('.')[0]}")
    if not np.isfinite(value):
        raise MetricUnavailable(f"{'ESTOI' if extended else 'STOI'} is not finite")
    return value


def stoi(reference, estimate, sample_rate: int = 16000) -> float:
    """Short-time objective intelligibility (Taal et al. 2011), in [0, 1]."""
    return _stoi(reference, estimate, sample_rate, extended=False)


def estoi(reference, estimate, sample_rate: int = 16000) -> float:
    """Extended STOI (Jensen & Taal 2016)."""
    return _stoi(reference, estimate, sample_rate, extended=True)


# ----------------------------------------------------------------------------------------------- registry + score

MetricFn = Callable[[np.ndarray, np.ndarray, int], float]
METRICS: Dict[str, MetricFn] = {}


def register_metric(name: str, fn: MetricFn) -> MetricFn:
    """Add a metric ``fn(reference, estimate, sample_rate) -> float`` under ``name``."""
    if name in METRICS and METRICS[name] is not fn:
        raise ValueError(f"metric {name!r} is already registered")
    METRICS[name] = fn
    return fn


_BUILT_IN = (si_sdr, sdr, pesq_wb, pesq_nb, stoi, estoi)  # each registered under its function name
for _fn in _BUILT_IN:
    register_metric(_fn.__name__, _fn)

DEFAULT_METRICS = tuple(_fn.__name__ for _fn in _BUILT_IN)


def _metric_names(metrics: Iterable[str] | None) -> tuple[str, ...]:
    names = tuple(DEFAULT_METRICS if metrics is None else metrics)
    unknown = [m for m in names if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; valid metrics: {', '.join(sorted(METRICS))}")
    return names


def compute_metrics(
    reference,
    estimate,
    sample_rate: int,
    metrics: Iterable[str] | None = None,
    length_tolerance_s: float = LENGTH_TOLERANCE_S,
) -> tuple[dict, dict]:
    """Score one estimate against the reference.

    Returns ``(values, reasons)``: ``values[m]`` is a finite float for each metric that could be computed,
    ``reasons[m]`` a short string for each that could not. Raises ``ValueError`` for invalid input pairs.
    """
    names = _metric_names(metrics)
    ref, est = check_pair(reference, estimate, sample_rate, length_tolerance_s=length_tolerance_s)
    values: dict = {}
    reasons: dict = {}
    for m in names:
        try:
            v = float(METRICS[m](ref, est, sample_rate))
        except MetricUnavailable as exc:
            reasons[m] = str(exc)
            continue
        if not np.isfinite(v):
            reasons[m] = "value is not finite"
            continue
        values[m] = v
    return values, reasons


def score(
    reference,
    estimate,
    noisy,
    sample_rate: int,
    metrics: Iterable[str] | None = None,
    *,
    input_scores: Mapping | None = None,
    length_tolerance_s: float = LENGTH_TOLERANCE_S,
) -> dict:
    """Score ``estimate`` and the ``noisy`` input against ``reference`` (all ``(T,)`` at ``sample_rate``).

    Returns a flat dict: for each metric ``m`` that could be computed, ``m`` (estimate), ``input_m`` (noisy
    input) and ``delta_m = m - input_m``; plus ``metric_errors``, a ``"; "``-joined string of the reasons why
    any value is missing (empty when none). ``input_scores`` (a previous ``score`` or ``score_input`` result)
    skips recomputing the input's scores, e.g. when several methods are scored on one file.
    """
    names = _metric_names(metrics)
    if input_scores is None:
        input_scores = score_input(reference, noisy, sample_rate, names, length_tolerance_s=length_tolerance_s)
    values, reasons = compute_metrics(reference, estimate, sample_rate, names, length_tolerance_s)
    out: dict = {}
    errors = [f"{m}: {r}" for m, r in reasons.items()]
    for m in names:
        if m in values:
            out[m] = values[m]
        inp = input_scores.get(f"input_{m}")
        if inp is not None:
            out[f"input_{m}"] = float(inp)
        if m in values and inp is not None:
            out[f"delta_{m}"] = values[m] - float(inp)
    in_err = input_scores.get("input_metric_errors", "")
    if in_err:
        errors.append(f"input {in_err}")
    out["metric_errors"] = "; ".join(errors)
    return out


def score_input(
    reference,
    noisy,
    sample_rate: int,
    metrics: Iterable[str] | None = None,
    *,
    length_tolerance_s: float = LENGTH_TOLERANCE_S,
) -> dict:
    """The noisy input's scores as ``{"input_m": value, ..., "input_metric_errors": str}``."""
    values, reasons = compute_metrics(reference, noisy, sample_rate, metrics, length_tolerance_s)
    out = {f"input_{m}": v for m, v in values.items()}
    out["input_metric_errors"] = "; ".join(f"{m}: {r}" for m, r in reasons.items())
    return out
