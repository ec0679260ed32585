"""Pyro models: the speech model facade, priors, the likelihood and the registered families."""

from . import markov_prior, priors  # noqa: F401  (registers priors)
from .. import guides  # noqa: F401  (registers guides)
from ..nn import decoders, encoders  # noqa: F401  (registers encoders/decoders)
from .families import build_model
from .likelihood import AdditiveNoise, PowerSpectrum
from .speech_vae import SpeechVAE, as_batch

__all__ = ["SpeechVAE", "build_model", "as_batch", "AdditiveNoise", "PowerSpectrum"]
