"""Contracts as code: the base classes every registered component declares by subclassing.

``Registry.register`` checks them when a component is registered (a class must subclass its registry's contract
and implement every abstract method; the error names the missing ones), and the core asks ``isinstance`` instead
of probing attributes. Capabilities a component *may* offer (a closed-form prior density, a cheaper bound
decoder) are methods with a default here, overridden where offered.

==================  ==============  ==========================================================================
registry            contract        what the core calls
==================  ==============  ==========================================================================
``PRIORS``          :class:`Prior`  ``forward(batch, cond)`` inside the ``frames`` plate (samples ``"z"``)
                    :class:`MixturePrior`  + ``log_weights``, ``component_log_prob``, ``component_means``
``DECODERS``        :class:`Decoder`  ``forward(z, cond) -> log sigma^2``, ``bind(cond)``
``GUIDES``          :class:`Guide`  ``forward(batch, cond)``, ``init_loc``, ``modalities``
``KERNELS``         :class:`EStepKernel`  ``setup``, ``score``, ``step``, ``accept_rate``; ``requires``
``ESTEPS``          :class:`EStep`  ``__call__(model, spec, visual, config, *, seed, generator, callback)``
``BASELINES``       :class:`EvaluationMethod`  ``__call__(noisy, sample_rate, *, clean, video, seed)``;
                    ``needs_clean``, ``needs_video``, ``reports_info``, ``batch_refusal``, ``enhance_batch``
==================  ==============  ==========================================================================

Frames: the core's E-step kernels assume a target that factorises over STFT frames. A prior whose frames are
coupled (e.g. a dynamical prior ``p(z_n | z_{n-1})``) sets ``frame_factorised = False``; MCEM then refuses it
unless the kernel declares ``exact_for_coupled_frames = True`` (the fast E-step is exact for it).
"""

from __future__ import annotations

import abc
from types import MappingProxyType
from typing import Any, Callable, ClassVar, Mapping, Protocol, Sequence

import numpy as np
import torch
from torch import nn

from .errors import UserInputError


class IncompatibleComponentError(UserInputError):
    """Two components that cannot work together (e.g. a mode-jump kernel on a model without a mixture prior)."""


