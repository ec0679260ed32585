"""Aggregate per-file results into mean and 95% confidence interval per method x SNR x noise type.

``summarise(rows, metrics)`` returns a JSON-ready dict::

    {"metrics": [...], "methods": [...], "snrs": [...], "noise_types": [...],
     "groups": [{"method", "snr_db" (float or "all"), "noise_type" (str or "all"), "n_files", "n_failed",
                 "stats": {column: {"mean", "ci95", "n"}}}, ...]}

``ci95`` is the half-width of the Student-t interval (``None`` for a single value); ``column`` ranges over each
metric ``m``, ``input_m`` and ``delta_m``. Markdown tables come from :func:`to_markdown`.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

from scipy import stats as _st

ALL = "all"

LABELS = {
    "si_sdr": "SI-SDR (dB)",
    "sdr": "SDR (dB)",
    "pesq_wb": "PESQ wide-band (P.862.2)",
    "pesq_nb": "PESQ narrow-band (P.862)",
    "stoi": "STOI",
    "estoi": "ESTOI",
}

# Which PESQ is which: published enhancement papers often quote narrow-band PESQ or another implementation, so
# numbers from elsewhere are only comparable with the matching row.
PESQ_NOTE = (
    "PESQ: the `pesq` package (the ITU-T reference code) on 16 kHz audio; *wide-band* is ITU-T P.862.2 "
    "(MOS-LQO 1.04-4.64), *narrow-band* is ITU-T P.862 with the P.862.1 mapping (MOS-LQO 1.02-4.55). "
    'Papers that report a single "PESQ" often mean narrow-band; compare like with like.'
)


def mean_ci(values: Sequence[float], level: float = 0.95) -> dict:
    """``{"mean", "ci95", "n"}`` of finite ``values``; ``ci95`` is the t-interval half-width (None if n < 2)."""
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    n = len(v)
    if n == 0:
        return {"mean": None, "ci95": None, "n": 0}
    mean = sum(v) / n
    if n < 2:
        return {"mean": mean, "ci95": None, "n": 1}
    sd = math.sqrt(sum((x - mean) ** 2 for x in v) / (n - 1))
    half = float(_st.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return {"mean": mean, "ci95": half, "n": n}


def _snr_key(s):
    return (1, 0.0) if s == ALL else (0, float(s))


def summarise(rows: Iterable[dict], metrics: Sequence[str], methods: Sequence[str] | None = None) -> dict:
    rows = list(rows)
    methods = list(methods) if methods is not None else sorted({r["method"] for r in rows})
    snrs = sorted({float(r["snr_db"]) for r in rows})
    noises = sorted({str(r["noise_type"]) for r in rows})
    cols = [c for m in metrics for c in (m, f"input_{m}", f"delta_{m}")]
    groups = []
    for method in methods:
        mrows = [r for r in rows if r["method"] == method]
        for snr in snrs + [ALL]:
            for noise in noises + [ALL]:
                sel = [
                    r
                    for r in mrows
                    if (snr == ALL or float(r["snr_db"]) == snr) and (noise == ALL or str(r["noise_type"]) == noise)
                ]
                if not sel:
                    continue
                ok = [r for r in sel if r.get("status") == "ok"]
                groups.append(
                    {
                        "method": method,
                        "snr_db": snr,
                        "noise_type": noise,
                        "n_files": len(sel),
                        "n_failed": len(sel) - len(ok),
                        "stats": {c: mean_ci([r[c] for r in ok if c in r]) for c in cols},
                    }
                )
    return {"metrics": list(metrics), "methods": methods, "snrs": snrs, "noise_types": noises, "groups": groups}


def lookup(summary: dict, method: str, snr, noise: str) -> dict | None:
    for g in summary["groups"]:
        if g["method"] == method and g["snr_db"] == snr and g["noise_type"] == noise:
            return g
    return None


def _fmt(st: dict | None, expected_n: int, digits: int) -> str:
    if not st or st["mean"] is None:
        return "–"
    s = f"{st['mean']:.{digits}f}"
    if st["ci95"] is not None:
        s += f" ± {st['ci95']:.{digits}f}"
    if st["n"] < expected_n:
        s += f" (n={st['n']})"
    return s


def _digits(metric: str) -> int:
    return 1 if "sdr" in metric else (2 if "pesq" in metric else 3)


def metric_table(summary: dict, column: str, noise: str = ALL) -> str:
    """Markdown table: rows = methods, columns = SNRs and "all"; cells "mean ± 95% CI"."""
    base = column.split("_", 1)[1] if column.startswith(("input_", "delta_")) else column
    digits = _digits(base)
    snrs = summary["snrs"] + [ALL]
    head = "| method | " + " | ".join(f"{s:g} dB" if s != ALL else "all" for s in snrs) + " |"
    lines = [head, "|" + "---|" * (len(snrs) + 1)]
    for method in summary["methods"]:
        cells = []
        for snr in snrs:
            g = lookup(summary, method, snr, noise)
            cells.append(_fmt(g["stats"].get(column) if g else None, g["n_files"] if g else 0, digits))
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def to_markdown(
    summary: dict, title: str = "Evaluation results", settings: dict | None = None, bad: Sequence[dict] = ()
) -> str:
    """The full summary.md: averaged over noise types, improvements, per-noise tables, failures."""
    out = [f"# {title}", ""]
    if settings:
        out += ["Settings: " + ", ".join(f"{k} = {v}" for k, v in settings.items()), ""]
    out += [
        "Cells: mean ± 95% confidence interval (Student t) over files; (n=k) marks cells where some files "
        "had no value (see results.csv, columns `reason` and `metric_errors`). The input's own scores are the "
        "`noisy` row (when evaluated) and every delta is output minus input, file by file.",
        "",
    ]
    if any(m.startswith("pesq") for m in summary["metrics"]):
        out += [PESQ_NOTE, ""]
    out += ["## All noise types", ""]
    for m in summary["metrics"]:
        out += [f"### {LABELS.get(m, m)}", "", metric_table(summary, m), ""]
    out += ["## Improvement over the noisy input (delta)", ""]
    for m in summary["metrics"]:
        out += [f"### Δ {LABELS.get(m, m)}", "", metric_table(summary, f"delta_{m}"), ""]
    out += ["## Per noise type", ""]
    for noise in summary["noise_types"]:
        out += [f"### Noise: {noise}", ""]
        for m in summary["metrics"]:
            out += [f"#### {LABELS.get(m, m)} ({noise})", "", metric_table(summary, m, noise), ""]
        for m in summary["metrics"]:
            out += [f"#### Δ {LABELS.get(m, m)} ({noise})", "", metric_table(summary, f"delta_{m}", noise), ""]
    if bad:
        out += ["## Failed (method, file) pairs", "", "| method | file | reason |", "|---|---|---|"]
        out += [f"| {b['method']} | {b['id']} | {b['reason']} |" for b in bad]
        out.append("")
    return "\n".join(out)


def console_table(summary: dict, metrics: Sequence[str] | None = None) -> str:
    """Plain-text tables (metric vs SNR per method, all noise types) for the terminal."""
    parts = []
    for m in metrics or summary["metrics"]:
        parts += [f"{LABELS.get(m, m)}:", metric_table(summary, m), ""]
    return "\n".join(parts)
