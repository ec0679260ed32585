import pytest
import torch

from pyro_minvae.cli.train import parse_encoder_options, parse_model_args
from pyro_minvae.errors import UserInputError
from pyro_minvae.models import build_model
from pyro_minvae.models.families import check_model_kwargs


def test_parse_model_args_json_and_bare_words():
    assert parse_model_args(["learn_weights=true", "prior=mog-mixture", "latent_dim=8"]) == {
        "learn_weights": True,
        "prior": "mog-mixture",
        "latent_dim": 8,
    }
    with pytest.raises(UserInputError, match="KEY=VALUE"):
        parse_model_args(["novalue"])


def test_parse_encoder_options():
    assert parse_encoder_options(["lips.pool=4", "lips.hidden=[128]"]) == {"lips": {"pool": 4, "hidden": [128]}}
    with pytest.raises(UserInputError, match="MODALITY.KEY=VALUE"):
        parse_encoder_options(["pool=4"])
    with pytest.raises(UserInputError, match="JSON"):
        parse_encoder_options(["lips.hidden=[128"])


def test_unknown_model_argument_lists_valid_ones():
    with pytest.raises(ValueError, match="no argument.*foo; valid: latent_dim, decoder"):
        check_model_kwargs("avae", {"foo": 1})


def test_pooled_lips_encoder_reads_full_roi_and_is_smaller():
    from pyro_minvae.nn.encoders import PAPER_LIPS

    dims = {"audio": 513, "lips": 4489}
    full = build_model("minvae", input_dims=dims, encoder_options={"lips": PAPER_LIPS})
    pooled = build_model("minvae", input_dims=dims)  # the default lips encoder is the pooled one
    n_full = sum(p.numel() for p in full.guide_net.encoders[1].parameters())
    n_pooled = sum(p.numel() for p in pooled.guide_net.encoders[1].parameters())
    assert n_pooled < n_full / 20
    batch = {"audio": torch.rand(5, 513), "lips": torch.rand(5, 4489)}
    assert pooled.init_latents(batch, prefer="lips").shape == (5, 32)
    # pooling a constant image keeps the constant: the encoder sees averaged pixels, not sums
    pool = pooled.guide_net.encoders[1].pre
    assert torch.allclose(pool(torch.full((2, 4489), 0.5)), torch.full((2, 256), 0.5))
    with pytest.raises(ValueError, match="not among the encoders"):
        build_model("minvae", input_dims=dims, encoder_options={"landmarks": {}})
    # the spec records every encoder's sizes, defaults included, so checkpoints never depend on today's defaults
    assert pooled.spec["kwargs"]["encoder_options"]["lips"] == {"hidden": [128], "pool": None}  # None: 4 here
    assert full.spec["kwargs"]["encoder_options"]["lips"] == PAPER_LIPS
    vvae = build_model("vae", input_dims=dims, encoder="lips", encoder_options={"lips": {"pool": 2}})
    assert vvae.spec["kwargs"]["encoder_options"] == {"lips": {"hidden": [128], "pool": 2}}
    assert build_model("avae", input_dims=dims).spec["kwargs"]["encoder_options"] == {"audio": {"hidden": [128]}}


def test_plugin_registers_a_kernel_usable_by_name(tmp_path):
    from click.testing import CliRunner

    from pyro_minvae.cli.main import cli
    from pyro_minvae.registry import KERNELS

    plugin = tmp_path / "my_plugin.py"
    plugin.write_text(
        "from pyro_minvae.registry import KERNELS\n"
        "from pyro_minvae.infer.kernels import FrameMH\n"
        "if 'plugin-mh' not in KERNELS:\n    KERNELS.register('plugin-mh', FrameMH)\n"
    )
    runner = CliRunner()
    res = runner.invoke(cli, ["enhance", "-c", str(tmp_path / "x.pt"), "--kernel", "plugin-mh", "a.wav", "-o", "b.wav"])
    assert res.exit_code == 2 and "unknown kernel 'plugin-mh'; valid kernels: " in res.output
    res = runner.invoke(
        cli,
        [
            "--plugin",
            str(plugin),
            "enhance",
            "-c",
            str(tmp_path / "x.pt"),
            "--kernel",
            "plugin-mh",
            "a.wav",
            "-o",
            "b.wav",
        ],
    )
    assert "plugin-mh" in KERNELS
    assert res.exit_code == 2 and "x.pt" in res.output  # got past the kernel check to the missing checkpoint
    res = runner.invoke(cli, ["--plugin", "no_such_module_xyz", "enhance", "--help"])
    assert res.exit_code == 2 and "no module named 'no_such_module_xyz'" in res.output
    res = runner.invoke(cli, ["enhance", "-c", "x.pt", "--kernel", "frame-mh", "--method", "fast", "a.wav", "-o", "b"])
    assert res.exit_code == 2 and "use it with --method mcem" in res.output
