"""Where the enhancement loses quality: oracle estimators that replace one part of the system at a time.

Every estimator here is a real gain ``G`` ``(F, N)`` in [0, 1] applied to the noisy STFT ``X = S + N`` (clean
speech ``S``, noise ``N``, both known on a mixture), so its output ``G X = G S + G N`` splits into what is left of
the speech and what is left of the noise (:func:`gain_budget`). The variants (:func:`oracle_gains`):

``wiener-oracle``        ``|S|^2 / (|S|^2 + |N|^2)``: the headroom of any Wiener-type gain.
``vae-oracle``           the speech model at its best: ``sigma^2`` decoded at the audio encoder's mean on the
                         *clean* power (the "VAE oracle"), its per-frame gain ``g`` fitted to the clean power
                         (maximum likelihood, ``g_n = mean_f |S|^2 / sigma^2``) and the true noise power ``|N|^2``.
``vae-oracle-g1``        the same with ``g = 1``: what the gain g is worth.
``vae-oracle-nmf``       the clean posterior's ``sigma^2`` held fixed and the NMF noise model (and g) fitted to
                         the noisy power by the classic M-step, as MCEM would if its E-step found the clean
                         posterior: what the noise model costs.
``true-speech-nmf``      the true speech power ``|S|^2`` (g = 1) with the NMF fitted: the noise model alone; its
                         ``V`` against ``|N|^2`` where speech dominates says how much speech the NMF absorbs.

:func:`known_noise_states` gives the E-step oracles: the same E-step run with the noise model fixed at the true
noise power (``true-noise``) or at rank-10 NMFs fitted to the noise alone (``noise-nmf``, free activations;
``noise-nmf16``, activations tied over 16 frames): how much of the loss is the noise estimate.

All work on one peak-normalised spectrogram, as :func:`~pyro_minvae.infer.enhance.enhance_waveform` does.
"""

from __future__ import annotations

import math
from typing import Dict

import torch

from ..models.likelihood import speech_variance
from ..noise.nmf import NMFNoise, NMFState

VARIANTS = ("wiener-oracle", "vae-oracle", "vae-oracle-g1", "vae-oracle-nmf", "true-speech-nmf")
_TINY = 1e-12


def power(spec: torch.Tensor) -> torch.Tensor:
    """``|X|^2`` frame-major ``(N, F)`` from a complex STFT ``(F, N)``."""
    return (spec.real.square() + spec.imag.square()).transpose(0, 1).contiguous()


def clean_posterior_variance(
    model, clean_spec: torch.Tensor, visual: Dict[str, torch.Tensor] | None = None
) -> torch.Tensor:
    """``sigma^2(z)`` ``(N, F)`` at the audio encoder's mean on the clean power (the "VAE oracle" speech model)."""
    from ..infer.estep_common import model_batch

    dtype = next(model.parameters()).dtype
    with torch.no_grad():
        batch = model_batch(model, clean_spec, visual, dtype)
        z = model.init_latents(batch, prefer="audio")
        return speech_variance(model.speech_log_var(z, batch))


def ml_gain(speech_power: torch.Tensor, speech_var: torch.Tensor) -> torch.Tensor:
    """Per-frame gain ``(N,)`` maximising the exponential likelihood of ``speech_power`` with mean ``g sigma^2``."""
    return (speech_power / speech_var).mean(-1).clamp_min(_TINY)


def fit_nmf(
    noisy_power: torch.Tensor,
    speech_var: torch.Tensor,
    iterations: int = 30,
    rank: int = 10,
    update_gain: bool = True,
    seed: int = 0,
    h_block: int = 1,
    w_band: int = 1,
) -> NMFState:
    """W, H (and g) fitted to ``noisy_power`` ``(N, F)`` by the classic M-step with the speech variance held fixed
    (``rank``, ``h_block``, ``w_band``: :class:`~pyro_minvae.noise.nmf.NMFNoise`)."""
    nmf = NMFNoise(rank, h_block=h_block, w_band=w_band)
    gen = torch.Generator().manual_seed(seed)
    state = nmf.init(noisy_power.shape[1], noisy_power.shape[0], gen, dtype=noisy_power.dtype)
    sv = speech_var.unsqueeze(0)
    for _ in range(iterations):
        state = nmf.update_sampled(state, noisy_power, sv, exponent=0.5, update_gain=update_gain)
    return state


