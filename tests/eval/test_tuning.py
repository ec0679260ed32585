"""pyro-minvae tune: paired comparison of E-step settings on the validation split (oracle on synthetic rows,
end to end with a tiny untrained checkpoint, the test split refused)."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from pyro_minvae.checkpoint import save_checkpoint
from pyro_minvae.cli.main import cli
from pyro_minvae.data.manifest import read_manifest, write_manifest
from pyro_minvae.errors import UserInputError
from pyro_minvae.evaluation.summary import ALL
from pyro_minvae.evaluation.tuning import Setting, TuneConfig, compare
from pyro_minvae.features import FeatureConfig
from pyro_minvae.models import build_model

from eval_synth import build_manifest


def _rows():
    rows = []
    for i, (snr, noise) in enumerate([(-5, "white"), (-5, "pink"), (5, "white"), (5, "pink")]):
        for name, shift in (("ref", 0.0), ("new", 1.0 + i)):
            rows.append(
                {
                    "method": name,
                    "id": f"f{i}",
                    "snr_db": snr,
                    "noise_type": noise,
                    "status": "ok",
                    "si_sdr": 10.0 * i + shift,
                    "delta_si_sdr": 2.0 + shift,
                }
            )
    rows.append(
        {
            "method": "new",
            "id": "f9",
            "snr_db": 5,
            "noise_type": "white",
            "status": "ok",
            "si_sdr": 99.0,
            "delta_si_sdr": 99.0,
        }
    )  # no reference value: left out of every average
    return rows


def test_compare_pairs_files_with_the_reference():
    t = compare(_rows(), ["si_sdr"], ["ref", "new"], "ref")
    assert t["n_files"] == 4 and t["snrs"] == [-5.0, 5.0]

    def stats(setting, snr, noise):
        return next(
            g for g in t["groups"] if g["setting"] == setting and g["snr_db"] == snr and g["noise_type"] == noise
        )["stats"]

    allnew = stats("new", ALL, ALL)
    assert allnew["paired_si_sdr"]["mean"] == pytest.approx(2.5) and allnew["paired_si_sdr"]["n"] == 4
    assert allnew["si_sdr"]["mean"] == pytest.approx((0 + 10 + 20 + 30 + 1 + 2 + 3 + 4) / 4)
    assert allnew["better_si_sdr"] == 1.0
    assert stats("new", -5.0, ALL)["paired_si_sdr"]["mean"] == pytest.approx(1.5)
    assert stats("new", ALL, "pink")["paired_si_sdr"]["mean"] == pytest.approx(3.0)
    assert stats("ref", ALL, ALL)["paired_si_sdr"]["mean"] == 0.0


def test_setting_parse_and_config_checks(tmp_path):
    s = Setting.parse("floor:gain_floor=0.1,loop=minvae,update_gain=false")
    assert s == Setting("floor", {"gain_floor": 0.1, "loop": "minvae", "update_gain": False})
    assert Setting.parse("default").options == {}
    mixed = Setting.parse("m:restart_starts=[null,0.25,0.5],restarts=4")  # commas inside a JSON list stay in it
    assert mixed.options == {"restart_starts": [None, 0.25, 0.5], "restarts": 4}
    for bad in ("", "a b", "x:novalue"):
        with pytest.raises(UserInputError):
            Setting.parse(bad)
    common = dict(manifest=tmp_path / "m", out_dir=tmp_path, checkpoint=tmp_path / "c")
    with pytest.raises(UserInputError, match="never on the test split"):
        TuneConfig(settings=[s], split="test", **common)
    with pytest.raises(UserInputError, match="not one of the settings"):
        TuneConfig(settings=[s], reference="nope", **common)
    with pytest.raises(UserInputError, match="distinct"):
        TuneConfig(settings=[s, s], **common)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("tune")
    manifest = build_manifest(root / "data", snrs=(-5, 5), noises=("white",), n_clean=2, duration_s=1.0)
    write_manifest(manifest, [dict(r, split="valid") for r in read_manifest(manifest)])
    torch.manual_seed(0)
    cfg = FeatureConfig()
    ckpt = root / "avae.pt"
    save_checkpoint(ckpt, build_model("avae", input_dims={"audio": cfg.n_freq}, latent_dim=4), cfg)
    return manifest, ckpt


def test_tune_cli_end_to_end(corpus, tmp_path):
    manifest, ckpt = corpus
    out = tmp_path / "tune"
    args = [
        "tune",
        "--checkpoint",
        str(ckpt),
        "--manifest",
        str(manifest),
        "--out",
        str(out),
        "--estep",
        "fast",
        "--jobs",
        "1",
        "--no-progress",
        "--metrics",
        "si_sdr,estoi",
        "--setting",
        "base:iterations=1,grad_steps=1",
        "--setting",
        "floor:iterations=1,grad_steps=1,gain_floor=0.5",
    ]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    table = json.loads((out / "tune.json").read_text())
    assert table["reference"] == "base" and table["n_files"] == 4 and table["split"] == "valid"
    assert table["settings"]["floor"] == {"iterations": 1, "grad_steps": 1, "gain_floor": 0.5}
    md = (out / "tune.md").read_text()
    assert "Paired difference from `base`, per SNR" in md and "| floor |" in md
    assert "paired difference from base" in res.output
    again = CliRunner().invoke(cli, args)  # resumes: nothing is enhanced twice
    assert again.exit_code == 0 and json.loads((out / "tune.json").read_text()) == table


def test_tune_cli_refuses_the_test_split_in_one_line(corpus, tmp_path):
    manifest, ckpt = corpus
    res = CliRunner().invoke(
        cli,
        [
            "tune",
            "--checkpoint",
            str(ckpt),
            "--manifest",
            str(manifest),
            "--split",
            "test",
            "--out",
            str(tmp_path / "t"),
            "--setting",
            "a",
        ],
    )
    assert res.exit_code == 2
    assert res.output.strip().splitlines() == [res.output.strip()] and "never on the test split" in res.output


def test_preset_expands_and_explicit_options_win():
    from pyro_minvae.infer.presets import preset_options

    paper = Setting.parse("paper:preset=paper").resolved("mcem")
    assert paper == preset_options("paper", "mcem") and paper["iterations"] == 100 and paper["h_block"] == 1
    assert "iterations" not in Setting.parse("p:preset=paper").resolved("fast")
    assert Setting.parse("p:preset=paper,iterations=20").resolved("mcem")["iterations"] == 20
    with pytest.raises(UserInputError, match="unknown preset"):
        Setting.parse("p:preset=nope").resolved("mcem")


def test_tune_an_ensemble_of_two_checkpoints(corpus, tmp_path):
    """Repeated --checkpoint tunes the ensemble: a file's score is the ensemble method's, the table names both."""
    import csv

    from pyro_minvae.evaluation.items import load_item, select_items
    from pyro_minvae.evaluation.runner import file_seed
    from pyro_minvae.evaluation.vae_methods import EnsembleMethod
    from pyro_minvae.metrics import score

    manifest, ckpt = corpus
    other = tmp_path / "avae2.pt"
    cfg = FeatureConfig()
    torch.manual_seed(1)
    save_checkpoint(other, build_model("avae", input_dims={"audio": cfg.n_freq}, latent_dim=3), cfg)
    out = tmp_path / "tune"
    args = ["tune", "--checkpoint", str(ckpt), "--checkpoint", str(other), "--manifest", str(manifest)]
    args += ["--out", str(out), "--estep", "fast", "--jobs", "1", "--no-progress", "--metrics", "si_sdr"]
    res = CliRunner().invoke(cli, [*args, "--setting", "base:iterations=1", "--setting", "r1:iterations=1,restarts=1"])
    assert res.exit_code == 0, res.output
    table = json.loads((out / "tune.json").read_text())
    assert table["checkpoint"] == f"{ckpt} + {other}" and table["n_files"] == 4
    item = load_item(select_items(manifest, "valid")[0], manifest)
    wave = EnsembleMethod([ckpt, other], "fast", iterations=1)(item.noisy, 16000, seed=file_seed(0, item.id))
    with open(out / "results.csv", newline="") as f:
        got = [r for r in csv.DictReader(f) if r["method"] == "base" and r["id"] == item.id]
    expected = score(item.clean, wave, item.noisy, 16000, ["si_sdr"])["si_sdr"]
    assert float(got[0]["si_sdr"]) == pytest.approx(expected, abs=1e-3)


def test_a_setting_may_choose_its_own_encoder_start(corpus, tmp_path):
    """``init`` inside a --setting wins over --init (it used to crash: two values for one keyword)."""
    from pyro_minvae.evaluation.tuning import _method_options

    manifest, ckpt = corpus
    out = tmp_path / "tune"
    args = ["tune", "--checkpoint", str(ckpt), "--manifest", str(manifest), "--out", str(out), "--estep", "fast"]
    args += ["--init", "audio", "--jobs", "1", "--no-progress", "--metrics", "si_sdr"]
    res = CliRunner().invoke(cli, [*args, "--setting", "base:iterations=1", "--setting", "own:iterations=1,init=audio"])
    assert res.exit_code == 0, res.output
    assert json.loads((out / "tune.json").read_text())["settings"]["own"] == {"iterations": 1, "init": "audio"}
    settings = [Setting.parse("a:init=lips"), Setting.parse("b")]
    cfg = TuneConfig(manifest=manifest, out_dir=out, checkpoint=ckpt, settings=settings, estep="fast", init="audio")
    assert _method_options(cfg, settings[0])["init"] == "lips"
    assert _method_options(cfg, settings[1])["init"] == "audio"


@pytest.mark.parametrize("option", ["init=lips", 'restart_inits=["mouth"]'])
def test_a_setting_naming_a_missing_encoder_is_refused_before_any_file(corpus, tmp_path, option):
    """The A-VAE has only an audio encoder: the setting is refused in one line, nothing enhanced (it used to fail
    every pair of that setting, one by one, exit 1)."""
    manifest, ckpt = corpus
    out = tmp_path / "tune"
    args = ["tune", "--checkpoint", str(ckpt), "--manifest", str(manifest), "--out", str(out), "--estep", "fast"]
    res = CliRunner().invoke(cli, [*args, "--no-progress", "--setting", "a", "--setting", f"b:{option}"])
    assert res.exit_code == 2, res.output
    assert res.output.strip().splitlines() == [res.output.strip()]
    assert res.output.startswith("error: --setting b:") and "this checkpoint's encoders are audio" in res.output
    assert not (out / "results.csv").exists()


def test_a_shipped_model_is_named_like_a_file(corpus, tmp_path):
    """``tune -c avae`` reads the shipped A-VAE: its settings are checked against that model (audio only)."""
    manifest, _ = corpus
    args = ["tune", "-c", "avae", "--manifest", str(manifest), "--out", str(tmp_path / "t"), "--estep", "fast"]
    res = CliRunner().invoke(cli, [*args, "--setting", "a", "--setting", "b:init=lips"])
    assert res.exit_code == 2 and "error: --setting b: --init lips: this checkpoint's encoders are audio" in res.output
    res = CliRunner().invoke(cli, [*args, "-c", "nofile.pt", "--setting", "a"])
    assert res.exit_code == 2 and "nofile.pt: checkpoint not found; pass a trained checkpoint file" in res.output
