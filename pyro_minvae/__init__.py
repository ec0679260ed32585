"""pyro-minvae: MIN-VAE audio-visual speech enhancement written as Pyro programs.

The public API is flat::

    from pyro_minvae import Enhancer, build_model, train, load_model, enhance_waveform, run_evaluation

Every name in ``__all__`` is documented in docs/api.md. Names are imported on first use (PEP 562), so
``import pyro_minvae`` stays cheap for the command line and for worker processes.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

# public name -> module that defines it (relative to this package)
_EXPORTS: dict[str, str] = {
    # models and their components
    "SpeechVAE": ".models.speech_vae",
    "as_batch": ".models.speech_vae",
    "build_model": ".models.families",
    "PowerSpectrum": ".models.likelihood",
    "AdditiveNoise": ".models.likelihood",
    "Registry": ".registry",
    "PRIORS": ".registry",
    "ENCODERS": ".registry",
    "CONDITIONERS": ".registry",
    "DECODERS": ".registry",
    "GUIDES": ".registry",
    "MODELS": ".registry",
    "KERNELS": ".registry",
    "ESTEPS": ".registry",
    "MODALITIES": ".registry",
    # contracts a registered component declares
    "Prior": ".contracts",
    "ExplicitPrior": ".contracts",
    "MixturePrior": ".contracts",
    "Decoder": ".contracts",
    "Guide": ".contracts",
    "EStepKernel": ".contracts",
    "EStep": ".contracts",
    "NoiseModel": ".contracts",
    # features
    "FeatureConfig": ".features.config",
    "stft": ".features.stft",
    "istft": ".features.stft",
    # training and checkpoints
    "TrainConfig": ".training",
    "train": ".training",
    "warm_start": ".training",
    "save_checkpoint": ".checkpoint",
    "load_checkpoint": ".checkpoint",
    "load_model": ".checkpoint",
    # enhancement
    "Enhancer": ".enhancement",
    "enhance_file": ".enhancement",
    "enhance_waveform": ".infer.enhance",
    "EStepConfig": ".infer.estep_config",
    "MCEMConfig": ".infer.mcem",
    "VEMConfig": ".infer.vem",
    "NMFNoise": ".noise.nmf",
    "read_video": ".video.reader",
    # evaluation and metrics
    "EvalConfig": ".evaluation.runner",
    "run_evaluation": ".evaluation.runner",
    "compute_metrics": ".metrics",
    "si_sdr": ".metrics",
    "pesq_wb": ".metrics",
    "pesq_nb": ".metrics",
    "stoi": ".metrics",
    "estoi": ".metrics",
    # data
    "DemoConfig": ".data.prepare.demo",
    "prepare_demo": ".data.prepare.demo",
    "read_manifest": ".data.manifest",
    # errors
    "UserInputError": ".errors",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pyro_minvae' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
