"""The options `evaluate` and `tune` share (cli/common.scoring_options, resolve_manifest, choices.metric_list):
the same names, defaults, default manifest and one-line errors in both commands."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from pyro_minvae.cli.main import cli
from pyro_minvae.paths import cache_dir

SHARED = {"manifest", "split", "out", "jobs", "limit", "snr", "noise", "metrics", "seed"}


def _command_args(command: str, tmp_path) -> list[str]:
    """Enough arguments for the command to get past its own checks to the shared ones."""
    if command == "evaluate":
        return ["evaluate", "--no-progress"]
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"")  # tune checks only that it exists before the shared options
    return ["tune", "--checkpoint", str(ckpt), "--setting", "a", "--no-progress"]


@pytest.mark.parametrize("command, split, out", [("evaluate", "test", "evaluation"), ("tune", "valid", "tuning")])
def test_both_commands_have_the_shared_options(command, split, out):
    params = {p.name: p for p in cli.commands[command].params}
    assert SHARED <= set(params)
    assert params["split"].default == split and params["out"].default == out and params["jobs"].default == 2


@pytest.mark.parametrize("command", ["evaluate", "tune"])
def test_default_manifest_is_the_demo_corpus_else_demo_small(command, tmp_path):
    args = _command_args(command, tmp_path)
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 2 and "manifest not found; run `pyro-minvae prepare demo` first" in res.output
    small = cache_dir() / "corpora" / "demo-small" / "manifest.jsonl"
    small.parent.mkdir(parents=True)
    small.write_text("")
    res = CliRunner().invoke(cli, [*args, "--metrics", "bogus"])
    assert res.exit_code == 2 and "manifest not found" not in res.output  # demo-small was taken
    assert "--metrics: unknown bogus; valid:" in res.output and len(res.output.strip().splitlines()) == 1


@pytest.mark.parametrize("command", ["evaluate", "tune"])
@pytest.mark.parametrize(
    "extra, message",
    [
        (["--metrics", ","], "--metrics ',' names nothing"),
        (["--jobs", "0"], "'--jobs': 0 is not in the range x>=1"),
        (["--limit", "0"], "'--limit': 0 is not in the range x>=1"),
    ],
)
def test_shared_option_errors_are_one_line(command, extra, message, tmp_path):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("")
    res = CliRunner().invoke(cli, [*_command_args(command, tmp_path), "--manifest", str(manifest), *extra])
    assert res.exit_code == 2, res.output
    assert message in res.output and len(res.output.strip().splitlines()) == 1
