"""Synthesis on a denser STFT (``synthesis_density``): interpolation against numpy, the streaming and the whole-signal
implementations against each other, perfect reconstruction, and every enhancement path (one chunk, chunked,
batched) giving the same waveform."""

import numpy as np
import pytest
import torch

from pyro_minvae.contracts import EStep
from pyro_minvae.features import FeatureConfig, istft, stft
from pyro_minvae.infer.batched import enhance_waveforms
from pyro_minvae.infer.enhance import enhance_waveform
from pyro_minvae.infer.estep_config import EStepConfig
from pyro_minvae.infer.mcem import MCEMConfig, MCEMResult
from pyro_minvae.infer.presets import preset_options
from pyro_minvae.infer.synthesis import (
    StreamingSynthesis,
    applied_gain,
    frame_positions,
    interpolate_frames,
    synthesis_config,
    synthesise,
)
from pyro_minvae.infer.vem import VEMConfig
from pyro_minvae.models import build_model
from pyro_minvae.registry import ESTEPS

CFG = FeatureConfig(n_fft=128, win_length=128, hop_length=67)  # an odd hop, like the paper's 533


def _wave(seconds, seed=0):
    g = np.random.default_rng(seed)
    return torch.from_numpy((0.3 * g.standard_normal(int(seconds * CFG.sample_rate))).astype(np.float32))


def _local_gain(spec: torch.Tensor) -> torch.Tensor:
    """A gain that depends on each frame alone (so chunking cannot change it): a Wiener-like rule."""
    p = spec.abs().square()
    return p / (p + p.mean(0, keepdim=True))


class _FrameLocal(EStep):
    """A stand-in E-step whose estimate is a frame-local gain times the input: chunk-independent, deterministic."""

    config_class = EStepConfig

    def run(self, model, spec, visual, config, *, seed=0, generator=None, callback=None):
        z = torch.zeros(spec.shape[1], model.latent_dim)
        return MCEMResult(spec * _local_gain(spec), None, torch.zeros(0), torch.zeros(0), None, z, "audio")


if "_test_frame_local" not in ESTEPS:
    ESTEPS.register("_test_frame_local", _FrameLocal())


@pytest.fixture(scope="module")
def avae():
    torch.manual_seed(0)
    return build_model("avae", input_dims={"audio": CFG.n_freq}, latent_dim=4)


def test_interpolation_matches_numpy_and_hits_the_model_frames():
    g = torch.rand(5, 9, dtype=torch.float64)
    pos = frame_positions(0, 40, 17, 67, 9)  # every synthesis frame of hop 17 against model hop 67
    got = interpolate_frames(g, pos)
    for f in range(5):
        np.testing.assert_allclose(got[f].numpy(), np.interp(pos.numpy(), np.arange(9), g[f].numpy()), rtol=1e-12)
    assert float(pos.max()) == 8  # held at the last model frame
    on_grid = frame_positions(0, 9, 67, 67, 9)  # density 1: the model frames themselves
    torch.testing.assert_close(interpolate_frames(g, on_grid), g)
    # an offset block gives the same values as the whole array
    torch.testing.assert_close(interpolate_frames(g[:, 3:], pos[(pos >= 3)], offset=3), got[:, pos >= 3])


def test_applied_gain_recovers_the_gain_and_is_zero_on_silent_bins():
    spec = torch.randn(6, 4, dtype=torch.complex64)
    spec[2, 1] = 0
    gain = torch.rand(6, 4)
    got = applied_gain(spec, spec * gain)
    assert got[2, 1] == 0
    mask = torch.ones(6, 4, dtype=torch.bool)
    mask[2, 1] = False
    torch.testing.assert_close(got.real[mask], gain[mask])
    torch.testing.assert_close(got.imag[mask], torch.zeros(int(mask.sum())), atol=1e-6, rtol=0)


@pytest.mark.parametrize("density", [2, 3, 4])
def test_unit_gain_reconstructs_the_input(density):
    x = _wave(0.4)
    spec = stft(x, CFG)
    np.testing.assert_allclose(synthesise(x, spec, spec, CFG, density).numpy(), x.numpy(), atol=1e-5)


