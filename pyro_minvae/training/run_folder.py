"""What may be done with a run folder (``--out``): the files a run owns, refusing to replace a run unless asked
(``--resume`` continues it, ``--overwrite`` replaces it), and refusing to resume with other settings or data.

A run folder holds :data:`RUN_FILES`. Without ``resume``/``overwrite`` a folder holding any of them is refused,
so a quick test run can never replace a trained model. With ``overwrite`` nothing of the old run is touched until
the new run has finished its first epoch: then its ``best.pt``, ``last.pt`` and ``log.csv`` replace the old ones
(atomically, one by one) and the old run's ``summary.json`` / ``responsibilities.json`` are removed; a new run
stopped or failing before that leaves the old run as it was.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

import torch

from ..errors import UserInputError
from ..locks import assert_free
from .config import TrainConfig

RUN_FILES = ("last.pt", "best.pt", "log.csv", "summary.json", "responsibilities.json")
STALE_AFTER_OVERWRITE = ("summary.json", "responsibilities.json")  # written only at the end of a run


def run_files(out_dir: str | Path) -> list[str]:
    """The run files present in ``out_dir``."""
    return [n for n in RUN_FILES if (Path(out_dir) / n).exists()]


def check_run_folder(
    out_dir: str | Path, resume: bool = False, overwrite: bool = False, probe_lock: bool = True
) -> None:
    """Raise ``UserInputError`` when training into ``out_dir`` would replace a run the user did not ask to replace,
    when ``resume`` has nothing to continue, or (``probe_lock``) when another process is writing there
    (:class:`~pyro_minvae.locks.FolderInUseError`, naming its pid). Pass ``probe_lock=False`` where the caller holds
    the lock, or on the non-main ranks of a multi-process run (rank 0 holds it)."""
    out_dir = Path(out_dir)
    if probe_lock:
        assert_free(out_dir, "train")
    if resume and overwrite:
        raise UserInputError("--resume continues the run in --out and --overwrite replaces it; give only one")
    if out_dir.exists() and not out_dir.is_dir():
        raise UserInputError(f"{out_dir}: is a file, not a folder; give --out a folder")
    if resume:
        if not (out_dir / "last.pt").exists():
            raise UserInputError(f"{out_dir / 'last.pt'}: nothing to resume; train without --resume first")
        return
    found = run_files(out_dir)
    if found and not overwrite:
        raise UserInputError(
            f"{out_dir}: holds a training run ({', '.join(found)}); continue it with --resume, "
            "train into a new folder with --out NEW_DIR, or replace it with --overwrite"
        )


def remove_stale_files(out_dir: str | Path) -> None:
    """After an ``overwrite`` run's first checkpoint: drop what only the old run wrote."""
    for name in STALE_AFTER_OVERWRITE:
        with contextlib.suppress(FileNotFoundError):
            (Path(out_dir) / name).unlink()


def data_fingerprint(train_ds, valid_ds) -> dict:
    """What identifies the training data of a run: utterance ids, frame counts, modalities and checksums of the
    audio and of each visual modality's features (stored in checkpoints as ``extra["data"]``, compared on resume).

    The visual checksums (``visual_sums``, absent for audio-only data) matter because rendered or extracted lips can
    differ between two preparations of the same corpus whose audio is identical.
    """
    ids = hashlib.sha256("\n".join(map(str, train_ds.ids)).encode()).hexdigest()[:16]
    out = {
        "train_frames": len(train_ds),
        "train_utterances": len(train_ds.ids),
        "valid_frames": len(valid_ds),
        "train_ids": ids,
        "modalities": list(train_ds.modalities),
        "audio_sum": f"{float(train_ds.audio.double().sum()):.12g}",  # as written by every earlier run
    }
    if train_ds.visual:
        out["visual_sums"] = {name: _checksum(v) for name, v in sorted(train_ds.visual.items())}
    return out


def _checksum(x: torch.Tensor, rows: int = 4096) -> str:
    """The sum of a visual feature tensor ``(N, D)`` as text: exact for integer pixels, float64 for float features.
    Summed in blocks of ``rows`` frames, so no wide copy of the whole tensor is made (the demo corpus's lips are
    about 1 GB as uint8, 9 GB as int64)."""
    if x.is_floating_point():
        return f"{sum(float(block.sum(dtype=torch.float64)) for block in x.split(rows)):.12g}"
    return str(sum(int(block.sum(dtype=torch.int64)) for block in x.split(rows)))


def data_differences(stored: dict, now: dict) -> list[str]:
    """The fingerprint fields that differ, among those both hold (a checkpoint written before a field existed is
    compared on the fields it has)."""
    return [k for k in stored if k in now and stored[k] != now[k]]


def check_resume(last_path: Path, stored: dict, cfg: TrainConfig, data: dict, feature_cfg: dict, init_from) -> None:
    """Refuse to continue a run with settings, data or front end other than those it was started with.

    ``stored``: the checkpoint dict of ``last.pt``. Only ``epochs`` (not under the cosine schedule) and ``device``
    may change (see :data:`~pyro_minvae.training.config.RESUMABLE_CHANGES`).
    """
    if init_from:
        raise UserInputError(
            f"--init-from has no effect with --resume (the run continues from {last_path}); drop --init-from"
        )
    diffs = cfg.resume_differences(stored.get("train_config") or {})
    old = stored.get("extra", {}).get("data")
    changed = data_differences(old, data) if old is not None else []
    if changed:
        what = " (other visual features: the corpus was prepared again?)" if changed == ["visual_sums"] else ""
        diffs.append(
            f"training data: {old.get('train_frames')} frames of {old.get('train_utterances')} utterances "
            f"in the checkpoint, {data['train_frames']} frames of {data['train_utterances']} now"
            + ("" if old.get("train_frames") != data["train_frames"] else " (other contents)")
            + (what or " (other --manifest or --max-frames?)")
        )
    old_fc = stored.get("feature_config")
    if old_fc is not None and old_fc != feature_cfg:
        keys = [k for k in dict.fromkeys([*old_fc, *feature_cfg]) if old_fc.get(k) != feature_cfg.get(k)]
        diffs += [f"{k}: {old_fc.get(k)!r} in the checkpoint, {feature_cfg.get(k)!r} now" for k in keys]
    if diffs:
        raise UserInputError(
            f"{last_path}: --resume needs the settings the run was started with; these differ: "
            f"{'; '.join(diffs)}; resume with the same options, or start a new run with "
            f"--out NEW_DIR --init-from {last_path}"
        )
