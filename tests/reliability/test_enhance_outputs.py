"""Reliability, single-file enhance: where the output goes, options that cannot work, odd lip arrays, progress.

`pyro-minvae enhance --checkpoint CKPT NOISY -o OUT` must never replace one of its inputs or an existing output
without --overwrite, must not write a file named like a folder, and refuses unusable settings (fps, iterations,
device, kernel) with one line before any work. The Python API (:class:`pyro_minvae.enhancement.Enhancer`) and
manifest records take the same path and get the same checks.
"""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pytest
import soundfile as sf
from reliability_helpers import (
    FAST,
    LIP,
    SR,
    api_call,
    assert_no_partial_files,
    assert_user_error,
    child_cli,
    enhance_file,
    enhance_manifest_fast,
    lips,
    record,
    run_cli,
    speech_like,
    write_wav,
)

from pyro_minvae.enhancement import Enhancer
from pyro_minvae.errors import UserInputError


@pytest.fixture
def noisy(tmp_path):
    """In the case's own folder, where the case puts links to it and outputs beside it."""
    return write_wav(tmp_path / "noisy.wav", speech_like(1.0))


def _untouched(path, before: bytes) -> None:
    lost = path.read_bytes() != before
    record(data_loss=lost)
    assert not lost, f"{path} was changed"


# ---- the output never replaces an input ---------------------------------------------------------------------------
@pytest.mark.parametrize("spelling", ["same", "dotdot", "symlink", "hardlink"])
@pytest.mark.parametrize("overwrite", [False, True])
def test_output_onto_the_input_is_refused(ckpts, noisy, tmp_path, spelling, overwrite):
    before = noisy.read_bytes()
    (tmp_path / "sub").mkdir()
    out = {
        "same": noisy,
        "dotdot": tmp_path / "sub" / ".." / "noisy.wav",
        "symlink": tmp_path / "link.wav",
        "hardlink": tmp_path / "hard.wav",
    }[spelling]
    if spelling == "symlink":
        os.symlink(noisy, out)
    if spelling == "hardlink":
        os.link(noisy, out)
    res = enhance_file(ckpts["avae"], noisy, out, *(["--overwrite"] if overwrite else []))
    assert_user_error(res, "writing there would replace it; choose another output file")
    _untouched(noisy, before)
    assert_no_partial_files(tmp_path)


def test_existing_output_needs_overwrite(ckpts, noisy, tmp_path):
    out = tmp_path / "o.wav"
    out.write_bytes(b"an older result")
    res = enhance_file(ckpts["avae"], noisy, out)
    assert_user_error(res, "o.wav: exists; pass --overwrite to replace it, or choose another output file")
    _untouched(out, b"an older result")
    res = enhance_file(ckpts["avae"], noisy, out, "--overwrite")
    assert res.exit_code == 0, res.output
    assert sf.read(out)[0].shape == (SR,)
    assert_no_partial_files(tmp_path)


# ---- folders as outputs ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["trailing-slash-new", "existing-folder", "existing-folder-slash"])
def test_output_folder_gets_the_input_name(ckpts, noisy, tmp_path, kind):
    folder = tmp_path / "out" / "newdir"
    if kind != "trailing-slash-new":
        folder.mkdir(parents=True)
    arg = str(folder) + ("/" if kind.endswith("slash") or kind.startswith("trailing") else "")
    res = enhance_file(ckpts["avae"], noisy, arg)
    assert res.exit_code == 0, res.output
    assert folder.is_dir() and sorted(p.name for p in folder.iterdir()) == ["noisy.wav"]
    assert f"wrote {folder / 'noisy.wav'}" in res.output
    assert sf.read(folder / "noisy.wav")[0].shape == (SR,)


@pytest.mark.parametrize("name", ["out.mp3", "out.flac", "out"])
def test_output_formats_other_than_wav_are_refused(ckpts, noisy, tmp_path, name):
    res = enhance_file(ckpts["avae"], noisy, tmp_path / name)
    assert_user_error(res, "cannot write ")
    assert "(e.g. -o enhanced.wav) or give a folder ending in /" in res.output
    assert not (tmp_path / name).exists()


