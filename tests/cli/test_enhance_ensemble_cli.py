"""`pyro-minvae enhance` with several --checkpoint (an ensemble) through click's CliRunner: the file equals the
Python API's ensemble output, manifest mode writes the same audio and stamps every member, one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner

from pyro_minvae.checkpoint import save_checkpoint
from pyro_minvae.cli.main import cli
from pyro_minvae.features import FeatureConfig
from pyro_minvae.models import build_model

CFG = FeatureConfig(n_fft=128, win_length=128, hop_length=64)
SR = CFG.sample_rate
FAST = ["--method", "fast", "--iterations", "1"]


def _run(*args):
    return CliRunner().invoke(cli, ["enhance", *map(str, args)], catch_exceptions=False)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("ens")
    torch.manual_seed(0)
    for name, dim in (("a", 4), ("b", 3)):
        save_checkpoint(d / f"{name}.pt", build_model("avae", input_dims={"audio": CFG.n_freq}, latent_dim=dim), CFG)
    x = 0.3 * np.random.default_rng(0).standard_normal(int(1.2 * SR))
    sf.write(d / "noisy.wav", x.astype(np.float32), SR, subtype="PCM_16")
    return d


def test_two_checkpoints_enhance_as_the_python_ensemble(files, tmp_path):
    from pyro_minvae.enhancement import Enhancer

    res = _run("-c", files / "a.pt", "-c", files / "b.pt", files / "noisy.wav", "-o", tmp_path / "e.wav", *FAST)
    assert res.exit_code == 0, res.output
    assert "z initialised from the audio / audio encoders, one per model" in res.output
    enh = Enhancer.from_checkpoint([files / "a.pt", files / "b.pt"], method="fast", iterations=1)
    expected = enh.enhance_file(files / "noisy.wav", tmp_path / "py.wav").output
    np.testing.assert_array_equal(sf.read(tmp_path / "e.wav")[0], sf.read(expected)[0])
    one = _run("-c", files / "a.pt", files / "noisy.wav", "-o", tmp_path / "a.wav", *FAST)
    assert one.exit_code == 0 and not np.array_equal(sf.read(tmp_path / "a.wav")[0], sf.read(expected)[0])


def test_manifest_mode_with_an_ensemble_stamps_every_member(files, tmp_path):
    recs = [{"id": "m0", "split": "test", "kind": "mixture", "audio": str(files / "noisy.wav")}]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    args = ["--manifest", tmp_path / "m.jsonl", "--out-dir", tmp_path / "out", "--jobs", "1", *FAST]
    res = _run("-c", files / "a.pt", "-c", files / "b.pt", *args)
    assert res.exit_code == 0, res.output
    single = _run("-c", files / "a.pt", "-c", files / "b.pt", files / "noisy.wav", "-o", tmp_path / "e.wav", *FAST)
    assert single.exit_code == 0
    np.testing.assert_array_equal(sf.read(tmp_path / "out" / "m0.wav")[0], sf.read(tmp_path / "e.wav")[0])
    stamp = json.loads((tmp_path / "out" / "enhance-stamp.json").read_text())
    assert stamp["checkpoint_sha256"].count("+") == 1  # both members' contents
    assert stamp["config"]["restart_starts"] == [None, 0.25, 0.5, 1.0]  # as the members run: the ensemble's schedule
    again = _run("-c", files / "a.pt", "-c", files / "b.pt", *args)  # the same run again resumes: nothing to do
    assert again.exit_code == 0 and "enhanced 0 file(s)" in again.output, again.output
    other = _run("-c", files / "b.pt", "-c", files / "a.pt", *args)  # another ensemble (order = first member)
    assert other.exit_code == 2 and "Traceback" not in other.output


@pytest.mark.parametrize(
    "extra, message",
    [
        (["-c", "A", "-c", "A"], "the same model is given twice"),
        (["-c", "A", "-c", "A2"], "the same model is given twice"),  # a link to the same file
        (
            ["-c", "A", "-c", "B", "--manifest", "M", "--out-dir", "O", "--batch-size", "2", "--method", "mcem"],
            "an ensemble enhances each record with its models in turn",
        ),
        (["-c", "A", "-c", "B", "--init", "lips"], "--init lips: this checkpoint's encoders are audio"),
    ],
)
def test_ensemble_errors_are_one_line(files, tmp_path, extra, message):
    recs = [{"id": "m0", "split": "test", "kind": "mixture", "audio": str(files / "noisy.wav")}]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    (tmp_path / "link.pt").symlink_to(files / "a.pt")
    subs = {"A": files / "a.pt", "A2": tmp_path / "link.pt", "B": files / "b.pt"}
    subs.update(M=tmp_path / "m.jsonl", O=tmp_path / "o")
    extra = [str(subs.get(e, e)) for e in extra]
    io = [] if "--manifest" in extra else [files / "noisy.wav", "-o", tmp_path / "x.wav"]
    res = CliRunner().invoke(cli, ["enhance", *map(str, io), *extra])
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1
