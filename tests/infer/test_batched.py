"""Batched MCEM: several utterances in one pass give each utterance's one-by-one ``mcem`` result (same seeds)."""

import pytest
import torch

from pyro_minvae.infer.batched import SegmentedFrameMH, Segments, mcem_batch
from pyro_minvae.infer.mcem import mcem
from pyro_minvae.models.families import build_model

F, LIPS = 12, 10
LENGTHS = (9, 5, 12)
SEEDS = (7, 3, 11)
SMALL = dict(iterations=3, mh_steps=6, burn_in=3, final_mh_steps=5, final_burn_in=2, rank=3)


def _model(family):
    torch.manual_seed(2)
    dims = {"audio": F} if family == "avae" else {"audio": F, "lips": LIPS}
    m = build_model(family, input_dims=dims, latent_dim=3).double().eval()
    if family == "minvae":
        with torch.no_grad():  # distinct component priors so responsibilities move
            m.prior.loc.copy_(torch.tensor([[0.5, -0.2, 0.1], [-0.4, 0.3, 0.0]], dtype=torch.float64))
            m.prior.log_var.copy_(torch.tensor([-0.3, 0.4], dtype=torch.float64))
    return m


def _inputs(family):
    g = torch.Generator().manual_seed(0)
    specs = [
        torch.complex(
            torch.randn(F, n, generator=g, dtype=torch.float64), torch.randn(F, n, generator=g, dtype=torch.float64)
        )
        * (1 + i)
        for i, n in enumerate(LENGTHS)
    ]
    if family == "avae":
        return specs, [None] * len(specs)
    return specs, [{"lips": torch.rand(n, LIPS, generator=g, dtype=torch.float64)} for n in LENGTHS]