# ---- settings that cannot work -----------------------------------------------------------------------------------
@pytest.mark.parametrize("fps", ["0", "nan", "-30", "inf", "1e9"])
def test_unusable_fps_is_refused(ckpts, noisy, tmp_path, fps):
    arr = tmp_path / "lips.npy"
    np.save(arr, lips(30))
    res = enhance_file(ckpts["minvae"], noisy, tmp_path / "o.wav", "--video", arr, "--fps", fps)
    assert_user_error(res, "is not a usable fps; give the video's frame rate (between 1 and 1000, e.g. 25 or 30)")
    assert not (tmp_path / "o.wav").exists()
    res = enhance_file(ckpts["avae"], noisy, tmp_path / "o.wav", "--fps", fps)  # refused even when nothing uses it
    assert_user_error(res, "is not a usable fps")


@pytest.mark.parametrize("fps", [0, -1, "nan", "thirty", 1e9])
def test_manifest_record_with_unusable_fps_fails_that_record(ckpts, tmp_path, fps):
    root = tmp_path / "c"
    root.mkdir()
    recs = []
    for rid, rate in (("good", 30.0), ("bad", fps)):
        write_wav(root / f"{rid}.wav", speech_like(1.0))
        np.save(root / f"{rid}.npy", lips(30))
        recs.append(
            {"id": rid, "split": "test", "kind": "mixture", "audio": f"{rid}.wav", "lips": f"{rid}.npy", "fps": rate}
        )
    (root / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    res = enhance_manifest_fast(ckpts["minvae"], root / "m.jsonl", tmp_path / "out")
    assert res.exit_code == 1, res.output
    assert "bad: " in res.output and "is not a usable fps" in res.output, res.output
    assert sorted(p.name for p in (tmp_path / "out").glob("*.wav")) == ["good.wav"]


@pytest.mark.parametrize(
    "option,value,message",
    [
        ("--seed", "-1", "--seed -1: must be a whole number from 0 to"),
        ("--seed", str(2**70), "must be a whole number from 0 to"),
        ("--threads", "100000", "--threads 100000: this machine has"),
        ("--threads", "0", "--threads 0: must be a whole number >= 1"),
        ("-o", "", "missing input: give NOISY.wav -o OUT.wav"),
        ("-o", " ", "missing input: give NOISY.wav -o OUT.wav"),
    ],
)
def test_seed_threads_and_empty_output(ckpts, noisy, tmp_path, option, value, message):
    args = ["-o", tmp_path / "o.wav"] if option != "-o" else []
    res = run_cli("enhance", "--checkpoint", ckpts["avae"], noisy, *args, option, value, *FAST)
    assert_user_error(res, message)
    assert not (tmp_path / "o.wav").exists()


def test_empty_output_name_through_the_api(ckpts, noisy):
    err = api_call(Enhancer.from_checkpoint(ckpts["avae"], method="fast", iterations=1).enhance_file, noisy, "")
    assert isinstance(err, UserInputError) and "the name is empty" in str(err), err
    err = api_call(Enhancer.from_checkpoint, ckpts["avae"], seed=2**64)
    assert isinstance(err, UserInputError) and "--seed" in str(err), err


@pytest.mark.parametrize("value", ["0", "-1"])
def test_iterations_below_one(ckpts, noisy, tmp_path, value):
    res = run_cli("enhance", "--checkpoint", ckpts["avae"], noisy, "-o", tmp_path / "o.wav", "--iterations", value)
    assert_user_error(res, f"--iterations {value}: must be a whole number >= 1")
    assert not (tmp_path / "o.wav").exists()


@pytest.mark.parametrize(
    "device,message",
    [
        ("bogus", "device 'bogus': not a torch device; use cpu, cuda, cuda:1 or mps"),
        ("cuda", "device 'cuda': this torch build or machine has no CUDA GPU; use cpu"),
        ("cuda:3", "device 'cuda:3': "),
        ("meta", "device 'meta': enhancement runs on cpu, cuda or mps"),
    ],
)
def test_unusable_device(ckpts, noisy, tmp_path, device, message):
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    res = enhance_file(ckpts["avae"], noisy, tmp_path / "o.wav", "--device", device)
    assert_user_error(res, message)
    assert not (tmp_path / "o.wav").exists()


@pytest.mark.parametrize("family", ["avae", "avcvae"])
def test_jump_kernel_needs_a_mixture_prior(ckpts, noisy, tmp_path, family):
    arr = tmp_path / "lips.npy"
    np.save(arr, lips(30))
    res = run_cli(
        "enhance",
        "--checkpoint",
        ckpts[family],
        noisy,
        "--video",
        arr,
        "-o",
        tmp_path / "o.wav",
        "--method",
        "mcem",
        "--iterations",
        "1",
        "--kernel",
        "frame-mh-jump",
    )
    assert_user_error(res, "--kernel frame-mh-jump needs a mixture prior (MIN-VAE)")
    assert not (tmp_path / "o.wav").exists()


# ---- lip arrays: missing, integer, complex -----------------------------------------------------------------------
def test_missing_video_file_does_not_suggest_prepare(ckpts, noisy, tmp_path):
    for name in ("none.npy", "none.mp4"):
        res = enhance_file(ckpts["minvae"], noisy, tmp_path / "o.wav", "--video", tmp_path / name)
        assert_user_error(res, f"{name}: file not found; check the path")
        assert "prepare" not in res.output


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.int16, np.uint16, np.uint8])
def test_integer_lips_are_read_as_0_to_255(ckpts, noisy, tmp_path, dtype):
    """Any integer dtype holding 0..255 gives the same result as uint8."""
    base = lips(30)
    outs = {}
    for tag, arr in (("u8", base), ("int", base.astype(dtype))):
        np.save(tmp_path / f"{tag}.npy", arr)
        res = enhance_file(ckpts["minvae"], noisy, tmp_path / f"{tag}.wav", "--video", tmp_path / f"{tag}.npy")
        assert res.exit_code == 0, res.output
        outs[tag] = sf.read(tmp_path / f"{tag}.wav")[0]
    np.testing.assert_array_equal(outs["u8"], outs["int"])


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda: lips(30).astype(np.int64) * 2, "integer lip ROIs must lie in 0..255; got values from 0 to 508"),
        (lambda: lips(30).astype(np.int64) - 10, "integer lip ROIs must lie in 0..255; got values from -10"),
        (lambda: lips(30).astype(np.complex64), "lip ROIs hold complex numbers; store real numbers"),
        (lambda: lips(30) > 100, "lip ROIs hold booleans; store real numbers"),
        (lambda: np.full((30, LIP, LIP), "a"), "lip ROIs hold text; store real numbers"),
    ],
    ids=["int-over-255", "int-negative", "complex", "bool", "text"],
)
def test_odd_lip_dtypes_are_one_line_errors_without_warnings(ckpts, noisy, tmp_path, make, message):
    np.save(tmp_path / "l.npy", make())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. numpy's ComplexWarning would be an error here
        res = enhance_file(ckpts["minvae"], noisy, tmp_path / "o.wav", "--video", tmp_path / "l.npy")
    assert_user_error(res, message)
    if "integer" in message:  # integer lips are not told about floats
        assert "float" not in res.output
    assert not (tmp_path / "o.wav").exists()