def test_density_one_is_the_estimates_own_inverse():
    x = _wave(0.3, seed=1)
    spec = stft(x, CFG)
    est = spec * _local_gain(spec)
    assert torch.equal(synthesise(x, spec, est, CFG, 1), istft(est, CFG, length=len(x)))


def test_dense_synthesis_is_the_gain_applied_on_the_dense_stft():
    """The definition written out: hop round(67 / 2) = 34, the gain at frame m interpolated at m * 34 / 67."""
    x = _wave(0.25, seed=2)
    spec = stft(x, CFG)
    gain = _local_gain(spec)
    dense = synthesis_config(CFG, 2)
    assert dense.hop_length == 34 and dense.win_length == CFG.win_length
    xd = stft(x, dense)
    g = np.stack([np.interp(np.arange(xd.shape[1]) * 34 / 67, np.arange(spec.shape[1]), row) for row in gain.numpy()])
    want = istft(xd * torch.from_numpy(g).float(), dense, length=len(x))
    torch.testing.assert_close(synthesise(x, spec, spec * gain, CFG, 2), want, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("split", [[1000], [1] * 200, [7, 1, 13, 2, 30, 5, 100]])
def test_streaming_equals_whole_signal_synthesis(split):
    x = _wave(0.27, seed=3)
    n_samples, pad = len(x), CFG.n_fft // 2
    spec = stft(x, CFG)
    gain = torch.polar(torch.rand(spec.shape), torch.rand(spec.shape))  # any complex gain
    s = StreamingSynthesis(torch.nn.functional.pad(x, (pad, pad)), n_samples, spec.shape[1], CFG, 3)
    done = 0
    for size in split:
        s.push(gain[:, done : done + size])
        done = min(spec.shape[1], done + size)
    torch.testing.assert_close(s.finish(), synthesise(x, spec, spec * gain, CFG, 3), atol=2e-6, rtol=1e-5)


def test_streaming_refuses_to_finish_early():
    x = _wave(0.1)
    s = StreamingSynthesis(torch.nn.functional.pad(x, (64, 64)), len(x), CFG.n_frames(len(x)), CFG, 2)
    s.push(torch.ones(CFG.n_freq, 3, dtype=torch.complex64))
    with pytest.raises(RuntimeError, match="push them all"):
        s.finish()


@pytest.mark.parametrize("overlap", [0.0, 0.5, 1.9])
def test_chunked_enhancement_equals_one_chunk(avae, overlap):
    x = _wave(7.3, seed=4)
    whole = enhance_waveform(avae, CFG, x, method="_test_frame_local", synthesis_density=2)
    chunked = enhance_waveform(
        avae, CFG, x, method="_test_frame_local", synthesis_density=2, chunk_seconds=2.0, overlap_seconds=overlap
    )
    assert len(chunked.chunks) > 3
    torch.testing.assert_close(chunked.waveform, whole.waveform, atol=2e-6, rtol=1e-5)
    plain = enhance_waveform(avae, CFG, x, method="_test_frame_local", synthesis_density=1)
    assert not torch.allclose(plain.waveform, whole.waveform, atol=1e-4)  # the option does something


def test_batched_enhancement_uses_the_density(avae):
    waves = [_wave(0.5, seed=5), _wave(0.4, seed=6)]
    opts = dict(iterations=1, mh_steps=2, burn_in=1, final_mh_steps=2, final_burn_in=1, synthesis_density=2)
    batched = enhance_waveforms(avae, CFG, waves, seeds=[0, 1], **opts)
    for b, w in enumerate(waves):
        alone = enhance_waveform(avae, CFG, w, method="mcem", seed=b, **opts)
        torch.testing.assert_close(batched[b].waveform, alone.waveform, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_bad_density_refused_in_one_line(bad):
    for cls in (MCEMConfig, VEMConfig):
        with pytest.raises(ValueError, match="synthesis_density must be an integer >= 1"):
            cls(synthesis_density=bad)


def test_paper_preset_synthesises_on_the_models_own_grid():
    for estep in ("mcem", "fast"):
        assert preset_options("paper", estep)["synthesis_density"] == 1
