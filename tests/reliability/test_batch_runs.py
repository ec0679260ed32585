"""Reliability, batch runs: `enhance --manifest` and `evaluate` over corpora holding bad files finish the good
files, list the bad ones with their reasons, exit non-zero, and resume after a kill without redoing work."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import soundfile as sf

from reliability_helpers import (
    BAD_RECORDS,
    CLI_MAIN,
    ONE_THREAD,
    SR,
    assert_no_partial_files,
    child_cli,
    enhance_manifest_args,
    evaluate_args,
    make_mixture_corpus,
    record,
    run_cli,
)

GOOD = [f"good-{i:02d}" for i in range(4)]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, ckpts):
    return {
        "manifest": make_mixture_corpus(tmp_path_factory.mktemp("batch") / "corpus"),
        "minvae": ckpts["minvae"],
    }


def _enhance_batch(corpus, out, *extra, jobs=1):
    return run_cli(*enhance_manifest_args(corpus["minvae"], corpus["manifest"], out, *extra, jobs=jobs, threads=1))


def _check_failure_listing(output: str) -> None:
    lines = output.splitlines()
    title = f"{len(BAD_RECORDS)} file(s) failed; nothing was written for them:"
    head = [i for i, ln in enumerate(lines) if ln == title]
    assert len(head) == 1, output
    listed = lines[head[0] + 1 : head[0] + 1 + len(BAD_RECORDS)]
    assert [ln.split(":")[0].strip() for ln in listed] == sorted(BAD_RECORDS), output
    for ln in listed:
        rid = ln.split(":")[0].strip()
        assert BAD_RECORDS[rid][1] in ln, (rid, ln)
    assert "Traceback" not in output


@pytest.mark.parametrize("jobs", [1, 2])
def test_batch_enhance_finishes_good_files_and_lists_bad_ones(corpus, tmp_path, jobs):
    out = tmp_path / "out"
    res = _enhance_batch(corpus, out, jobs=jobs)
    assert res.exit_code == 1, res.output
    assert f"enhanced {len(GOOD)} file(s) into {out}" in res.output
    _check_failure_listing(res.output)
    written = sorted(p.name for p in out.glob("*.wav"))
    record(data_loss=written != [f"{g}.wav" for g in GOOD])
    assert written == [f"{g}.wav" for g in GOOD]
    for g in GOOD:
        y = sf.read(out / f"{g}.wav", dtype="float32")[0]
        assert y.shape == (SR,) and np.isfinite(y).all()
    assert_no_partial_files(out)


def test_batch_enhance_rerun_skips_finished_and_retries_bad(corpus, tmp_path, monkeypatch):
    from pyro_minvae.infer import enhance as enh

    out = tmp_path / "out"
    assert _enhance_batch(corpus, out).exit_code == 1
    stamps = {g: (out / f"{g}.wav").stat().st_mtime_ns for g in GOOD}
    calls = []
    real = enh.enhance_waveform
    monkeypatch.setattr(enh, "enhance_waveform", lambda *a, **k: calls.append(1) or real(*a, **k))
    res = _enhance_batch(corpus, out)
    assert res.exit_code == 1
    _check_failure_listing(res.output)
    assert (
        f"{len(GOOD) + len(BAD_RECORDS)} record(s) in shard 1/1, {len(BAD_RECORDS)} to do, {len(GOOD)} already "
        "enhanced" in res.output
    )
    assert not calls  # every bad record fails while loading, before any enhancement
    assert {g: (out / f"{g}.wav").stat().st_mtime_ns for g in GOOD} == stamps  # finished files untouched


def test_killed_batch_resumes_without_redoing_finished_files(corpus, tmp_path, monkeypatch):
    from pyro_minvae.infer import enhance as enh

    good_only = dict(corpus, manifest=make_mixture_corpus(tmp_path / "good", n_good=5, bad=()))
    ref = tmp_path / "ref"
    assert _enhance_batch(good_only, ref).exit_code == 0

    real = enh.enhance_waveform
    calls = []

    def dies_on_third(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # Ctrl-C / kill in the middle of the third file
        return real(*a, **k)

    out = tmp_path / "out"
    monkeypatch.setattr(enh, "enhance_waveform", dies_on_third)
    res = _enhance_batch(good_only, out)
    assert res.exit_code != 0
    assert sorted(p.name for p in out.glob("*.wav")) == ["good-00.wav", "good-01.wav"]
    assert_no_partial_files(out)

    calls.clear()
    monkeypatch.setattr(enh, "enhance_waveform", lambda *a, **k: calls.append(1) or real(*a, **k))
    res = _enhance_batch(good_only, out)
    assert res.exit_code == 0, res.output
    assert "5 record(s) in shard 1/1, 3 to do, 2 already enhanced" in res.output
    assert len(calls) == 3
    for i in range(5):
        same = (out / f"good-{i:02d}.wav").read_bytes() == (ref / f"good-{i:02d}.wav").read_bytes()
        record(data_loss=not same)
        assert same, i


# ---- evaluate ----------------------------------------------------------------------------------------------------
def _evaluate(manifest, out, *extra):
    return run_cli(*evaluate_args(manifest, out, *extra, methods="noisy,spectral-gating", metrics="si_sdr,stoi"))


def test_evaluate_with_bad_files_scores_the_good_ones_and_lists_the_bad(corpus, tmp_path):
    out = tmp_path / "eval"
    res = _evaluate(corpus["manifest"], out)
    assert res.exit_code == 1, res.output
    audio_bad = {k for k in BAD_RECORDS if not k.startswith("bad-lips")}  # the baselines do not read the lips
    assert f"{2 * len(audio_bad)} failed (method, file) pair(s):" in res.output
    for rid in audio_bad:
        for m in ("noisy", "spectral-gating"):
            line = next(ln for ln in res.output.splitlines() if ln.startswith(f"  {m} {rid}: "))
            assert BAD_RECORDS[rid][1] in line, line
    rows = list(csv.DictReader((out / "results.csv").read_text().splitlines()))
    ok = {(r["method"], r["id"]) for r in rows if r["status"] == "ok"}
    good_ids = set(GOOD) | {"bad-lips-duration", "bad-lips-nan"}
    assert ok == {(m, i) for m in ("noisy", "spectral-gating") for i in good_ids}
    summary = json.loads((out / "summary.json").read_text())  # strict JSON: no NaN/Infinity tokens
    assert sorted({b["id"] for b in summary["bad"]}) == sorted(audio_bad)
    assert "NaN" not in (out / "summary.json").read_text() and "nan" not in (out / "summary.md").read_text()
    assert "Traceback" not in res.output
    assert_no_partial_files(out)


def test_evaluate_with_a_model_reports_bad_visual_streams(corpus, tmp_path):
    out = tmp_path / "eval"
    res = run_cli(
        *evaluate_args(corpus["manifest"], out, checkpoints={"m": corpus["minvae"]}, methods="m-fast", metrics="si_sdr")
    )
    assert res.exit_code == 1, res.output
    for rid in ("bad-lips-duration", "bad-lips-nan"):
        line = next(ln for ln in res.output.splitlines() if ln.startswith(f"  m-fast {rid}: "))
        assert BAD_RECORDS[rid][1] in line, line
    rows = {r["id"]: r for r in csv.DictReader((out / "results.csv").read_text().splitlines())}
    assert all(rows[g]["status"] == "ok" and rows[g]["si_sdr"] not in ("", "nan") for g in GOOD)


def test_killed_evaluation_resumes_without_redoing_finished_files(tmp_path, monkeypatch):
    from pyro_minvae.evaluation import runner

    manifest = make_mixture_corpus(tmp_path / "c", n_good=5, bad=(), with_lips=False)
    real = runner.evaluate_records  # one task per record (--batch-size 1)
    seen = []

    def dies_on_third(recs, *a, **k):
        seen.extend(r["id"] for r in recs)
        if len(seen) == 3:
            raise KeyboardInterrupt
        return real(recs, *a, **k)

    out = tmp_path / "eval"
    monkeypatch.setattr(runner, "evaluate_records", dies_on_third)
    res = _evaluate(manifest, out)
    assert res.exit_code != 0
    rows = list(csv.DictReader((out / "results.csv").read_text().splitlines()))
    assert sorted({r["id"] for r in rows}) == ["good-00", "good-01"]

    seen.clear()
    monkeypatch.setattr(
        runner, "evaluate_records", lambda recs, *a, **k: seen.extend(r["id"] for r in recs) or real(recs, *a, **k)
    )
    res = _evaluate(manifest, out)
    assert res.exit_code == 0, res.output
    assert seen == ["good-02", "good-03", "good-04"]
    rows = list(csv.DictReader((out / "results.csv").read_text().splitlines()))
    assert len(rows) == 10 and all(r["status"] == "ok" for r in rows)
    record(data_loss=len(rows) != 10)
    assert_no_partial_files(out)


def test_batch_process_killed_with_sigkill_resumes(corpus, tmp_path):
    """A real `kill -9` of `enhance --manifest` at an arbitrary moment (maybe mid-write): every file present is
    complete and equal to an uninterrupted run's; the temporary file of the interrupted write is removed and the
    re-run enhances exactly the missing ones."""
    import signal
    import subprocess
    import time

    n = 12
    manifest = make_mixture_corpus(tmp_path / "c", n_good=n, bad=())

    def args(out):
        return enhance_manifest_args(corpus["minvae"], manifest, out, method="mcem", iterations=3, threads=1)

    ref = tmp_path / "ref"
    assert run_cli(*args(ref)).exit_code == 0
    out = tmp_path / "out"
    proc = subprocess.Popen(
        **child_cli(args(out), ONE_THREAD + CLI_MAIN), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.time() + 60
        while proc.poll() is None and time.time() < deadline and len(list(out.glob("good-*.wav"))) < 3:
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the batch finished before it could be killed"
    done = sorted(p.name for p in out.glob("good-*.wav"))  # final names only (not a temporary ".good-...")
    assert 3 <= len(done) < n
    for name in done:  # nothing partial under a final name
        same = (out / name).read_bytes() == (ref / name).read_bytes()
        record(data_loss=not same)
        assert same, name
    (out / ".good-11.wav.k1ll3d_x.wav").write_bytes(b"RIFF half")  # what a kill mid-write leaves
    res = run_cli(*args(out))
    assert res.exit_code == 0, res.output
    assert f"{n} record(s) in shard 1/1, {n - len(done)} to do, {len(done)} already enhanced" in res.output
    for i in range(n):
        assert (out / f"good-{i:02d}.wav").read_bytes() == (ref / f"good-{i:02d}.wav").read_bytes(), i
    assert_no_partial_files(out)
