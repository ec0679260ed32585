"""Shipped models: the files load and match their cards, `--checkpoint` names resolve, enhancement works without
a checkpoint argument, the export keeps the weights (float16 storage) and the packaging ships the files."""

from __future__ import annotations

import configparser
import fnmatch
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner

from pyro_minvae import Enhancer
from pyro_minvae.checkpoint import load_checkpoint, load_model, save_checkpoint
from pyro_minvae.cli.main import cli
from pyro_minvae.data.manifest import sha256_file
from pyro_minvae.errors import UserInputError
from pyro_minvae.features import FeatureConfig
from pyro_minvae.models import build_model
from pyro_minvae.pretrained import CATALOGUE, DEFAULT, available, pretrained_path, resolve_checkpoint
from pyro_minvae.pretrained.card import CardInputs, render_card
from pyro_minvae.pretrained.export import compact_weights, export_checkpoint

REPO = Path(__file__).resolve().parents[1]
SR = 16000


def _noisy(path: Path, seconds: float = 1.0) -> Path:
    t = np.arange(int(seconds * SR)) / SR
    x = 0.2 * np.sin(2 * np.pi * 220 * t) + 0.05 * np.random.default_rng(0).standard_normal(t.size)
    sf.write(path, x.astype(np.float32), SR, subtype="PCM_16")
    return path


@pytest.mark.parametrize("name", list(CATALOGUE))
def test_every_shipped_model_loads_and_its_card_describes_these_bytes(name):
    path = pretrained_path(name)
    model, cfg, meta = load_model(path)
    assert model.spec["family"] == name
    assert path.stat().st_size < 8e6, "a shipped model must stay small"
    card = CATALOGUE[name].card.read_text()
    assert sha256_file(path) in card, "the card was written for another file: re-run `make pretrained`"
    assert f"{meta['best_valid_elbo']:.1f}" in card
    assert "PESQ" in card and "ESTOI" in card


def test_available_lists_the_default_first():
    assert available()[0] == DEFAULT == "minvae"
    assert set(available()) == set(CATALOGUE)


def test_resolve_checkpoint_names_paths_and_errors(tmp_path, monkeypatch):
    assert resolve_checkpoint(None) == pretrained_path("minvae")
    assert resolve_checkpoint("avae") == pretrained_path("avae")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "avae").write_bytes(b"x")  # an existing file always wins over a shipped name
    assert resolve_checkpoint("avae") == Path("avae")
    (tmp_path / "runs").mkdir()
    with pytest.raises(UserInputError, match=r"runs: is a folder; pass the checkpoint file inside it"):
        resolve_checkpoint("runs")
    with pytest.raises(UserInputError, match=r"nope\.pt: checkpoint not found; .*minvae, avae, avcvae"):
        resolve_checkpoint("nope.pt")
    with pytest.raises(UserInputError, match="no shipped model of that name"):
        pretrained_path("resnet")


def test_a_missing_shipped_file_is_one_line(monkeypatch, tmp_path):
    import pyro_minvae.pretrained as pretrained

    monkeypatch.setattr(pretrained, "PACKAGE_DIR", tmp_path)
    with pytest.raises(UserInputError, match=r"minvae\.pt: the shipped model 'minvae' is missing"):
        resolve_checkpoint(None)
    assert available() == ()


def test_enhance_without_checkpoint_uses_the_shipped_minvae(tmp_path):
    noisy = _noisy(tmp_path / "noisy.wav")
    out = tmp_path / "out.wav"
    res = CliRunner().invoke(cli, ["enhance", str(noisy), "-o", str(out), "--iterations", "2"])
    assert res.exit_code == 0, res.output
    y, sr = sf.read(out)
    assert sr == SR and y.shape == sf.read(noisy)[0].shape and np.isfinite(y).all()
    res = CliRunner().invoke(
        cli, ["enhance", "-c", "avae", str(noisy), "-o", str(tmp_path / "a.wav"), *("--method", "fast")]
    )
    assert res.exit_code == 0, res.output