def _assert_same(batched, alone):
    for b, a in zip(batched, alone):
        torch.testing.assert_close(b.estimate, a.estimate, rtol=1e-9, atol=1e-12)
        for x, y in ((b.W, a.W), (b.H, a.H), (b.g, a.g), (b.latents, a.latents), (b.objective, a.objective)):
            torch.testing.assert_close(x, y, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(b.acceptance.double(), a.acceptance.double(), rtol=1e-6, atol=1e-7)
        assert (b.responsibilities is None) == (a.responsibilities is None) and b.init == a.init
        if a.responsibilities is not None:
            torch.testing.assert_close(b.responsibilities, a.responsibilities, rtol=1e-9, atol=1e-12)
    assert 0 < float(batched[0].acceptance.min()) and float(batched[0].acceptance.max()) < 1


@pytest.mark.parametrize(
    "family,opts",
    [
        ("avae", {}),
        ("avcvae", {}),
        ("minvae", {}),  # classic loop on the mixture prior, weights re-estimated per utterance
        ("minvae", {"weights": "model", "update_weights": False}),
        ("minvae", {"loop": "minvae"}),  # the published variational loop
        ("minvae", {"loop": "minvae", "update_gain": True}),
        ("avae", {"update_gain": False, "exponent": 1.0, "gain_exponent": 2.0, "gain_floor": 0.1}),
    ],
)
def test_batched_equals_one_by_one(family, opts):
    model = _model(family)
    specs, visuals = _inputs(family)
    kw = {**SMALL, **opts}
    if kw.get("loop") == "minvae":
        kw = {k: v for k, v in kw.items() if not k.startswith("final")}
    alone = [mcem(model, s, v, seed=seed, **kw) for s, v, seed in zip(specs, visuals, SEEDS)]
    _assert_same(mcem_batch(model, specs, visuals, SEEDS, **kw), alone)
    if family == "minvae":
        assert (alone[0].responsibilities - alone[0].responsibilities.mean()).abs().max() > 1e-3


def test_batch_order_does_not_matter():
    model = _model("avae")
    specs, visuals = _inputs("avae")
    fwd = mcem_batch(model, specs, visuals, SEEDS, **SMALL)
    rev = mcem_batch(model, specs[::-1], visuals[::-1], SEEDS[::-1], **SMALL)
    _assert_same(fwd, rev[::-1])


def test_tolerance_stop_leaves_the_batch_per_utterance():
    """Utterances meeting ``tol`` at different iterations stop as they would alone."""
    model = _model("avae")
    specs, visuals = _inputs("avae")
    # free activations (h_block=1): with these utterances they stop at different iterations, which the test needs
    kw = {**SMALL, "iterations": 12, "tol": 1e-2, "h_block": 1}
    alone = [mcem(model, s, v, seed=seed, **kw) for s, v, seed in zip(specs, visuals, SEEDS)]
    ran = sorted(len(a.objective) for a in alone)
    assert ran[0] < ran[-1], ran  # the test needs utterances that stop at different iterations
    _assert_same(mcem_batch(model, specs, visuals, SEEDS, **kw), alone)


def test_one_utterance_and_empty_batch():
    model = _model("avae")
    specs, visuals = _inputs("avae")
    _assert_same(
        mcem_batch(model, specs[:1], visuals[:1], SEEDS[:1], **SMALL),
        [mcem(model, specs[0], None, seed=SEEDS[0], **SMALL)],
    )
    assert mcem_batch(model, [], []) == []


@pytest.mark.parametrize(
    "opts",
    [{"scoring": "trace"}, {"driver": "pyro"}, {"loop": "minvae", "marginal": True}, {"kernel": "frame-mh-jump"}],
)
def test_unsupported_options_are_refused(opts):
    model = _model("minvae")
    specs, visuals = _inputs("minvae")
    with pytest.raises(ValueError, match="mcem_batch supports"):
        mcem_batch(model, specs, visuals, SEEDS, **opts)


def test_batch_refusal_says_why():
    from pyro_minvae.infer.batched import batch_refusal

    assert batch_refusal("mcem", {"iterations": 3, "loop": "minvae"}) is None
    assert "only --method mcem" in batch_refusal("fast", {})
    assert "kernel='frame-mh'" in batch_refusal("mcem", {"kernel": "frame-mh-jump"})
    assert "an ensemble enhances each record with its models in turn" in batch_refusal("mcem", {}, n_models=2)


def test_mismatched_inputs_are_refused():
    model = _model("minvae")
    specs, visuals = _inputs("minvae")
    with pytest.raises(ValueError, match="one visual dict and one seed"):
        mcem_batch(model, specs, visuals, SEEDS[:2])
    with pytest.raises(ValueError, match="same streams"):
        mcem_batch(model, specs, [visuals[0], {}, visuals[2]], SEEDS)


def test_segmented_kernel_draws_each_segment_from_its_own_generator():
    segs = Segments((2, 3))
    gens = [torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)]
    kernel = SegmentedFrameMH(lambda z: (z.sum(-1), {}), segs, gens)
    like = torch.zeros(5, 4)
    draws = kernel.standard_normal(like)
    torch.testing.assert_close(draws[:2], torch.randn(2, 4, generator=torch.Generator().manual_seed(1)))
    torch.testing.assert_close(draws[2:], torch.randn(3, 4, generator=torch.Generator().manual_seed(2)))
    with pytest.raises(ValueError, match="segments of 5"):
        kernel.uniform(4, like)


# ---- device hygiene: the batched path on PyTorch's meta device (a CPU tensor mixed in fails as on CUDA) ----------
META = torch.device("meta")


@pytest.mark.parametrize("family", ["avae", "avcvae", "minvae"])
def test_batched_steps_stay_on_the_device(family):
    import pyro

    from pyro_minvae.infer.batched import _noise, _per_frame
    from pyro_minvae.infer.estep_common import initial_weights, sampled_m_step
    from pyro_minvae.infer.potentials import ExpectedPowerPotential, LikelihoodPotential
    from pyro_minvae.noise import NMFNoise

    f, lips = 33, 16 * 16
    dims = {"audio": f} if family == "avae" else {"audio": f, "lips": lips}
    model = build_model(family, input_dims=dims).to(META).eval()
    segs = Segments((4, 3))
    batch = {k: torch.rand(segs.total, d, device=META) for k, d in dims.items()}
    nmf = NMFNoise(3)
    states = [nmf.init(f, n, device=META) for n in segs.lengths]
    log_ws = [initial_weights(model, "uniform", n, META, torch.float32)[0] for n in segs.lengths]
    extra = () if log_ws[0] is None else (_per_frame(log_ws, segs),)
    with torch.no_grad(), pyro.validation_enabled(False):
        kernel = SegmentedFrameMH(LikelihoodPotential(model, batch), segs, [None, None])
        kernel.setup(0, _noise(nmf, states, torch.float32), *extra)
        state = kernel.score(torch.randn(segs.total, model.latent_dim, device=META))
        for _ in range(2):
            state = kernel.step(state)
        rates = kernel.segment_accept_rates()
        lv = state.aux["speech_log_var"].unsqueeze(0)
        new, cost = sampled_m_step(nmf, states[0], batch["audio"][:4], segs.split(lv, 1)[0], 0.5, True)
        tensors = [state.z, state.log_target, lv, *rates, *(t for t in new if t is not None), cost]
        if family == "minvae":
            pot = ExpectedPowerPotential(model, batch)
            resp = torch.full((segs.total, 2), 0.5, device=META)
            t, aux = pot(state.z, batch["audio"], None, resp)
            tensors += [t, *aux.values()]
    assert all(t.device == META for t in tensors)


