"""Reliability, checkpoints and state: damaged or foreign checkpoints, killed and resumed training, unwritable
outputs and full disks. Each case asserts the message, the exit code and which files exist afterwards."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf
import torch

from pyro_minvae.checkpoint import load_checkpoint, load_model, save_checkpoint, state_checksum
from reliability_helpers import (
    CFG,
    CLI_MAIN,
    FAST,
    ONE_THREAD,
    api_call,
    assert_no_partial_files,
    assert_user_error,
    child_cli,
    ctrl_c,
    enhance_file,
    optimizer_step_hook,
    record,
    run_cli,
    speech_like,
    train_args,
    write_wav,
)

sys.path.insert(0, str(Path(__file__).parents[1] / "models"))
from fake_corpus import make_fake_corpus  # noqa: E402


@pytest.fixture(scope="module")
def files(ckpts, noisy_1s):
    return {"avae": ckpts["avae"], "noisy": noisy_1s}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_fake_corpus(tmp_path_factory.mktemp("corpus"), n_train=2, n_valid=1)


def _variant(files, tmp_path, name, edit):
    """A checkpoint as another version or configuration would have written it (checksum consistent)."""
    state = torch.load(files["avae"], weights_only=True)
    edit(state)
    state["checksum"] = state_checksum(state)
    torch.save(state, tmp_path / name)
    return tmp_path / name


# ---- damaged files ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("keep", [0, 10, 0.5, -10], ids=["0B", "10B", "half", "minus10B"])
def test_truncated_checkpoint(files, tmp_path, keep):
    raw = files["avae"].read_bytes()
    n = int(len(raw) * keep) if isinstance(keep, float) else (keep if keep >= 0 else len(raw) + keep)
    bad = tmp_path / "cut.pt"
    bad.write_bytes(raw[:n])
    out = tmp_path / "o.wav"
    assert_user_error(
        enhance_file(bad, files["noisy"], out), "cut.pt: not a readable pyro-minvae checkpoint (truncated or corrupt"
    )
    assert not out.exists()


def test_bit_flips_inside_the_weights_are_detected(files, tmp_path):
    """Flipped bytes in the middle of a stored tensor: the zip container still opens, the checksum catches it."""
    raw = bytearray(files["avae"].read_bytes())
    state = torch.load(files["avae"], weights_only=True)
    biggest = max(state["model_state"].values(), key=lambda t: t.numel())
    payload = biggest.numpy().tobytes()
    at = bytes(raw).find(payload[:256])
    assert at > 0
    for i in range(at + 1000, at + 1016):
        raw[i] ^= 0xFF
    bad = tmp_path / "flipped.pt"
    bad.write_bytes(bytes(raw))
    assert_user_error(
        enhance_file(bad, files["noisy"], tmp_path / "o.wav"),
        "flipped.pt: checkpoint contents do not match their checksum (corrupted on disk or in transfer)",
    )
    assert not (tmp_path / "o.wav").exists()


def test_garbage_and_foreign_files(files, tmp_path):
    (tmp_path / "text.pt").write_text("not a checkpoint\n")
    assert_user_error(
        enhance_file(tmp_path / "text.pt", files["noisy"], tmp_path / "o.wav"),
        "text.pt: not a readable pyro-minvae checkpoint (truncated or corrupt",
    )
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.pt")
    assert_user_error(
        enhance_file(tmp_path / "foreign.pt", files["noisy"], tmp_path / "o.wav"),
        "foreign.pt: checkpoint lacks format_version, model_spec, model_state, feature_config; it was "
        "not written by pyro-minvae train, re-train",
    )
    torch.save([1, 2, 3], tmp_path / "list.pt")
    assert_user_error(
        enhance_file(tmp_path / "list.pt", files["noisy"], tmp_path / "o.wav"),
        "list.pt: not a pyro-minvae checkpoint (no dict inside); re-train",
    )
    assert_user_error(
        enhance_file(tmp_path / "none.pt", files["noisy"], tmp_path / "o.wav"),
        "none.pt: checkpoint not found; pass a trained checkpoint file or a shipped model (minvae, avae, avcvae)",
    )
    assert not (tmp_path / "o.wav").exists()


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/pyro_minvae_pwned",))


def test_pickled_code_is_not_executed(files, tmp_path):
    torch.save({"format_version": 1, "payload": _Evil()}, tmp_path / "evil.pt")
    assert_user_error(
        enhance_file(tmp_path / "evil.pt", files["noisy"], tmp_path / "o.wav"),
        "evil.pt: not a readable pyro-minvae checkpoint",
    )
    assert not Path("/tmp/pyro_minvae_pwned").exists()


# ---- incompatible version or configuration ------------------------------------------------------------------------
INCOMPATIBLE = [
    (
        "format.pt",
        lambda s: s.update(format_version=99),
        "format.pt: checkpoint format 99 is not supported by this version (format 3); re-train or use a matching "
        "pyro-minvae",
    ),
    (
        "family.pt",
        lambda s: s["model_spec"].update(family="nosuch"),
        "family.pt: cannot rebuild model 'nosuch' (unknown model 'nosuch'; "
        "valid models: avae, avcvae, markov-vae, minvae, vae)",
    ),
    (
        "latent.pt",
        lambda s: s["model_spec"]["kwargs"].update(latent_dim=8),
        "latent.pt: cannot rebuild model 'avae' (tensor 'decoder.body.0.weight' has shape (128, 4) in the checkpoint "
        "but (128, 8) in the model its settings build); re-train with this version",
    ),
    (
        "kwarg.pt",
        lambda s: s["model_spec"]["kwargs"].update(dropout=0.5),
        "kwarg.pt: cannot rebuild model 'avae' (model 'avae' has no argument(s) dropout; valid: ",
    ),
    (
        "bins.pt",
        lambda s: s["feature_config"].update(n_fft=2048, win_length=2048),
        "bins.pt: the feature settings give 1025 frequency bins but the model was trained on 513; re-train",
    ),
    (
        "fsetting.pt",
        lambda s: s["feature_config"].update(colour="red"),
        "fsetting.pt: bad feature settings in checkpoint (unknown feature settings ['colour']",
    ),
    (
        "nostate.pt",
        lambda s: s.pop("model_state"),
        "nostate.pt: checkpoint lacks model_state; it was not written by pyro-minvae train, re-train",
    ),
    (
        "extra_tensor.pt",
        lambda s: s["model_state"].update(bogus=torch.zeros(2)),
        "extra_tensor.pt: cannot rebuild model 'avae' (unexpected tensor 'bogus' in the checkpoint)",
    ),
    (
        "missing_tensor.pt",
        lambda s: s["model_state"].pop("decoder.out.bias"),
        "missing_tensor.pt: cannot rebuild model 'avae' (tensor 'decoder.out.bias' is missing from the checkpoint)",
    ),
]


@pytest.mark.parametrize("name,edit,message", INCOMPATIBLE, ids=[c[0] for c in INCOMPATIBLE])
def test_incompatible_checkpoint_names_the_mismatch(files, tmp_path, name, edit, message):
    bad = _variant(files, tmp_path, name, edit)
    out = tmp_path / "o.wav"
    assert_user_error(enhance_file(bad, files["noisy"], out), message)
    assert not out.exists()


def test_newer_package_version_still_loads(files, tmp_path):
    """Only the format number gates loading; other package versions are recorded, not refused."""
    ok = _variant(files, tmp_path, "newer.pt", lambda s: s["versions"].update(pyro_minvae="9.9.9", torch="9.0"))
    model, cfg, meta = api_call(load_model, ok)
    assert meta["versions"]["pyro_minvae"] == "9.9.9" and cfg == CFG


def test_resume_with_other_settings_names_the_mismatch(corpus, tmp_path):
    out = tmp_path / "run"
    base = train_args(corpus, out, "--model", "avae", "--batch-size", "32")
    res = run_cli(*base, "--latent-dim", "4")
    assert res.exit_code == 0, res.output
    before = (out / "last.pt").read_bytes()
    res = run_cli(*base, "--latent-dim", "8", "--resume")
    assert_user_error(
        res,
        "last.pt: checkpoint was trained with other model settings (latent_dim: 4 in the "
        "checkpoint, 8 now); drop --resume or use the same options",
    )
    record(data_loss=(out / "last.pt").read_bytes() != before)
    assert (out / "last.pt").read_bytes() == before


# ---- killed training resumes to the same result ---------------------------------------------------------------------
TRAIN = [
    "--model",
    "minvae",
    "--encoders",
    "audio,lips",
    "--batch-size",
    "16",
    "--latent-dim",
    "4",
    "--max-frames",
    "48",
    "--patience",
    "1000",
    "--seed",
    "3",
]


def _train_args(corpus, out, epochs):
    return train_args(corpus, out, *TRAIN, epochs=epochs)


def _same_checkpoints(a: Path, b: Path) -> None:
    sa, sb = load_checkpoint(a), load_checkpoint(b)
    assert sa["epoch"] == sb["epoch"] and sa["step"] == sb["step"]
    for k in sa["model_state"]:
        assert torch.equal(sa["model_state"][k], sb["model_state"][k]), k
    for k, st in sa["optimizer_state"]["state"].items():
        for name, t in st.items():
            assert torch.equal(t, sb["optimizer_state"]["state"][k][name]), (k, name)
    assert [r["valid_elbo"] for r in sa["history"]] == [r["valid_elbo"] for r in sb["history"]]


def test_training_killed_mid_epoch_resumes_identically(corpus, tmp_path, monkeypatch):
    """The optimiser raises KeyboardInterrupt in the middle of epoch 3; `--resume` redoes epoch 3 from last.pt
    (epoch 2) and ends bit-for-bit where an uninterrupted run ends."""
    full = tmp_path / "full"
    assert run_cli(*_train_args(corpus, full, 4)).exit_code == 0

    part = tmp_path / "part"
    steps = optimizer_step_hook(monkeypatch, 6, ctrl_c)  # 3 steps per epoch: the first step of epoch 3
    res = run_cli(*_train_args(corpus, part, 4))
    assert res.exit_code != 0 and steps["n"] == 7
    assert load_checkpoint(part / "last.pt")["epoch"] == 2  # the last finished epoch, intact
    assert_no_partial_files(part)
    monkeypatch.undo()
    (part / ".last.pt.k1ll3d_x.pt").write_bytes(b"half a checkpoint")  # what a kill -9 mid-write leaves
    res = run_cli(*_train_args(corpus, part, 4), "--resume")
    assert res.exit_code == 0, res.output
    _same_checkpoints(full / "last.pt", part / "last.pt")
    _same_checkpoints(full / "best.pt", part / "best.pt")


def test_training_process_killed_resumes_identically(corpus, tmp_path):
    """A real SIGKILL of `pyro-minvae train` at an arbitrary moment (mid-epoch or mid-write), then `--resume`."""
    epochs = 8
    args = lambda out: _train_args(corpus, out, epochs)  # noqa: E731
    full = tmp_path / "full"
    assert run_cli(*args(full)).exit_code == 0
    part = tmp_path / "part"
    proc = subprocess.Popen(
        **child_cli(args(part), ONE_THREAD + CLI_MAIN), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.time() + 60
        while not (part / "log.csv").exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "training finished before it could be killed"
    killed_at = load_checkpoint(part / "last.pt")["epoch"]
    assert 1 <= killed_at < epochs
    res = run_cli(*args(part), "--resume")
    assert res.exit_code == 0, res.output
    _same_checkpoints(full / "last.pt", part / "last.pt")
    assert_no_partial_files(part)


def test_kill_during_checkpoint_write_keeps_the_previous_file(files, tmp_path, monkeypatch):
    target = tmp_path / "last.pt"
    save_checkpoint(target, load_model(files["avae"])[0], CFG, epoch=1)
    before = target.read_bytes()
    real_save = torch.save

    def half_then_die(obj, f, *a, **k):
        real_save(obj, f, *a, **k)
        with open(f, "r+b") as fh:
            fh.truncate(os.path.getsize(f) // 2)
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", half_then_die)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(target, load_model(files["avae"])[0], CFG, epoch=2)
    record(data_loss=target.read_bytes() != before)
    assert target.read_bytes() == before and load_checkpoint(target)["epoch"] == 1
    assert_no_partial_files(tmp_path)


# ---- unwritable outputs, full disk ------------------------------------------------------------------------------
def test_output_folder_is_a_file(files, tmp_path):
    (tmp_path / "afile").write_text("x")
    res = enhance_file(files["avae"], files["noisy"], tmp_path / "afile" / "o.wav")
    assert_user_error(res, "afile/o.wav: cannot create it (File exists); choose a writable folder")
    assert (tmp_path / "afile").read_text() == "x"
    manifest = make_fake_corpus(tmp_path / "c", n_train=1, n_valid=1)
    res = run_cli(*train_args(manifest, tmp_path / "afile", "--model", "avae"))
    assert res.exit_code == 2 and "Invalid value for '--out'" in res.output and "is a file" in res.output
    res = run_cli(*train_args(manifest, tmp_path / "afile" / "run", "--model", "avae"))
    assert_user_error(res, "afile/run: cannot create it (Not a directory); choose a writable folder")
    assert_no_partial_files(tmp_path)


def test_unwritable_output_folder(files, tmp_path, monkeypatch):
    """As root every folder is writable, so the refusal is simulated where the temporary file is created."""
    import tempfile

    def refuse(*a, dir=None, **k):
        raise PermissionError(13, "Permission denied", str(dir))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    out = tmp_path / "ro" / "o.wav"
    assert_user_error(
        enhance_file(files["avae"], files["noisy"], out),
        "ro/o.wav: cannot create it (Permission denied); choose a writable folder",
    )
    assert not out.exists()


def test_disk_full_during_write(files, tmp_path, monkeypatch):
    """The writer fails half-way with ENOSPC: one error line, no file under the final name, no temporary file,
    and an older output of the same name is left untouched."""
    import errno

    out = tmp_path / "o.wav"
    out.write_bytes(b"older result")
    real = sf.write

    def full_disk(file, data, *a, **k):
        real(file, data[: len(data) // 2], *a, **k)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sf, "write", full_disk)
    res = enhance_file(files["avae"], files["noisy"], out, "--overwrite")
    assert_user_error(
        res,
        "o.wav: could not be written (No space left on device); nothing was saved under that "
        "name; free disk space or choose a writable folder",
    )
    record(data_loss=out.read_bytes() != b"older result")
    assert out.read_bytes() == b"older result"
    assert_no_partial_files(tmp_path)


def _limited(args, limit_bytes, cwd):
    """Run the CLI in a child whose files may not grow beyond ``limit_bytes`` (RLIMIT_FSIZE: writes fail with
    EFBIG like on a full disk)."""
    code = (
        "import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit_bytes}, {limit_bytes})); "
    )
    child = child_cli(args, code + ONE_THREAD + CLI_MAIN)
    proc = subprocess.run(**child, cwd=cwd, capture_output=True, text=True, timeout=120)
    record(traceback="Traceback" in proc.stderr)
    return proc


def test_real_write_failures_in_a_child_process(files, tmp_path, corpus):
    """Kernel-level write failures (file size limit) for a wav and for a checkpoint."""
    noisy = write_wav(tmp_path / "long.wav", speech_like(2.0))  # 64 kB of output, limit 16 kB
    proc = _limited(
        ["enhance", "--checkpoint", files["avae"], noisy, "-o", tmp_path / "out" / "o.wav", *FAST], 16_000, tmp_path
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "o.wav: could not be written (File too large); nothing was saved under that name" in proc.stderr
    assert not (tmp_path / "out" / "o.wav").exists()
    # training: the feature cache (small) fits, the checkpoint (about 1.6 MB with Adam's state) does not
    run = tmp_path / "run"
    proc = _limited(train_args(corpus, run, "--model", "avae", "--latent-dim", "4"), 1_000_000, tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert ".pt: could not be written (File too large); nothing was saved under that name" in proc.stderr
    assert not (run / "last.pt").exists()
    assert_no_partial_files(tmp_path)
