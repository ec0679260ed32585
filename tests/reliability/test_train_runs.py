"""Reliability of `pyro-minvae train`: a folder holding a run is never replaced unasked, one training per folder
(lock naming the pid, stale locks taken over), settings checked before any work, a diverging run stops with one
line and keeps its last good checkpoint, --resume refuses other settings or data, Ctrl-C/SIGTERM keep finished
epochs and say how to resume. Each case asserts the message, the exit code and the files afterwards."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pyro_minvae.checkpoint import load_checkpoint
from pyro_minvae.errors import UserInputError
from pyro_minvae.locks import lock_path, run_lock
from helpers_cli import cli_error_cases
from reliability_helpers import (
    api_call,
    assert_no_partial_files,
    assert_user_error,
    child_cli,
    ctrl_c,
    optimizer_step_hook,
    record,
    run_cli,
    train_args,
)

sys.path.insert(0, str(Path(__file__).parents[1] / "models"))
from fake_corpus import make_fake_corpus  # noqa: E402

SMALL = ["--model", "avae", "--latent-dim", "4", "--batch-size", "16", "--max-frames", "48", "--patience", "1000"]
DIVERGE = ["--model", "minvae", "--latent-dim", "4", "--batch-size", "8", "--lr", "1e6"]  # NaN in epoch 1


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_fake_corpus(tmp_path_factory.mktemp("corpus"), n_train=2, n_valid=1)


@pytest.fixture(scope="module")
def other_corpus(tmp_path_factory):
    return make_fake_corpus(tmp_path_factory.mktemp("corpus2"), n_train=3, n_valid=1, seed=7)


def _train(corpus, out, *extra, epochs=2, small=SMALL):
    return run_cli(*train_args(corpus, out, *small, *extra, epochs=epochs))


def _snapshot(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir()) if p.is_file()}


def _assert_unchanged(folder: Path, before: dict) -> None:
    after = _snapshot(folder)
    record(data_loss=after != before)
    assert after == before, sorted(set(after) ^ set(before)) or "contents changed"


@pytest.fixture(scope="module")
def finished(corpus, tmp_path_factory):
    """A finished 2-epoch MIN-VAE run (last.pt, best.pt, log.csv, summary.json, responsibilities.json)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    small = ["--model", "minvae", "--latent-dim", "4", "--batch-size", "16", "--max-frames", "48"]
    res = _train(corpus, out, small=small)
    assert res.exit_code == 0, res.output
    return out


def _copy_run(src: Path, dst: Path, names=None) -> Path:
    dst.mkdir(parents=True)
    for p in src.iterdir():
        if names is None or p.name in names:
            (dst / p.name).write_bytes(p.read_bytes())
    return dst


# ---- a folder holding a run -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "names", [None, ("last.pt",), ("best.pt",), ("log.csv",)], ids=["finished", "last-only", "best-only", "log-only"]
)
def test_training_into_a_folder_holding_a_run_is_refused(corpus, finished, tmp_path, names):
    out = _copy_run(finished, tmp_path / "run", names)
    before = _snapshot(out)
    assert_user_error(_train(corpus, out), "holds a training run")
    res = _train(corpus, out)
    assert (
        "continue it with --resume, train into a new folder with --out NEW_DIR, or replace it with --overwrite"
        in res.output
    )
    _assert_unchanged(out, before)


def test_default_out_smoke_run_does_not_replace_the_trained_model(corpus):
    """docs/cli.md's quick run without --out, after a real one into the default folder <cache>/runs/avae."""
    from pyro_minvae.paths import cache_dir

    assert _train(corpus, None).exit_code == 0
    default = cache_dir() / "runs" / "avae"
    before = _snapshot(default)
    assert_user_error(_train(corpus, None, epochs=1), f"{default}: holds a training run")
    _assert_unchanged(default, before)


def test_library_train_refuses_a_folder_holding_a_run(corpus, finished, tmp_path):
    from pyro_minvae.data.datasets import FrameDataset
    from pyro_minvae.training import TrainConfig, train

    out = _copy_run(finished, tmp_path / "run")
    before = _snapshot(out)
    tr = FrameDataset.from_manifest(corpus, "train", ("audio",), max_frames=32)
    va = FrameDataset.from_manifest(corpus, "valid", ("audio",))
    err = api_call(train, TrainConfig(family="avae", latent_dim=4, epochs=1), tr, va, out, progress=False)
    assert isinstance(err, UserInputError) and "holds a training run" in str(err)
    _assert_unchanged(out, before)