def test_enhance_waveforms_equals_enhance_waveform():
    import numpy as np

    from pyro_minvae.features import FeatureConfig
    from pyro_minvae.infer.batched import enhance_waveforms
    from pyro_minvae.infer.enhance import enhance_waveform

    cfg = FeatureConfig(n_fft=64, win_length=64, hop_length=32)
    torch.manual_seed(0)
    model = build_model("minvae", input_dims={"audio": cfg.n_freq, "lips": LIPS}, latent_dim=3).eval()
    rng = np.random.default_rng(0)
    waves = [(0.3 * k * rng.standard_normal(n)).astype(np.float32) for k, n in ((1, 300), (2, 170), (3, 410))]
    visuals = [{"lips": torch.rand(cfg.n_frames(len(w)), LIPS)} for w in waves]
    kw = dict(iterations=2, mh_steps=4, burn_in=2, rank=2, loop="minvae")
    batched = enhance_waveforms(model, cfg, waves, visuals, seeds=[4, 5, 6], **kw)
    for w, v, seed, b in zip(waves, visuals, (4, 5, 6), batched):
        alone = enhance_waveform(model, cfg, w, v, seed=seed, **kw)
        assert b.waveform.shape == alone.waveform.shape == (len(w),)
        torch.testing.assert_close(b.waveform, alone.waveform, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="longer than one chunk"):
        enhance_waveforms(model, cfg, waves[:1], visuals[:1], chunk_seconds=0.01, **kw)


@pytest.mark.parametrize("name", ["standard_normal", "uniform", "accept_or_reject", "segment_accept_rates"])
def test_batched_kernel_hot_path_stays_on_device(name):
    from test_device_hygiene import _host_transfers

    assert _host_transfers(getattr(SegmentedFrameMH, name)) == []


def test_enhance_records_writes_each_record_as_one_by_one(tmp_path):
    """The manifest-level batch: every readable record written as enhance_record writes it; a broken record fails
    alone with its one-line reason."""
    import numpy as np

    from pyro_minvae.audio_io import load_audio, write_audio
    from pyro_minvae.data.manifest import write_manifest
    from pyro_minvae.enhancement.batched import enhance_records
    from pyro_minvae.enhancement.file import enhance_record
    from pyro_minvae.features import FeatureConfig

    cfg = FeatureConfig(n_fft=64, win_length=64, hop_length=32)
    torch.manual_seed(0)
    model = build_model("avae", input_dims={"audio": cfg.n_freq}, latent_dim=3).eval()
    rng = np.random.default_rng(0)
    records = []
    for i, n in enumerate((4500, 6000, 7300)):
        write_audio(tmp_path / f"r{i}.wav", (0.2 * rng.standard_normal(n)).astype(np.float32), cfg.sample_rate)
        records.append({"id": f"r{i}", "split": "test", "speaker": "s", "kind": "noisy", "audio": f"r{i}.wav"})
    records.append({"id": "broken", "split": "test", "speaker": "s", "kind": "noisy", "audio": "missing.wav"})
    manifest = tmp_path / "m.jsonl"
    write_manifest(manifest, records)
    kw = dict(iterations=2, mh_steps=4, burn_in=2, final_mh_steps=3, final_burn_in=1, rank=2)
    outs = {r["id"]: tmp_path / "out" / f"{r['id']}.wav" for r in records}
    (tmp_path / "out").mkdir()
    outcome = enhance_records(model, cfg, records, manifest, outs, seed=3, **kw)
    assert list(outcome) == ["r0", "r1", "r2", "broken"]
    assert outcome["r0"] is outcome["r1"] is outcome["r2"] is None
    assert "missing.wav" in outcome["broken"] and "\n" not in outcome["broken"]
    assert not outs["broken"].exists()
    for r in records[:3]:
        alone = enhance_record(model, cfg, r, manifest, None, seed=3, **kw).waveform.numpy()
        written = load_audio(outs[r["id"]], cfg.sample_rate)
        np.testing.assert_allclose(written, alone, atol=2 / 32768)  # 16-bit wav
    with pytest.raises(ValueError, match="only --method mcem"):
        enhance_records(model, cfg, records, manifest, outs, method="fast")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (no session of this project had one)")
