"""Evaluation: run enhancement methods over a test manifest, score, summarise and plot.

Entry points: :func:`run_evaluation` with an :class:`EvalConfig` and a ``{name: method}`` dict from
:func:`resolve_methods`; checkpoint-based methods plug in through :func:`register_checkpoint_methods`.
"""

from .degrade import VIDEO_DEGRADATIONS, parse_degradation
from .methods import (
    CHECKPOINT_METHODS,
    baseline_methods,
    checkpoint_kind,
    default_checkpoints,
    methods_from_checkpoint,
    register_checkpoint_methods,
    resolve_methods,
)
from .plots import mouth_opening_from_landmarks, plot_metric_vs_snr, plot_responsibilities, plot_spectrograms
from .runner import EvalConfig, EvalReport, evaluate_file, run_evaluation
from .summary import mean_ci, summarise, to_markdown
from .vae_methods import CheckpointMethod  # noqa: F401  (registers the VAE families' methods)

__all__ = [
    "CHECKPOINT_METHODS",
    "register_checkpoint_methods",
    "checkpoint_kind",
    "methods_from_checkpoint",
    "default_checkpoints",
    "baseline_methods",
    "resolve_methods",
    "EvalConfig",
    "EvalReport",
    "run_evaluation",
    "evaluate_file",
    "summarise",
    "mean_ci",
    "to_markdown",
    "plot_metric_vs_snr",
    "plot_spectrograms",
    "plot_responsibilities",
    "mouth_opening_from_landmarks",
    "VIDEO_DEGRADATIONS",
    "parse_degradation",
    "CheckpointMethod",
]
