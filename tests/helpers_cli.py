"""Helpers shared by the CLI tests of several folders (``tests/`` is on ``sys.path`` through its conftest)."""

from __future__ import annotations

from typing import Mapping

import pytest


def cli_error_cases(cases: Mapping[str, str]) -> pytest.MarkDecorator:
    """Parametrise a test over ``args`` (a list of command-line words) and ``message`` (the text the command must
    answer with) from ``{words: message}``: the words are written as typed, separated by spaces (no value holds a
    space), and name the test case."""
    return pytest.mark.parametrize(
        "args,message", [pytest.param(words.split(), message, id=words) for words, message in cases.items()]
    )
