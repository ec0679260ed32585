"""Where generated data, checkpoints and caches live (never inside the repository)."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "PYRO_MINVAE_CACHE"


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """Return the cache root: ``override``, else ``$PYRO_MINVAE_CACHE``, else ``~/.cache/pyro-minvae``.

    The directory is created if needed.
    """
    if override is not None:
        root = Path(override)
    elif os.environ.get(CACHE_ENV):
        root = Path(os.environ[CACHE_ENV])
    else:
        root = Path.home() / ".cache" / "pyro-minvae"
    root = root.expanduser()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # e.g. $PYRO_MINVAE_CACHE names a file or a read-only place: one line, no traceback
        from .atomic import os_error_message
        from .errors import UserInputError

        raise UserInputError(
            os_error_message(exc, root, "cannot create the cache folder") + f" (set ${CACHE_ENV} to one)"
        ) from None
    return root


def default_manifest() -> Path:
    """The manifest commands read when ``--manifest`` is not given: the demo corpus, else the small demo corpus
    (``<cache>/corpora/{demo,demo-small}/manifest.jsonl``); the demo path when neither exists (callers say to run
    ``pyro-minvae prepare demo``)."""
    root = cache_dir() / "corpora"
    for name in ("demo", "demo-small"):
        if (root / name / "manifest.jsonl").exists():
            return root / name / "manifest.jsonl"
    return root / "demo" / "manifest.jsonl"
