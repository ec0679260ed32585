"""Reliability of `prepare folder` / `prepare ntcd-timit` and of every file output (atomic writes).

What a new user may do wrong - duplicate or odd file names, a zero or NaN frame rate, broken links, link loops,
pipes, unreadable folders, an output folder that holds other things, two runs at once, Ctrl-C or SIGTERM in the
middle, a full disk, a read-only folder, an unusual umask - must end in one line (or a list of skipped files,
exit 1), never in a traceback, a hang or a lost file.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pyro_minvae.data.manifest import MAX_ID_BYTES, id_from_path, read_manifest, resolve, select
from pyro_minvae.errors import UserInputError
from reliability_helpers import (
    SR,
    api_call,
    assert_user_error,
    leftovers,
    lips,
    record,
    run_cli,
    speech_like,
    write_wav,
)

REPO = Path(__file__).resolve().parents[2]


def _rec(folder: Path, name: str, seconds: float = 1.0, with_lips: bool = True, sr: int = SR, seed: int = 0) -> Path:
    """``folder/name.wav`` (+ ``name.npy`` lips at 30 fps); ``name`` may hold sub-folders."""
    wav = folder / f"{name}.wav"
    wav.parent.mkdir(parents=True, exist_ok=True)
    x = speech_like(seconds, sr=sr, seed=seed)
    write_wav(wav, x, sr=sr)
    if with_lips:
        np.save(wav.with_suffix(".npy"), lips(int(round(seconds * 30)), seed=seed))
    return wav


def _prepare(root: Path, out: Path, *extra):
    return run_cli("prepare", "folder", "--root", root, "--out", out, "--no-progress", *extra)


def _snapshot(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _same(folder: Path, before: dict) -> None:
    lost = _snapshot(folder) != before
    record(data_loss=lost)
    assert not lost, f"{folder} changed"


def _no_leftovers(parent: Path) -> None:
    """No staging folder, lock or temporary file of a prepare run next to or inside its output."""
    left = [p for p in leftovers(parent) if not p.startswith(".done.json") and "/.done.json" not in p]
    record(data_loss=bool(left))
    assert not left, left


def _unsafe(rid) -> bool:
    """An id that cannot be a flat file name inside the output folder (``OUT/ID.wav``)."""
    return (
        not isinstance(rid, str)
        or not rid
        or "/" in rid
        or "\\" in rid
        or rid.startswith(".")
        or any(ord(c) < 32 for c in rid)
        or len(rid.encode()) > MAX_ID_BYTES
    )


def _ids(manifest: Path) -> list[str]:
    return sorted(r["id"] for r in read_manifest(manifest))


# ---- record ids ------------------------------------------------------------------------------------------------------
def test_paths_that_looked_alike_get_distinct_safe_ids(tmp_path):
    root = tmp_path / "in"
    for name in ("sub-a", "sub/a", "sub~a", "a b", "café", "sub/deeper/x", "100%", "x:y", "weird\tname"):
        _rec(root, name)
    res = _prepare(root, tmp_path / "out")
    assert res.exit_code == 0, res.output
    ids = _ids(tmp_path / "out" / "manifest.jsonl")
    assert len(ids) == 9 and len({i.casefold() for i in ids}) == 9
    assert {"sub-a", "sub~a", "sub%7Ea", "a b", "café", "sub~deeper~x", "100%25", "x%3Ay"} <= set(ids)
    assert not any(_unsafe(i) for i in ids), ids
    for r in read_manifest(tmp_path / "out" / "manifest.jsonl"):  # each has its own lips
        assert resolve(tmp_path / "out" / "manifest.jsonl", r["lips"]).is_file()
    assert len({r["lips"] for r in read_manifest(tmp_path / "out" / "manifest.jsonl")}) == 9


@pytest.mark.parametrize("names", [("x.wav", "x.WAV"), ("x.wav", "X.wav"), ("x.wav", "x.flac")])
def test_names_that_differ_in_case_or_extension_are_skipped_with_one_line_each(tmp_path, names):
    root = tmp_path / "in"
    root.mkdir()
    for n in names:
        write_wav(root / n, speech_like(1.0))
    _rec(root, "other")
    res = _prepare(root, tmp_path / "out")
    assert res.exit_code == 1, res.output
    assert "2 recording(s) skipped" in res.output and "Traceback" not in res.output
    assert res.output.count("apart from letter case or extension") == 2
    assert _ids(tmp_path / "out" / "manifest.jsonl") == ["other"]


def test_id_scheme_is_injective_and_bounded():
    parts = [("sub-a",), ("sub", "a"), ("sub~a",), ("sub%7Ea",), ("..",), (".x",), ("a/b",), ("a\\b",)]
    ids = [id_from_path(p) for p in parts]
    assert len(set(ids)) == len(ids)
    assert not any(_unsafe(i) for i in ids), ids
    long = [id_from_path(("x" * 300,)), id_from_path(("x" * 301,)), id_from_path(("é" * 300,))]
    assert len(set(long)) == 3 and not any(_unsafe(i) for i in long)
    for bad in ("../x", "/abs", "a/b", ".hidden", "", "a\\b", "x\n", 3):
        assert _unsafe(bad)


def test_manifest_with_duplicate_ids_is_refused_with_the_line(tmp_path):
    m = tmp_path / "m.jsonl"
    rows = [{"id": "a", "split": "test", "audio": "a.wav"}, {"id": "A", "split": "test", "audio": "b.wav"}]
    m.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    exc = api_call(read_manifest, m)
    assert isinstance(exc, UserInputError) and "m.jsonl:2: id 'A' is already used on line 1" in str(exc)
    for text, frag in (("[1, 2]\n", "must be a JSON object"), ("\xff\xfe", "not a text file")):
        m.write_bytes(text.encode("latin-1"))
        exc = api_call(read_manifest, m)
        assert isinstance(exc, UserInputError) and frag in str(exc)
    assert frag in str(api_call(read_manifest, m))
    assert "is a folder" in str(api_call(read_manifest, tmp_path))
    os.mkfifo(tmp_path / "pipe.jsonl")  # reading it would block forever
    assert "not a regular file" in str(api_call(read_manifest, tmp_path / "pipe.jsonl"))
    m.write_bytes(("\ufeff" + json.dumps(rows[0]) + "\r\n").encode("utf-8"))  # BOM + CRLF (a Windows editor)
    assert [r["id"] for r in read_manifest(m)] == ["a"]


# ---- options ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fps", ["0", "-30", "nan", "inf", "1e9"])
def test_unusable_fps_is_refused_before_any_work(tmp_path, fps):
    root = tmp_path / "in"
    _rec(root, "a")
    res = _prepare(root, tmp_path / "out", "--fps", fps)
    assert_user_error(res, "--fps: frame rate")
    assert not (tmp_path / "out").exists()


# ---- the documented own-data flow -----------------------------------------------------------------------------------
def test_test_split_records_are_noisy_inputs_for_enhancement(tmp_path):
    root = tmp_path / "in"
    _rec(root, "spk1/take1")
    _rec(root, "spk1/take2", with_lips=False)
    res = _prepare(root, tmp_path / "out", "--split", "test")
    assert res.exit_code == 0, res.output
    m = tmp_path / "out" / "manifest.jsonl"
    recs = {r["id"]: r for r in read_manifest(m)}
    assert {r["kind"] for r in recs.values()} == {"noisy"}
    assert sorted(r["id"] for r in select(recs.values(), "test", "noisy")) == ["spk1~take1", "spk1~take2"]
    r = recs["spk1~take1"]
    assert r["split"] == "test" and r["speaker"] == "spk1" and r["fps"] == 30.0 and r["duration"] == 1.0
    assert resolve(m, r["audio"]).is_file() and np.load(resolve(m, r["lips"])).shape == (30, 67, 67)
    assert "lips" not in recs["spk1~take2"]
    # training folders stay clean speech; --kind overrides
    res = _prepare(root, tmp_path / "tr", "--split", "train")
    assert {r["kind"] for r in read_manifest(tmp_path / "tr" / "manifest.jsonl")} == {"clean"}
    res = _prepare(root, tmp_path / "tc", "--split", "test", "--kind", "clean")
    assert {r["kind"] for r in read_manifest(tmp_path / "tc" / "manifest.jsonl")} == {"clean"}


def test_documented_own_data_flow_enhances_every_recording(tmp_path):
    """docs/data.md: `prepare folder --split test`, then `enhance --manifest ... --out-dir`: one wav per
    recording, named by its id, inside the output folder."""
    from reliability_helpers import FAST, make_checkpoint

    root = tmp_path / "in"
    for name in ("spk1/take 1", "spk1/take2", "solo"):
        _rec(root, name)
    _rec(root, "spk2/no-lips", with_lips=False)
    assert _prepare(root, tmp_path / "idx", "--split", "test").exit_code == 0
    ckpt = make_checkpoint(tmp_path / "minvae.pt", "minvae")
    res = run_cli(
        "enhance",
        "-c",
        ckpt,
        "--manifest",
        tmp_path / "idx" / "manifest.jsonl",
        "--split",
        "test",
        "--out-dir",
        tmp_path / "enh",
        *FAST,
    )
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "enh").glob("*.wav")) == [
        "solo.wav",
        "spk1~take 1.wav",
        "spk1~take2.wav",
        "spk2~no-lips.wav",
    ]


def test_train_split_holds_out_validation_speakers(tmp_path):
    """`train` needs a train and a valid split in one manifest: `--split train` holds some out."""
    one, many = tmp_path / "one", tmp_path / "many"
    for i in range(10):
        _rec(one, f"me/t{i}", with_lips=False, seed=i)
    for k in range(7):
        _rec(many, f"s{k}/t", with_lips=False, seed=k)
    assert _prepare(one, tmp_path / "o1", "--split", "train").exit_code == 0
    splits = {r["id"]: r["split"] for r in read_manifest(tmp_path / "o1" / "manifest.jsonl")}
    assert sorted(splits.values()).count("valid") == 1 and splits["me~t9"] == "valid"
    assert _prepare(many, tmp_path / "o2", "--split", "train").exit_code == 0
    recs = read_manifest(tmp_path / "o2" / "manifest.jsonl")
    assert {r["speaker"] for r in recs if r["split"] == "valid"} == {"s5"}
    assert _prepare(many, tmp_path / "o3", "--split", "train", "--valid-speakers", "s1,s2").exit_code == 0
    recs = read_manifest(tmp_path / "o3" / "manifest.jsonl")
    assert {r["speaker"] for r in recs if r["split"] == "valid"} == {"s1", "s2"}
    assert_user_error(
        _prepare(many, tmp_path / "o4", "--split", "train", "--valid-speakers", "nope"),
        "--valid-speakers: nope not among the speakers",
    )
    assert_user_error(
        _prepare(many, tmp_path / "o4", "--split", "test", "--valid-speakers", "s1"),
        "--valid-speakers: only with --split train",
    )
    assert_user_error(
        _prepare(many, tmp_path / "o4", "--split", "train", "--valid-speakers", ",".join(f"s{k}" for k in range(7))),
        "leaves no speaker to train on",
    )
    assert not (tmp_path / "o4").exists()


# ---- odd folders -----------------------------------------------------------------------------------------------------
def test_links_loops_pipes_hidden_and_empty_things(tmp_path):
    root = tmp_path / "in"
    _rec(root, "ok")
    (root / "sub").mkdir()
    os.symlink(root, root / "sub" / "loop")  # a loop back to the root
    os.symlink(root / "sub", root / "again")  # the same folder twice
    os.symlink(tmp_path / "gone.wav", root / "dead.wav")  # a broken link
    os.symlink(root / "selfloop.wav", root / "selfloop.wav")  # a link to itself
    os.mkfifo(root / "pipe.wav")  # would block a reader forever
    _rec(root, ".hidden")  # ignored like `ls` does
    (root / "._ok.wav").write_bytes(b"\0" * 100)  # macOS resource fork: ignored
    (root / "empty").mkdir()
    t0 = time.monotonic()
    res = _prepare(root, tmp_path / "out")
    assert time.monotonic() - t0 < 60
    assert res.exit_code == 1, res.output
    assert "3 recording(s) skipped" in res.output
    assert res.output.count("broken symbolic link") == 2 and "not a regular file" in res.output
    assert _ids(tmp_path / "out" / "manifest.jsonl") == ["ok"]


def test_a_folder_that_cannot_be_opened_is_listed(tmp_path, monkeypatch):
    root = tmp_path / "in"
    _rec(root, "ok")
    _rec(root, "locked/a")
    real = os.scandir

    def scandir(path="."):
        if Path(path).name == "locked":
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    res = _prepare(root, tmp_path / "out")
    assert res.exit_code == 1, res.output
    assert "locked: cannot open the folder (Permission denied); check its permissions" in res.output
    assert _ids(tmp_path / "out" / "manifest.jsonl") == ["ok"]


def test_file_names_that_are_not_utf8(tmp_path):
    """Linux file names are bytes: a Latin-1 name (``caf\\xe9.wav``) is indexed, its id escapes the byte."""
    root = tmp_path / "in"
    root.mkdir()
    name = os.fsdecode(b"caf\xe9")
    write_wav(root / "tmp.wav", speech_like(1.0)).rename(root / f"{name}.wav")
    np.save(root / f"{name}.npy", lips(30))
    (root / os.fsdecode(b"b\xe9d.wav")).write_text("junk")
    res = _prepare(root, tmp_path / "out")
    assert res.exit_code == 1 and "Traceback" not in res.output, res.output
    assert "b\ufffdd.wav: not a readable audio file (LibsndfileError)" in res.output
    m = tmp_path / "out" / "manifest.jsonl"
    (rec,) = read_manifest(m)
    assert rec["id"] == "caf%E9" and Path(rec["audio"]).is_file() and resolve(m, rec["lips"]).is_file()
    from pyro_minvae.audio_io import load_audio, write_audio

    write_audio(Path(rec["audio"]).with_name(os.fsdecode(b"o\xe9.wav")), load_audio(rec["audio"]))


def test_empty_folder_a_file_as_root_and_only_videos(tmp_path):
    (tmp_path / "empty").mkdir()
    assert_user_error(_prepare(tmp_path / "empty", tmp_path / "o"), "no audio files")
    (tmp_path / "vids").mkdir()
    (tmp_path / "vids" / "a.mp4").write_bytes(b"\0" * 10)
    assert_user_error(_prepare(tmp_path / "vids", tmp_path / "o"), "the sound of a video is not read")
    f = write_wav(tmp_path / "f.wav", speech_like(1.0))
    res = _prepare(f, tmp_path / "o")
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("rate", [1, 100, 1_000_000])
def test_a_damaged_sample_rate_is_refused_not_resampled_for_hours(tmp_path, rate):
    """A header saying 1 Hz would make 1 s of samples into 4.4 hours of audio at 16 kHz."""
    import struct

    from pyro_minvae.audio_io import load_audio

    wav = write_wav(tmp_path / "r.wav", speech_like(1.0))
    b = bytearray(wav.read_bytes())
    b[24:28], b[28:32] = struct.pack("<I", rate), struct.pack("<I", 2 * rate)  # sample rate, byte rate
    wav.write_bytes(bytes(b))
    exc = api_call(load_audio, wav)
    assert isinstance(exc, UserInputError), exc
    assert f"sample rate is {rate} Hz, not a usable rate" in str(exc)


def test_corrupt_lips_and_audio_next_to_good_ones(tmp_path):
    root = tmp_path / "in"
    _rec(root, "good")
    _rec(root, "badlips")
    np.save(root / "badlips.npy", np.zeros((30, 67, 67), complex))
    _rec(root, "nanlips")
    np.save(root / "nanlips.npy", np.full((30, 67, 67), np.nan, np.float32))
    (root / "text.wav").write_text("not audio")
    _rec(root, "dirlips", with_lips=False)
    (root / "dirlips.npy").mkdir()  # a folder where a lip file is expected: audio-only
    res = _prepare(root, tmp_path / "out")
    assert res.exit_code == 1, res.output
    assert "3 recording(s) skipped" in res.output and "Traceback" not in res.output
    assert _ids(tmp_path / "out" / "manifest.jsonl") == ["dirlips", "good"]


# ---- where the index goes -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["root", "parent", "user-folder", "file", "index-with-extra", "symlink"])
def test_output_folder_that_would_lose_files_is_refused(tmp_path, where):
    root = tmp_path / "in"
    _rec(root, "a")
    user = tmp_path / "mine"
    user.mkdir()
    (user / "thesis.txt").write_text("precious")
    (tmp_path / "file").write_text("precious")
    idx = tmp_path / "idx"
    assert _prepare(root, idx).exit_code == 0
    (idx / "notes.txt").write_text("precious")
    idx2 = tmp_path / "idx2"
    assert _prepare(root, idx2).exit_code == 0
    os.symlink(idx2, tmp_path / "link")
    out = {
        "root": root,
        "parent": tmp_path,
        "user-folder": user,
        "file": tmp_path / "file",
        "index-with-extra": idx,
        "symlink": tmp_path / "link",
    }[where]
    before = _snapshot(tmp_path)
    res = _prepare(root, out, "--force")
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert res.output.lower().count("error:") == 1 and "--out" in res.output  # ours, or click's for a file
    _same(tmp_path, before)


@pytest.mark.parametrize("cache", ["file", "unreachable"])
def test_unusable_cache_folder_is_one_line(tmp_path, monkeypatch, cache):
    """The default --out lies in the cache folder; $PYRO_MINVAE_CACHE naming a file or a place that cannot be
    created is one line naming it."""
    root = tmp_path / "in"
    _rec(root, "a")
    (tmp_path / "file").write_text("x")
    where = {"file": tmp_path / "file", "unreachable": tmp_path / "file" / "sub"}[cache]
    monkeypatch.setenv("PYRO_MINVAE_CACHE", str(where))
    res = run_cli("prepare", "folder", "--root", root, "--no-progress")
    assert_user_error(res, f"{where}: cannot create the cache folder (")
    assert "PYRO_MINVAE_CACHE" in res.output


@pytest.mark.parametrize("spelling", [".", "sub/.."])
def test_output_given_as_dot(tmp_path, monkeypatch, spelling):
    root = tmp_path / "in"
    _rec(root, "a")
    (tmp_path / "o" / "sub").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "o")
    res = _prepare(root, spelling)
    assert "not an index" in res.output and res.exit_code == 2  # it holds sub/
    (tmp_path / "o" / "sub").rmdir()
    res = _prepare(root, ".")
    assert res.exit_code == 0, res.output
    assert _ids(tmp_path / "o" / "manifest.jsonl") == ["a"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "o"]


def test_output_inside_the_root_is_not_indexed_again(tmp_path):
    root = tmp_path / "in"
    _rec(root, "a", sr=44100)  # converted: audio/ in the index holds a wav
    out = root / "index"
    assert _prepare(root, out).exit_code == 0
    (root / "a.npy").touch()  # something changed: index again
    res = _prepare(root, out)
    assert res.exit_code == 0, res.output
    assert _ids(out / "manifest.jsonl") == ["a"]


def test_rerun_is_idempotent_and_a_changed_folder_replaces_the_index(tmp_path):
    root = tmp_path / "in"
    _rec(root, "a")
    out = tmp_path / "out"
    assert _prepare(root, out).exit_code == 0
    res = _prepare(root, out)
    assert res.exit_code == 0 and "nothing to do" in res.output
    (out / ".done.json").write_text("{not json")  # a damaged stamp: index again, no traceback
    assert _prepare(root, out).exit_code == 0
    (out / "lips" / "a.npy").unlink()  # a file of the index deleted by hand: index again
    res = _prepare(root, out)
    assert res.exit_code == 0 and "nothing to do" not in res.output and (out / "lips" / "a.npy").is_file()
    (out / "manifest.jsonl").write_text("garbage\n")  # a damaged manifest: index again
    assert _prepare(root, out).exit_code == 0 and _ids(out / "manifest.jsonl") == ["a"]
    _rec(root, "b")
    assert _prepare(root, out).exit_code == 0
    assert _ids(out / "manifest.jsonl") == ["a", "b"]
    _no_leftovers(tmp_path)


def test_replacing_the_index_of_another_folder_says_so(tmp_path):
    for side in "ab":
        _rec(tmp_path / side / "rec", "x")
    assert _prepare(tmp_path / "a" / "rec", tmp_path / "out").exit_code == 0
    res = _prepare(tmp_path / "b" / "rec", tmp_path / "out")
    assert res.exit_code == 0 and "held the index of" in res.output and "give --out to keep both" in res.output


def test_a_second_run_into_the_same_folder_is_refused_while_the_first_runs(tmp_path):
    import fcntl

    root = tmp_path / "in"
    _rec(root, "a")
    lock = os.open(tmp_path / ".out.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        assert_user_error(_prepare(root, tmp_path / "out"), "another `pyro-minvae prepare` is writing this folder")
    finally:
        os.close(lock)
    assert not (tmp_path / "out").exists()


def test_failed_or_interrupted_run_keeps_the_previous_index(tmp_path, monkeypatch):
    from pyro_minvae.data.prepare import folder

    root = tmp_path / "in"
    for n in "abc":
        _rec(root, n)
    out = tmp_path / "out"
    assert _prepare(root, out).exit_code == 0
    before = _snapshot(out)
    _rec(root, "d")
    real, calls = folder._index_one, []

    def interrupted(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(folder, "_index_one", interrupted)
    res = _prepare(root, out)
    assert res.exit_code != 0 and "Traceback" not in res.output
    _same(out, before)
    _no_leftovers(tmp_path)


def test_a_signal_held_back_during_the_swap_arrives_after_it(tmp_path, monkeypatch):
    """SIGTERM during the two renames of the swap is delivered right after them: the new index is in place and
    complete, the old one is removed, the message says so (not 'left as it was'), exit 143."""
    import contextlib

    from pyro_minvae import atomic
    from pyro_minvae.errors import Interrupted

    root = tmp_path / "in"
    _rec(root, "a")
    out = tmp_path / "out"
    assert _prepare(root, out).exit_code == 0
    _rec(root, "b")

    @contextlib.contextmanager
    def deferred():
        yield
        raise Interrupted(signal.SIGTERM)

    monkeypatch.setattr(atomic, "_signals_deferred", deferred)
    res = _prepare(root, out)
    assert res.exit_code == 143 and "holds the new index" in res.output, res.output
    assert _ids(out / "manifest.jsonl") == ["a", "b"]
    _no_leftovers(tmp_path)


def test_a_swap_that_fails_half_way_puts_the_previous_folder_back(tmp_path):
    from pyro_minvae.atomic import replace_directory

    final = tmp_path / "idx"
    final.mkdir()
    (final / "manifest.jsonl").write_text("old")
    with pytest.raises(OSError):
        replace_directory(tmp_path / "vanished-staging", final)
    assert (final / "manifest.jsonl").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]


def _child(args, env_extra=None, pre=""):
    code = f"import sys; sys.argv[0] = 'pyro-minvae'; {pre}from pyro_minvae.cli.main import main; main()"
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", **(env_extra or {}))
    return subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


# each recording takes 0.4 s longer; the first one touches $H8_STARTED (the test signals only once work is under way)
_SLOW = (
    "import os, time; from pyro_minvae.data.prepare import folder as _f; _r = _f._index_one; "
    "_f._index_one = lambda *a, **k: (open(os.environ['H8_STARTED'], 'a').close(), time.sleep(0.4), "
    "_r(*a, **k))[2]; "
)


def _wait_for(path: Path, proc, timeout: float = 120.0) -> None:
    t0 = time.monotonic()
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - t0 < timeout, "the child never started"
        time.sleep(0.05)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_signal_in_the_middle_of_prepare_folder(tmp_path, sig):
    """A real signal to a running `prepare folder`: it stops within seconds, the previous index is intact and
    nothing half-written is left (after kill -9, the next run clears the staging folder)."""
    root = tmp_path / "in"
    for i in range(12):
        _rec(root, f"r{i:02d}", seed=i)
    out = tmp_path / "out"
    assert _prepare(root, out).exit_code == 0
    before = _snapshot(out)
    _rec(root, "new")
    started = tmp_path / "started"
    proc = _child(
        ["prepare", "folder", "--root", root, "--out", out, "--no-progress"],
        pre=_SLOW,
        env_extra={"H8_STARTED": str(started)},
    )
    _wait_for(started, proc)
    time.sleep(1.0)  # a few recordings into the run
    t0 = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - t0 < 10
    record(traceback="Traceback" in err)
    assert "Traceback" not in err, err
    if sig != signal.SIGKILL:
        assert proc.returncode == 128 + sig, (proc.returncode, err)
        assert "interrupted" in err
    _same(out, before)
    if sig != signal.SIGKILL:
        _no_leftovers(tmp_path)
    assert _prepare(root, out).exit_code == 0  # the next run completes and clears what a kill -9 left
    assert "new" in _ids(out / "manifest.jsonl")
    _no_leftovers(tmp_path)


# ---- file outputs: permissions and write failures --------------------------------------------------------------------
@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_outputs_get_the_usual_umask_permissions(tmp_path, umask):
    from pyro_minvae.atomic import write_text_atomic
    from pyro_minvae.audio_io import write_audio

    old = os.umask(umask)
    try:
        write_text_atomic(tmp_path / "t.txt", "x")
        write_audio(tmp_path / "a.wav", np.zeros(SR, np.float32))
        root = tmp_path / "in"
        _rec(root, "a", sr=44100)
        assert _prepare(root, tmp_path / "out").exit_code == 0
    finally:
        os.umask(old)
    want_f, want_d = 0o666 & ~umask, 0o777 & ~umask
    files = [tmp_path / "t.txt", tmp_path / "a.wav", *[p for p in (tmp_path / "out").rglob("*") if p.is_file()]]
    assert len(files) >= 5
    for p in files:
        assert p.stat().st_mode & 0o777 == want_f, (p, oct(p.stat().st_mode))
    for p in [tmp_path / "out", *[p for p in (tmp_path / "out").rglob("*") if p.is_dir()]]:
        assert p.stat().st_mode & 0o777 == want_d, (p, oct(p.stat().st_mode))


def test_file_size_limit_in_a_child_names_the_os_reason(tmp_path):
    """A kernel-level write failure (RLIMIT_FSIZE -> EFBIG) while `prepare folder` converts audio: the OS reason,
    the file, exit 2, the previous index untouched and no staging folder left."""
    root = tmp_path / "in"
    _rec(root, "a", seconds=2.0, sr=44100)  # converted to 64 kB of 16 kHz PCM; limit 16 kB
    pre = (
        "import resource, signal; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
        "resource.setrlimit(resource.RLIMIT_FSIZE, (16000, 16000)); "
    )
    proc = _child(["prepare", "folder", "--root", root, "--out", tmp_path / "out", "--no-progress"], pre=pre)
    _, err = proc.communicate(timeout=120)
    record(traceback="Traceback" in err)
    assert proc.returncode == 2, err
    assert "a.wav: could not be written (File too large); nothing was saved under that name" in err
    assert "file-size limit" in err and "write failed" not in err
    assert not (tmp_path / "out").exists()
    _no_leftovers(tmp_path)


@pytest.mark.parametrize(
    "err,reason,fix,not_fix",
    [
        (errno.ENOSPC, "No space left on device", "free disk space", None),
        (errno.EDQUOT, "Disk quota exceeded", "quota", None),
        (errno.EROFS, "Read-only file system", "choose a writable folder", "free"),
        (errno.EACCES, "Permission denied", "choose a writable folder", "free"),
    ],
)
def test_write_failures_say_the_os_reason_and_the_fitting_fix(tmp_path, monkeypatch, err, reason, fix, not_fix):
    """A writer that reports no errno (libsndfile) and one that does (os.replace): the OS reason and the fix for
    that errno; an older file of that name is untouched."""
    import soundfile as sf

    from pyro_minvae import atomic
    from pyro_minvae.audio_io import write_audio

    out = tmp_path / "o.wav"
    out.write_bytes(b"older")

    def failing(file, *a, **k):
        Path(os.fsdecode(file)).write_bytes(b"half")
        raise sf.LibsndfileError(0, "Error : ")  # libsndfile's report of a failed write: no errno

    monkeypatch.setattr(sf, "write", failing)
    monkeypatch.setattr(atomic, "_probe_write", lambda folder, size=0: OSError(err, os.strerror(err)))
    exc = api_call(write_audio, out, np.zeros(SR, np.float32))
    text = str(exc)
    assert isinstance(exc, UserInputError) and f"o.wav: could not be written ({reason})" in text, text
    assert fix in text and (not_fix is None or not_fix not in text)
    monkeypatch.undo()

    def replace(a, b):
        raise OSError(err, os.strerror(err), str(b))

    monkeypatch.setattr(atomic.os, "replace", replace)
    text = str(api_call(write_audio, out, np.zeros(SR, np.float32)))
    assert f"({reason})" in text and fix in text and (not_fix is None or not_fix not in text)
    assert out.read_bytes() == b"older"
    assert leftovers(tmp_path) == []


def test_os_errors_reaching_the_cli_get_the_fix_for_their_errno(tmp_path, monkeypatch):
    from pyro_minvae.data.prepare import folder

    root = tmp_path / "in"
    _rec(root, "a")
    for err, fix, not_fix in (
        (errno.EROFS, "choose a writable folder", "free disk"),
        (errno.ENOSPC, "free disk space", None),
    ):

        def boom(*a, err=err, **k):
            raise OSError(err, os.strerror(err), "/somewhere/x")

        monkeypatch.setattr(folder, "index_folder", boom)
        res = _prepare(root, tmp_path / "out")
        assert_user_error(res, f"/somewhere/x: {os.strerror(err)}; {fix}")
        assert not_fix is None or not_fix not in res.output


def test_writing_onto_a_folder_is_refused(tmp_path):
    from pyro_minvae.atomic import write_text_atomic

    (tmp_path / "d").mkdir()
    exc = api_call(write_text_atomic, tmp_path / "d", "x")
    assert isinstance(exc, UserInputError) and "is a folder" in str(exc)
    assert (tmp_path / "d").is_dir()


@pytest.mark.parametrize("what", ["noisy", "video", "manifest"])
def test_a_pipe_given_as_an_input_file_never_blocks(tmp_path, what):
    """A FIFO where a wav, a lip array or a manifest is expected: one line, at once (reading it would block)."""
    from reliability_helpers import FAST, make_checkpoint

    ckpt = make_checkpoint(tmp_path / "m.pt", "minvae")
    noisy = write_wav(tmp_path / "n.wav", speech_like(1.0))
    pipe = tmp_path / {"noisy": "p.wav", "video": "p.npy", "manifest": "p.jsonl"}[what]
    os.mkfifo(pipe)
    args = {
        "noisy": [pipe, "-o", tmp_path / "o.wav"],
        "video": [noisy, "--video", pipe, "-o", tmp_path / "o.wav"],
        "manifest": ["--manifest", pipe, "--out-dir", tmp_path / "od"],
    }[what]
    res = run_cli("enhance", "-c", ckpt, *args, *FAST)
    assert res.exit_code == 2 and "not a regular file" in res.output and "Traceback" not in res.output, res.output


# ---- prepare ntcd-timit ---------------------------------------------------------------------------------------------
def test_ntcd_timit_skips_a_bad_wav_lists_it_and_exits_1(tmp_path):
    root = tmp_path / "NTCD"
    for spk in ("01M", "09F"):
        for sent in ("sa1", "sa2"):
            _rec(root / "clean" / spk, sent, seconds=1.0, with_lips=False)
            _rec(root / "noisy" / "Babble" / "5" / "volunteers" / spk / "straightcam", sent, with_lips=False)
    (root / "clean" / "09F" / "sa2.wav").write_bytes(b"RIFF" + b"x" * 40)
    os.mkfifo(root / "clean" / "01M" / "sa2.npy")  # lips that would block a reader forever
    res = run_cli("prepare", "ntcd-timit", "--root", root, "--out", tmp_path / "out", "--no-progress")
    assert res.exit_code == 1, res.output
    assert "2 file(s) skipped" in res.output and "sa2.wav" in res.output and "Traceback" not in res.output
    assert "sa2.npy: not a regular file" in res.output
    ids = _ids(tmp_path / "out" / "manifest.jsonl")
    assert "09F_sa1" in ids and "09F_sa1__Babble_p05" in ids and "09F_sa2" not in ids and "01M_sa2" not in ids
    assert "09F_sa2__Babble_p05" not in ids
