"""Models that ship with the package: names, files, model cards, and the rule that turns ``--checkpoint``
into a file.

::

    from pyro_minvae.pretrained import resolve_checkpoint, available
    available()                      # -> ("minvae", "avae", "avcvae"), the shipped files that are present
    resolve_checkpoint("minvae")     # -> Path(".../pyro_minvae/pretrained/minvae.pt")
    resolve_checkpoint("runs/x.pt")  # -> Path("runs/x.pt"): an existing file always wins over a name

The files are written by ``make pretrained`` (``scripts/export_pretrained.py``): the ``best.pt`` of
``make train-best`` stripped of optimiser and RNG state, weights stored as float16 (they are float32 again once
loaded; the enhancement difference is measured in the model card), next to a model card ``<name>.md``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserInputError

PACKAGE_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class PretrainedModel:
    """A shipped model: ``name`` (what ``--checkpoint`` accepts), a one-line ``title`` and known problems
    (``caveat``, markdown, printed on its model card)."""

    name: str
    title: str
    caveat: str = ""

    @property
    def path(self) -> Path:
        """The checkpoint file inside the installed package."""
        return PACKAGE_DIR / f"{self.name}.pt"

    @property
    def card(self) -> Path:
        """The model card (markdown) next to the checkpoint."""
        return PACKAGE_DIR / f"{self.name}.md"


CATALOGUE: dict[str, PretrainedModel] = {
    m.name: m
    for m in (
        PretrainedModel("minvae", "MIN-VAE, audio + lips encoders (the default of `pyro-minvae enhance`)"),
        PretrainedModel("avae", "A-VAE, audio only"),
        PretrainedModel(
            "avcvae",
            "AV-CVAE, audio-visual conditional VAE",
            caveat="Its validation curve is noisy (1576 to 1768 nats/frame between neighbouring epochs) and early "
            "stopping ended the run at epoch 18, so its best validation ELBO (1768, epoch 13) is below the 1883 of "
            "the AV-CVAE shipped before (the paper's visual conditioner, 40 epochs). That model ignored the lips (its "
            "embedding was the same on every frame); this one uses them, and on 60 validation mixtures it scores "
            "as well or better (paired: ΔSTOI +0.012 ± 0.006 with MCEM, +0.013 ± 0.007 with the fast E-step; "
            "SI-SDR -0.2 ± 0.4 and +0.1 ± 0.4 dB; docs/algorithms.md).",
        ),
    )
}
DEFAULT = "minvae"


def available() -> tuple[str, ...]:
    """Names of the shipped models whose files are present in this install, default first."""
    return tuple(name for name, m in CATALOGUE.items() if m.path.is_file())


def pretrained_path(name: str) -> Path:
    """The file of shipped model ``name``; ``UserInputError`` (one line) for an unknown or missing one."""
    if name not in CATALOGUE:
        raise UserInputError(f"{name}: no shipped model of that name; choose one of {', '.join(CATALOGUE)}")
    path = CATALOGUE[name].path
    if not path.is_file():
        raise UserInputError(
            f"{path}: the shipped model {name!r} is missing from this install; reinstall pyro-minvae, "
            "run `make pretrained`, or pass --checkpoint PATH"
        )
    return path


def resolve_checkpoint(spec: str | os.PathLike | None) -> Path:
    """``--checkpoint`` value -> checkpoint file.

    ``None`` is the default shipped model; an existing file is used as it is (so a file called ``minvae`` in the
    working folder is never shadowed by a name); otherwise a shipped model's name. Anything else is a one-line
    ``UserInputError`` that names both ways out.
    """
    if spec is None:
        return pretrained_path(DEFAULT)
    path = Path(spec)
    if path.is_file():
        return path
    text = os.fspath(spec)
    if text in CATALOGUE:
        return pretrained_path(text)
    if path.is_dir():
        raise UserInputError(f"{path}: is a folder; pass the checkpoint file inside it (e.g. {path / 'best.pt'})")
    raise UserInputError(
        f"{path}: checkpoint not found; pass a trained checkpoint file or a shipped model ({', '.join(CATALOGUE)})"
    )


__all__ = ["CATALOGUE", "DEFAULT", "PretrainedModel", "available", "pretrained_path", "resolve_checkpoint"]
