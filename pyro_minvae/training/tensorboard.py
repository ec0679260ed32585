"""Optional TensorBoard scalars for training (``pyro-minvae train --tensorboard DIR``).

Every numeric column of the epoch log (``log.csv``: ELBOs, learning rate, frames/s, responsibilities) is written
as a scalar at step = epoch. Needs the ``tensorboard`` package (``pip install 'pyro-minvae[tensorboard]'``); the
CSV log is always written and does not need it.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UserInputError


class TensorBoardLog:
    """``log(row)`` writes one epoch's numeric entries; ``close()`` flushes. ``directory`` is created."""

    def __init__(self, directory: str | Path):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise UserInputError(
                f"--tensorboard {directory}: the tensorboard package is not installed; "
                "pip install 'pyro-minvae[tensorboard]' or drop the option"
            ) from None
        Path(directory).mkdir(parents=True, exist_ok=True)
        self._writer = SummaryWriter(log_dir=str(directory))

    def log(self, row: dict) -> None:
        epoch = int(row["epoch"])
        for key, value in row.items():
            if key != "epoch" and isinstance(value, (int, float)):
                self._writer.add_scalar(key, float(value), epoch)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()
