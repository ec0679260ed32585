"""E-step options as one frozen, validated object.

:class:`EStepConfig` holds what every E-step method shares; each method subclasses it with its own fields and
defaults (:class:`~pyro_minvae.infer.mcem.MCEMConfig`, :class:`~pyro_minvae.infer.vem.VEMConfig`) and declares
it as its ``config_class`` (:class:`pyro_minvae.contracts.EStep`). Bad values fail in ``__post_init__`` with one
line; ``build(config, **options)`` replaces fields by name and names the valid ones when an option is unknown.

Seeds, generators, devices and progress callbacks are not options: they are arguments of the E-step call.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from ..errors import is_positive_number
from .estep_common import WEIGHTS
from ..noise.nmf import NMFNoise
from .gain_rule import GainRule
from .potentials import SCORINGS
from .recording_channel import observed_bins
from .synthesis import valid_density


@dataclass(frozen=True)
class EStepConfig:
    """``iterations`` EM iterations (>= 1); ``rank`` of the NMF noise model (paper K = 10); ``init``: the encoder
    that initialises z (``None``: the model's choice, the lips for MIN-VAE); ``weights`` ``"uniform"`` (pi =
    1/M, the paper) or ``"model"`` (the prior's trained pi) for mixture priors, re-estimated each iteration
    unless ``update_weights`` is False; ``scoring`` ``"direct"`` or ``"trace"``
    (:mod:`pyro_minvae.infer.potentials`); ``nmf_dtype``: dtype of the NMF state (default: the model's);
    ``gain_floor``, ``gain_exponent``: the final gain rule ``max(G ** gain_exponent, gain_floor)``
    (:class:`~pyro_minvae.infer.gain_rule.GainRule`; the defaults are the paper's Wiener gain); ``h_block``:
    frames that share one NMF activation vector; ``w_band``: spacing in bins of the smooth bands the NMF spectra W
    are made of (1 and 1 = the paper's free H and W; :class:`~pyro_minvae.noise.nmf.NMFNoise`); ``band_floor_db``:
    bins of the recording more than this many dB below its in-band level are a stop band, left out of the E-step
    (:mod:`~pyro_minvae.infer.recording_channel`; ``None``: every bin is scored, as in the paper); ``noise_start``:
    the NMF's initial noise variance in each bin, as a fraction of the noisy power's median over frames there
    (:meth:`noise_start_level`; ``None``: the paper's raw U[0, 1) draws, whose level against the recording's is
    arbitrary); ``restarts``: the E-step runs this many times from independent starts and its estimate is the
    mean of theirs (R times the cost; :func:`~pyro_minvae.infer.estep_common.run_restarts`); ``restart_starts``:
    the NMF start (a ``noise_start`` value) of each restart in turn, e.g. ``(None, 0.25, 0.5, 1.0)`` (``None``: every
    restart starts as ``noise_start`` says); ``restart_inits``: the encoder that initialises z in each restart in
    turn, e.g. ``(None, "audio")`` (an entry ``None``: ``init``, i.e. the model's choice; ``None``: every restart
    starts as ``init`` says); ``synthesis_density``: the waveform is synthesised from the estimate's gain applied
    on an STFT with this many times as many frames (default 2; 1: the estimate's own STFT, the paper; read by
    :func:`~pyro_minvae.infer.enhance.enhance_waveform`, not by the E-step; :mod:`~pyro_minvae.infer.synthesis`)."""

    iterations: int = 30
    rank: int = 10
    init: str | None = None
    weights: str = "uniform"
    update_weights: bool = True
    scoring: str = "direct"
    nmf_dtype: torch.dtype | None = None
    gain_floor: float = 0.0
    gain_exponent: float = 1.0
    h_block: int = 1
    w_band: int = 1
    band_floor_db: float | None = 40.0  # chosen on validation (docs/algorithms.md); None: score every bin
    noise_start: float | None = None  # None: the paper's start (0.5 was measured, not adopted: docs/algorithms.md)
    restarts: int = 1
    restart_starts: tuple | None = None
    restart_inits: tuple | None = None
    synthesis_density: int = 2  # chosen on validation (docs/algorithms.md, "Synthesis on a denser STFT"); 1: the paper

    def __post_init__(self):
        self._require(isinstance(self.iterations, int) and self.iterations >= 1, "iterations", "an integer >= 1")
        self._require(isinstance(self.rank, int) and self.rank >= 1, "rank", "an integer >= 1")
        self._require(isinstance(self.h_block, int) and self.h_block >= 1, "h_block", "an integer >= 1")
        self._require(isinstance(self.w_band, int) and self.w_band >= 1, "w_band", "an integer >= 1")
        ok_restarts = isinstance(self.restarts, int) and not isinstance(self.restarts, bool) and self.restarts >= 1
        self._require(ok_restarts, "restarts", "an integer >= 1")
        for name in ("restart_starts", "restart_inits"):  # as JSON gives them (--option restart_starts=[null,0.5])
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        starts = self.restart_starts
        ok_starts = starts is None or (
            isinstance(starts, tuple) and len(starts) > 0 and all(a is None or is_positive_number(a) for a in starts)
        )
        self._require(ok_starts, "restart_starts", "a non-empty list of noise starts (numbers > 0 or null) or None")
        inits = self.restart_inits
        ok_inits = inits is None or (
            isinstance(inits, tuple) and len(inits) > 0 and all(a is None or (isinstance(a, str) and a) for a in inits)
        )
        self._require(ok_inits, "restart_inits", "a non-empty list of encoder names (or null) or None")
        ok_floor = self.band_floor_db is None or is_positive_number(self.band_floor_db)
        self._require(ok_floor, "band_floor_db", "a number of dB > 0 or None")
        self._require(self.noise_start is None or is_positive_number(self.noise_start), "noise_start", "> 0 or None")
        self._require(valid_density(self.synthesis_density), "synthesis_density", "an integer >= 1")
        self._choice("weights", WEIGHTS)
        self._choice("scoring", SCORINGS)
        self.gain_rule()  # validates gain_exponent and gain_floor
        self._require(
            self.nmf_dtype is None or isinstance(self.nmf_dtype, torch.dtype), "nmf_dtype", "a torch dtype or None"
        )

    # ---- helpers for subclasses' __post_init__ ---------------------------------------------------------------------
    def _require(self, ok: bool, name: str, what: str) -> None:
        if not ok:
            raise ValueError(f"{name} must be {what}; got {getattr(self, name)!r}")

    def _choice(self, name: str, valid: tuple) -> None:
        if getattr(self, name) not in valid:
            raise ValueError(f"{name} must be one of {valid}; got {getattr(self, name)!r}")

    def noise_model(self, observed: torch.Tensor | None = None) -> NMFNoise:
        """The NMF noise model these options describe, leaving out the bins ``observed`` (``(F,)`` bool) does not
        hold (:meth:`observed_bins`)."""
        return NMFNoise(self.rank, h_block=self.h_block, w_band=self.w_band, observed=observed)

    def observed_bins(self, spec: torch.Tensor) -> torch.Tensor | None:
        """The bins of the recording ``spec`` ``(F, N)`` the E-step scores (``band_floor_db``;
        :func:`~pyro_minvae.infer.recording_channel.observed_bins`): ``None`` for all of them."""
        return None if self.band_floor_db is None else observed_bins(spec, self.band_floor_db)

    def noise_start_level(self, power: torch.Tensor) -> torch.Tensor | None:
        """The NMF start's mean noise variance per bin ``(F,)`` for the noisy power ``(N, F)`` (``noise_start``
        times its median over frames), or ``None`` for the paper's start. The median follows the recording's
        level and colour, and at low SNR it is near the noise level; the raw draws are ~K/4 whatever the input."""
        return None if self.noise_start is None else self.noise_start * power.median(0).values

    def gain_rule(self) -> GainRule:
        """The final estimate's gain rule these options describe."""
        return GainRule(self.gain_exponent, self.gain_floor)

    # ---- construction ---------------------------------------------------------------------------------------------
    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def build(cls, config: "EStepConfig | None" = None, **options) -> "EStepConfig":
        """``config`` (default ``cls()``) with ``options`` replaced. Raises ``ValueError`` on unknown names or a
        config of another method's class."""
        if config is not None and not isinstance(config, cls):
            raise ValueError(f"expected a {cls.__name__}; got a {type(config).__name__}")
        unknown = sorted(set(options) - set(cls.field_names()))
        if unknown:
            raise ValueError(
                f"unknown option(s) {', '.join(unknown)} for {cls.__name__}; valid: {', '.join(cls.field_names())}"
            )
        base = config if config is not None else cls()
        return dataclasses.replace(base, **options) if options else base

    def plain_options(self) -> dict:
        """The fields with int/float/str/bool values or tuples of them (and None), except ``init`` (how a method is
        described in results)."""
        plain = (int, float, str, bool)

        def is_plain(v) -> bool:
            return isinstance(v, plain) or (isinstance(v, tuple) and all(x is None or isinstance(x, plain) for x in v))

        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name != "init" and is_plain(getattr(self, f.name))
        }


__all__ = ["EStepConfig"]
