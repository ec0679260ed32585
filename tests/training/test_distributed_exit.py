"""How a torchrun rank ends after its run: flushed output, the given exit code, and nothing after it; a single
process carries on."""

import os
import subprocess
import sys

SCRIPT = """
import logging, sys
from pyro_minvae.training.distributed import exit_worker_process
logging.basicConfig(level=logging.INFO, format="%(message)s")
logging.getLogger("x").info("logged before")
sys.stdout.write("written before")  # no newline: still buffered when the exit comes
exit_worker_process(3)
print("after")
"""


def _run(world_size: str | None):
    env = {k: v for k, v in os.environ.items() if k != "WORLD_SIZE"}
    if world_size is not None:
        env["WORLD_SIZE"] = world_size
    return subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120)


def test_a_worker_rank_exits_at_once_with_its_output_flushed():
    proc = _run("2")
    assert proc.returncode == 3
    assert proc.stdout == "written before" and "logged before" in proc.stderr


def test_a_single_process_carries_on():
    for world in (None, "1"):
        proc = _run(world)
        assert proc.returncode == 0 and proc.stdout == "written beforeafter\n"