# ---- model components -------------------------------------------------------------------------------------------
class Prior(nn.Module, abc.ABC):
    """p(z [, aux] | cond) per frame, a Pyro program called inside the model's ``frames`` plate.

    ``forward(batch, cond)`` samples the site ``"z"`` ``(B, L)`` (event dim 1) and any auxiliary sites (a mixture
    samples an enumerated ``"c"`` first). ``cond``: the model's conditioning ``(B, C)`` or ``None``.
    """

    #: log p(z) is a sum of per-frame terms (False for dynamical priors: E-steps then need a coupled-frame kernel)
    frame_factorised: ClassVar[bool] = True
    latent_dim: int

    @abc.abstractmethod
    def forward(self, batch: dict, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Sample ``"z"`` ``(B, L)`` (and auxiliary sites) inside the ``frames`` plate."""

    def closed_form(self, n_frames: int, cond: torch.Tensor | None = None) -> Callable | None:
        """Optional fast path: ``score(z (..., N, L)) -> log p(z) (..., N)`` (mixtures: component log densities
        ``(M, ..., N)``) for fixed parameters, built once per E-step; ``None`` (the default): enhancement scores
        the prior by tracing its Pyro program (:mod:`pyro_minvae.models.scoring`). Must equal the trace. A prior
        with coupled frames returns per-frame terms that sum to log p(z), each depending on ``z_n`` and
        ``z_{n-1}`` only (e.g. ``log p(z_n | z_{n-1})``), as the ``odd-even-mh`` kernel needs."""
        return None


class ExplicitPrior(Prior):
    """A prior with an explicit per-frame distribution (batch ``(B,)``, event ``(L,)``): sampling and scoring
    come from :meth:`distribution` (A-VAE's N(0, I), AV-CVAE's p(z | v)); AV-CVAE's prior guide draws from it."""

    @abc.abstractmethod
    def distribution(self, batch_size: int, cond: torch.Tensor | None = None):
        """``pyro.distributions.Distribution`` with batch shape ``(B,)`` and event shape ``(L,)``."""

    def forward(self, batch: dict, cond: torch.Tensor | None = None) -> torch.Tensor:
        import pyro

        return pyro.sample("z", self.distribution(batch["audio"].shape[0], cond))

    def closed_form(self, n_frames: int, cond: torch.Tensor | None = None) -> Callable | None:
        return self.distribution(n_frames, cond).log_prob


class MixturePrior(Prior):
    """c ~ Categorical(pi), z | c ~ p_c: one component per encoder (MIN-VAE), ``components`` names them.

    ``forward`` must sample ``"c"`` with ``infer={"enumerate": "parallel"}`` and then ``"z"`` given c.
    """

    components: list

    @abc.abstractmethod
    def log_weights(self) -> torch.Tensor:
        """log pi ``(M,)``."""

    @abc.abstractmethod
    def component_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z | c = m) for every m: ``z (..., L) -> (M, ...)``."""

    @abc.abstractmethod
    def component_means(self) -> torch.Tensor:
        """Where each component sits, ``(M, L)`` (the mode-jump kernel translates frames between them)."""

    @property
    def weights_learned(self) -> bool:
        """True when pi is a parameter trained by the ELBO; False (default): training sets it in closed form
        with :meth:`set_weights` after each epoch (the paper)."""
        return False

    def set_weights(self, weights: torch.Tensor) -> None:
        """Closed-form update of pi from ``(M,)`` positive weights (training's per-epoch M-step)."""
        raise NotImplementedError(
            f"{type(self).__name__} does not implement set_weights; implement it or make weights_learned True"
        )


class Decoder(nn.Module, abc.ABC):
    """``forward(z (..., B, L), cond (B, C) | None) -> speech log-variance (..., B, F)``; ``latent_dim`` L and
    ``out_dim`` F attributes."""

    latent_dim: int
    out_dim: int

    @abc.abstractmethod
    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor: ...

    def bind(self, cond: torch.Tensor | None) -> Callable[[torch.Tensor], torch.Tensor]:
        """``decode(z)`` equal to ``self(z, cond)`` for a fixed ``cond``; override to precompute cond's share."""
        return lambda z: self(z, cond)


class Guide(nn.Module, abc.ABC):
    """Amortised posterior called inside the guide's ``frames`` plate; ``modalities`` lists its encoders' batch
    keys in order (for a mixture guide: the mixture components' order)."""

    @property
    @abc.abstractmethod
    def modalities(self) -> list: ...

    @abc.abstractmethod
    def forward(self, batch: dict, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Sample the model's latent sites (``"z"``, and ``"c"`` for mixtures)."""

    @abc.abstractmethod
    def init_loc(self, batch: dict, cond: torch.Tensor | None = None, prefer: str | None = None) -> torch.Tensor:
        """Posterior mean ``(B, L)`` of encoder ``prefer`` (default: the guide's choice) to start enhancement."""

    def encoder_modules(self) -> list:
        """The encoder networks, in :attr:`modalities` order (warm starts copy them between models)."""
        out: list = []
        for child in self.children():
            out.extend(child) if isinstance(child, nn.ModuleList) else out.append(child)
        return out


# ---- enhancement components -------------------------------------------------------------------------------------
class EStepKernel(abc.ABC):
    """An MCMC kernel over the latents ``z`` ``(N, L)`` of one recording, driven by
    :func:`pyro_minvae.infer.kernels.run_chain`. Built as ``cls(potential=..., step_var=..., generator=...,
    **options)``; ``potential(z, *args) -> (log target (N,), aux {name: (N, ...)})``.

    ``requires``: model capabilities it needs (``"mixture"``: a :class:`MixturePrior`), checked before enhancing.
    ``exact_for_coupled_frames``: stays exact when the prior couples frames (``Prior.frame_factorised`` False).
    """

    requires: ClassVar[frozenset] = frozenset()
    exact_for_coupled_frames: ClassVar[bool] = False

    @abc.abstractmethod
    def setup(self, warmup_steps: int, *args, **kwargs) -> None:
        """Store the potential's arguments for the coming steps (and forget any cached target)."""

    @abc.abstractmethod
    def score(self, z: torch.Tensor):
        """The chain state at ``z`` (log target per frame and aux)."""

    @abc.abstractmethod
    def step(self, state):
        """One transition; returns the new state."""

    @property
    @abc.abstractmethod
    def accept_rate(self) -> float: ...


class EStep(abc.ABC):
    """An enhancement method over one spectrogram, registered in ``ESTEPS``.

    ``config_class``: its frozen options dataclass (a subclass of
    :class:`pyro_minvae.infer.estep_config.EStepConfig`); the CLI and ``evaluate`` build it from their options.
    ``run(model, spec (F, N) complex, visual {name: (N, D)} | None, config, *, seed, generator, callback)``
    returns an :class:`~pyro_minvae.infer.estep_common.MCEMResult`. An E-step that can start from a given noise
    model also takes ``noise`` (an :class:`~pyro_minvae.noise.nmf.NMFState` for this spectrogram, e.g. fitted to a
    noise-only recording; default: drawn from the generator) and ``fix_noise`` (True keeps it as given:
    enhancement with a known noise model). ``run`` gets them only when one is set, so an E-step without those
    parameters still works without them.
    """

    config_class: ClassVar[type]
    registry_name: str = "e-step"  # set by ``ESTEPS.register``

    @abc.abstractmethod
    def run(
        self,
        model,
        spec: torch.Tensor,
        visual: dict | None,
        config,
        *,
        seed: int = 0,
        generator: torch.Generator | None = None,
        callback: Callable | None = None,
    ): ...

    def check(self, model, config) -> None:
        """Refuse, with an :class:`IncompatibleComponentError`, a model this method cannot enhance exactly."""
        check_frame_factorised(model, f"--method {self.registry_name}")

    def make_config(self, config=None, **options):
        """``config`` (default: ``config_class()``) with ``options`` replaced; unknown names raise ValueError."""
        return self.config_class.build(config, **options)

    def __call__(
        self,
        model,
        spec: torch.Tensor,
        visual: dict | None = None,
        config=None,
        *,
        seed: int = 0,
        generator: torch.Generator | None = None,
        callback: Callable | None = None,
        noise=None,
        fix_noise: bool = False,
        **options,
    ):
        """Run with ``config`` and/or keyword ``options`` (the config's field names); ``config.restarts`` > 1
        averages independent runs (:func:`~pyro_minvae.infer.estep_common.run_restarts`) from the NMF starts of
        the model's restart schedule unless the options set them
        (:func:`~pyro_minvae.infer.estep_common.scheduled_config`); a
        :class:`~pyro_minvae.infer.ensemble.ModelEnsemble` as ``model`` runs every member and pools their gains."""
        from .infer.ensemble import ModelEnsemble, members
        from .infer.estep_common import scheduled_config

        config = scheduled_config(self.make_config(config, **options), model)  # the model's restart schedule
        for member in members(model):
            self.check(member, config)
        # only when asked for, so E-steps written without these parameters keep working
        known = {"noise": noise, "fix_noise": bool(fix_noise)} if noise is not None or fix_noise else {}
        if isinstance(model, ModelEnsemble):
            return model.run(self, spec, visual, config, seed=seed, generator=generator, callback=callback, **known)
        if config.restarts == 1 and config.restart_starts is None and config.restart_inits is None:
            return self.run(model, spec, visual, config, seed=seed, generator=generator, callback=callback, **known)
        from .infer.estep_common import run_restarts

        return run_restarts(self.run, model, spec, visual, config, seed, generator, callback, known)


class NoiseModel(Protocol):
    """What the E-steps need from a noise model (:class:`pyro_minvae.noise.nmf.NMFNoise`): ``init(F, N, gen)``
    -> state with ``variance`` ``(N, F)`` and ``g`` ``(N,)``; ``additive(state)`` for the likelihood; the M-step
    updates and objectives. Typed only (one noise model ships; nothing is built by name)."""

    def init(self, n_freq: int, n_frames: int, generator: torch.Generator, device=None, dtype=None) -> Any: ...

    def additive(self, state: Any, dtype=None) -> Any: ...


# ---- evaluation methods -----------------------------------------------------------------------------------------
class EvaluationMethod(abc.ABC):
    """An enhancement method the evaluation runs: the ``BASELINES`` classes and every method a checkpoint
    family's factory returns (:mod:`pyro_minvae.evaluation.methods`); picklable (workers get a copy).

    ``method(noisy (T,) float32, sample_rate Hz, *, clean=None, video=None, seed=0) -> (T,) float32``; ``video``:
    ``{"lips": (N_v, 67, 67) uint8, "landmarks": (N_v, P, 2) float32, "fps": float}`` (absent streams left out).
    What the runner asks: ``needs_clean`` (an oracle: it alone gets the clean reference), ``needs_video`` (the
    record's visual streams are loaded for it), ``reports_info`` (each call leaves what it found in ``last_info``,
    e.g. ``{"responsibilities": (N, M), "frame_rate": Hz, "component_names": [...]}``, so the example figures
    re-run it instead of reading its saved audio) and :meth:`batch_refusal` (None: :meth:`enhance_batch` runs
    several records in one pass).
    """

    needs_clean: ClassVar[bool] = False
    needs_video: ClassVar[bool] = False
    reports_info: ClassVar[bool] = False
    last_info: Mapping = MappingProxyType({})

    @abc.abstractmethod
    def __call__(self, noisy, sample_rate: int, *, clean=None, video=None, seed: int = 0) -> np.ndarray: ...

    def batch_refusal(self) -> str | None:
        """Why this method enhances one record per call (one line), or ``None`` when :meth:`enhance_batch` does
        several in one pass (the runner then groups records for it)."""
        return f"{type(self).__name__} enhances one record per call"

    def enhance_batch(
        self,
        noisy: Sequence[np.ndarray],
        sample_rate: int,
        *,
        clean: Sequence | None = None,
        video: Sequence | None = None,
        seeds: Sequence[int],
    ) -> list:
        """B records at once: ``[waveform (T_b,) or the exception record b raised]``, each equal to
        ``self(noisy[b], sample_rate, clean=clean[b], video=video[b], seed=seeds[b])`` up to float rounding.
        Default: one call per record."""
        n = len(noisy)
        out: list = []
        for x, c, v, s in zip(noisy, clean or [None] * n, video or [None] * n, seeds):
            try:
                out.append(self(x, sample_rate, clean=c, video=v, seed=s))
            except Exception as exc:  # this record fails alone
                out.append(exc)
        return out


# ---- checks -----------------------------------------------------------------------------------------------------
def check_frame_factorised(model, what: str) -> None:
    """Refuse a prior whose frames are coupled for a frame-wise method ``what``."""
    if not model.prior.frame_factorised:
        raise IncompatibleComponentError(
            f"{what}: the prior {type(model.prior).__name__} couples frames (log p(z) does not factorise over "
            "frames), so frame-wise updates would not be exact; use --method fast, or --method mcem with a kernel "
            "exact for coupled frames (--kernel odd-even-mh)"
        )


def check_kernel_fits(kernel_cls: type, name: str, model) -> None:
    """Refuse a kernel whose ``requires`` the model lacks, or a frame-wise kernel on a coupled-frame prior."""
    if "mixture" in kernel_cls.requires and not isinstance(model.prior, MixturePrior):
        raise IncompatibleComponentError(
            f"--kernel {name} needs a mixture prior (MIN-VAE); this checkpoint's prior is "
            f"{type(model.prior).__name__}: use the default kernel frame-mh"
        )
    if not model.prior.frame_factorised and not kernel_cls.exact_for_coupled_frames:
        check_frame_factorised(model, f"--kernel {name}")


def check_contract(kind: str, name: str, obj: Any, contract: type) -> None:
    """Raise ``TypeError`` naming what ``obj`` lacks to satisfy ``contract`` (classes: subclass + no abstract
    method left; instances: isinstance)."""
    where = f"{kind} {name!r}"
    if isinstance(obj, type):
        if not issubclass(obj, contract):
            raise TypeError(f"{where}: {obj.__qualname__} must subclass {contract.__module__}.{contract.__qualname__}")
        missing = sorted(getattr(obj, "__abstractmethods__", ()))
        if missing:
            raise TypeError(
                f"{where}: {obj.__qualname__} does not implement {', '.join(missing)} (required by "
                f"{contract.__qualname__})"
            )
        return
    if isinstance(obj, contract):
        return
    raise TypeError(
        f"{where}: {obj!r} must be a subclass or an instance of {contract.__module__}.{contract.__qualname__}"
    )


__all__ = [
    "Prior",
    "ExplicitPrior",
    "MixturePrior",
    "Decoder",
    "Guide",
    "EStepKernel",
    "EStep",
    "NoiseModel",
    "EvaluationMethod",
    "IncompatibleComponentError",
    "check_contract",
    "check_kernel_fits",
    "check_frame_factorised",
]
