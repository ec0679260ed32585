"""Reliability, stopping: Ctrl-C (SIGINT to the process group, or to the main process alone) and SIGTERM at a
random moment of `enhance --manifest --jobs 2` and `evaluate --jobs 2` stop within seconds with exit status 130 /
143, keep every finished result (complete files equal to an uninterrupted run's; every row the run reported as
kept is in results.csv), leave no partial file and no process behind, and the next run resumes and completes.
`kill -9` of the main process leaves no worker running.

The fast cases run one trial each; the `slow` case runs 10 trials per (command, signal, target), also runnable as
``python tests/reliability/test_interrupts.py [--trials 10]``, which prints a table.
"""

from __future__ import annotations

import csv
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from reliability_helpers import (
    assert_no_partial_files,
    child_env,
    enhance_manifest_args,
    evaluate_args,
    make_checkpoint,
    make_mixture_corpus,
    record,
    run_cli,
)

N_FILES = 6
STOP_S = 10.0  # allowed time from the signal to the exit of the main process (a loaded 2-core machine)
ORPHAN_S = 8.0  # allowed time for the workers to be gone after the main process exited
TAG = "PYRO_MINVAE_INTERRUPT_TRIAL"


# ---- processes -----------------------------------------------------------------------------------------------------
def tagged_processes(tag: str) -> list[int]:
    """Pids of live processes whose environment holds ``TAG=tag`` (the CLI and every worker it spawned)."""
    needle = f"{TAG}={tag}".encode()
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if needle in (d / "environ").read_bytes().split(b"\0"):
                    stat = (d / "stat").read_text()
                    if stat.rsplit(")", 1)[1].split()[0] != "Z":  # zombies have exited already
                        pids.append(int(d.name))
            except OSError:
                continue
    return pids


def start_cli(args, tag: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "pyro_minvae.cli.main", *map(str, args)],
        env=child_env(**{TAG: tag}),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def resume(args) -> tuple[int, str]:
    """The next run, as the user starts it (a fresh process): its exit status and output."""
    tag = uuid.uuid4().hex
    proc = start_cli(args, tag)
    out, _ = proc.communicate(timeout=600)
    return proc.returncode, out.decode()


