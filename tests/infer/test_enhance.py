"""enhance_waveform: exact output length, chunking with overlap (perfect reconstruction), API behaviour."""

import logging

import numpy as np
import pytest
import torch

from pyro_minvae.contracts import EStep
from pyro_minvae.features import FeatureConfig
from pyro_minvae.infer.enhance import chunk_bounds, crossfade_weights, enhance_waveform
from pyro_minvae.infer.estep_config import EStepConfig
from pyro_minvae.infer.mcem import MCEMResult
from pyro_minvae.models import build_model
from pyro_minvae.registry import ESTEPS

CFG = FeatureConfig(n_fft=128, win_length=128, hop_length=64)


class _Identity(EStep):
    """A stand-in E-step returning the input STFT, to test chunk stitching exactly."""

    config_class = EStepConfig

    def run(self, model, spec, visual, config, *, seed=0, generator=None, callback=None):
        z = torch.zeros(spec.shape[1], model.latent_dim)
        return MCEMResult(spec.clone(), None, torch.zeros(0), torch.zeros(0), None, z, "audio")


if "_test_identity" not in ESTEPS:
    ESTEPS.register("_test_identity", _Identity())


def _wave(seconds, seed=0):
    g = np.random.default_rng(seed)
    return (0.3 * g.standard_normal(int(seconds * CFG.sample_rate))).astype(np.float32)


@pytest.fixture(scope="module")
def avae():
    torch.manual_seed(0)
    return build_model("avae", input_dims={"audio": CFG.n_freq}, latent_dim=4)


def test_chunk_bounds_and_weights_partition_unity():
    for n, chunk, overlap in ((10, 20, 5), (100, 30, 7), (61, 30, 0), (1000, 64, 63)):
        b = chunk_bounds(n, chunk, overlap)
        assert b[0][0] == 0 and b[-1][1] == n
        assert all(e - s == min(chunk, n) for s, e in b)
        assert all(b[i + 1][0] <= b[i][1] for i in range(len(b) - 1))  # no gaps
        total = torch.zeros(n)
        for (s, e), w in zip(b, crossfade_weights(b, n)):
            assert (w >= 0).all()
            total[s:e] += w
        torch.testing.assert_close(total, torch.ones(n))
    with pytest.raises(ValueError):
        chunk_bounds(10, 5, 5)


def test_long_signal_chunked_reconstructs_exactly(avae):
    x = _wave(23.3)
    res = enhance_waveform(avae, CFG, x, method="_test_identity", chunk_seconds=4.0, overlap_seconds=1.0)
    assert len(res.chunks) > 5
    assert res.waveform.shape == (len(x),) and res.waveform.dtype == torch.float32
    np.testing.assert_allclose(res.waveform.numpy(), x, atol=1e-5)


@pytest.mark.parametrize("method", ["mcem", "fast"])
def test_long_signal_real_method_exact_length(avae, method):
    x = _wave(12.01, seed=1)
    opts = dict(iterations=1)
    if method == "mcem":
        opts.update(mh_steps=2, burn_in=1, final_mh_steps=2, final_burn_in=1)
    res = enhance_waveform(avae, CFG, x, method=method, chunk_seconds=3.0, overlap_seconds=0.5, **opts)
    assert res.waveform.shape == (len(x),)
    assert torch.isfinite(res.waveform).all()
    assert len(res.chunks) == len(
        chunk_bounds(CFG.n_frames(len(x)), round(3.0 * CFG.frame_rate), round(0.5 * CFG.frame_rate))
    )
    # Wiener gains lie in [0, 1]: the output never has more energy than the input
    assert float(res.waveform.square().sum()) <= float(np.square(x).sum()) * 1.01


def test_same_seed_same_waveform_and_scale_invariance(avae):
    x = _wave(2.0, seed=2)
    a = enhance_waveform(avae, CFG, x, method="fast", seed=3, iterations=2)
    b = enhance_waveform(avae, CFG, x, method="fast", seed=3, iterations=2)
    c = enhance_waveform(avae, CFG, 0.1 * x, method="fast", seed=3, iterations=2)
    assert torch.equal(a.waveform, b.waveform)
    torch.testing.assert_close(c.waveform, 0.1 * a.waveform, rtol=1e-4, atol=1e-6)


