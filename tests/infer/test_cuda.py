"""The enhancement and training paths on a CUDA device (skipped where there is none; run on a GPU machine with
``pytest tests/infer/test_cuda.py``)."""

from __future__ import annotations

import pytest
import torch

from pyro_minvae.features import FeatureConfig
from pyro_minvae.infer.enhance import enhance_waveform
from pyro_minvae.models.families import build_model

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")


@pytest.mark.parametrize("family", ["avae", "avcvae", "minvae"])
@pytest.mark.parametrize("method", ["mcem", "fast"])
def test_enhancement_runs_on_cuda(family, method):
    cfg = FeatureConfig()
    dims = {"audio": cfg.n_freq, "lips": 67 * 67}
    model = build_model(family, input_dims=dims if family != "avae" else {"audio": cfg.n_freq}).to("cuda")
    x = torch.randn(16000).numpy() * 0.1
    n = cfg.n_frames(len(x))
    visual = {} if family == "avae" else {"lips": torch.rand(n, 67 * 67)}
    res = enhance_waveform(model, cfg, x, visual, method=method, seed=0, device="cuda", iterations=2)
    assert res.waveform.shape[0] == len(x) and torch.isfinite(res.waveform).all()
    again = enhance_waveform(model, cfg, x, visual, method=method, seed=0, device="cuda", iterations=2)
    torch.testing.assert_close(res.waveform, again.waveform)  # seeded generator on the device


def test_chunked_dense_synthesis_runs_on_cuda():
    """The streaming synthesis of the chunked path keeps its tensors on the device (gains, positions, buffers)."""
    cfg = FeatureConfig()
    model = build_model("avae", input_dims={"audio": cfg.n_freq})
    x = torch.randn(48000).numpy() * 0.1
    opts = dict(method="fast", seed=0, iterations=1, restarts=1, chunk_seconds=1.0, overlap_seconds=0.3)
    gpu = enhance_waveform(model, cfg, x, device="cuda", **opts)
    assert len(gpu.chunks) > 2 and torch.isfinite(gpu.waveform).all()
    assert gpu.waveform.shape[0] == len(x)