def test_overwrite_replaces_the_run_and_drops_its_stale_files(corpus, finished, tmp_path):
    out = _copy_run(finished, tmp_path / "run")
    assert (out / "responsibilities.json").exists()
    res = _train(corpus, out, "--overwrite", epochs=1)
    assert res.exit_code == 0, res.output
    assert load_checkpoint(out / "best.pt")["model_spec"]["family"] == "avae"
    assert load_checkpoint(out / "last.pt")["epoch"] == 1
    assert not (out / "responsibilities.json").exists()  # the old MIN-VAE run's; an A-VAE writes none
    assert json.loads((out / "summary.json").read_text())["family"] == "avae"
    assert_no_partial_files(out)


def test_overwrite_that_fails_before_its_first_epoch_keeps_the_old_run(corpus, finished, tmp_path):
    out = _copy_run(finished, tmp_path / "run")
    before = _snapshot(out)
    res = _train(corpus, out, "--overwrite", epochs=3, small=DIVERGE)
    assert_user_error(res, "the loss became NaN or infinite at epoch 1")
    _assert_unchanged(out, before)


# ---- one training per folder ------------------------------------------------------------------------------------
HOLD = (
    "import sys, time\nfrom pyro_minvae.locks import run_lock\n"
    "with run_lock(sys.argv[1], 'train'):\n    print('held', flush=True)\n    time.sleep(60)\n"
)