def test_enhancer_from_pretrained_matches_from_checkpoint():
    x = np.random.default_rng(1).standard_normal(SR // 2).astype(np.float32) * 0.1
    a = Enhancer.from_pretrained("avae", method="fast", iterations=2).enhance_waveform(x, SR, seed=3).waveform
    b = Enhancer.from_checkpoint(pretrained_path("avae"), method="fast", iterations=2).enhance_waveform(x, SR, seed=3)
    torch.testing.assert_close(a, b.waveform)
    with pytest.raises(UserInputError, match="no shipped model"):
        Enhancer.from_pretrained("vae")


def test_export_keeps_weights_to_float16_precision_and_drops_training_state(tmp_path):
    cfg = FeatureConfig(n_fft=128, win_length=128, hop_length=64)
    torch.manual_seed(0)
    model = build_model("avae", input_dims={"audio": cfg.n_freq}, latent_dim=4)
    opt = torch.optim.Adam(model.parameters())
    source = save_checkpoint(tmp_path / "best.pt", model, cfg, optimizer=opt, best_valid_elbo=12.5)
    shipped = export_checkpoint(source, tmp_path / "shipped.pt")
    assert shipped["optimizer_state"] is None and shipped["rng"] == {}
    assert shipped["extra"]["exported_from"] == "sha256:" + sha256_file(source)
    assert all(t.dtype == torch.float16 for t in shipped["model_state"].values() if t.is_floating_point())
    loaded, _, meta = load_model(tmp_path / "shipped.pt")
    assert meta["best_valid_elbo"] == 12.5
    for (name, p), q in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert q.dtype == p.dtype == torch.float32, name
        torch.testing.assert_close(q, p, rtol=1e-3, atol=1e-4)
    load_checkpoint(tmp_path / "shipped.pt")  # its own checksum holds
    export_checkpoint(source, tmp_path / "again.pt")  # same weights, same bytes: the card's sha256 is reproducible
    assert (tmp_path / "again.pt").read_bytes() == (tmp_path / "shipped.pt").read_bytes()


def test_compact_weights_keeps_what_float16_cannot_hold():
    out = compact_weights({"big": torch.tensor([1e6]), "ok": torch.tensor([0.5]), "ints": torch.tensor([3])})
    assert out["big"].dtype == torch.float32 and out["ok"].dtype == torch.float16 and out["ints"].dtype == torch.int64


def test_card_names_file_hash_settings_and_the_rendered_mouths(tmp_path):
    path = pretrained_path("minvae")
    state = load_checkpoint(path)
    rows = [{"id": "a", "si_sdr_float32": 3.0, "si_sdr_shipped": 3.02}]
    text = render_card(CardInputs("minvae", "MIN-VAE", state, path, storage_check=rows, commands=["make x"]))
    assert sha256_file(path) in text and "make x" in text
    assert "Largest difference 0.020 dB" in text
    assert "rendered" in text and "Not measured." in text  # no evaluation summary given
    assert "Known problem" not in text
    warned = render_card(CardInputs("avcvae", "AV-CVAE", state, path, caveat="It ignores the lips."))
    assert "### Known problem\nIt ignores the lips." in warned


def test_setup_cfg_ships_every_subpackage_and_the_model_files():
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    listed = set(cfg["options"]["packages"].split())
    found = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "pyro_minvae").rglob("__init__.py")}
    assert found <= listed, f"not packaged: {sorted(found - listed)}"
    patterns = [p.strip() for p in cfg["options.package_data"]["pyro_minvae.pretrained"].split(",")]
    for m in CATALOGUE.values():
        for f in (m.path, m.card):
            assert any(fnmatch.fnmatch(f.name, pat) for pat in patterns), f.name
    assert re.search(r"pyro_minvae\.pretrained\b", cfg["options"]["packages"])
