from click.testing import CliRunner

from pyro_minvae.cli.main import cli


def test_help_lists_the_four_commands():
    res = CliRunner().invoke(cli, ["--help"])
    assert res.exit_code == 0
    for name in ("prepare", "train", "enhance", "evaluate"):
        assert name in res.output