def wait_gone(tag: str, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = tagged_processes(tag)
        if not left:
            return []
        time.sleep(0.1)
    return tagged_processes(tag)


def interrupt(proc: subprocess.Popen, sig: int, target: str, ready, rng: random.Random, tag: str) -> dict:
    """Wait until ``ready()`` (the run has started: its output exists, and maybe some work is done), then a random
    0-0.5 s, then send ``sig`` to the process group (``target="group"``, what Ctrl-C in a terminal does) or to the
    main process only. Returns what happened."""
    deadline = time.monotonic() + 120
    while proc.poll() is None and not ready() and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(rng.uniform(0.0, 0.5))
    if proc.poll() is not None:
        return {"finished_first": True, "rc": proc.returncode, "output": proc.stdout.read().decode()}
    t0 = time.monotonic()
    if target == "group":
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
    stop_s = time.monotonic() - t0
    left = wait_gone(tag, ORPHAN_S)
    for pid in left:  # do not leave them to the next test
        os.kill(pid, signal.SIGKILL)
    out = out.decode()
    done = any(f in out for f in ("pairs run now)", "file(s) into"))  # the signal came after the last result
    return {"finished_first": done, "rc": proc.returncode, "stop_s": stop_s, "orphans": left, "output": out}


# ---- fixtures ------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("interrupts")
    return make_setup(d)


def make_setup(d: Path) -> dict:
    manifest = make_mixture_corpus(d / "corpus", n_good=N_FILES, bad=())
    ckpt = make_checkpoint(d / "minvae.pt", "minvae")
    s = {"dir": d, "manifest": manifest, "ckpt": ckpt, "n": 0}
    ref = d / "ref"
    res = run_cli(*enhance_args(s, ref, jobs=1))
    assert res.exit_code == 0, res.output
    s["ref"] = {p.name: p.read_bytes() for p in ref.glob("*.wav")}
    assert len(s["ref"]) == N_FILES
    return s


def enhance_args(s, out, jobs=2):
    return enhance_manifest_args(s["ckpt"], s["manifest"], out, method="mcem", iterations=6, jobs=jobs, threads=1)


def evaluate_trial_args(s, out, jobs=2):
    return evaluate_args(
        s["manifest"], out, checkpoints={"m": s["ckpt"]}, methods="noisy,m-fast", metrics="si_sdr", jobs=jobs, threads=1
    )


def _fresh(s, name: str) -> Path:
    s["n"] += 1
    return s["dir"] / f"{name}-{s['n']}"


# ---- one trial ---------------------------------------------------------------------------------------------------
def enhance_trial(s, sig: int, target: str, rng: random.Random) -> dict:
    out, tag = _fresh(s, "enh"), uuid.uuid4().hex
    k = rng.randint(0, N_FILES - 3)  # interrupt after k finished files (+ a random fraction of a second)
    proc = start_cli(enhance_args(s, out), tag)
    got = interrupt(proc, sig, target, lambda: out.is_dir() and len(list(out.glob("good-*.wav"))) >= k, rng, tag)
    if got["finished_first"]:
        return got
    kept = {p.name: p.read_bytes() for p in out.glob("*.wav")}
    got["kept"] = len(kept)
    got["complete"] = all(s["ref"][n] == b for n, b in kept.items())
    got["partial"] = _partial(out)
    got["resume_rc"], got["resume_output"] = resume(enhance_args(s, out, jobs=1))
    got["resume_ok"] = (
        f"{N_FILES - len(kept)} to do, {len(kept)} already enhanced" in got["resume_output"]
        and {p.name: p.read_bytes() for p in out.glob("*.wav")} == s["ref"]
    )
    return got


def evaluate_trial(s, sig: int, target: str, rng: random.Random) -> dict:
    out, tag = _fresh(s, "eval"), uuid.uuid4().hex
    k = rng.randint(0, N_FILES - 3)
    proc = start_cli(evaluate_trial_args(s, out), tag)
    got = interrupt(proc, sig, target, lambda: (out / "results.csv").exists() and _rows(out) >= 2 * k, rng, tag)
    if got["finished_first"]:
        return got
    text = (out / "results.csv").read_text() if (out / "results.csv").exists() else ""
    rows = list(csv.DictReader(text.splitlines()))
    got["kept"] = len(rows)
    said = [ln for ln in got["output"].splitlines() if "pair(s) finished now and kept" in ln]
    # every pair the run reported as finished is in results.csv, each row whole and scored
    got["complete"] = (
        (text.endswith("\n") or not text)
        and all(r["status"] == "ok" and r["si_sdr"] for r in rows)
        and (not said or int(said[0].split("; ", 1)[1].split(" ")[0]) == len(rows))
    )
    got["partial"] = _partial(out)
    got["resume_rc"], got["resume_output"] = resume(evaluate_trial_args(s, out, jobs=1))
    final = list(csv.DictReader((out / "results.csv").read_text().splitlines()))
    got["resume_ok"] = (
        f"({2 * N_FILES - len(rows)} pairs run now)" in got["resume_output"]
        and len(final) == 2 * N_FILES
        and all(r["status"] == "ok" for r in final)
    )
    return got


def _rows(out: Path) -> int:
    try:
        return max(0, len((out / "results.csv").read_text().splitlines()) - 1)
    except OSError:
        return 0


def _partial(out: Path) -> list[str]:
    from reliability_helpers import leftovers

    return leftovers(out) if out.exists() else []


def check(got: dict, sig: int) -> None:
    if got["finished_first"]:
        pytest.skip("the run finished before the signal could be sent")
    lost = not got["complete"] or bool(got["partial"]) or not got["resume_ok"]
    record(data_loss=lost, traceback="Traceback" in got["output"])
    assert got["rc"] == 128 + sig, got["output"]
    assert "interrupted" in got["output"] and "Traceback" not in got["output"], got["output"]
    assert got["stop_s"] < STOP_S, got
    assert not got["orphans"], got
    assert got["complete"] and not got["partial"], got
    assert got["resume_rc"] == 0 and got["resume_ok"], got


TRIALS = {"enhance": enhance_trial, "evaluate": evaluate_trial}
SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM}