def test_second_training_into_a_locked_folder_names_the_holder(corpus, tmp_path):
    out = tmp_path / "run"
    holder = subprocess.Popen(**child_cli([out], HOLD), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert_user_error(_train(corpus, out), f"another train (pid {holder.pid}")
        assert not (out / "last.pt").exists()
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    res = _train(corpus, out, epochs=1)  # the holder died without releasing: its stale lock is taken over
    assert res.exit_code == 0, res.output
    assert not lock_path(out).exists()
    assert_no_partial_files(out)


def test_stale_lock_file_of_a_dead_process_is_taken_over(corpus, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock_path(out).write_text(json.dumps({"pid": int(dead.stdout), "what": "train"}))
    res = _train(corpus, out, epochs=1)
    assert res.exit_code == 0, res.output
    assert load_checkpoint(out / "last.pt")["epoch"] == 1 and not lock_path(out).exists()


def test_two_concurrent_trainings_one_refused(corpus, tmp_path):
    """Two real `pyro-minvae train` processes into one --out: the second waits for nothing and names the first."""
    out = tmp_path / "run"
    child = child_cli(train_args(corpus, out, *SMALL, epochs=100000))
    first = subprocess.Popen(**child, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while not lock_path(out).exists() and first.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        second = subprocess.run(**child, capture_output=True, text=True, timeout=120)
        record(traceback="Traceback" in second.stderr)
        assert second.returncode == 2, second.stderr
        assert f"another train (pid {first.pid}" in second.stderr and len(second.stderr.strip().splitlines()) == 1
    finally:
        first.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=60)
    record(traceback="Traceback" in err)
    assert first.returncode == 130, err


# ---- settings checked before any work ---------------------------------------------------------------------------
@cli_error_cases(
    {
        "--epochs 0": "--epochs 0: must be a whole number >= 1",
        "--epochs -3": "--epochs -3: must be a whole number >= 1",
        "--batch-size 0": "--batch-size 0: must be a whole number >= 1",
        "--latent-dim -1": "--latent-dim -1: must be a whole number >= 1",
        "--patience 0": "--patience 0: must be a whole number >= 1",
        "--max-frames 0": "--max-frames 0: must be a whole number >= 1",
        "--lr nan": "--lr nan: the learning rate must be a finite number > 0",
        "--lr inf": "--lr inf: the learning rate must be a finite number > 0",
        "--lr 0": "the learning rate must be a finite number > 0",
        "--lr -1e-3": "the learning rate must be a finite number > 0",
        "--cvae-weight 1.5": "--cvae-weight 1.5: must be between 0 and 1",
        "--cvae-weight nan": "--cvae-weight nan: must be between 0 and 1",
        "--kl-weight 0": "--kl-weight 0.0: must be a finite number > 0 (1: the plain ELBO)",
        "--kl-weight inf": "--kl-weight inf: must be a finite number > 0",
        "--model minvae --encoders audio,audio": "--encoders audio,audio: audio given twice",
        "--model minvae --encoders audio,,lips": "give encoder names separated by commas",
        "--model minvae --encoder-option lips.bogus=1": (
            "--encoder-option lips.bogus: the lips encoder has no argument 'bogus'; valid: hidden, pool"
        ),
        "--model minvae --encoder-option ears.pool=1": "'ears' is not an encoder of this model",
        '--model minvae --model-arg prior="nosuchprior"': (
            "--model-arg prior='nosuchprior': unknown prior; valid priors:"
        ),
        "--model minvae --model-arg decoder=nosuch": "unknown decoder; valid decoders:",
        "--model minvae --model-arg bogus=1": "model 'minvae' has no argument(s) bogus; valid:",
        "--resume --overwrite": "give only one",
        "--seed -1": "--seed -1: must be a whole number from 0 to 2**32 - 1",
        "--device bogus": "--device bogus: not a device; use cpu, cuda or cuda:N",
        "--device meta": "--device meta: training runs on cpu or cuda",
        "--device cuda:99": "--device cuda:99: ",
        "--model minvae --model-arg learn_weights=notabool": (
            '--model-arg learn_weights="notabool": expected true or false (the default is false)'
        ),
        "--model minvae --model-arg latent_dim=8": "--model-arg latent_dim: set by --latent-dim",
        '--model minvae --model-arg encoders=["audio"]': "--model-arg encoders: set by --encoders",
        "--model minvae --encoder-option lips.pool=0": (
            "model 'minvae' cannot be built with these settings (pool must be a whole number >= 1"
        ),
        "--model minvae --encoders lips": "a mixture prior needs at least 2 components",
        "--augment tilt=abc": "--augment 'tilt=abc': expected KEY=NUMBER,..., e.g. tilt=6,band=0.3,warp=0.1",
        "--augment band=2": "--augment band=2.0: must be a number from 0 to 1",
        "--augment tilt=3,wrap=0.1": "--augment: unknown wrap; valid: tilt, band, warp",
    }
)
def test_bad_settings_are_refused_before_any_work(corpus, tmp_path, args, message):
    out = tmp_path / "run"
    assert_user_error(_train(corpus, out, *args), message)
    assert not out.exists()


# ---- a diverging run ----------------------------------------------------------------------------------------------
def test_diverging_training_stops_with_one_line(corpus, tmp_path):
    out = tmp_path / "run"
    res = _train(corpus, out, epochs=3, small=DIVERGE)
    assert_user_error(res, "the loss became NaN or infinite at epoch 1 step ")
    assert "lower --lr (now 1e+06); no checkpoint of this run was written" in res.output
    assert not (out / "last.pt").exists() and not lock_path(out).exists()


def test_divergence_in_a_later_epoch_keeps_the_last_good_checkpoint(corpus, tmp_path, monkeypatch):
    import torch

    def poison(params):
        with torch.no_grad():
            for p in params:
                p.fill_(float("nan"))

    out = tmp_path / "run"
    optimizer_step_hook(monkeypatch, 7, poison)  # 3 steps per epoch: in epoch 3
    res = _train(corpus, out, epochs=5)
    assert_user_error(res, "the loss became NaN or infinite at epoch 3 step 9; lower --lr (now 0.001); ")
    assert f"{out / 'last.pt'} keeps epoch 2" in res.output
    state = load_checkpoint(out / "last.pt")
    assert state["epoch"] == 2 and all(torch.isfinite(t).all() for t in state["model_state"].values())
    assert load_checkpoint(out / "best.pt")["epoch"] in (1, 2)
    assert len((out / "log.csv").read_text().splitlines()) == 3
    assert_no_partial_files(out)


# ---- resume --------------------------------------------------------------------------------------------------------
@pytest.fixture
def two_epochs(corpus, tmp_path):
    out = tmp_path / "run"
    assert _train(corpus, out).exit_code == 0
    return out


@cli_error_cases(
    {
        "--lr 0.01": "lr: 0.001 in the checkpoint, 0.01 now",
        "--batch-size 8": "batch_size: 16 in the checkpoint, 8 now",
        "--seed 5": "seed: 0 in the checkpoint, 5 now",
        "--schedule constant": "schedule: 'plateau' in the checkpoint, 'constant' now",
        "--patience 3": "patience: 1000 in the checkpoint, 3 now",
        "--max-frames 32": "max_frames: 48 in the checkpoint, 32 now",
        "--latent-dim 8": "checkpoint was trained with other model settings (latent_dim: 4 in the checkpoint",
    }
)
def test_resume_with_other_settings_is_refused_naming_them(corpus, two_epochs, args, message):
    before = _snapshot(two_epochs)
    small = [a for a in SMALL]
    for flag, value in zip(args[::2], args[1::2]):
        if flag in small:
            small[small.index(flag) + 1] = value
        else:
            small += [flag, value]
    res = _train(corpus, two_epochs, "--resume", epochs=4, small=small)
    assert_user_error(res, message)
    _assert_unchanged(two_epochs, before)


def test_resume_with_another_manifest_is_refused(corpus, other_corpus, two_epochs):
    before = _snapshot(two_epochs)
    res = _train(other_corpus, two_epochs, "--resume", epochs=4)
    assert_user_error(res, "--resume needs the settings the run was started with; these differ: training data: ")
    assert "(other --manifest or --max-frames?)" in res.output and f"--init-from {two_epochs / 'last.pt'}" in res.output
    _assert_unchanged(two_epochs, before)


def test_resume_with_init_from_is_refused(corpus, two_epochs):
    before = _snapshot(two_epochs)
    res = _train(corpus, two_epochs, "--resume", "--init-from", two_epochs / "best.pt", epochs=4)
    assert_user_error(res, "--init-from has no effect with --resume")
    _assert_unchanged(two_epochs, before)


def test_resume_may_raise_the_epoch_count(corpus, two_epochs):
    res = _train(corpus, two_epochs, "--resume", epochs=3)
    assert res.exit_code == 0, res.output
    assert load_checkpoint(two_epochs / "last.pt")["epoch"] == 3


# ---- stopping ------------------------------------------------------------------------------------------------------
def test_ctrl_c_keeps_finished_epochs_and_names_the_folder_to_resume(corpus, tmp_path, monkeypatch):
    out = tmp_path / "run"
    optimizer_step_hook(monkeypatch, 7, ctrl_c)  # in epoch 3
    res = _train(corpus, out, epochs=5)
    assert res.exit_code == 130, res.output
    assert "Traceback" not in res.output
    assert (
        f"{out.resolve() / 'last.pt'} keeps epoch 2; continue with the same options plus --resume --out "
        f"{out.resolve()}" in res.output
    )
    assert load_checkpoint(out / "last.pt")["epoch"] == 2 and not lock_path(out).exists()
    assert_no_partial_files(out)
    monkeypatch.undo()
    res = _train(corpus, out, "--resume", epochs=5)
    assert res.exit_code == 0, res.output
    assert load_checkpoint(out / "last.pt")["epoch"] == 5


def test_ctrl_c_in_the_first_epoch_of_an_overwrite_keeps_the_old_run(corpus, finished, tmp_path, monkeypatch):
    out = _copy_run(finished, tmp_path / "run")
    before = _snapshot(out)
    optimizer_step_hook(monkeypatch, 1, ctrl_c)
    res = _train(corpus, out, "--overwrite", epochs=3)
    assert res.exit_code == 130, res.output
    assert "before its first checkpoint; the previous run in" in res.output and "is unchanged" in res.output
    _assert_unchanged(out, before)


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_signal_to_a_real_training_process_keeps_finished_epochs(corpus, tmp_path, sig, code):
    out = tmp_path / "run"
    proc = subprocess.Popen(**child_cli(train_args(corpus, out, *SMALL, epochs=200)), stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while not (out / "log.csv").exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.01)
        t0 = time.time()
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
        took = time.time() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    record(traceback="Traceback" in err)
    assert proc.returncode == code, err
    assert took < 10 and "Traceback" not in err
    kept = load_checkpoint(out / "last.pt")["epoch"]
    assert kept >= 1 and f"keeps epoch {kept}; continue with the same options plus --resume --out" in err
    assert not lock_path(out).exists()
    assert_no_partial_files(out)


def test_lock_is_released_when_training_fails(corpus, tmp_path):
    out = tmp_path / "run"
    assert_user_error(_train(corpus, out, small=DIVERGE), "the loss became NaN")
    with run_lock(out, "train"):  # free again
        pass


def test_resume_of_a_finished_run_says_there_is_nothing_to_train(corpus, two_epochs):
    before = _snapshot(two_epochs)
    res = _train(corpus, two_epochs, "--resume", epochs=2)
    assert res.exit_code == 0, res.output
    assert "nothing to train: it already has 2 epochs (--epochs 2); raise --epochs to train on" in res.output
    assert load_checkpoint(two_epochs / "last.pt")["epoch"] == 2
    assert _snapshot(two_epochs)["best.pt"] == before["best.pt"]
