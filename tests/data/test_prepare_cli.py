"""`pyro-minvae prepare ...` through click's CliRunner (no download: the package fetch is replaced by fakes)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from pyro_minvae.cli.main import cli
from pyro_minvae.data.prepare import demo as demo_mod
from prepare_fakes import fake_packages, speechlike, standin_backend


@pytest.fixture
def fake_debian(monkeypatch, tmp_path):
    pk = fake_packages(tmp_path / "debs")
    calls = []

    def fetch(names, root):
        calls.append(tuple(names))
        return pk

    monkeypatch.setattr(demo_mod, "fetch_packages", fetch)
    monkeypatch.setattr(demo_mod, "default_backend", lambda *a, **k: standin_backend())
    return calls


def test_prepare_demo_stats_and_idempotence(fake_debian, tmp_path):
    runner = CliRunner()
    args = ["prepare", "demo", "--cache-dir", str(tmp_path / "c"), "--workers", "1", "--stats", "--no-progress"]
    res = runner.invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "demo corpus written to" in res.output
    assert "test mixtures:" in res.output and "speaker-disjoint splits: yes" in res.output
    assert "lincity-ng-data" in fake_debian[0]
    res2 = runner.invoke(cli, args)
    assert res2.exit_code == 0 and "nothing to do" in res2.output
    assert len(fake_debian) == 1  # the second run did not even fetch
    res3 = runner.invoke(cli, ["prepare", "stats", str(tmp_path / "c/corpora/demo/manifest.jsonl"), "--json"])
    assert res3.exit_code == 0 and '"speaker_overlap": []' in res3.output


def test_prepare_folder_and_bad_input_exit_2(tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    sf.write(str(root / "a.wav"), speechlike(1.0, 0), 16000)
    np.save(root / "a.npy", np.zeros((30, 67, 67), np.uint8))
    runner = CliRunner()
    res = runner.invoke(cli, ["prepare", "folder", "--root", str(root), "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert "manifest:" in res.output
    np.save(root / "a.npy", np.zeros((300, 67, 67), np.uint8))
    res = runner.invoke(cli, ["prepare", "folder", "--root", str(root), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert res.output.strip().startswith("error:") and "a.npy" in res.output
    assert "Traceback" not in res.output
    res = runner.invoke(cli, ["prepare", "ntcd-timit", "--root", str(tmp_path / "missing")])
    assert res.exit_code == 2 and "not a folder" in res.output


def test_prepare_help_lists_subcommands():
    res = CliRunner().invoke(cli, ["prepare", "--help"])
    assert res.exit_code == 0
    for sub in ("demo", "ntcd-timit", "folder", "stats"):
        assert sub in res.output


def test_prepare_folder_skips_unreadable_recordings_and_exits_1(tmp_path):
    """One bad recording among good ones: the good ones are indexed, the bad one is listed, exit code 1."""
    import json

    root = tmp_path / "in"
    root.mkdir()
    for name in ("a", "b"):
        sf.write(str(root / f"{name}.wav"), speechlike(1.0, 0), 16000)
        np.save(root / f"{name}.npy", np.zeros((30, 67, 67), np.uint8))
    (root / "broken.wav").write_bytes(b"RIFF\x00\x00junk" * 20)
    np.save(root / "short.npy", np.zeros((300, 67, 67), np.uint8))
    sf.write(str(root / "short.wav"), speechlike(1.0, 1), 16000)
    runner = CliRunner()
    for _ in range(2):  # the second run finds the folder unchanged and reports the same skipped files
        res = runner.invoke(cli, ["prepare", "folder", "--root", str(root), "--out", str(tmp_path / "o")])
        assert res.exit_code == 1, res.output
        assert "2 recording(s) skipped" in res.output and "broken.wav" in res.output and "short.npy" in res.output
        assert "Traceback" not in res.output
    ids = sorted(json.loads(line)["id"] for line in (tmp_path / "o" / "manifest.jsonl").read_text().splitlines())
    assert ids == ["a", "b"]
    assert not (tmp_path / "o" / "lips" / "short.npy").exists()  # nothing left behind of a skipped recording
