"""The training data's fingerprint: it covers the visual features, so a resume onto lips that differ (a corpus
prepared again, same audio) is refused, while checkpoints written before the visual checksums existed still
resume."""

from __future__ import annotations

import pytest
import torch

from pyro_minvae.checkpoint import load_checkpoint, state_checksum
from pyro_minvae.data.datasets import FrameDataset
from pyro_minvae.errors import UserInputError
from pyro_minvae.training import TrainConfig, train
from pyro_minvae.training.run_folder import data_differences, data_fingerprint


def _cfg(**kw):
    return TrainConfig(**{**dict(family="avcvae", latent_dim=4, epochs=1, batch_size=32, lr=3e-3, seed=1), **kw})


def _with_lips(ds: FrameDataset, lips: torch.Tensor) -> FrameDataset:
    return FrameDataset(ds.audio, {**ds.visual, "lips": lips}, ds.offsets, ds.ids, ds.cfg)


def _one_pixel_changed(lips: torch.Tensor) -> torch.Tensor:
    out = lips.clone()
    out.view(-1)[0] += 1 if out.view(-1)[0] < 255 else -1
    return out


def test_fingerprint_sums_each_visual_modality_exactly(datasets):
    tr, va = datasets
    fp = data_fingerprint(tr, va)
    assert set(fp["visual_sums"]) == {"lips", "landmarks"}
    lips = tr.visual["lips"]
    assert fp["visual_sums"]["lips"] == str(int(lips.to(torch.int64).sum()))
    assert lips.dtype == torch.uint8
    assert data_differences(fp, data_fingerprint(_with_lips(tr, _one_pixel_changed(lips)), va)) == ["visual_sums"]
    audio_only = FrameDataset(tr.audio, {}, tr.offsets, tr.ids, tr.cfg)
    assert "visual_sums" not in data_fingerprint(audio_only, va)  # audio-only runs write what they always wrote


def test_resume_onto_other_lips_is_refused_and_an_older_checkpoint_still_resumes(datasets, tmp_path):
    tr, va = datasets
    run = tmp_path / "run"
    train(_cfg(), tr, va, run, progress=False)
    other = _with_lips(tr, _one_pixel_changed(tr.visual["lips"]))
    with pytest.raises(UserInputError, match=r"training data: .*other visual features"):
        train(_cfg(epochs=2), other, va, run, resume=True, progress=False)

    # a run written before visual_sums existed: its fingerprint lacks the key, and it resumes as it always did
    state = load_checkpoint(run / "last.pt")
    state["extra"]["data"].pop("visual_sums")
    state.pop("checksum", None)
    state["checksum"] = state_checksum(state)
    torch.save(state, run / "last.pt")
    result = train(_cfg(epochs=2), tr, va, run, resume=True, progress=False)
    assert [r["epoch"] for r in result.history] == [1, 2]