@pytest.mark.parametrize(
    "command, sig, target",
    [
        ("enhance", "SIGINT", "group"),
        ("enhance", "SIGTERM", "main"),
        ("evaluate", "SIGINT", "main"),
        ("evaluate", "SIGTERM", "group"),
    ],
)
def test_interrupt_stops_promptly_and_keeps_finished_work(setup, command, sig, target):
    got = TRIALS[command](setup, SIGNALS[sig], target, random.Random(f"{command}{sig}{target}"))
    check(got, SIGNALS[sig])


def test_kill_9_of_the_main_process_leaves_no_worker(setup):
    out, tag = _fresh(setup, "kill9"), uuid.uuid4().hex
    proc = start_cli(enhance_args(setup, out), tag)
    deadline = time.monotonic() + 120
    while len(tagged_processes(tag)) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # the main process and its 2 workers are up
    time.sleep(1.0)
    assert proc.poll() is None, "the batch finished before it could be killed"
    proc.kill()
    proc.communicate()
    left = wait_gone(tag, ORPHAN_S)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    record(data_loss=bool(left))
    assert not left, f"workers still running {ORPHAN_S} s after the main process was killed: {left}"
    res = run_cli(*enhance_args(setup, out))  # the stale lock and temporary files are taken over / removed
    assert res.exit_code == 0, res.output
    assert {p.name: p.read_bytes() for p in out.glob("*.wav")} == setup["ref"]
    assert_no_partial_files(out)


@pytest.mark.slow
@pytest.mark.parametrize("command", ["enhance", "evaluate"])
@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("target", ["group", "main"])
def test_interrupt_ten_times_at_random_moments(setup, command, sig, target):
    rng = random.Random(f"ten{command}{sig}{target}")
    for _ in range(10):
        check(TRIALS[command](setup, SIGNALS[sig], target, rng), SIGNALS[sig])


def main(argv=None) -> int:
    """``python tests/reliability/test_interrupts.py [--trials N]``: the table of N trials per case."""
    global N_FILES
    import argparse
    import tempfile

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--commands", default="enhance,evaluate", help="comma list: enhance, evaluate")
    p.add_argument("--files", type=int, default=N_FILES, help="records in the corpus (more: longer runs)")
    a = p.parse_args(argv)
    N_FILES = a.files
    rng = random.Random(a.seed)
    bad = 0
    with tempfile.TemporaryDirectory() as d:
        s = make_setup(Path(d))
        print("command   signal  to     trials  exit-ok  max-stop-s  orphans  lost/partial  resumed  finished-first")
        for command in a.commands.split(","):
            for sig in SIGNALS:
                for target in ("group", "main"):
                    rs = [TRIALS[command](s, SIGNALS[sig], target, rng) for _ in range(a.trials)]
                    ran = [r for r in rs if not r["finished_first"]]
                    for r in ran:
                        try:
                            check(r, SIGNALS[sig])
                        except AssertionError as exc:  # the details, for whoever reads the table
                            print(f"FAILED {command} {sig} {target}: {exc}", file=sys.stderr, flush=True)
                    row = (
                        sum(r["rc"] == 128 + SIGNALS[sig] for r in ran),
                        max((r["stop_s"] for r in ran), default=0.0),
                        sum(bool(r["orphans"]) for r in ran),
                        sum(not r["complete"] or bool(r["partial"]) for r in ran),
                        sum(r["resume_rc"] == 0 and r["resume_ok"] for r in ran),
                    )
                    bad += (len(ran) - row[0]) + row[2] + row[3] + (len(ran) - row[4])
                    print(
                        f"{command:9s} {sig:7s} {target:6s} {len(ran):6d}  {row[0]:7d}  {row[1]:10.2f}  "
                        f"{row[2]:7d}  {row[3]:12d}  {row[4]:7d}  {len(rs) - len(ran):14d}",
                        flush=True,
                    )
    print("all good" if not bad else f"{bad} problem(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
