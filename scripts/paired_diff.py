"""Paired differences between methods stored in different results files (e.g. a new run against rows kept from
an earlier one), per SNR and per noise type, over the files both hold.

    .venv/bin/python scripts/paired_diff.py RUNS/exp/s27/tune/results.csv@default \
        four=RUNS/exp/s28/tune-four/results.csv@default [--metrics si_sdr,pesq_wb,stoi,estoi]

Each operand is ``[NAME=]PATH[@METHOD]``: a ``results.csv`` written by ``evaluate`` or ``tune`` and the method
whose rows to take (needed when the file holds several). The first operand is the reference. Prints, per metric,
each candidate's mean per-file difference from the reference with its 95% paired t-interval (as ``tune`` does
within one folder). Rows are paired by file id; only successful rows count. Only worth it when both runs used the
same mixtures and seeds (``evaluate`` and ``tune`` derive each file's seed from ``--seed`` and its id).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METRICS = ("si_sdr", "pesq_wb", "pesq_nb", "stoi", "estoi")


def load_operand(spec: str, index: int) -> tuple[str, list[dict]]:
    """``[NAME=]PATH[@METHOD]`` -> ``(NAME, rows renamed to NAME)``; NAME defaults to ``ref``/``cand<i>``."""
    from pyro_minvae.errors import UserInputError
    from pyro_minvae.evaluation.results import read_rows

    name, sep, rest = spec.partition("=")
    if not sep:
        name, rest = ("ref" if index == 0 else f"cand{index}"), spec
    path, _, method = rest.partition("@")
    try:
        with open(path, newline="") as f:
            header = next(csv.reader(f), [])
        rows = read_rows(path) if {"method", "id"} <= set(header) else []
    except OSError as exc:
        raise UserInputError(f"{path}: cannot read it ({exc.strerror or exc}); give a results.csv") from None
    if not rows:
        raise UserInputError(f"{path}: no result rows (is it a results.csv of evaluate or tune?)")
    methods = sorted({r["method"] for r in rows})
    if not method:
        if len(methods) > 1:
            raise UserInputError(f"{path}: holds {', '.join(methods)}; pick one with {path}@METHOD")
        method = methods[0]
    picked = [{**r, "method": name} for r in rows if r["method"] == method]
    if not picked:
        raise UserInputError(f"{path}: no rows of method {method!r}; it holds {', '.join(methods)}")
    return name, picked


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("reference", help="[NAME=]PATH[@METHOD]: the rows the others are compared with")
    ap.add_argument("candidates", nargs="+", help="[NAME=]PATH[@METHOD] (one or more)")
    ap.add_argument("--metrics", default=",".join(METRICS))
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from pyro_minvae.cli.choices import metric_list
    from pyro_minvae.errors import UserInputError
    from pyro_minvae.evaluation.tuning import compare, comparison_table

    metrics = metric_list(args.metrics)  # registered names only (an unknown one would give empty tables)

    operands = [load_operand(s, i) for i, s in enumerate([args.reference, *args.candidates])]
    names = [name for name, _ in operands]
    if len(set(names)) != len(names):
        raise UserInputError(f"operand names must be distinct; got {', '.join(names)} (use NAME=PATH)")
    rows = [r for _, picked in operands for r in picked]
    table = compare(rows, metrics, names[1:], names[0])
    print(f"{table['n_files']} files of {names[0]}; paired difference from {names[0]}")
    for m in metrics:
        for by in ("snr", "noise"):
            print(f"\n{m}, by {by}:")
            print(comparison_table(table, f"paired_{m}", by=by))
    return 0


if __name__ == "__main__":
    from pyro_minvae.entry import run_script  # one line, no traceback, on a user error or Ctrl-C

    sys.exit(run_script(main))
