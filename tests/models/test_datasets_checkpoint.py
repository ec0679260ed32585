"""Frame/utterance datasets (shapes, uint8 storage, cache) and checkpoint round trips and failures."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pyro_minvae.checkpoint import (
    FORMAT_VERSION,
    get_rng_state,
    load_checkpoint,
    load_model,
    save_checkpoint,
    set_rng_state,
)
from pyro_minvae.data import datasets as ds_mod
from pyro_minvae.data.datasets import FrameDataset, UtteranceDataset
from pyro_minvae.errors import UserInputError
from pyro_minvae.features import FeatureConfig
from pyro_minvae.models import build_model


def test_frame_dataset_shapes_and_storage(fake_manifest):
    ds = FrameDataset.from_manifest(fake_manifest, "train", ("audio", "lips", "landmarks"))
    n_utt_frames = FeatureConfig().n_frames(16000)
    assert len(ds) == 4 * n_utt_frames and ds.offsets.tolist() == [0, 31, 62, 93, 124]
    assert ds.input_dims == {"audio": 513, "lips": 4489, "landmarks": 12}
    assert ds.visual["lips"].dtype == torch.uint8  # stored compactly
    assert ds.visual["landmarks"].dtype == torch.float32
    b = ds.batch(torch.tensor([0, 5, 40]))
    assert b["lips"].dtype == torch.float32 and 0 <= b["lips"].min() and b["lips"].max() <= 1
    assert b["audio"].shape == (3, 513) and b["landmarks"].shape == (3, 12)
    # the uint8 codes decode to exactly the modality's float features
    from pyro_minvae.registry import MODALITIES
    from pyro_minvae.data.manifest import read_manifest

    rec = read_manifest(fake_manifest)[0]
    ref = MODALITIES.get("lips").load(rec, fake_manifest, 31, FeatureConfig(), n_samples=16000)
    np.testing.assert_array_equal(ds.batch(slice(0, 31))["lips"].numpy(), ref)
    # utterance index and speech mask
    assert ds.utterance_of_frame().tolist() == sum([[u] * 31 for u in range(4)], [])
    mask = ds.speech_mask()
    assert mask.dtype == torch.bool and 0 < mask.sum() < len(ds)


def test_feature_cache_second_load_reads_one_file(fake_manifest, monkeypatch):
    a = FrameDataset.from_manifest(fake_manifest, "valid", ("audio", "lips"))

    def boom(*args, **kwargs):
        raise AssertionError("features recomputed despite the cache")

    monkeypatch.setattr(ds_mod, "load_audio_power", boom)
    b = FrameDataset.from_manifest(fake_manifest, "valid", ("audio", "lips"))
    assert torch.equal(a.audio, b.audio) and torch.equal(a.visual["lips"], b.visual["lips"])
    with pytest.raises(AssertionError):  # another modality set is another key
        FrameDataset.from_manifest(fake_manifest, "valid", ("audio", "landmarks"))


def test_max_frames_and_errors(fake_manifest):
    ds = FrameDataset.from_manifest(fake_manifest, "train", ("audio",), max_frames=40)
    assert len(ds) == 40 and ds.offsets.tolist() == [0, 31, 40]
    with pytest.raises(UserInputError, match="no clean records in split 'nope'"):
        FrameDataset.from_manifest(fake_manifest, "nope", ("audio",))
    with pytest.raises(ValueError, match="valid modalitys: .*landmarks.*lips"):
        FrameDataset.from_manifest(fake_manifest, "train", ("audio", "ears"))


def test_shuffled_batches_are_a_seeded_partition(fake_manifest):
    ds = FrameDataset.from_manifest(fake_manifest, "train", ("audio",))
    b1 = ds.shuffled_batches(50, torch.Generator().manual_seed(1))
    b2 = ds.shuffled_batches(50, torch.Generator().manual_seed(1))
    assert [len(b) for b in b1] == [50, 50, 24]
    assert all(torch.equal(x, y) for x, y in zip(b1, b2))
    assert sorted(torch.cat(b1).tolist()) == list(range(len(ds)))


def test_utterance_dataset(fake_manifest):
    uds = UtteranceDataset(fake_manifest, "valid", ("audio", "lips"))
    items = list(uds)
    assert len(items) == len(uds) == 2
    assert items[0].batch["audio"].shape == (31, 513) and items[0].batch["lips"].shape == (31, 4489)
    assert items[0].wave.shape == (16000,) and items[0].record["id"] == "valid-00"


# ---- checkpoints --------------------------------------------------------------------------------------------------
def _model():
    return build_model("minvae", input_dims={"audio": 513, "lips": 4489}, latent_dim=8)


def test_checkpoint_round_trip(tmp_path):
    model = _model()
    with torch.no_grad():
        model.prior.loc.normal_()
    model.prior.set_weights(torch.tensor([0.3, 0.7]))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    cfg = FeatureConfig(hop_length=256)
    path = save_checkpoint(
        tmp_path / "c.pt",
        model,
        cfg,
        {"lr": 1e-3},
        opt,
        None,
        epoch=3,
        step=7,
        best_valid_elbo=-12.5,
        history=[{"epoch": 1, "valid_elbo": -20.0}],
        extra={"k": "v"},
    )
    loaded, cfg2, meta = load_model(path, "cpu")
    assert cfg2 == cfg and meta["epoch"] == 3 and meta["best_valid_elbo"] == -12.5
    assert meta["history"][0]["valid_elbo"] == -20.0 and meta["train_config"] == {"lr": 1e-3}
    assert not loaded.training and loaded.spec == model.spec
    for (k, v), (k2, v2) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    torch.testing.assert_close(loaded.prior.log_weights().exp(), torch.tensor([0.3, 0.7]))
    state = load_checkpoint(path)
    assert state["format_version"] == FORMAT_VERSION and set(state["versions"]) == {"pyro_minvae", "torch", "pyro"}
    assert not list(tmp_path.glob(".c.pt*"))  # no temp files left


def test_rng_state_round_trip():
    import random

    st = get_rng_state()
    a = (torch.rand(3), np.random.rand(3), random.random())
    set_rng_state(st)
    b = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


def test_bad_checkpoints_raise_user_errors(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", _model(), FeatureConfig())
    data = path.read_bytes()
    trunc = tmp_path / "trunc.pt"
    trunc.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserInputError, match="trunc.pt: not a readable"):
        load_model(trunc)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"hello")
    with pytest.raises(UserInputError, match="garbage.pt"):
        load_model(garbage)
    with pytest.raises(UserInputError, match="missing.pt: checkpoint not found"):
        load_model(tmp_path / "missing.pt")
    state = torch.load(path, weights_only=True)
    state["format_version"] = 999
    torch.save(state, tmp_path / "future.pt")
    with pytest.raises(UserInputError, match="future.pt: checkpoint format 999"):
        load_model(tmp_path / "future.pt")
    del state["model_state"]
    state["format_version"] = FORMAT_VERSION
    torch.save(state, tmp_path / "nokeys.pt")
    with pytest.raises(UserInputError, match="nokeys.pt: checkpoint lacks model_state"):
        load_model(tmp_path / "nokeys.pt")
    state = torch.load(path, weights_only=True)
    state["model_spec"]["kwargs"]["latent_dim"] = 4  # weights no longer fit
    torch.save(state, tmp_path / "mismatch.pt")
    with pytest.raises(UserInputError, match="mismatch.pt: cannot rebuild model 'minvae'"):
        load_model(tmp_path / "mismatch.pt")


@pytest.mark.parametrize("family,kwargs", [("minvae", {"encoders": ["audio", "lips"]}), ("vae", {"encoder": "lips"})])
def test_format_1_checkpoints_rebuild_with_the_paper_lips_sizes(tmp_path, family, kwargs):
    """Format-1 files predate the pooled default: their lips encoder is rebuilt with the paper's sizes."""
    from pyro_minvae.nn.encoders import PAPER_LIPS

    dims = {"audio": 513, "lips": 4489}
    old = build_model(family, input_dims=dims, encoder_options={"lips": PAPER_LIPS}, **kwargs)
    path = tmp_path / "old.pt"
    save_checkpoint(path, old, FeatureConfig())
    state = torch.load(path, weights_only=True)
    state["format_version"] = 1
    state["model_spec"]["kwargs"] = {"input_dims": dims, **kwargs}  # what format 1 recorded: no defaults
    torch.save(state, path)
    model, _, _ = load_model(path)
    for name, t in old.state_dict().items():
        torch.testing.assert_close(model.state_dict()[name], t)
    assert model.spec["kwargs"]["encoder_options"]["lips"] == PAPER_LIPS


def test_format_2_avcvae_checkpoints_rebuild_with_the_paper_conditioner(tmp_path):
    """Format-2 AV-CVAE files predate the normalised conditioner: they rebuild with the paper's embedding."""
    dims = {"audio": 513, "lips": 4489}
    old = build_model("avcvae", input_dims=dims, conditioner="embedding")
    path = tmp_path / "old.pt"
    save_checkpoint(path, old, FeatureConfig())
    state = torch.load(path, weights_only=True)
    state["format_version"] = 2
    state["model_spec"]["kwargs"] = {"input_dims": dims}  # what format 2 recorded for a default AV-CVAE
    torch.save(state, path)
    model, _, _ = load_model(path)
    assert model.spec["kwargs"]["conditioner"] == "embedding"
    for name, t in old.state_dict().items():
        torch.testing.assert_close(model.state_dict()[name], t)
    new = build_model("avcvae", input_dims=dims)
    assert new.spec["kwargs"]["conditioner"] == "normalised-embedding"  # recorded, so a later default cannot move it
