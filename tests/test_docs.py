"""The documentation stays in sync with the code: every `pyro-minvae ...` command line shown in docs/ and the
README uses sub-commands and options that exist, every page in the nav exists, and the site builds with
``mkdocs build --strict`` when MkDocs is installed (``pip install -e '.[docs]'``)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import click
import pytest

from pyro_minvae.cli.main import cli

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]


def command_lines(text: str) -> list[str]:
    """`pyro-minvae ...` invocations in fenced code blocks (continuations joined) and inline code spans."""
    found = []
    for block in re.findall(r"```(?:bash|sh|text)?\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0].strip()
            if line.startswith("pyro-minvae "):
                found.append(line)
    found += [m for m in re.findall(r"`(pyro-minvae [^`]+)`", text) if "<" not in m]
    return found


def resolve(tokens: list[str]) -> tuple[click.Command, list[str]]:
    """Walk the click tree along ``tokens`` (after the program name); returns the leaf and its arguments."""
    cmd, rest = cli, tokens
    while isinstance(cmd, click.Group):
        rest = [t for t in rest if t not in ("-v", "-vv", "-q")]
        while rest[:1] == ["--plugin"]:  # the group's own option with a value
            rest = rest[2:]
        if not rest or rest[0].startswith("-"):
            break
        assert rest[0] in cmd.commands, f"unknown sub-command {rest[0]!r}"
        cmd, rest = cmd.commands[rest[0]], rest[1:]
    return cmd, rest


def known_options(cmd: click.Command) -> set[str]:
    opts = {"-h", "--help"}
    for p in cmd.params:
        opts.update(getattr(p, "opts", []))
        opts.update(getattr(p, "secondary_opts", []))
    return opts


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_documented_command_lines_use_real_options(page):
    for line in command_lines(page.read_text()):
        tokens = shlex.split(line)[1:]
        cmd, args = resolve(tokens)
        valid = known_options(cmd)
        for tok in args:
            if tok.startswith("-") and not re.fullmatch(r"-\d.*", tok):
                name = tok.split("=")[0]
                assert name in valid, f"{page.name}: `{line}` uses {name!r}, not an option of {cmd.name!r}"


def test_every_command_is_documented():
    text = (ROOT / "docs" / "cli.md").read_text()
    for name in cli.commands:
        assert f"## {name}" in text, f"docs/cli.md has no section for `pyro-minvae {name}`"


def test_nav_pages_exist():
    nav = re.findall(r":\s*([\w/-]+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), flags=re.M)
    assert nav, "mkdocs.yml has no nav"
    for page in nav:
        assert (ROOT / "docs" / page).exists(), f"mkdocs.yml lists {page}, which does not exist"


def test_mkdocs_build_strict(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    pytest.importorskip("mkdocs_click")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert (tmp_path / "site" / "api" / "index.html").exists()
