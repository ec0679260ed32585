"""`pyro-minvae train` through click's CliRunner on a tiny fake corpus."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parents[1] / "models"))

from fake_corpus import make_fake_corpus  # noqa: E402
from pyro_minvae.checkpoint import load_checkpoint, load_model  # noqa: E402
from pyro_minvae.cli.main import cli  # noqa: E402


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return make_fake_corpus(tmp_path_factory.mktemp("corpus"), n_train=2, n_valid=1)


def _run(*args):
    return CliRunner().invoke(cli, ["-q", "train", "--no-progress", *map(str, args)], catch_exceptions=False)


def test_train_minvae_writes_checkpoints_and_reports_responsibilities(manifest, tmp_path):
    out = tmp_path / "run"
    args = ["--model", "minvae", "--encoders", "audio,lips", "--manifest", manifest, "--out", out]
    args += ["--batch-size", 16, "--latent-dim", 4, "--responsibilities", "epoch", "--max-frames", 40]
    res = _run(*args, "--epochs", 2)
    assert res.exit_code == 0, res.output
    assert "minvae: 2 epochs, best valid ELBO" in res.output
    assert "audio: mean q" in res.output and "lips: mean q" in res.output
    for name in ("last.pt", "best.pt", "log.csv", "responsibilities.json", "summary.json"):
        assert (out / name).exists(), name
    model, cfg, meta = load_model(out / "best.pt")
    assert model.spec["family"] == "minvae" and model.latent_dim == 4
    assert meta["train_config"]["responsibilities"] == "epoch" and meta["train_config"]["max_frames"] == 40
    # --resume continues to the new epoch count
    res = _run(*args, "--epochs", 3, "--resume")
    assert res.exit_code == 0, res.output
    assert load_checkpoint(out / "last.pt")["epoch"] == 3


def test_kl_weight_is_stored_and_a_resume_may_not_change_it(manifest, tmp_path):
    out = tmp_path / "beta"
    args = ["--model", "avae", "--manifest", manifest, "--out", out, "--batch-size", 16, "--latent-dim", 4]
    args += ["--max-frames", 40, "--epochs", 1]
    res = _run(*args, "--kl-weight", 2)
    assert res.exit_code == 0, res.output
    assert load_checkpoint(out / "best.pt")["train_config"]["kl_weight"] == 2.0
    res = CliRunner().invoke(cli, ["train", "--no-progress", *map(str, args), "--epochs", 2, "--resume"])
    assert res.exit_code == 2 and "kl_weight: 2.0 in the checkpoint, 1.0 now" in res.output, res.output


def test_train_default_out_dir_and_init_from(manifest, tmp_path):
    from pyro_minvae.paths import cache_dir

    res = _run("--model", "avae", "--manifest", manifest, "--epochs", 1, "--latent-dim", 4)
    assert res.exit_code == 0, res.output
    avae = cache_dir() / "runs" / "avae" / "best.pt"
    assert avae.exists()
    # a tiny learning rate: one epoch leaves the warm-started decoder where the A-VAE left it
    warm_start = ["--lr", "1e-12", "--init-from", avae, "--out", tmp_path / "m"]
    res = _run("--model", "minvae", "--manifest", manifest, "--epochs", 1, "--latent-dim", 4, *warm_start)
    assert res.exit_code == 0, res.output
    a, m = load_model(avae)[0], load_model(tmp_path / "m" / "last.pt")[0]
    torch.testing.assert_close(a.decoder.out.weight, m.decoder.out.weight, rtol=0, atol=1e-8)


@pytest.mark.parametrize(
    "args,message",
    [
        (["--model", "nope"], "unknown model 'nope'; valid models: avae, avcvae, markov-vae, minvae, vae"),
        (["--model", "minvae", "--encoders", "audio,ears"], "unknown encoder 'ears'; valid encoders:"),
        (["--model", "vae", "--encoders", "audio,lips"], "takes exactly one encoder"),
        (["--model", "avae", "--resume"], "nothing to resume"),
        (["--model", "avae", "--init-from", "missing.pt"], "missing.pt: checkpoint not found"),
        (["--model", "avae", "--epochs", "0"], "--epochs 0: must be a whole number >= 1"),
        (["--model", "minvae", "--encoders", "audio,audio"], "audio given twice"),
        (["--model", "avae", "--lr", "nan"], "--lr nan: the learning rate must be a finite number > 0"),
        (["--model", "avae", "--resume", "--overwrite"], "give only one"),
    ],
)
def test_bad_options_give_one_line_errors(manifest, tmp_path, args, message):
    res = CliRunner().invoke(
        cli, ["train", "--manifest", str(manifest), "--out", str(tmp_path / "o"), "--epochs", "1"] + args
    )
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1


def test_missing_manifest_is_a_user_error(tmp_path):
    res = CliRunner().invoke(cli, ["train", "--manifest", str(tmp_path / "none.jsonl"), "--out", str(tmp_path)])
    assert res.exit_code == 2 and "none.jsonl: manifest not found" in res.output
