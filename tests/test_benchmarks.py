"""The enhancement speed benchmark runs (1 s of audio, untrained paper-sized model) and reports a median RTF
with its spread; the numbers for the record come from full runs (docs/results.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_enhance_speed_reports_median_and_spread(tmp_path):
    out = tmp_path / "speed.json"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "enhance_speed.py"), "--seconds", "1",
                           "--skip-long", "--repeat", "2", "--methods", "fast,mcem", "--threads", "1",
                           "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert [r["method"] for r in report["speed"]] == ["fast", "mcem"]
    for r in report["speed"]:
        assert r["repeats"] == 2 and r["audio_s"] == 1.0 and r["chunks"] == 1
        assert 0 < r["rtf_min"] <= r["rtf"] <= r["rtf_max"]
