"""Checks of the enhancement settings a user gives (device, E-step, its options), each a one-line
``UserInputError`` before any work starts, and the default thread count of one file's enhancement."""

from __future__ import annotations

import json
from collections.abc import Mapping

import torch

from ..errors import UserInputError

# torch threads for one file's enhancement when the user gives none. Measured on the 2-core machine while other
# jobs kept it busy (load average 14; 10 s of audio, paper-size MIN-VAE, mcem 5 iterations; docs/cli.md): 1 thread
# 3.3 s, 2 threads 56 s (median of 3): OpenMP threads that wait for a busy core cost
# far more than the second core gains, so the default is 1 whatever the load (--threads 2 on an idle machine).
DEFAULT_THREADS = 1

# More EM iterations than this is a typo (1e20 would run for ever); the paper uses 100, converged runs need < 1000.
MAX_ITERATIONS = 100_000


def parse_key_value(text: str) -> tuple[str, object]:
    """``"key=value"`` -> ``(key, value)``: the value as JSON (numbers, true/false, null) or else the string, e.g.
    ``"gain_floor=0.1"`` -> ``("gain_floor", 0.1)``, ``"loop=minvae"`` -> ``("loop", "minvae")``. ``ValueError``
    (callers add where the text came from) when it is not of that form."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"{text!r} is not key=value")
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value.strip()


def parse_key_values(items, option: str, example: str) -> dict:
    """``["k=v", ...]`` given to the command-line ``option`` -> ``{k: v}`` (:func:`parse_key_value`); an item
    not of that form is a one-line ``UserInputError`` naming the option and an ``example`` item."""
    out: dict = {}
    for item in items:
        try:
            key, value = parse_key_value(item)
        except ValueError:
            raise UserInputError(f"{option} {item!r}: expected KEY=VALUE, e.g. {example}") from None
        out[key] = value
    return out


def check_device(device) -> torch.device:
    """``device`` as a ``torch.device``; unknown names and devices this machine lacks are refused."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise UserInputError(f"device {device!r}: not a torch device; use cpu, cuda, cuda:1 or mps") from None
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UserInputError(f"device {device!r}: this torch build or machine has no CUDA GPU; use cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UserInputError(
                f"device {device!r}: only {torch.cuda.device_count()} CUDA GPU(s) here; use cuda:0 or cpu"
            )
        return dev
    if dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise UserInputError(f"device {device!r}: MPS is not available here; use cpu")
        return dev
    raise UserInputError(f"device {device!r}: enhancement runs on cpu, cuda or mps")


def estep_config(method: str, options: Mapping):
    """The E-step ``method``'s config built from ``options`` (``UserInputError`` for unknown methods, unknown
    option names and bad values), before any work. ``iterations`` < 1 is named as the CLI option."""
    import pyro_minvae.infer  # noqa: F401  (registers the built-in E-steps and kernels)

    from ..registry import ESTEPS

    try:
        estep = ESTEPS.get(method)
    except ValueError as exc:
        raise UserInputError(f"--method: {exc} (a plugin registers more: pyro-minvae --plugin FILE.py ...)") from None
    iters = options.get("iterations")
    if iters is not None and (
        isinstance(iters, bool) or not isinstance(iters, int) or not 1 <= iters <= MAX_ITERATIONS
    ):
        raise UserInputError(
            f"--iterations {iters}: must be a whole number >= 1 (EM iterations; at most "
            f"{MAX_ITERATIONS}, the paper uses 100)"
        )
    fields = estep.config_class.field_names()  # what the method's config takes (plugin E-steps too)
    if options.get("loop") is not None and "loop" not in fields:
        raise UserInputError(f"--loop applies to --method mcem only, not {method!r}")
    if options.get("kernel") is not None and "kernel" not in fields:
        raise UserInputError(f"--kernel {options['kernel']}: kernels drive the MCMC E-step; use it with --method mcem")
    try:
        return estep.make_config(options.get("config"), **{k: v for k, v in options.items() if k != "config"})
    except (ValueError, TypeError) as exc:  # TypeError: a value of the wrong kind (e.g. gain_floor="nan")
        raise UserInputError(f"--method {method}: {exc}") from None


def check_method_options(method: str, options: Mapping) -> None:
    """Checks that need no model: the E-step exists and accepts ``options``, ``iterations`` >= 1, ``loop`` and
    ``kernel`` only with MCEM, a registered kernel."""
    from ..registry import KERNELS

    estep_config(method, options)
    kernel = options.get("kernel")
    if kernel is not None:
        try:
            KERNELS.get(kernel)
        except ValueError as exc:
            raise UserInputError(
                f"--kernel: {exc} (a plugin registers more: pyro-minvae --plugin FILE.py ...)"
            ) from None


def check_model_options(model, method: str, options: Mapping) -> None:
    """Checks against the loaded ``model``: the ``init`` and ``restart_inits`` encoders exist, the kernel's declared
    requirements (:func:`pyro_minvae.contracts.check_kernel_fits`) and the E-step's own check of the model."""
    from ..contracts import check_kernel_fits
    from ..infer.ensemble import members
    from ..registry import ESTEPS, KERNELS

    check_method_options(method, options)
    init, kernel, config = options.get("init"), options.get("kernel"), estep_config(method, options)
    for member in members(model):  # an ensemble: each of its models
        encoders = list(member.guide_net.modalities)
        if init is not None and init not in encoders:
            raise UserInputError(
                f"--init {init}: this checkpoint's encoders are {', '.join(encoders)}; pick one of them"
            )
        unknown = [name for name in config.restart_inits or () if name is not None and name not in encoders]
        if unknown:
            raise UserInputError(
                f"restart_inits: no {unknown[0]!r} encoder; this checkpoint's encoders are {', '.join(encoders)} "
                "(or null: the model's choice)"
            )
        if kernel is not None:
            check_kernel_fits(KERNELS.get(kernel), kernel, member)
        ESTEPS.get(method).check(member, config)


def check_threads(threads) -> int:
    """``threads`` for torch: a whole number from 1 to this machine's core count (more only slows down)."""
    import os

    cores = os.cpu_count() or 1
    if threads is None or isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise UserInputError(f"--threads {threads}: must be a whole number >= 1")
    if threads > cores:
        raise UserInputError(f"--threads {threads}: this machine has {cores} core(s); use at most {cores}")
    return threads


MAX_SEED = 2**63 - 2**20  # chunk k of a recording uses seed + k; torch generators take signed 64-bit seeds


def check_seed(seed) -> int:
    """``seed`` as an int, or ``UserInputError`` unless it is a whole number from 0 to ``MAX_SEED``."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise UserInputError(f"--seed {seed}: must be a whole number from 0 to {MAX_SEED}")
    return seed
