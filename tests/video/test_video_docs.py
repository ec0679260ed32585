"""docs/video.md is followed end to end: its Python snippet builds talk.mp4 from the real carphone face, its
`pyro-minvae enhance talk.mp4 ...` lines run as written (the shipped MIN-VAE, fewer iterations) and its Python
API example runs."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from video_fixtures import SR, noisy_speech

from pyro_minvae.cli.main import cli

PAGE = Path(__file__).resolve().parents[2] / "docs" / "video.md"
FAST = ["--method", "fast", "--iterations", "1"]


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", PAGE.read_text(), flags=re.S)


@pytest.fixture()
def workdir(carphone, tmp_path, monkeypatch):
    """A folder with noisy.wav, as the page assumes."""
    monkeypatch.chdir(tmp_path)
    sf.write("noisy.wav", noisy_speech(3 * SR), SR)
    return tmp_path


def test_video_page_end_to_end(workdir):
    snippet, api = _blocks("python")
    exec(compile(snippet, str(PAGE), "exec"), {})
    assert (workdir / "talk.mp4").is_file()
    commands = [
        ln.split(" #")[0].strip()
        for b in _blocks("bash")
        for ln in b.splitlines()
        if ln.startswith("pyro-minvae enhance talk.mp4")
    ]
    assert len(commands) >= 3
    for line in commands:
        res = CliRunner().invoke(cli, shlex.split(line)[1:] + FAST + ["--overwrite"], catch_exceptions=False)
        assert res.exit_code == 0, (line, res.output)
    assert (workdir / "talk_clean.mp4").is_file() and (workdir / "talk_clean.wav").is_file()
    assert (workdir / "lips" / "talk.lips.png").is_file()
    api = api.replace('method="fast")', 'method="fast", iterations=1)')
    for out in ("talk_clean.mp4", "talk_clean.wav"):  # the API example writes them anew
        (workdir / out).unlink()
    exec(compile(api, str(PAGE), "exec"), {})
    assert np.load(workdir / "lips" / "talk.lips.npy").shape[1:] == (67, 67)
