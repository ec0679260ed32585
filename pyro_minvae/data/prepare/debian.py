"""Fetch Debian packages into the cache: ``apt-get download`` + ``dpkg-deb -x``, versions recorded.

Layout under ``root`` (normally ``cache_dir() / "debian"``)::

    <package>/
        <package>_<version>_all.deb      the downloaded archive
        tree/                            its extracted content (``usr/share/...``)
        package.json                     {"package", "version", "deb", "sha256"}, written last (atomic)

A package whose ``package.json`` exists is never downloaded again. Missing tools or packages raise
:class:`~pyro_minvae.errors.MissingDependencyError` with a one-line fix.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ...atomic import write_text_atomic
from ...errors import MissingDependencyError
from ..manifest import sha256_file

log = logging.getLogger("pyro_minvae")


@dataclass(frozen=True)
class PackageTree:
    """An extracted Debian package: ``root`` holds its file tree (``root / "usr/share/..."``)."""

    name: str
    version: str
    root: Path
    sha256: str = ""


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise MissingDependencyError(
            f"`{name}` not found; the demo corpus is built from Debian packages, run it on Debian/Ubuntu "
            f"(apt-get install apt dpkg) or use `pyro-minvae prepare folder --root DIR` with your own data"
        )
    return path


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=str(cwd), capture_output=True, text=True)


def fetch_package(name: str, root: Path) -> PackageTree:
    """Download and extract one package (idempotent). Returns its :class:`PackageTree`."""
    pdir = Path(root) / name
    meta_path = pdir / "package.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        return PackageTree(name, meta["version"], pdir / "tree", meta.get("sha256", ""))
    apt = _tool("apt-get")
    dpkg = _tool("dpkg-deb")
    pdir.mkdir(parents=True, exist_ok=True)
    for old in pdir.glob("*.deb"):
        old.unlink()
    res = _run([apt, "download", name], pdir)
    if res.returncode != 0 or not list(pdir.glob("*.deb")):
        log.info("apt-get download %s failed; running apt-get update once and retrying", name)
        _run([apt, "update"], pdir)
        res = _run([apt, "download", name], pdir)
    debs = sorted(pdir.glob("*.deb"))
    if res.returncode != 0 or not debs:
        msg = (res.stderr or res.stdout).strip().splitlines()
        raise MissingDependencyError(
            f"Debian package {name} could not be downloaded ({msg[-1] if msg else 'no output'}); "
            f"enable a Debian bookworm apt source and run `apt-get update`, then retry"
        )
    deb = debs[-1]
    res = _run([dpkg, "-f", str(deb), "Version"], pdir)
    version = res.stdout.strip() if res.returncode == 0 else deb.name.split("_")[1]
    tree = pdir / "tree"
    tmp = pdir / "tree.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    res = _run([dpkg, "-x", str(deb), str(tmp)], pdir)
    if res.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise MissingDependencyError(f"{deb}: dpkg-deb -x failed ({res.stderr.strip()[:200]}); delete {pdir} and retry")
    shutil.rmtree(tree, ignore_errors=True)
    tmp.rename(tree)
    digest = sha256_file(deb)
    write_text_atomic(
        meta_path, json.dumps({"package": name, "version": version, "deb": deb.name, "sha256": digest}, sort_keys=True)
    )
    log.info("fetched %s %s", name, version)
    return PackageTree(name, version, tree, digest)


def fetch_packages(names: list[str] | tuple[str, ...], root: Path) -> dict[str, PackageTree]:
    """Fetch several packages; returns ``{name: PackageTree}``."""
    return {n: fetch_package(n, Path(root)) for n in names}