def oracle_gains(
    model,
    clean_spec: torch.Tensor,
    noise_spec: torch.Tensor,
    visual: Dict[str, torch.Tensor] | None = None,
    iterations: int = 30,
    seed: int = 0,
    rank: int = 10,
    h_block: int = 1,
    w_band: int = 1,
) -> dict:
    """``{variant: G (F, N)}`` for the :data:`VARIANTS` (module docstring), plus ``"_nmf"`` diagnostics:
    ``{variant: NMFState}`` of the two NMF variants (fitted with ``rank``, ``h_block`` and ``w_band``)."""
    s2, n2 = power(clean_spec).double(), power(noise_spec).double()
    x2 = power(clean_spec + noise_spec).double()
    sv = clean_posterior_variance(model, clean_spec, visual).double()
    g = ml_gain(s2, sv).unsqueeze(-1)
    out = {
        "wiener-oracle": s2 / (s2 + n2 + _TINY),
        "vae-oracle": g * sv / (g * sv + n2 + _TINY),
        "vae-oracle-g1": sv / (sv + n2 + _TINY),
    }
    st = fit_nmf(x2, sv, iterations, rank, seed=seed, h_block=h_block, w_band=w_band)
    vs = st.g.unsqueeze(-1) * sv
    out["vae-oracle-nmf"] = vs / (vs + st.variance)
    st2 = fit_nmf(
        x2, s2.clamp_min(_TINY), iterations, rank, update_gain=False, seed=seed, h_block=h_block, w_band=w_band
    )
    out["true-speech-nmf"] = s2 / (s2 + st2.variance + _TINY)
    gains = {k: v.transpose(0, 1).to(clean_spec.real.dtype) for k, v in out.items()}
    gains["_nmf"] = {"vae-oracle-nmf": st, "true-speech-nmf": st2, "oracle_g": g.squeeze(-1)}
    return gains


def known_noise_states(noise_spec: torch.Tensor, iterations: int = 200, rank: int = 10, seed: int = 0) -> dict:
    """``{name: NMFState}`` noise models known from the noise STFT ``(F, N)``, to run an E-step with
    (``noise=state, fix_noise=True``): ``true-noise`` (variance = ``|N|^2``, W the identity), ``noise-nmf`` and
    ``noise-nmf16`` (rank ``rank`` fitted to ``|N|^2`` alone by ``iterations`` classic sweeps, free or 16-frame
    activations). g = 1 in all."""
    n2 = power(noise_spec).double().clamp_min(_TINY)  # (N, F)
    n, f = n2.shape
    none = torch.full((n, f), _TINY, dtype=n2.dtype)  # no speech: the fit sees the noise alone
    ones = torch.ones(n, dtype=n2.dtype)
    out = {"true-noise": NMFState(torch.eye(f, dtype=n2.dtype), n2.T.contiguous(), ones)}
    for name, block in (("noise-nmf", 1), ("noise-nmf16", 16)):
        st = fit_nmf(n2, none, iterations, rank, update_gain=False, seed=seed, h_block=block)
        out[name] = st._replace(g=ones)
    return out


def gain_budget(gain: torch.Tensor, clean_spec: torch.Tensor, noise_spec: torch.Tensor, weak: float = 0.1) -> dict:
    """Where a gain ``G`` ``(F, N)`` spends its error, in dB (STFT domain):

    ``speech_loss_db``   ``10 log10 ||S||^2 / ||(1 - G) S||^2``: speech-to-speech-distortion ratio (higher: less
                         speech removed);
    ``noise_left_db``    ``10 log10 ||S||^2 / ||G N||^2``: speech-to-residual-noise ratio (higher: less noise);
    ``over_suppressed``  fraction of the speech energy in bins where speech dominates (``|S| > |N|``) but
                         ``G < weak`` (default -20 dB): the weak harmonics and onsets a gain wipes out.
    """
    s2 = clean_spec.real.square() + clean_spec.imag.square()
    n2 = noise_spec.real.square() + noise_spec.imag.square()
    total = float(s2.sum()) + _TINY
    dist = float(((1 - gain).square() * s2).sum()) + _TINY
    left = float((gain.square() * n2).sum()) + _TINY
    dom = s2 > n2
    over = float((s2 * (dom & (gain < weak))).sum()) / total
    return {
        "speech_loss_db": 10 * math.log10(total / dist),
        "noise_left_db": 10 * math.log10(total / left),
        "over_suppressed": over,
    }


def absorbed_db(state: NMFState, clean_spec: torch.Tensor, noise_spec: torch.Tensor) -> float:
    """``10 log10 (sum V / sum |N|^2)`` over the bins where speech dominates: how far the fitted noise variance
    exceeds the true noise there (0 dB: none of the speech is taken for noise)."""
    s2, n2 = power(clean_spec).double(), power(noise_spec).double()
    dom = s2 > n2
    v = state.variance.double()
    return 10 * math.log10((float((v * dom).sum()) + _TINY) / (float((n2 * dom).sum()) + _TINY))


__all__ = [
    "VARIANTS",
    "power",
    "clean_posterior_variance",
    "ml_gain",
    "fit_nmf",
    "oracle_gains",
    "gain_budget",
    "absorbed_db",
]
