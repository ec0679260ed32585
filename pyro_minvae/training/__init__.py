"""Training with SVI, one job per module.

- :mod:`~pyro_minvae.training.config`: :class:`TrainConfig`, the checked settings of a run;
- :mod:`~pyro_minvae.training.builders`: settings -> model (``--encoders``, ``--model-arg``, ``--encoder-option``);
- :mod:`~pyro_minvae.training.objectives`: the loss per model family (registry ``OBJECTIVES``);
- :mod:`~pyro_minvae.training.warm_start`: parameters from pretrained checkpoints;
- :mod:`~pyro_minvae.training.state`: :class:`TrainingState`, what ``--resume`` restores;
- :mod:`~pyro_minvae.training.history`: validation ELBO, responsibility report, CSV log;
- :mod:`~pyro_minvae.training.run_folder`: what may be done with ``--out`` (resume, overwrite, refusals);
- :mod:`~pyro_minvae.training.loop`: :func:`train`;
- :mod:`~pyro_minvae.training.distributed`, :mod:`~pyro_minvae.training.tensorboard`: multi-process training and
  optional TensorBoard scalars.
"""

from .builders import family_encoder_kwargs, make_model, required_modalities
from .config import TrainConfig
from .history import EvalResult, evaluate
from .loop import TrainingDiverged, TrainingInterrupted, TrainResult, train
from .objectives import OBJECTIVES
from .state import TrainingState
from .warm_start import warm_start

__all__ = [
    "OBJECTIVES",
    "EvalResult",
    "TrainConfig",
    "TrainResult",
    "TrainingDiverged",
    "TrainingInterrupted",
    "TrainingState",
    "evaluate",
    "family_encoder_kwargs",
    "make_model",
    "required_modalities",
    "train",
    "warm_start",
]
