"""Every script in examples/ runs with its ``--small`` settings (a subprocess each, tiny corpus built on the fly)
and produces its outputs; each stays under 150 lines; the third modality lives only in its example."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SCRIPTS = ("swap_prior.py", "add_modality.py", "custom_kernel.py", "python_api.py")
MAX_LINES = 150


def run_example(name: str, out: Path, *extra: str) -> str:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")  # PYRO_MINVAE_CACHE: isolated by conftest
    proc = subprocess.run([sys.executable, str(EXAMPLES / name), "--small", "--out", str(out), *extra],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def test_examples_are_short():
    for name in SCRIPTS + ("tiny_corpus.py",):
        n = len((EXAMPLES / name).read_text().splitlines())
        assert n < MAX_LINES, f"examples/{name} has {n} lines (limit {MAX_LINES})"


def test_every_example_is_tested():
    found = {p.name for p in EXAMPLES.glob("*.py")} - {"tiny_corpus.py"}
    assert found == set(SCRIPTS)


def test_third_modality_needs_no_package_change():
    """``lip_motion`` is registered by examples/add_modality.py alone: nothing under pyro_minvae/ names it."""
    hits = [p for p in (ROOT / "pyro_minvae").rglob("*.py") if "lip_motion" in p.read_text()]
    assert hits == []


def test_swap_prior(tmp_path):
    tmp_path = tmp_path / "out"  # not created beforehand: the example must create it
    out = run_example("swap_prior.py", tmp_path)
    assert (tmp_path / "mog-mixture" / "best.pt").exists() and (tmp_path / "mixture" / "best.pt").exists()
    assert "reloaded MoGMixturePrior" in out
    assert "prior mog-mixture" in out and "nats/frame" in out


def test_add_modality(tmp_path):
    tmp_path = tmp_path / "out"  # not created beforehand: the example must create it
    out = run_example("add_modality.py", tmp_path)
    assert "'lip_motion': 6" in out  # the new stream reached the dataset with its own feature size
    assert "training frames won by lip_motion" in out  # a third mixture component was trained
    assert (tmp_path / "minvae3" / "best.pt").exists()
    assert (tmp_path / "enhanced.wav").stat().st_size > 1000
    assert "lip_motion" in out.splitlines()[-1]  # responsibilities at enhancement over M = 3 components


def test_custom_kernel(tmp_path):
    tmp_path = tmp_path / "out"  # not created beforehand: the example must create it
    out = run_example("custom_kernel.py", tmp_path)
    for kernel in ("frame-mh", "frame-mala"):
        assert (tmp_path / f"enhanced-{kernel}.wav").exists()
        line = next(ln for ln in out.splitlines() if ln.strip().startswith(kernel))
        acc = float(line.split("acceptance")[1].split(",")[0])
        assert 0.0 < acc <= 1.0


def test_python_api(tmp_path):
    tmp_path = tmp_path / "out"  # not created beforehand: the example must create it
    out = run_example("python_api.py", tmp_path)
    for method in ("mcem", "fast"):
        assert (tmp_path / f"enhanced-{method}.wav").exists()
        assert any(ln.startswith(method) for ln in out.splitlines())
    assert "si_sdr" in out and "noisy" in out


@pytest.mark.parametrize("name", SCRIPTS)
def test_full_settings_need_the_demo_corpus(tmp_path, name):
    """Without --small and without a prepared corpus, an example stops with a one-line hint, not a traceback."""
    proc = subprocess.run([sys.executable, str(EXAMPLES / name), "--out", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "prepare demo" in proc.stderr or "--checkpoint" in proc.stderr