def test_minvae_without_visual_logs_fallback(caplog):
    torch.manual_seed(0)
    model = build_model("minvae", input_dims={"audio": CFG.n_freq, "lips": 9}, latent_dim=4)
    x = _wave(1.0)
    with caplog.at_level(logging.INFO, logger="pyro_minvae"):
        res = enhance_waveform(model, CFG, x, method="mcem", iterations=1, mh_steps=2, burn_in=1)
    assert res.init == "audio"
    assert "no visual input" in caplog.text
    n = CFG.n_frames(len(x))
    res = enhance_waveform(
        model, CFG, x, {"lips": torch.rand(n, 9)}, method="mcem", iterations=1, mh_steps=2, burn_in=1
    )
    assert res.init == "lips"
    assert res.result.responsibilities.shape == (n, 2)


def test_bad_inputs(avae):
    with pytest.raises(ValueError, match="mono"):
        enhance_waveform(avae, CFG, np.zeros((2, 100), np.float32))
    with pytest.raises(ValueError, match="E-step method"):
        enhance_waveform(avae, CFG, _wave(1.0), method="nope")
    with pytest.raises(ValueError, match="bins"):
        enhance_waveform(avae, FeatureConfig(), _wave(1.0))
    model = build_model("minvae", input_dims={"audio": CFG.n_freq, "lips": 9}, latent_dim=4)
    with pytest.raises(ValueError, match="frames"):
        enhance_waveform(model, CFG, _wave(1.0), {"lips": torch.rand(3, 9)})


def test_diverged_model_raises_instead_of_returning_nan(avae):
    from pyro_minvae.infer.enhance import NonFiniteOutputError

    bias = avae.decoder.out.bias.detach().clone()
    with torch.no_grad():
        avae.decoder.out.bias.fill_(float("nan"))  # weights after a blown-up training run
    try:
        for method in ("fast", "mcem"):
            with pytest.raises(NonFiniteOutputError, match="NaN or Inf"):
                enhance_waveform(avae, CFG, _wave(1.0), method=method, iterations=1)
    finally:
        with torch.no_grad():
            avae.decoder.out.bias.copy_(bias)


def test_huge_decoder_outputs_stay_finite(avae):
    """The model clamps the decoder's log-variance (``speech_variance``): the likelihood, the M-step and the
    Wiener filter all see the same bounded variance, so an over-confident decoder gives a finite estimate."""
    with torch.no_grad():
        avae.decoder.out.bias.add_(100.0)  # exp(100+) overflows float32 without the clamp
    try:
        for method in ("fast", "mcem"):
            res = enhance_waveform(avae, CFG, _wave(1.0), method=method, iterations=1)
            assert torch.isfinite(res.waveform).all()
    finally:
        with torch.no_grad():
            avae.decoder.out.bias.sub_(100.0)


class _Recorder:
    """An EnhanceProgress that records its calls."""

    def __init__(self):
        self.calls = []

    def start(self, n_chunks):
        self.calls.append(("start", n_chunks))

    def iteration(self, chunk, it, info):
        self.calls.append(("it", chunk, it))

    def chunk_done(self, chunk):
        self.calls.append(("done", chunk))

    def close(self):
        self.calls.append(("close",))


def test_progress_hooks_see_every_iteration_of_every_chunk_and_leave_the_result_unchanged(avae):
    x = _wave(9.0, seed=2)
    seen = []
    prog = _Recorder()
    res = enhance_waveform(
        avae,
        CFG,
        x,
        method="fast",
        iterations=2,
        restarts=2,
        chunk_seconds=4.0,
        overlap_seconds=1.0,
        progress=prog,
        callback=lambda it, info: seen.append(it),
    )
    n = len(res.chunks)
    assert n == 3
    expected = [("start", n)]
    for k in range(n):
        expected += [("it", k, 0), ("it", k, 1)] * 2 + [("done", k)]  # every restart's iterations
    assert prog.calls == expected + [("close",)]
    assert seen == [0, 1] * 2 * n  # the caller's own callback still runs
    plain = enhance_waveform(
        avae, CFG, x, method="fast", iterations=2, restarts=2, chunk_seconds=4.0, overlap_seconds=1.0
    )
    torch.testing.assert_close(res.waveform, plain.waveform)
    prog = _Recorder()
    with pytest.raises(ValueError):
        enhance_waveform(avae, CFG, x, method="fast", iterations=0, progress=prog)
    assert prog.calls[-1] == ("close",)  # closed on error too
