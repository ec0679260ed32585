"""Ensembles in the evaluation (``evaluate --ensemble``): their methods, what they score against the E-step on the
ensemble (the oracle), the checkpoints they are tied to, and the one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from eval_synth import build_manifest
from pyro_minvae.cli.main import cli
from pyro_minvae.errors import UserInputError
from pyro_minvae.evaluation import resolve_methods
from pyro_minvae.evaluation.items import load_item, select_items
from pyro_minvae.infer.ensemble import RESTART_STARTS

COMMON = ["--metrics", "si_sdr", "--jobs", "1", "--no-figures", "--no-progress", "--methods", "e-fast"]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return build_manifest(tmp_path_factory.mktemp("corpus"), snrs=(0,), noises=("white",), n_clean=1)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    from pyro_minvae.checkpoint import save_checkpoint
    from pyro_minvae.features import FeatureConfig
    from pyro_minvae.models import build_model

    cfg = FeatureConfig()
    root = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    for name, dim in (("a", 4), ("b", 3)):
        save_checkpoint(root / f"{name}.pt", build_model("avae", input_dims={"audio": cfg.n_freq}, latent_dim=dim), cfg)
    other = FeatureConfig(hop_length=512)
    save_checkpoint(root / "other.pt", build_model("avae", input_dims={"audio": other.n_freq}, latent_dim=4), other)
    return root


def _ckpts(root, *names):
    return {n: root / f"{n}.pt" for n in names}


def test_an_ensemble_method_scores_what_the_estep_gives_on_the_ensemble(manifest, checkpoints):
    from pyro_minvae.checkpoint import load_ensemble
    from pyro_minvae.features import stft
    from pyro_minvae.infer.synthesis import synthesise
    from pyro_minvae.infer.vem import VEMConfig
    from pyro_minvae.registry import ESTEPS

    methods = resolve_methods(None, _ckpts(checkpoints, "a", "b"), {"e": ["a", "b"]})
    assert {"e-fast", "e-mcem", "a-fast", "b-fast"} <= set(methods)
    method = methods["e-fast"]
    assert method.effective_options()["restart_starts"] == RESTART_STARTS  # part of the method's identity
    assert "restart_starts" not in methods["e-mcem"].effective_options()  # one run: nothing to schedule
    assert method.batch_refusal() is not None and method.checkpoint_paths() == tuple(
        str(p) for p in _ckpts(checkpoints, "a", "b").values()
    )
    item = load_item(select_items(manifest)[0], manifest)
    out = method(item.noisy, 16000, video=item.video, seed=3)
    team, cfg, _ = load_ensemble(method.checkpoint_paths())
    x = torch.from_numpy(item.noisy.astype(np.float32))
    scale = 1 / float(x.abs().max())
    spec = stft(x * scale, cfg)
    alone = {"restart_starts": RESTART_STARTS}  # each member alone, restarting as the ensemble's members do
    gains = [(ESTEPS.get("fast")(m, spec, seed=3, **alone).estimate / spec).real for m in team.members]
    pooled = (gains[0].log() + gains[1].log()).div(2).exp()
    density = VEMConfig().synthesis_density  # the pooled gain is synthesised as any estimate is
    expected = (synthesise(x * scale, spec, spec * pooled, cfg, density) / scale).numpy()
    np.testing.assert_allclose(out, expected, atol=1e-5 * float(np.abs(expected).max()))
    single = methods["a-fast"](item.noisy, 16000, video=item.video, seed=3)
    assert not np.allclose(out, single, atol=1e-4)  # the other member changes the output


def test_evaluate_ensemble_from_the_command_line_is_tied_to_every_members_file(manifest, checkpoints, tmp_path):
    args = ["evaluate", "--manifest", str(manifest), "--out", str(tmp_path / "ev"), *COMMON]
    ck = ["--checkpoint", f"a={checkpoints / 'a.pt'}", "--checkpoint", f"b={checkpoints / 'b.pt'}"]
    res = CliRunner().invoke(cli, [*args, *ck, "--ensemble", "e=a,b"])
    assert res.exit_code == 0, res.output
    assert "| e-fast |" in res.output
    identity = json.loads((tmp_path / "ev" / "run_identity.json").read_text())
    assert "+" in json.dumps(identity)  # both members' sha256, joined
    (checkpoints / "b2.pt").write_bytes((checkpoints / "a.pt").read_bytes())  # another member, same labels
    ck2 = ["--checkpoint", f"a={checkpoints / 'a.pt'}", "--checkpoint", f"b={checkpoints / 'b2.pt'}"]
    again = CliRunner().invoke(cli, [*args, *ck2, "--ensemble", "e=a,b"])
    assert again.exit_code == 2 and "Traceback" not in again.output


@pytest.mark.parametrize(
    "ensemble, message",
    [
        ("e=a,c", "no checkpoint labelled c"),
        ("e=a", "needs at least 2 distinct checkpoint labels"),
        ("e=a,a", "needs at least 2 distinct checkpoint labels"),
        ("e=", "expected [NAME=]LABEL,LABEL,..."),
        ("a-fast=a,b", None),  # the name "a-fast-fast" is free: no clash
    ],
)
def test_bad_ensembles_are_one_line_errors(manifest, checkpoints, tmp_path, ensemble, message):
    ck = ["--checkpoint", f"a={checkpoints / 'a.pt'}", "--checkpoint", f"b={checkpoints / 'b.pt'}"]
    args = ["evaluate", "--manifest", str(manifest), "--out", str(tmp_path / "ev"), "--metrics", "si_sdr"]
    args += ["--jobs", "1", "--no-figures", "--methods", "noisy", *ck]
    res = CliRunner().invoke(cli, [*args, "--ensemble", ensemble])
    if message is None:
        assert res.exit_code == 0, res.output
    else:
        assert res.exit_code == 2 and message in res.output and "Traceback" not in res.output


def test_an_ensemble_name_may_not_clash_with_a_checkpoints_methods(checkpoints):
    with pytest.raises(UserInputError, match="from --ensemble a clashes with another method"):
        resolve_methods(None, _ckpts(checkpoints, "a", "b"), {"a": ["a", "b"]})


def test_members_with_other_feature_settings_are_named(checkpoints):
    from pyro_minvae.checkpoint import load_ensemble

    with pytest.raises(UserInputError, match=r"other\.pt: its feature settings .* differ from .*a\.pt's"):
        load_ensemble([checkpoints / "a.pt", checkpoints / "other.pt"])


def test_parse_ensembles():
    from pyro_minvae.evaluation.methods import parse_ensembles

    assert parse_ensembles(["a,b", "av=a, c"]) == {"ensemble": ["a", "b"], "av": ["a", "c"]}
    with pytest.raises(UserInputError, match="a NAME of its own"):
        parse_ensembles(["a,b", "ensemble=c,d"])
