"""Random recording channels for training frames (training/augment.py): each channel does what its docstring
says, draws are reproducible, and training sees them while validation does not."""

import math

import pytest
import torch

from pyro_minvae.errors import UserInputError
from pyro_minvae.training import TrainConfig, train
from pyro_minvae.training.augment import ChannelAugment, _warp

FREQS = torch.arange(513) * (16000 / 1024)


def _draw(aug: ChannelAugment, power: torch.Tensor, seed: int = 0) -> torch.Tensor:
    return aug(power, FREQS, torch.Generator().manual_seed(seed))


def test_no_ranges_leave_the_frames_as_they_are():
    power = torch.rand(4, 513)
    assert _draw(ChannelAugment(), power) is power


def test_tilt_is_a_straight_line_in_octaves_above_250_hz_and_flat_below():
    power = torch.ones(64, 513, dtype=torch.float64)
    gain_db = 10 * torch.log10(_draw(ChannelAugment(tilt=6.0), power))
    octaves = torch.log2(FREQS.double().clamp_min(250.0) / 1000.0)
    slope = gain_db[:, 256] / 2.0  # dB per octave of each frame: bin 256 is 4 kHz, two octaves above 1 kHz
    assert torch.allclose(gain_db, slope[:, None] * octaves, atol=1e-9)
    assert slope.abs().max() <= 6.0 and slope.min() < -2 and slope.max() > 2  # spread over the range, both signs
    assert torch.allclose(gain_db[:, :16], gain_db[:, 16:17].expand(-1, 16))  # flat below 250 Hz


def test_band_limiting_removes_50_db_above_the_cutoff_and_keeps_the_telephone_band():
    power = torch.ones(200, 513, dtype=torch.float64)
    out = _draw(ChannelAugment(band=0.5), power)
    limited = out[:, -1] < 1
    assert 0.35 < limited.double().mean() < 0.65  # probability 0.5
    assert torch.equal(out[~limited], power[~limited])
    below = FREQS <= 3400
    assert torch.equal(out[limited][:, below], power[limited][:, below])
    assert torch.allclose(10 * torch.log10(out[limited][:, FREQS >= 8000]), torch.tensor(-50.0, dtype=torch.float64))
    assert (out[limited].diff(dim=-1) <= 0).all()  # a monotone edge, no ripple


def test_warp_moves_a_spectral_peak_by_the_scale():
    power = torch.zeros(2, 513)
    power[:, 100] = 1.0
    out = _warp(power, torch.tensor([[1.1], [0.9]]))
    assert out[0].argmax() == 110 and out[1].argmax() == 90
    assert torch.allclose(_warp(power, torch.ones(2, 1)), power)


def test_draws_are_reproducible_and_differ_between_seeds():
    aug, power = ChannelAugment(tilt=4.0, band=0.3, warp=0.1), torch.rand(8, 513)
    assert torch.equal(_draw(aug, power, 1), _draw(aug, power, 1))
    assert not torch.equal(_draw(aug, power, 1), _draw(aug, power, 2))


@pytest.mark.parametrize(
    "augment, message",
    [
        ({"tilt": -1.0}, "tilt=-1.0: must be a number from 0 to 24"),
        ({"band": 1.5}, "band=1.5"),
        ({"wrap": 0.1}, "unknown wrap; valid: tilt, band, warp"),
        ({"warp": math.nan}, "warp=nan"),
    ],
)
def test_bad_ranges_are_one_line_errors(augment, message):
    with pytest.raises(UserInputError, match=message.replace("[", r"\[").replace(".", r"\.")):
        TrainConfig(family="avae", augment=augment)


def test_training_sees_the_channels_and_validation_does_not(datasets, tmp_path, monkeypatch):
    from pyro_minvae.training import loop

    tr, va = datasets
    seen = []
    real = loop._ChannelDraws.__call__
    monkeypatch.setattr(loop._ChannelDraws, "__call__", lambda self, batch: seen.append(1) or real(self, batch))
    cfg = dict(family="avae", latent_dim=4, epochs=1, batch_size=32, lr=3e-3, seed=1)
    plain = train(TrainConfig(**cfg), tr, va, tmp_path / "plain", progress=False)
    assert not seen
    aug = train(TrainConfig(**cfg, augment={"tilt": 6.0}), tr, va, tmp_path / "aug", progress=False)
    assert len(seen) == math.ceil(len(tr) / 32)  # every training batch, once
    assert not torch.equal(plain.model.state_dict()["decoder.out.weight"], aug.model.state_dict()["decoder.out.weight"])
    assert aug.history[0]["valid_elbo"] != plain.history[0]["valid_elbo"]
