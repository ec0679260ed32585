"""Soak tests (``make test-slow``): hundreds of files through one `enhance --manifest` process with flat memory,
and a 30-minute recording enhanced in chunks with bounded memory and the exact output length.

Both run the real CLI in a child process (``--jobs 1``) so the resident set size (RSS) measured is the tool's own.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

sys.path.insert(0, str(Path(__file__).parents[1] / "reliability"))
from reliability_helpers import (  # noqa: E402
    SR,
    child_cli,
    enhance_manifest_args,
    leftovers,
    make_checkpoint,
    make_mixture_corpus,
    speech_like,
    white,
)

pytestmark = pytest.mark.slow

# Runs `pyro-minvae ARGS` and writes to RSS_LOG the RSS (MB, from /proc/self/statm) after every enhanced file
# ("samples") and the process's peak RSS ("peak_mb", getrusage).
_PROBE = """
import json, os, resource, sys, torch
torch.set_num_threads(1)
from pyro_minvae.infer import enhance as enh
page = os.sysconf("SC_PAGE_SIZE") / 2**20
samples = []
real = enh.enhance_waveform
def probed(*a, **k):
    res = real(*a, **k)
    with open("/proc/self/statm") as f:
        samples.append(int(f.read().split()[1]) * page)
    return res
enh.enhance_waveform = probed
from pyro_minvae.cli.main import main
try:
    main()
finally:
    with open(os.environ["RSS_LOG"], "w") as f:
        json.dump({"samples": samples, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}, f)
"""


def _run(args, rss_log: Path, timeout: int) -> subprocess.CompletedProcess:
    child = child_cli(args, _PROBE, RSS_LOG=str(rss_log))
    return subprocess.run(**child, capture_output=True, text=True, timeout=timeout)


def test_soak_batch_enhance_memory_stays_flat(tmp_path):
    """300 half-second mixtures with lip streams, MIN-VAE (tiny, untrained), 3 MCEM iterations each, one
    process: every file is written, and RSS after the warm-up (first 50 files) grows by less than 20 MB."""
    n = 300
    manifest = make_mixture_corpus(tmp_path / "c", n_good=n, bad=(), seconds=0.5)
    ckpt = make_checkpoint(tmp_path / "minvae.pt", "minvae")
    out = tmp_path / "out"
    log = tmp_path / "rss.json"
    args = enhance_manifest_args(ckpt, manifest, out, method="mcem", iterations=3, threads=1)
    proc = _run(["-q", *args], log, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(list(out.glob("good-*.wav"))) == n and not leftovers(out)
    rss = np.array(json.loads(log.read_text())["samples"])
    assert rss.size == n
    warm = rss[50:]
    growth = float(warm.max() - warm[0])
    slope = float(np.polyfit(np.arange(warm.size), warm, 1)[0])  # MB per file
    print(
        f"soak: {n} files, RSS {rss[0]:.0f} -> {rss[-1]:.0f} MB (after warm-up: +{growth:.1f} MB, "
        f"{1024 * slope:.1f} kB/file)"
    )
    assert growth < 20.0, rss.tolist()
    assert abs(slope) < 0.02  # < 20 kB per file: 300 files would add < 6 MB


def test_30_minute_recording_bounded_memory_exact_length(tmp_path):
    """30 min of audio (28.8 M samples), one MCEM iteration per 30-s chunk: exactly 28.8 M samples come out and
    the peak RSS stays under 1.2 GB (the input and output waveforms take 115 MB each as float32)."""
    ckpt = make_checkpoint(tmp_path / "minvae.pt", "minvae")
    n = 30 * 60 * SR
    x = np.tile(speech_like(10.0, seed=1), 180)[:n] + white(n / SR, seed=2, scale=0.05)
    noisy = tmp_path / "long.wav"
    sf.write(noisy, np.clip(x, -1, 1), SR, subtype="PCM_16")
    del x
    out = tmp_path / "long_out.wav"
    log = tmp_path / "rss.json"
    proc = _run(
        ["enhance", "--checkpoint", ckpt, noisy, "-o", out, "--method", "mcem", "--iterations", "1", "--threads", "1"],
        log,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    peak_mb = json.loads(log.read_text())["peak_mb"]
    assert "long_out.wav: 1800.0 s of audio enhanced" in proc.stderr
    assert proc.stderr.count("no visual input") == 1  # once, not once per chunk
    info = sf.info(out)
    assert info.frames == n and info.samplerate == SR and info.channels == 1
    y = sf.read(out, dtype="float32")[0]
    assert np.isfinite(y).all() and np.abs(y).max() > 0
    print(f"30-min recording: peak RSS {peak_mb:.0f} MB")
    assert peak_mb < 1200, peak_mb
