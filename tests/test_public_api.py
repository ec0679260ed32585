"""The flat public API: every exported name imports, is listed in docs/api.md's flat-API table, and every
public module of the package has its `::: module` entry in docs/api.md (so the reference covers it)."""

from __future__ import annotations

import pkgutil
import re
from pathlib import Path

import pytest

import pyro_minvae

API_PAGE = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def _flat_table() -> str:
    text = API_PAGE.read_text()
    return text.split("## The flat API", 1)[1].split("\n## ", 1)[0]


@pytest.mark.parametrize("name", [n for n in pyro_minvae.__all__ if n != "__version__"])
def test_every_exported_name_imports_and_is_documented(name):
    assert getattr(pyro_minvae, name) is not None
    assert re.search(rf"`{re.escape(name)}`", _flat_table()), f"{name} is exported but not in docs/api.md"


def test_unknown_names_raise_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        pyro_minvae.nope  # noqa: B018


def _public_modules() -> list[str]:
    out = []
    for info in pkgutil.walk_packages(pyro_minvae.__path__, "pyro_minvae."):
        parts = info.name.split(".")
        if info.ispkg or any(p.startswith("_") for p in parts) or parts[1] == "cli":
            continue  # a package is documented through its modules
        out.append(info.name)
    return out


def test_every_public_module_has_a_reference_entry():
    documented = set(re.findall(r"^::: ([\w.]+)", API_PAGE.read_text(), re.M))
    missing = [m for m in _public_modules() if m not in documented]
    assert not missing, f"add `::: NAME` entries to docs/api.md for: {', '.join(missing)}"