def test_complex_landmarks_are_refused(noisy, tmp_path):
    import torch

    from pyro_minvae.checkpoint import save_checkpoint
    from pyro_minvae.features import FeatureConfig
    from pyro_minvae.models import build_model

    ckpt = tmp_path / "lm.pt"
    torch.manual_seed(0)
    save_checkpoint(
        ckpt,
        build_model(
            "minvae", input_dims={"audio": 513, "landmarks": 40}, latent_dim=4, encoders=["audio", "landmarks"]
        ),
        FeatureConfig(),
    )
    np.save(tmp_path / "pts.npy", np.ones((30, 20, 2), np.complex128))
    res = enhance_file(ckpt, noisy, tmp_path / "o.wav", "--landmarks", tmp_path / "pts.npy")
    assert_user_error(res, "pts.npy: landmarks hold complex numbers")


# ---- progress on a terminal --------------------------------------------------------------------------------------
def test_progress_bar_only_where_asked(ckpts, noisy, tmp_path, monkeypatch):
    """One iteration of the fast E-step's 4 restarts: the bar counts 4."""
    res = enhance_file(ckpts["avae"], noisy, tmp_path / "a.wav", "--progress")
    assert res.exit_code == 0, res.output
    assert "enhance:" in res.output and "4/4" in res.output, res.output
    res = enhance_file(ckpts["avae"], noisy, tmp_path / "b.wav")  # CliRunner's stderr is not a terminal
    assert res.exit_code == 0 and "4/4" not in res.output, res.output
    from pyro_minvae.enhancement import progress

    monkeypatch.setattr(
        progress,
        "progress_wanted",
        lambda enabled=None: enabled is not False and (enabled or progress.log.isEnabledFor(20)),
    )  # as on a terminal
    res = enhance_file(ckpts["avae"], noisy, tmp_path / "c.wav")
    assert res.exit_code == 0 and "4/4" in res.output, res.output
    res = enhance_file(ckpts["avae"], noisy, tmp_path / "d.wav", verbosity="-q")
    assert res.exit_code == 0 and res.output.strip() == f"wrote {tmp_path / 'd.wav'}", res.output


