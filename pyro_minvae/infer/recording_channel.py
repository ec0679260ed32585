"""The bands a recording does not contain are left out of the E-step (option ``band_floor_db``).

A speech model trained on full-band speech expects energy in every frequency bin. A telephone-band recording, or
one sampled at 8 kHz and resampled to 16 kHz, has none above 3.4-4 kHz. Scored there, the Itakura-Saito likelihood
penalises the speech variance in every frame, which pulls the frame gain g and the latents towards silence *inside*
the band as well, and the NMF takes the speech (measured on validation: MIN-VAE's MCEM lost 8 dB SI-SDR and 0.23
ESTOI through a telephone channel, some outputs uncorrelated with the speech; docs/algorithms.md). And the IS
divergence is scale-invariant, so a stop band 60 dB down weighs as much in the NMF fit as the band itself.

Such bins carry no observation of the speech: they are treated as missing. :func:`observed_bins` finds them from
the noisy input's long-term spectrum ``P_f = mean_n |X_fn|^2``: a bin is a stop band when ``P_f`` is more than
``band_floor_db`` dB below ``P_ref``, the 90th percentile of ``P_f`` over bins (a level inside the band, whatever
its width). The noise model (:class:`~pyro_minvae.noise.nmf.NMFNoise` ``observed``) then leaves them out of its
updates and of the likelihood it hands the model (``AdditiveNoise.observed``: ``observation`` masks their
log-density), so the traced model, the potentials and the M-steps agree. The Wiener gain is still applied in every
bin; a stop band's output is as small as its input. A recording without a stop band is enhanced exactly as before.
"""

from __future__ import annotations

import torch

from ..errors import is_positive_number

REFERENCE_QUANTILE = 0.9


def observed_bins(spec: torch.Tensor, floor_db: float) -> torch.Tensor | None:
    """``(F,)`` bool, True where the noisy STFT ``spec`` ``(F, N)`` holds an observation (within ``floor_db`` dB of the
    in-band level), or ``None`` when every bin does (nothing to leave out) or the input is silent."""
    if not is_positive_number(floor_db):
        raise ValueError(f"band_floor_db must be a finite number of dB > 0; got {floor_db!r}")
    level = spec.abs().square().mean(-1).double()  # (F,)
    reference = torch.quantile(level, REFERENCE_QUANTILE)
    if not reference > 0:
        return None
    observed = level >= reference * 10.0 ** (-floor_db / 10.0)
    return None if bool(observed.all()) else observed
