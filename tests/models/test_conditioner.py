"""AV-CVAE's visual conditioners: the paper's embedding and the normalised one (``CONDITIONERS``)."""

import pytest
import torch
from torch import nn

from pyro_minvae.models import build_model
from pyro_minvae.registry import CONDITIONERS


def _lips(frames: int = 6, side: int = 67, seed: int = 0) -> torch.Tensor:
    """Lip-like frames: a bright image (mean ~0.6) that changes by ~2% from frame to frame, as the demo ROIs do."""
    g = torch.Generator().manual_seed(seed)
    base = 0.6 + 0.1 * torch.rand(1, side * side, generator=g)
    return base + 0.02 * torch.randn(frames, side * side, generator=g)


def test_normalised_embedding_ignores_brightness_and_contrast():
    torch.manual_seed(0)
    emb = CONDITIONERS.build("normalised-embedding", modality="lips", in_dim=4489, out_dim=32)
    x = _lips()
    out = emb(x)
    assert out.shape == (6, 32) and out.abs().max() < 1
    torch.testing.assert_close(emb(1.7 * x + 0.2), out, atol=1e-4, rtol=1e-4)  # per-frame standardised input


def test_paper_embedding_sees_brightness_and_keeps_its_layout():
    torch.manual_seed(0)
    emb = CONDITIONERS.build("embedding", modality="lips", in_dim=4489, out_dim=32)
    x = _lips()
    assert not torch.allclose(emb(1.7 * x + 0.2), emb(x), atol=1e-3)
    assert [type(m) for m in emb.body] == [nn.Linear, nn.ReLU, nn.Linear, nn.Tanh]
    assert not any(isinstance(m, nn.LayerNorm) for m in emb.modules())


def test_normalised_embedding_puts_a_layer_norm_before_every_nonlinearity():
    emb = CONDITIONERS.build("normalised-embedding", modality="lips", in_dim=100, out_dim=8, hidden=(16, 12))
    layers = list(emb.body) + list(emb.out)
    assert isinstance(layers[0], nn.LayerNorm) and not layers[0].elementwise_affine
    for i, m in enumerate(layers):
        if isinstance(m, (nn.ReLU, nn.Tanh)):
            assert isinstance(layers[i - 1], nn.LayerNorm), f"layer {i} ({type(m).__name__}) has no norm before it"


@pytest.mark.parametrize("name", ["embedding", "normalised-embedding"])
def test_avcvae_builds_with_either_conditioner(name):
    model = build_model("avcvae", input_dims={"audio": 513, "lips": 4489}, conditioner=name)
    assert model.spec["kwargs"]["conditioner"] == name
    assert model.conditioner(_lips(3)).shape == (3, 32)
