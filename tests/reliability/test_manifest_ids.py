"""Reliability, manifest mode: record ids become output file names. Ids that would leave --out-dir, collide
(duplicates, or equal but for case) or name an input file are refused in one line before anything is written;
ids with sub-folders write there; a folder of the user's own noisy recordings (records of kind "noisy", no
clean reference) is enhanced, as docs/data.md's own-data flow does."""

from __future__ import annotations

import json

import pytest

from reliability_helpers import (
    SR,
    assert_no_partial_files,
    assert_user_error,
    enhance_manifest_fast,
    record,
    run_cli,
    speech_like,
    white,
    write_wav,
)


def _manifest(root, ids, kind="noisy", audio=None):
    """One test-split record per id, each with its own 1 s noisy wav (``audio`` maps an id to another file)."""
    root.mkdir(parents=True, exist_ok=True)
    lines = []
    for k, rid in enumerate(ids):
        name = (audio or {}).get(rid, f"rec{k}.wav")
        if not (root / name).exists():
            write_wav(root / name, speech_like(1.0, seed=k) + white(1.0, seed=k))
        lines.append(json.dumps({"id": rid, "split": "test", "kind": kind, "audio": name, "fps": 30.0}))
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return root / "manifest.jsonl"


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize("bad_id", ["../escaped", "/tmp/absolute", "a/../../x", "sub\\x", "", ".", "a//b", "x/"])
def test_ids_that_would_leave_the_out_dir_are_refused(avae, tmp_path, bad_id):
    manifest = _manifest(tmp_path / "c", ["fine", bad_id])
    before = _files(tmp_path)
    res = enhance_manifest_fast(avae, manifest, tmp_path / "out", "--overwrite")
    assert_user_error(res, "cannot name an output file")
    after = _files(tmp_path)
    record(data_loss=after != before)
    assert after == before  # nothing written anywhere


@pytest.mark.parametrize("ids", [["a", "a"], ["x", "X"], ["sub/a", "SUB/A"]])
def test_colliding_ids_are_refused(avae, tmp_path, ids):
    manifest = _manifest(tmp_path / "c", ids)
    assert_user_error(enhance_manifest_fast(avae, manifest, tmp_path / "out"), repr(ids[1]))
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").rglob("*.wav"))


def test_an_output_that_is_an_input_is_refused(avae, tmp_path):
    root = tmp_path / "c"
    manifest = _manifest(root, ["rec0", "rec1"])  # rec0.wav is the audio of record "rec0"
    before = (root / "rec0.wav").read_bytes()
    for extra in ((), ("--overwrite",)):
        assert_user_error(
            enhance_manifest_fast(avae, manifest, root, *extra), "would replace the audio input of record"
        )
    record(data_loss=(root / "rec0.wav").read_bytes() != before)
    assert (root / "rec0.wav").read_bytes() == before


def test_nested_ids_write_into_sub_folders_and_noisy_records_are_enhanced(avae, tmp_path):
    manifest = _manifest(tmp_path / "c", ["spk1/utt1", "spk1/utt2", "spk2/utt1"])
    out = tmp_path / "out"
    res = enhance_manifest_fast(avae, manifest, out)
    assert res.exit_code == 0, res.output
    assert "enhanced 3 file(s)" in res.output
    assert [f for f in _files(out) if f.endswith(".wav")] == ["spk1/utt1.wav", "spk1/utt2.wav", "spk2/utt1.wav"]
    assert_no_partial_files(out)


def test_clean_records_are_not_enhanced(avae, tmp_path):
    manifest = _manifest(tmp_path / "c", ["a"], kind="clean")
    assert_user_error(enhance_manifest_fast(avae, manifest, tmp_path / "out"), "no records to enhance in split 'test'")


def test_own_recordings_flow_of_docs_data(avae, tmp_path):
    """`prepare folder --split test` on a folder of noisy recordings, then `enhance --manifest ... --out-dir`."""
    rec = tmp_path / "recordings"
    (rec / "sub").mkdir(parents=True)
    for k, name in enumerate(["a.wav", "b.wav", "sub/c.wav"]):
        write_wav(rec / name, speech_like(1.0, seed=k) + white(1.0, seed=k))
    idx = tmp_path / "index"
    res = run_cli("prepare", "folder", "--root", rec, "--split", "test", "--out", idx)
    assert res.exit_code == 0, res.output
    manifest = idx / "manifest.jsonl"
    out = tmp_path / "enhanced"
    res = enhance_manifest_fast(avae, manifest, out)
    assert res.exit_code == 0, res.output
    assert "enhanced 3 file(s)" in res.output
    assert len([f for f in _files(out) if f.endswith(".wav")]) == 3
    assert sorted(p.name for p in rec.rglob("*")) == ["a.wav", "b.wav", "c.wav", "sub"]  # inputs untouched
    assert SR == 16000
