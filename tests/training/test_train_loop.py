"""The SVI training loop: learning, checkpoints, bit-for-bit resume, early stopping, warm start, M = 3,
registry errors, TensorBoard scalars."""

from __future__ import annotations

import csv
import json

import pyro
import pytest
import torch

from pyro_minvae.checkpoint import load_checkpoint, load_model
from pyro_minvae.training import (
    EvalResult,
    TrainConfig,
    evaluate,
    family_encoder_kwargs,
    loop,
    required_modalities,
    train,
)
from pyro_minvae.training.builders import make_model
from pyro_minvae.training.history import responsibility_line, responsibility_report
from pyro_minvae.training.objectives import OBJECTIVES
from pyro_minvae.training.warm_start import warm_start


def _cfg(**kw):
    base = dict(family="avae", latent_dim=4, epochs=2, batch_size=32, lr=3e-3, seed=1)
    base.update(kw)
    return TrainConfig(**base)


def test_training_improves_validation_elbo_and_writes_outputs(datasets, tmp_path):
    tr, va = datasets
    res = train(_cfg(epochs=4, lr=1e-2), tr, va, tmp_path / "run", progress=False)
    h = res.history
    assert [r["epoch"] for r in h] == [1, 2, 3, 4]
    assert h[-1]["valid_elbo"] > h[0]["valid_elbo"] + 10  # nats per frame
    rows = list(csv.DictReader((tmp_path / "run" / "log.csv").read_text().splitlines()))
    assert len(rows) == 4 and {"train_elbo", "valid_elbo", "lr", "frames_per_s", "epoch_time_s"} <= set(rows[0])
    model, fcfg, meta = load_model(res.best_path)
    assert meta["best_valid_elbo"] == max(r["valid_elbo"] for r in h)
    # the best checkpoint reproduces its validation ELBO
    assert evaluate(model, va, seed=loop.epoch_seed(1, 0, 20_000)).elbo == pytest.approx(
        meta["best_valid_elbo"], rel=1e-5
    )
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["epochs_run"] == 4 and summary["world_size"] == 1


@pytest.mark.parametrize(
    "family,resp,augment",
    [
        ("minvae", "marginal", {}),
        ("minvae", "epoch", {}),
        ("avcvae", "marginal", {}),
        ("avae", "marginal", {"tilt": 6.0, "band": 0.5, "warp": 0.1}),  # the random channels resume too
        ("markov-vae", "marginal", {}),  # and the shuffled segments of a prior that couples frames
    ],
)
def test_resume_is_bit_for_bit(fake_manifest, tmp_path, family, resp, augment):
    from pyro_minvae.data.datasets import FrameDataset

    mods = required_modalities(family, None)
    tr = FrameDataset.from_manifest(fake_manifest, "train", mods, max_frames=64)
    va = FrameDataset.from_manifest(fake_manifest, "valid", mods, max_frames=32)
    cfg = _cfg(family=family, responsibilities=resp, epochs=2, augment=augment)
    full = train(cfg, tr, va, tmp_path / "full", progress=False)
    part = train(TrainConfig.from_dict({**cfg.to_dict(), "epochs": 1}), tr, va, tmp_path / "part", progress=False)
    assert load_checkpoint(part.last_path)["epoch"] == 1
    resumed = train(cfg, tr, va, tmp_path / "part", resume=True, progress=False)
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    sa, sb = load_checkpoint(full.last_path), load_checkpoint(resumed.last_path)
    for k, st in sa["optimizer_state"]["state"].items():
        assert torch.equal(st["exp_avg_sq"], sb["optimizer_state"]["state"][k]["exp_avg_sq"])
    assert [r["valid_elbo"] for r in sa["history"]] == [r["valid_elbo"] for r in sb["history"]]
    # and the run really trained: parameters moved away from a fresh run's
    pyro.set_rng_seed(cfg.seed)  # train() seeds like this before building the model: the initial point
    fresh = make_model(cfg, tr.input_dims)
    assert not torch.equal(fresh.state_dict()["decoder.out.weight"], a["decoder.out.weight"])


