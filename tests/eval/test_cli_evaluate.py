"""`pyro-minvae evaluate` through click's CliRunner on a tiny synthetic manifest."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from eval_synth import build_manifest
from helpers_cli import cli_error_cases
from pyro_minvae.cli.main import cli

FAST = ["--jobs", "1", "--metrics", "si_sdr,stoi", "--no-progress"]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return build_manifest(tmp_path_factory.mktemp("corpus"), snrs=(-5, 0, 5), noises=("white", "pink"), n_clean=1)


def _run(*args):
    return CliRunner().invoke(cli, ["evaluate", *map(str, args)], catch_exceptions=False)


def test_evaluate_prints_table_and_writes_outputs(manifest, tmp_path):
    out = tmp_path / "ev"
    res = _run("--manifest", manifest, "--out", out, "--methods", "noisy,wiener-oracle", "--snr=-5,5", *FAST)
    assert res.exit_code == 0, res.output
    assert "4 files x 2 methods (8 pairs run now)" in res.output
    assert "SI-SDR (dB):" in res.output and "| wiener-oracle |" in res.output and "| -5 dB | 5 dB | all |" in res.output
    for name in ("results.csv", "summary.json", "summary.md", "figures/si_sdr_vs_snr.png"):
        assert (out / name).exists(), name
    assert json.loads((out / "summary.json").read_text())["settings"]["snrs"] == [-5.0, 5.0]
    # rerun: nothing left to do, same summary
    again = _run("--manifest", manifest, "--out", out, "--methods", "noisy,wiener-oracle", "--snr=-5,5", *FAST)
    assert again.exit_code == 0 and "(0 pairs run now)" in again.output


def test_limit_and_default_methods(manifest, tmp_path):
    res = _run("--manifest", manifest, "--out", tmp_path / "ev", "--limit", "2", "--no-figures", *FAST)
    assert res.exit_code == 0, res.output
    assert "2 files x 4 methods" in res.output
    assert not (tmp_path / "ev" / "figures").exists()


def test_failed_file_gives_exit_1_and_lists_it(tmp_path):
    m = build_manifest(tmp_path / "corpus", snrs=(0,), noises=("white", "pink"), n_clean=1)
    (tmp_path / "corpus" / "mix0_pink_0.wav").write_bytes(b"not audio")
    res = CliRunner().invoke(
        cli, ["evaluate", "--manifest", str(m), "--out", str(tmp_path / "ev"), "--methods", "noisy", *FAST]
    )
    assert res.exit_code == 1
    assert "1 failed (method, file) pair(s):" in res.output
    assert "noisy c0_pink_0: file:" in res.output and "not a readable audio file" in res.output
    assert (tmp_path / "ev" / "summary.md").exists()


@cli_error_cases(
    {
        "--methods nope": "unknown method(s) nope",
        "--metrics si_sdr,bogus": "--metrics: unknown bogus",
        "--checkpoint justapath.pt": "expected LABEL=PATH (e.g. --checkpoint mine=run/ckpt.pt) or a shipped model",
        "-c a=nofile.pt": "nofile.pt: checkpoint not found; pass a trained checkpoint file or a shipped model",
        "--snr loud": "give SNRs in dB",
        "--split train": "no mixture records in split 'train'",
        "--video-degrade blur:1": "expected NAME:VALUE",
        "--shard 3/2": "expected k/N",
    }
)
def test_user_errors_are_one_line_exit_2(manifest, tmp_path, args, message):
    res = CliRunner().invoke(
        cli, ["evaluate", "--manifest", str(manifest), "--out", str(tmp_path / "ev"), *FAST, *args]
    )  # later options win
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output


def test_missing_default_manifest_says_how_to_fix():
    res = CliRunner().invoke(cli, ["evaluate", *FAST])
    assert res.exit_code == 2
    assert "run `pyro-minvae prepare demo` first" in res.output


def test_shards_share_one_output_and_a_final_run_summarises(manifest, tmp_path):
    out = tmp_path / "ev"
    common = ["--manifest", manifest, "--out", out, "--methods", "noisy", "--no-figures", *FAST]
    first = _run(*common, "--shard", "1/2")
    second = _run(*common, "--shard", "2/2")
    assert first.exit_code == 0 and second.exit_code == 0
    assert "3 files x 1 methods (3 pairs run now)" in first.output
    assert "3 files x 1 methods (3 pairs run now)" in second.output
    final = _run(*common)
    assert final.exit_code == 0 and "6 files x 1 methods (0 pairs run now)" in final.output
    summ = json.loads((out / "summary.json").read_text())
    assert summ["settings"]["n_files"] == 6 and summ["snrs"] == [-5.0, 0.0, 5.0]


def test_redo_changed_keeps_unchanged_results_and_refuses_shards(manifest, tmp_path):
    out = tmp_path / "ev"
    common = ["--manifest", manifest, "--out", out, "--methods", "noisy", "--no-figures", *FAST]
    assert _run(*common).exit_code == 0
    again = _run(*common, "--redo-changed")  # nothing changed: nothing runs again
    assert again.exit_code == 0 and "(0 pairs run now)" in again.output, again.output
    sharded = _run(*common, "--redo-changed", "--shard", "1/2")
    assert sharded.exit_code == 2 and "run it without --shard" in sharded.output
    assert len(sharded.output.strip().splitlines()) == 1


def test_an_option_list_that_names_nothing_is_refused_not_taken_as_all():
    from pyro_minvae.cli.choices import comma_list, snr_list
    from pyro_minvae.errors import UserInputError

    assert comma_list(None, "--methods") is None and comma_list(" a, b ,", "--methods") == ["a", "b"]
    assert snr_list("-5,0") == [-5.0, 0.0]
    for value in ("", " , "):
        with pytest.raises(UserInputError, match="--methods .* names nothing"):
            comma_list(value, "--methods")
    with pytest.raises(UserInputError, match="give SNRs in dB"):
        snr_list("loud")


def test_a_shipped_model_is_named_like_a_file(manifest, tmp_path):
    """``-c LABEL=NAME`` evaluates a shipped model (as ``enhance -c NAME`` enhances with it)."""
    from pyro_minvae.pretrained import pretrained_path

    out = tmp_path / "ev"
    res = _run("--manifest", manifest, "--out", out, "-c", "a=avae", "--methods", "a-fast", "--snr=-5", "--limit", 1)
    assert res.exit_code == 0, res.output
    assert "1 files x 1 methods" in res.output
    identity = json.loads((out / "run_identity.json").read_text())
    assert str(pretrained_path("avae")) in identity["methods"]["a-fast"]


def test_a_shipped_models_name_alone_is_its_own_label(manifest, tmp_path):
    """``-c avae`` is ``-c avae=avae`` (the way ``enhance`` and ``tune`` name shipped models)."""
    from pyro_minvae.pretrained import pretrained_path

    out = tmp_path / "ev"
    res = _run("--manifest", manifest, "--out", out, "-c", "avae", "--methods", "avae-fast", "--snr=-5", "--limit", 1)
    assert res.exit_code == 0, res.output
    identity = json.loads((out / "run_identity.json").read_text())
    assert str(pretrained_path("avae")) in identity["methods"]["avae-fast"]