@pytest.mark.parametrize("loop", ["classic", "minvae"])
def test_batched_on_cuda_equals_one_by_one(loop):
    model = _model("minvae").cuda()
    specs, visuals = _inputs("minvae")
    specs = [s.cuda() for s in specs]
    visuals = [{k: v.cuda() for k, v in vis.items()} for vis in visuals]
    kw = {**SMALL, "loop": loop}
    if loop == "minvae":
        kw = {k: v for k, v in kw.items() if not k.startswith("final")}
    alone = [mcem(model, s, v, seed=seed, **kw) for s, v, seed in zip(specs, visuals, SEEDS)]
    batched = mcem_batch(model, specs, visuals, SEEDS, **kw)
    assert all(b.estimate.device.type == "cuda" for b in batched)
    _assert_same(batched, alone)


# ---- the manifest runner: pyro-minvae enhance --manifest --batch-size ----------------------------------------------
def _reliability_helpers():
    import sys
    from pathlib import Path

    here = str(Path(__file__).resolve().parents[1] / "reliability")
    if here not in sys.path:
        sys.path.insert(0, here)
    import reliability_helpers

    return reliability_helpers


def test_manifest_batch_size_writes_what_one_by_one_writes(tmp_path):
    """--batch-size 3: the same files as --batch-size 1 (same seed), bad records listed one by one."""
    import numpy as np
    import soundfile as sf
    from click.testing import CliRunner

    from pyro_minvae.cli.main import cli

    rh = _reliability_helpers()
    manifest = rh.make_mixture_corpus(tmp_path / "corpus", n_good=4, bad=("bad-missing", "bad-short"))
    ckpt = rh.make_checkpoint(tmp_path / "minvae.pt", "minvae")
    outs = {}
    for size in ("1", "3"):
        out = tmp_path / f"out{size}"
        res = CliRunner().invoke(
            cli,
            [
                "enhance",
                "--checkpoint",
                str(ckpt),
                "--manifest",
                str(manifest),
                "--out-dir",
                str(out),
                "--iterations",
                "1",
                "--jobs",
                "1",
                "--batch-size",
                size,
            ],
        )
        assert res.exit_code == 1, res.output
        assert "enhanced 4 file(s)" in res.output and "2 file(s) failed" in res.output
        assert "bad-missing:" in res.output and "bad-short:" in res.output and "Traceback" not in res.output
        outs[size] = {p.name: sf.read(p, dtype="float32")[0] for p in sorted(out.glob("*.wav"))}
    assert sorted(outs["3"]) == sorted(outs["1"]) == [f"good-{i:02d}.wav" for i in range(4)]
    for name, y in outs["1"].items():
        np.testing.assert_allclose(outs["3"][name], y, atol=2 / 32768)


@pytest.mark.parametrize(
    "args,message",
    [
        (["--method", "fast", "--batch-size", "2"], "only --method mcem is batched"),
        (["--kernel", "frame-mh-jump", "--batch-size", "2"], "kernel='frame-mh'"),
        (["--batch-size", "0"], "must be >= 1"),
    ],
)
def test_manifest_batch_size_refusals_are_one_line(tmp_path, args, message):
    from click.testing import CliRunner

    from pyro_minvae.cli.main import cli

    rh = _reliability_helpers()
    manifest = rh.make_mixture_corpus(tmp_path / "corpus", n_good=1, bad=())
    ckpt = rh.make_checkpoint(tmp_path / "minvae.pt", "minvae")
    res = CliRunner().invoke(
        cli,
        ["enhance", "--checkpoint", str(ckpt), "--manifest", str(manifest), "--out-dir", str(tmp_path / "out"), *args],
    )
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output and not (tmp_path / "out").exists()
