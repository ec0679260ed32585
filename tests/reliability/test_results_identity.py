"""Reliability, results tied to what made them: `evaluate` and `enhance --manifest` resume only into folders
written by the same checkpoint *contents* and settings, refuse (one line, exit 2) otherwise, and two runs into
one `enhance` output folder refuse."""

from __future__ import annotations

import csv
import json

from reliability_helpers import (
    assert_no_partial_files,
    assert_user_error,
    enhance_manifest_args,
    enhance_manifest_fast,
    evaluate_args,
    make_checkpoint,
    make_mixture_corpus,
    record,
    run_cli,
)


def _evaluate(manifest, out, ckpt, *extra):
    return run_cli(*evaluate_args(manifest, out, *extra, checkpoints={"m": ckpt}, methods="m-fast", metrics="si_sdr"))


def test_evaluate_refuses_results_of_a_retrained_checkpoint_at_the_same_path(tmp_path):
    manifest = make_mixture_corpus(tmp_path / "c", n_good=2, bad=(), with_lips=True)
    ckpt = make_checkpoint(tmp_path / "run" / "best.pt", "minvae", seed=0)
    out = tmp_path / "eval"
    assert _evaluate(manifest, out, ckpt, "--limit", "1").exit_code == 0
    make_checkpoint(ckpt, "minvae", seed=1)  # re-trained into the same path
    before = (out / "results.csv").read_bytes()
    res = _evaluate(manifest, out, ckpt)
    assert_user_error(res, "were made with another checkpoint")
    assert "--restart" in res.output
    record(data_loss=(out / "results.csv").read_bytes() != before)
    assert (out / "results.csv").read_bytes() == before
    res = _evaluate(manifest, out, ckpt, "--restart")
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader((out / "results.csv").read_text().splitlines()))
    assert sorted(r["id"] for r in rows) == ["good-00", "good-01"]  # only the new model's rows
    assert _evaluate(manifest, out, ckpt).exit_code == 0  # same contents: resumes (nothing to do)
    assert_no_partial_files(out)


def test_enhance_refuses_an_out_dir_written_by_another_checkpoint_or_method(tmp_path):
    manifest = make_mixture_corpus(tmp_path / "c", n_good=2, bad=(), with_lips=False)
    a = make_checkpoint(tmp_path / "a.pt", "avae", seed=0)
    b = make_checkpoint(tmp_path / "b.pt", "avae", seed=1)
    out = tmp_path / "out"
    assert enhance_manifest_fast(a, manifest, out).exit_code == 0
    made = {p.name: p.read_bytes() for p in out.glob("*.wav")}
    assert sorted(made) == ["good-00.wav", "good-01.wav"]
    assert_user_error(
        enhance_manifest_fast(b, manifest, out), "holds files enhanced with other settings (checkpoint_sha256"
    )
    assert_user_error(enhance_manifest_fast(a, manifest, out, "--iterations", "2"), "options")
    assert_user_error(run_cli(*enhance_manifest_args(a, manifest, out, method="mcem")), "method fast -> mcem")
    stamp = json.loads((out / "enhance-stamp.json").read_text())
    assert stamp["config"]["restarts"] == 4  # the resolved options, defaults included
    stamp["config"]["restarts"] = 1  # as a version with another default would have written it
    (out / "enhance-stamp.json").write_text(json.dumps(stamp))
    assert_user_error(enhance_manifest_fast(a, manifest, out), "config")
    stamp["config"]["restarts"] = 4
    (out / "enhance-stamp.json").write_text(json.dumps(stamp))
    same = {p.name: p.read_bytes() for p in out.glob("*.wav")} == made
    record(data_loss=not same)
    assert same
    res = enhance_manifest_fast(b, manifest, out, "--overwrite")
    assert res.exit_code == 0 and "enhanced 2 file(s)" in res.output, res.output
    assert {p.name: p.read_bytes() for p in out.glob("*.wav")} != made
    res = enhance_manifest_fast(b, manifest, out)  # same checkpoint and settings: resumes
    assert res.exit_code == 0 and "enhanced 0 file(s)" in res.output, res.output
    assert_no_partial_files(out)


def test_enhance_refuses_outputs_it_did_not_stamp(tmp_path):
    manifest = make_mixture_corpus(tmp_path / "c", n_good=2, bad=(), with_lips=False)
    a = make_checkpoint(tmp_path / "a.pt", "avae")
    out = tmp_path / "out"
    out.mkdir()
    (out / "good-00.wav").write_bytes(b"someone else's file")
    assert_user_error(enhance_manifest_fast(a, manifest, out), "no enhance-stamp.json")
    assert (out / "good-00.wav").read_bytes() == b"someone else's file"


def test_two_enhance_runs_into_one_out_dir_refuse(tmp_path):
    from pyro_minvae.locks import run_lock

    manifest = make_mixture_corpus(tmp_path / "c", n_good=1, bad=(), with_lips=False)
    a = make_checkpoint(tmp_path / "a.pt", "avae")
    out = tmp_path / "out"
    with run_lock(out, "enhance"):  # another run holds the folder
        res = enhance_manifest_fast(a, manifest, out)
    assert_user_error(res, "is writing into this folder")
    assert not list(out.glob("*.wav"))
    assert enhance_manifest_fast(a, manifest, out).exit_code == 0