def test_early_stopping(datasets, tmp_path, monkeypatch):
    tr, va = datasets
    monkeypatch.setattr(loop, "evaluate", lambda model, ds, batch_size=1024, seed=0: EvalResult(-100.0, None))
    res = train(_cfg(epochs=10, patience=2), tr, va, tmp_path / "run", progress=False)
    assert len(res.history) == 3  # epoch 1 sets the best, 2 and 3 do not improve
    state = load_checkpoint(res.last_path)
    assert state["bad_epochs"] == 2
    again = train(_cfg(epochs=10, patience=2), tr, va, tmp_path / "run", resume=True, progress=False)
    assert len(again.history) == 3  # a stopped run stays stopped


def test_warm_start_copies_encoders_by_modality_and_decoder(datasets, tmp_path):
    tr, va = datasets
    a = train(_cfg(epochs=1), tr, va, tmp_path / "a", progress=False)
    v = train(_cfg(family="vae", encoders=("lips",), epochs=1, seed=5), tr, va, tmp_path / "v", progress=False)
    copied = warm_start(m := make_model(_cfg(family="minvae"), tr.input_dims), [a.best_path, v.best_path])
    am, vm = load_model(a.best_path)[0], load_model(v.best_path)[0]
    for k, t in am.guide_net.encoder.state_dict().items():
        assert torch.equal(m.guide_net.encoders[0].state_dict()[k], t)
    for k, t in vm.guide_net.encoder.state_dict().items():
        assert torch.equal(m.guide_net.encoders[1].state_dict()[k], t)
    for k, t in am.decoder.state_dict().items():  # the first checkpoint wins for shared tensors
        assert torch.equal(m.decoder.state_dict()[k], t)
    assert torch.equal(m.prior.loc, torch.zeros_like(m.prior.loc)) and torch.equal(m.prior.log_var, torch.zeros(2))
    assert any("lips encoder" in c for c in copied) and any("audio encoder" in c for c in copied)


def test_three_encoders_train_without_core_change(datasets, tmp_path):
    tr, va = datasets
    res = train(
        _cfg(family="minvae", encoders=("audio", "lips", "landmarks"), epochs=1),
        tr,
        va,
        tmp_path / "m3",
        progress=False,
    )
    comps = res.report["components"]
    assert list(comps) == ["audio", "lips", "landmarks"]
    assert sum(c["mean_q"] for c in comps.values()) == pytest.approx(1.0, abs=1e-6)
    assert sum(c["win_rate"] for c in comps.values()) == pytest.approx(1.0, abs=1e-9)
    assert {"valid_q_audio", "valid_q_lips", "valid_q_landmarks"} <= set(res.history[0])
    assert json.loads((tmp_path / "m3" / "responsibilities.json").read_text())["n_frames"] == len(va)


def test_responsibility_report_counts_wins_on_speech_and_silence(datasets):
    tr, _ = datasets
    model = make_model(_cfg(family="minvae"), tr.input_dims)
    speech = tr.speech_mask()
    resp = torch.zeros(len(tr), 2)
    resp[speech, 0], resp[speech, 1] = 0.8, 0.2  # audio wins speech frames
    resp[~speech, 0], resp[~speech, 1] = 0.3, 0.7  # lips win silence
    rep = responsibility_report(model, tr, resp)
    a, v = rep["components"]["audio"], rep["components"]["lips"]
    assert a["win_rate_speech"] == 1.0 and a["win_rate_silence"] == 0.0 and v["win_rate_silence"] == 1.0
    assert a["mean_q_speech"] == pytest.approx(0.8) and v["mean_q_silence"] == pytest.approx(0.7)
    assert a["win_rate"] == pytest.approx(float(speech.double().mean()))
    assert responsibility_line("audio", a).endswith("(speech 100.0%, silence 0.0%)")