def test_progress_counts_iterations_over_chunks(ckpts, tmp_path):
    """70 s = three 30-s chunks of 2 iterations, each run twice (restarts): the bar reaches 12/12."""
    noisy = write_wav(tmp_path / "long.wav", np.tile(speech_like(1.0), 70))
    extra = ("--iterations", "2", "--option", "restarts=2", "--progress")
    res = enhance_file(ckpts["avae"], noisy, tmp_path / "o.wav", *extra)
    assert res.exit_code == 0, res.output
    assert "chunk 3/3" in res.output and "12/12" in res.output, res.output


# ---- the Python API takes the same path -------------------------------------------------------------------------
def test_enhancer_api_matches_the_cli(ckpts, noisy, tmp_path):
    arr = lips(30)
    np.save(tmp_path / "lips.npy", arr)
    res = enhance_file(ckpts["minvae"], noisy, tmp_path / "cli.wav", "--video", tmp_path / "lips.npy", "--seed", "3")
    assert res.exit_code == 0, res.output
    enh = Enhancer.from_checkpoint(ckpts["minvae"], method="fast", iterations=1, seed=3)
    written = enh.enhance_file(noisy, tmp_path / "api.wav", video=tmp_path / "lips.npy")
    assert written.output == tmp_path / "api.wav" and written.result.init == "lips"
    np.testing.assert_array_equal(sf.read(tmp_path / "cli.wav")[0], sf.read(tmp_path / "api.wav")[0])
    wav = enh.enhance_waveform(sf.read(noisy, dtype="float32")[0], SR, visual={"lips": arr}, fps=30)
    np.testing.assert_allclose(wav.waveform.numpy(), written.result.waveform.numpy())
    as_evaluate = enh.enhance_waveform(sf.read(noisy, dtype="float32")[0], SR, visual={"lips": arr, "fps": 30.0})
    np.testing.assert_array_equal(as_evaluate.waveform.numpy(), wav.waveform.numpy())
    # 48 kHz input is resampled to the model's rate
    assert enh.enhance_waveform(np.repeat(speech_like(1.0), 3), 3 * SR).waveform.shape == (SR,)


def test_enhancer_batch_keeps_going_with_skip_errors(ckpts, noisy, tmp_path):
    enh = Enhancer.from_checkpoint(ckpts["avae"], method="fast", iterations=1)
    out = enh.enhance_batch(
        [
            (noisy, f"{tmp_path / 'out'}/"),
            (tmp_path / "missing.wav", tmp_path / "m.wav"),
            {"noisy": noisy, "output": tmp_path / "b.wav"},
        ],
        skip_errors=True,
    )
    assert out[0].output == tmp_path / "out" / "noisy.wav"
    assert isinstance(out[1], UserInputError) and "missing.wav: file not found" in str(out[1])
    assert out[2].output.exists()
    err = api_call(enh.enhance_batch, [(noisy, noisy)])
    assert isinstance(err, UserInputError) and "would replace it" in str(err)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"device": "bogus"}, "not a torch device"),
        ({"iterations": 0}, "must be a whole number >= 1"),
        ({"kernel": "frame-mh-jump"}, "needs a mixture prior"),
        ({"method": "nope"}, "'nope'"),
    ],
)
def test_enhancer_refuses_bad_settings_at_construction(ckpts, kwargs, message):
    err = api_call(Enhancer.from_checkpoint, ckpts["avae"], **kwargs)
    assert isinstance(err, UserInputError) and message in str(err), err


