"""Named sets of E-step options: ``preset_options("paper", "mcem")`` gives the published configuration.

``"paper"``: Sadeghi et al.'s MCEM as published: 100 EM iterations, rank-10 NMF with free per-frame
activations and free spectra (``h_block=1``, ``w_band=1``) started from raw U[0, 1) draws (``noise_start=None``),
every frequency bin scored (``band_floor_db=None``) and the plain Wiener gain (``gain_exponent=1``,
``gain_floor=0``) applied on the model's own STFT (``synthesis_density=1``); every other MCEM option already
defaults to the paper's value (40 MH steps, 30 burn-in, proposal variance 0.01) and it runs once (``restarts=1``).
The fast E-step is not in the paper; its ``"paper"`` preset keeps its own iterations and restarts and restores
the paper's noise model, gain and synthesis.
A preset is a starting point: options given next to it override it (``pyro-minvae tune --setting
paper:preset=paper``; ``CheckpointMethod(path, "mcem", **preset_options("paper", "mcem"))``).
"""

from __future__ import annotations

PAPER_NOISE_AND_GAIN = {
    "rank": 10,
    "h_block": 1,
    "w_band": 1,
    "band_floor_db": None,
    "noise_start": None,
    "gain_exponent": 1.0,
    "gain_floor": 0.0,
    "synthesis_density": 1,
}
PRESETS = {
    "paper": {"mcem": {"iterations": 100, "restarts": 1, **PAPER_NOISE_AND_GAIN}, "*": dict(PAPER_NOISE_AND_GAIN)},
}


def preset_options(name: str, estep: str) -> dict:
    """The options of preset ``name`` for the E-step registered as ``estep`` (``"*"``: any other E-step)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(sorted(PRESETS))}")
    table = PRESETS[name]
    return dict(table.get(estep, table.get("*", {})))


__all__ = ["PRESETS", "preset_options"]