def test_responsibility_line_says_no_frames_instead_of_nan():
    r = {"mean_q": 0.9, "win_rate": 1.0, "win_rate_speech": 1.0, "win_rate_silence": float("nan")}
    line = responsibility_line("audio", r)
    assert line == "responsibility audio: mean q 0.900, wins 100.0% of frames (speech 100.0%, silence no frames)"


def test_registry_rejects_unknown_names_with_valid_list():
    # every registered family is listed (plugins loaded by other tests may have added some)
    with pytest.raises(ValueError, match=r"unknown model 'nope'; valid models: avae, .*avcvae, .*minvae, .*vae"):
        family_encoder_kwargs("nope", None)
    with pytest.raises(ValueError, match=r"unknown encoder 'ears'; valid encoders: .*audio.*landmarks.*lips"):
        family_encoder_kwargs("minvae", ("audio", "ears"))
    with pytest.raises(ValueError, match="exactly one encoder"):
        family_encoder_kwargs("vae", ("audio", "lips"))
    with pytest.raises(ValueError, match="audio encoder only"):
        family_encoder_kwargs("avae", ("audio", "lips"))
    with pytest.raises(ValueError, match="valid objectives"):
        OBJECTIVES.get("mixture-sometimes")
    assert required_modalities("avcvae", None) == ["audio", "lips"]
    assert required_modalities("vae", ("lips",)) == ["audio", "lips"]
    assert required_modalities("minvae", ("audio", "lips", "landmarks")) == ["audio", "lips", "landmarks"]


def test_marginal_mode_sets_prior_weights_to_mean_training_responsibility(datasets, tmp_path):
    tr, va = datasets
    res = train(_cfg(family="minvae", epochs=1), tr, va, tmp_path / "m", progress=False)
    row = res.history[0]
    pi = res.model.prior.log_weights().exp()
    torch.testing.assert_close(pi, torch.tensor([row["train_q_audio"], row["train_q_lips"]], dtype=torch.float32))
    assert abs(float(pi[0]) - 0.5) > 1e-3  # moved away from the uniform start


class _FakeWriter:
    """Stands in for torch.utils.tensorboard.SummaryWriter (the tensorboard package is an optional extra)."""

    instances: list = []

    def __init__(self, log_dir):
        self.log_dir, self.scalars, self.closed = log_dir, [], False
        _FakeWriter.instances.append(self)

    def add_scalar(self, tag, value, step):
        self.scalars.append((tag, value, step))

    def flush(self):
        pass

    def close(self):
        self.closed = True


def test_tensorboard_scalars_mirror_the_epoch_log(datasets, tmp_path, monkeypatch):
    import sys
    import types

    fake = types.ModuleType("torch.utils.tensorboard")
    fake.SummaryWriter = _FakeWriter
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", fake)
    tr, va = datasets
    res = train(_cfg(epochs=2), tr, va, tmp_path / "run", progress=False, tensorboard_dir=tmp_path / "tb")
    w = _FakeWriter.instances[-1]
    assert w.log_dir == str(tmp_path / "tb") and w.closed
    got = {(tag, step): value for tag, value, step in w.scalars}
    for row in res.history:
        assert got[("valid_elbo", row["epoch"])] == pytest.approx(row["valid_elbo"])
        assert got[("train_elbo", row["epoch"])] == pytest.approx(row["train_elbo"])


def test_tensorboard_without_the_package_is_a_one_line_error(datasets, tmp_path, monkeypatch):
    import sys

    from pyro_minvae.errors import UserInputError

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as if not installed
    tr, va = datasets
    with pytest.raises(UserInputError, match="tensorboard package is not installed"):
        train(_cfg(epochs=1), tr, va, tmp_path / "run", progress=False, tensorboard_dir=tmp_path / "tb")
    assert not (tmp_path / "run" / "last.pt").exists()  # failed before any training