def test_enhancer_refuses_bad_arrays(ckpts):
    enh = Enhancer.from_checkpoint(ckpts["minvae"], method="fast", iterations=1)
    for wave, visual, message in [
        (np.zeros((2, SR), np.float32), None, "expected a non-empty mono (T,) real array"),
        (np.full(SR, np.nan, np.float32), None, "contains NaN or Inf"),
        (speech_like(1.0), {"lips": lips(30).astype(np.complex64)}, "visual['lips']: lip ROIs hold complex"),
        (speech_like(1.0), {"lips": lips(90)}, "visual['lips']: 90 frames at 30 fps = 3.00 s"),
    ]:
        err = api_call(enh.enhance_waveform, wave, SR, visual)
        assert isinstance(err, UserInputError) and message in str(err), err


# ---- evaluate and the training datasets read streams through the same checks -----------------------------------
@pytest.mark.parametrize("fps", [0, "nan", -25])
def test_evaluate_and_datasets_refuse_an_unusable_record_fps(tmp_path, fps):
    from pyro_minvae.data.datasets import FrameDataset
    from pyro_minvae.evaluation.items import load_item

    write_wav(tmp_path / "a.wav", speech_like(1.0))
    np.save(tmp_path / "a.npy", lips(30))
    base = {"id": "a", "audio": "a.wav", "lips": "a.npy", "fps": fps, "speaker": "s", "duration": 1.0}
    recs = [
        dict(base, split="test", kind="mixture", clean="a.wav", noise_type="white", snr_db=0.0),
        dict(base, id="c", split="train", kind="clean"),
    ]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    err = api_call(load_item, recs[0], tmp_path / "m.jsonl")
    assert (
        isinstance(err, UserInputError) and "record 'a' field \"fps\"" in str(err) and "not a usable fps" in str(err)
    ), err
    err = api_call(FrameDataset.from_manifest, tmp_path / "m.jsonl", "train", ("audio", "lips"), use_cache=False)
    assert isinstance(err, UserInputError) and "not a usable fps" in str(err), err


def test_datasets_read_integer_lips_like_uint8(tmp_path):
    from pyro_minvae.data.datasets import FrameDataset

    write_wav(tmp_path / "a.wav", speech_like(1.0))
    arr = lips(30)
    recs = []
    for rid, a in (("u8", arr), ("i64", arr.astype(np.int64))):
        np.save(tmp_path / f"{rid}.npy", a)
        recs.append({"id": rid, "split": rid, "kind": "clean", "audio": "a.wav", "lips": f"{rid}.npy", "fps": 30.0})
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    ds = {
        rid: FrameDataset.from_manifest(tmp_path / "m.jsonl", rid, ("audio", "lips"), use_cache=False)
        for rid in ("u8", "i64")
    }
    assert ds["u8"].visual["lips"].equal(ds["i64"].visual["lips"])


# ---- Ctrl-C / SIGTERM ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_interrupted_single_file_stops_quickly_and_writes_nothing(ckpts, tmp_path, sig):
    """The signal arrives in the E-step (after MIN-VAE's audio-initialisation note): exit 130/143 within seconds,
    one line, no output and no temporary file."""
    import signal
    import subprocess
    import time

    noisy = write_wav(tmp_path / "long.wav", np.tile(speech_like(1.0), 20))
    out = tmp_path / "o.wav"
    args = [
        "enhance",
        "--checkpoint",
        ckpts["minvae"],
        noisy,
        "-o",
        out,
        "--method",
        "mcem",
        "--iterations",
        "1000",
    ]
    proc = subprocess.Popen(**child_cli(args), stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()  # "no visual input: ..." once the E-step runs
        assert "no visual input" in line, line
        proc.send_signal(getattr(signal, sig))
        t0 = time.monotonic()
        rest = proc.communicate(timeout=60)[1]
    finally:
        proc.kill()
    record(traceback="Traceback" in rest)
    assert time.monotonic() - t0 < 30
    assert proc.returncode == 128 + getattr(signal, sig), rest
    assert f"interrupted ({sig}); nothing was written to {out}" in rest, rest
    assert not out.exists()
    assert_no_partial_files(tmp_path)
