"""Validation-ELBO curves of training runs, from their ``log.csv`` files, in one figure.

    .venv/bin/python scripts/plot_training.py LABEL=RUN_DIR [LABEL=RUN_DIR ...] -o curves.png

``RUN_DIR`` is a ``pyro-minvae train --out`` folder. The x axis is cumulative training minutes (sum of
``epoch_time_s``, so resumed runs read as one) in the left panel and epochs in the right one, so cost and
convergence read off the same figure.
"""

from __future__ import annotations

import argparse
import sys
import csv
from pathlib import Path


def read_log(run_dir: Path) -> list[dict]:
    path = run_dir / "log.csv"
    if not path.is_file():
        raise SystemExit(f"error: {path}: no training log; pass a folder written by `pyro-minvae train --out`")
    with path.open() as f:
        rows = [
            {k: float(v) for k, v in row.items() if k in ("epoch", "valid_elbo", "epoch_time_s")}
            for row in csv.DictReader(f)
        ]
    total = 0.0
    for r in rows:  # cumulative training time (a resumed run's elapsed_s starts again from zero)
        total += r["epoch_time_s"]
        r["minutes"] = total / 60
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", metavar="LABEL=RUN_DIR")
    ap.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_e) = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for item in args.runs:
        label, _, run = item.partition("=")
        rows = read_log(Path(run).expanduser())
        ax_t.plot([r["minutes"] for r in rows], [r["valid_elbo"] for r in rows], marker=".", label=label)
        ax_e.plot([r["epoch"] for r in rows], [r["valid_elbo"] for r in rows], marker=".", label=label)
    ax_t.set_xlabel("training time (min, 1 torch thread)")
    ax_e.set_xlabel("epoch")
    ax_t.set_ylabel("validation ELBO (nats/frame)")
    ax_e.legend()
    for ax in (ax_t, ax_e):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    from pyro_minvae.entry import run_script  # one line, no traceback, on a user error or Ctrl-C

    sys.exit(run_script(main))
