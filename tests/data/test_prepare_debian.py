"""Debian fetching with fake `apt-get` / `dpkg-deb` on PATH: version recorded, idempotent, clear errors."""

from __future__ import annotations

import os
import stat

import pytest

from pyro_minvae.data.prepare.debian import fetch_package
from pyro_minvae.errors import MissingDependencyError

APT = """#!/bin/sh
echo "apt-get $*" >> "$FAKE_LOG"
if [ "$1" = "download" ]; then
  if [ "$2" = "nosuchpkg" ]; then echo "E: Unable to locate package nosuchpkg" >&2; exit 100; fi
  touch "$2_1.2-3_all.deb"
fi
exit 0
"""
DPKG = """#!/bin/sh
echo "dpkg-deb $*" >> "$FAKE_LOG"
if [ "$1" = "-f" ]; then echo "1:1.2-3"; exit 0; fi
if [ "$1" = "-x" ]; then mkdir -p "$3/usr/share/demo" && echo hi > "$3/usr/share/demo/file.txt"; exit 0; fi
exit 1
"""


@pytest.fixture
def fake_tools(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (("apt-get", APT), ("dpkg-deb", DPKG)):
        p = bin_dir / name
        p.write_text(body)
        p.chmod(p.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "calls.log"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin:/bin")
    monkeypatch.setenv("FAKE_LOG", str(log))
    return log


def test_fetch_extracts_records_version_and_is_idempotent(fake_tools, tmp_path):
    pkg = fetch_package("demo-data", tmp_path / "debs")
    assert pkg.version == "1:1.2-3"
    assert (pkg.root / "usr/share/demo/file.txt").read_text() == "hi\n"
    assert len(pkg.sha256) == 64
    n_calls = len(fake_tools.read_text().splitlines())
    again = fetch_package("demo-data", tmp_path / "debs")
    assert again == pkg
    assert len(fake_tools.read_text().splitlines()) == n_calls  # nothing downloaded the second time


def test_missing_package_is_a_clear_error(fake_tools, tmp_path):
    with pytest.raises(MissingDependencyError, match="nosuchpkg.*Unable to locate package") as exc:
        fetch_package("nosuchpkg", tmp_path / "debs")
    assert "\n" not in str(exc.value)
    assert "apt-get update" in fake_tools.read_text()  # retried once after an update


def test_missing_tools(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingDependencyError, match="apt-get.*not found"):
        fetch_package("anything", tmp_path / "debs")
