"""scripts/paired_diff.py: paired differences across results files, against hand-computed pairs (oracle)."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from helpers_scripts import SCRIPTS, load_script

SCRIPT = SCRIPTS / "paired_diff.py"


@pytest.fixture(scope="module")
def script():
    return load_script("paired_diff")


def _write(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def _rows(method: str, estoi: dict, status: str = "ok") -> list[dict]:
    snrs = {"a": -5, "b": -5, "c": 0, "d": 0}
    return [
        {
            "method": method,
            "id": i,
            "snr_db": snrs[i],
            "noise_type": "white" if i in "ac" else "babble",
            "status": status,
            "estoi": v,
            "delta_estoi": v - 0.3,
        }
        for i, v in estoi.items()
    ]


def test_pairs_by_file_across_files_and_methods(script, tmp_path, capsys):
    ref = _write(
        tmp_path / "ref.csv",
        _rows("default", {"a": 0.40, "b": 0.50, "c": 0.60, "d": 0.70})
        + _rows("other", {"a": 0.0, "b": 0.0, "c": 0.0, "d": 0.0}),
    )
    # file "d" missing from the candidate: left out of its average; the rest shifted by 0.01 / 0.03
    cand = _write(tmp_path / "cand.csv", _rows("x", {"a": 0.41, "b": 0.51, "c": 0.63}))
    assert script.main([f"{ref}@default", f"new={cand}", "--metrics", "estoi"]) == 0
    out = capsys.readouterr().out
    snr_table = out.split("estoi, by snr:")[1].split("estoi, by noise:")[0]
    row = next(line for line in snr_table.splitlines() if line.startswith("| new |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1].startswith("+0.010 ± 0.000")  # -5 dB: a and b, both +0.01
    assert cells[2] == "+0.030"  # 0 dB: only c (one pair, no interval)
    assert cells[3].startswith("+0.017")  # all: (0.01 + 0.01 + 0.03) / 3


def test_bad_operands_are_one_line_errors(script, tmp_path):
    from pyro_minvae.errors import UserInputError

    ref = _write(tmp_path / "ref.csv", _rows("default", {"a": 0.4}) + _rows("other", {"a": 0.4}))
    cases = {
        (f"{ref}@nope", f"{ref}@default"): "no rows of method 'nope'",
        (f"{ref}@default", str(tmp_path / "missing.csv")): "missing.csv: cannot read it",
        (f"{ref}@default", f"ref={ref}@other"): "operand names must be distinct",
        (f"{ref}@default", f"{ref}@other", "--metrics", "estoi,bogus"): "--metrics: unknown bogus",
    }
    for args, message in cases.items():
        with pytest.raises(UserInputError, match=message):
            script.main(list(args))
    # through the script's entry point: one line on stderr, status 2, no traceback
    res = subprocess.run([sys.executable, str(SCRIPT), str(ref), str(ref)], capture_output=True, text=True)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip() == f"error: {ref}: holds default, other; pick one with {ref}@METHOD"
