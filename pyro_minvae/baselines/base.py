"""The enhancement-method interface shared by classical baselines and the VAE methods.

An enhancement method is a picklable callable object::

    method(noisy, sample_rate, *, clean=None, video=None, seed=0) -> np.ndarray

- ``noisy``: float waveform ``(T,)`` in [-1, 1] at ``sample_rate`` Hz;
- ``clean``: the clean reference ``(T,)`` (oracle methods only; others ignore it);
- ``video``: dict of visual streams at video rate, as the evaluation loads them from a manifest record:
  ``"lips"`` ``(N_v, 67, 67)`` uint8, ``"landmarks"`` ``(N_v, P, 2)`` float32 (either may be absent) and
  ``"fps"`` (float);
- returns the enhanced waveform, float32 ``(T,)``, exactly as long as ``noisy``.

The contract every method satisfies is :class:`pyro_minvae.contracts.EvaluationMethod` (class attributes
``needs_clean`` / ``needs_video`` / ``reports_info`` tell the evaluation what a method requires; ``BASELINES``
checks it at registration). :class:`Enhancer` implements it for methods written as one :meth:`Enhancer.enhance`.
"""

from __future__ import annotations

import abc

import numpy as np

from ..contracts import EvaluationMethod


class Enhancer(EvaluationMethod):
    """Base class: validates input and output around :meth:`enhance` (the one method a subclass writes)."""

    def __call__(self, noisy, sample_rate: int, *, clean=None, video=None, seed: int = 0) -> np.ndarray:
        x = check_waveform(noisy, "noisy")
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive; got {sample_rate}")
        if self.needs_clean:
            if clean is None:
                raise ValueError(f"{type(self).__name__} is an oracle method and needs the clean reference")
            clean = check_waveform(clean, "clean")
            if clean.shape != x.shape:
                raise ValueError(f"clean reference has {clean.shape[0]} samples, noisy has {x.shape[0]}")
        if self.needs_video and not video:
            raise ValueError(f"{type(self).__name__} needs the visual stream (video dict)")
        y = np.asarray(self.enhance(x, int(sample_rate), clean=clean, video=video, seed=seed), dtype=np.float32)
        if y.shape != x.shape:
            raise RuntimeError(f"{type(self).__name__} returned shape {y.shape} for input {x.shape}")
        if not np.isfinite(y).all():
            raise RuntimeError(f"{type(self).__name__} returned non-finite samples")
        return y

    @abc.abstractmethod
    def enhance(self, noisy: np.ndarray, sample_rate: int, *, clean=None, video=None, seed: int = 0) -> np.ndarray:
        """The enhanced ``(T,)`` for a checked ``noisy`` ``(T,)`` (and ``clean`` ``(T,)`` for oracles)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def check_waveform(x, what: str) -> np.ndarray:
    """``x`` as float32 ``(T,)``; ``ValueError`` if not 1-D, empty or non-finite."""
    a = np.asarray(x, dtype=np.float32)
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"{what} must be a non-empty 1-D waveform (T,); got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{what} contains NaN or Inf samples")
    return a
