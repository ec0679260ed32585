"""Scripts end like the CLI (pyro_minvae.entry): one line and status 2 on a user error, 130/143 on a stop signal,
the traceback kept for bugs."""

import errno
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pyro_minvae.entry import user_error_ending
from pyro_minvae.errors import Interrupted, MissingDependencyError, UserInputError

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((REPO / "scripts").glob("*.py"))


@pytest.mark.parametrize(
    "exc, message, status",
    [
        (UserInputError("x.wav: not a WAV file; convert it"), "error: x.wav: not a WAV file; convert it", 2),
        (MissingDependencyError("ffmpeg not found; apt-get install ffmpeg"), "error: ffmpeg not found;", 2),
        (Interrupted(signal.SIGTERM, "3 rows kept"), "interrupted (SIGTERM); 3 rows kept", 143),
        (KeyboardInterrupt(), "interrupted (SIGINT)", 130),
        (OSError(errno.ENOSPC, "No space left on device", "/out/a.wav"), "error: /out/a.wav: No space left", 2),
        (OSError(errno.ENAMETOOLONG, "File name too long", "/x"), "shorten the name", 2),
    ],
)
def test_user_errors_and_stops_end_in_one_line(exc, message, status):
    ending = user_error_ending(exc)
    assert ending is not None and message in ending.message and "\n" not in ending.message
    assert ending.exit_code == status


@pytest.mark.parametrize("exc", [ValueError("a bug"), OSError(errno.EINVAL, "Invalid argument"), SystemExit(0)])
def test_bugs_and_exits_are_not_user_errors(exc):
    assert user_error_ending(exc) is None


def _child(code: str, *args: str) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, *([code] if code.endswith(".py") else ["-c", code]), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_script_ends_through_run_script(script):
    tail = script.read_text().rsplit('if __name__ == "__main__":', 1)[-1]
    assert "run_script(main)" in tail, f"{script.name}: end with sys.exit(run_script(main))"


def test_a_missing_manifest_is_one_line_without_a_traceback(tmp_path):
    manifest = tmp_path / "none.jsonl"
    args = ["--checkpoint", f"a={tmp_path / 'none.pt'}", "--manifest", str(manifest), "--out", str(tmp_path / "o")]
    res = _child(str(REPO / "scripts" / "distortion_budget.py"), *args)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        f"error: {manifest}: manifest not found; run `pyro-minvae prepare` first"
    ]


def test_a_stop_signal_ends_a_script_with_its_status_and_one_line():
    code = (
        "import os, signal, sys, time\n"
        "from pyro_minvae.entry import run_script\n"
        "def main(argv):\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    time.sleep(30)\n"
        "sys.exit(run_script(main))\n"
    )
    res = _child(code)
    assert res.returncode == 143 and res.stderr.strip() == "interrupted (SIGTERM)"


def test_a_bug_keeps_its_traceback():
    res = _child(
        "import sys\nfrom pyro_minvae.entry import run_script\ndef main(argv): 1 / 0\nsys.exit(run_script(main))"
    )
    assert res.returncode == 1 and "Traceback" in res.stderr and "ZeroDivisionError" in res.stderr


def test_a_closed_output_pipe_ends_a_script_quietly():
    """``script | head``: the reader leaves early; the script stops with status 1 and prints no traceback (it
    used to end in a BrokenPipeError traceback, or "Exception ignored" at exit)."""
    code = (
        "import sys\n"
        "from pyro_minvae.entry import run_script\n"
        "def main(argv):\n"
        "    for i in range(200000):\n"
        "        print('row', i)\n"
        "sys.exit(run_script(main))\n"
    )
    env = {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    with subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout.readline().startswith("row 0")
        proc.stdout.close()  # as `head -1` does
        stderr = proc.stderr.read()
        assert proc.wait(timeout=120) == 1
    assert stderr == "", stderr
