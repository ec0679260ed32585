"""pyro_minvae.locks: one writer per folder, the holder's pid in the refusal, stale locks taken over."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pyro_minvae.errors import UserInputError
from pyro_minvae.locks import FolderInUseError, lock_path, read_holder, run_lock

TRY_LOCK = "import sys\nfrom pyro_minvae.locks import run_lock\nwith run_lock(sys.argv[1], 'evaluate'): pass"


def test_second_holder_in_this_process_is_refused(tmp_path):
    with run_lock(tmp_path / "run", "train"):
        with pytest.raises(FolderInUseError, match=rf"another train \(pid {os.getpid()}") as info:
            with run_lock(tmp_path / "run", "train"):
                pass
        assert info.value.pid == os.getpid()
        assert isinstance(info.value, UserInputError)
        assert read_holder(tmp_path / "run")["what"] == "train"
    assert not lock_path(tmp_path / "run").exists()  # released and removed
    with run_lock(tmp_path / "run", "train"):  # free again
        pass


def test_other_process_is_refused_with_our_pid(tmp_path):
    with run_lock(tmp_path, "train"):
        p = subprocess.run([sys.executable, "-c", TRY_LOCK, str(tmp_path)], capture_output=True, text=True)
        assert p.returncode != 0
        assert f"another train (pid {os.getpid()}" in p.stderr
        assert read_holder(tmp_path)["pid"] == os.getpid()  # checking it did not drop our lock
        p = subprocess.run([sys.executable, "-c", TRY_LOCK, str(tmp_path)], capture_output=True, text=True)
        assert p.returncode != 0
    p = subprocess.run([sys.executable, "-c", TRY_LOCK, str(tmp_path)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()
    lock_path(tmp_path).write_text(json.dumps({"pid": int(dead), "what": "train"}))
    with run_lock(tmp_path, "train"):
        assert json.loads(lock_path(tmp_path).read_text())["pid"] == os.getpid()


def test_unwritable_folder_is_a_user_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserInputError, match="cannot create it"):
        with run_lock(tmp_path / "file" / "sub", "train"):
            pass
