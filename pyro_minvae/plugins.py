"""User plugins: a Python file or module whose import registers components (priors, kernels, E-steps, ...).

``pyro-minvae --plugin FILE.py`` calls :func:`load_plugin`; the paths loaded are recorded in the environment
variable ``PYRO_MINVAE_PLUGINS`` so that worker processes (spawned by :func:`pyro_minvae.parallel.run_tasks`)
load the same plugins with :func:`load_env_plugins` before they unpickle their work: a checkpoint using a plugin's
component then loads in every worker.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import traceback
from pathlib import Path

from .errors import UserInputError

ENV = "PYRO_MINVAE_PLUGINS"


def load_plugin(spec: str) -> None:
    """Import ``spec``: a dotted module name, or the path of a ``.py`` file (run once, as a module, with its folder
    on ``sys.path`` so it can import its siblings). An error raised by the plugin's own code becomes a
    :class:`UserInputError` of a few lines: the plugin, the exception, and where in the user's files it happened.
    A loaded plugin is recorded in ``$PYRO_MINVAE_PLUGINS``, so worker processes load it too."""
    path = Path(spec)
    record = spec  # what workers load: a module name, or the file's absolute path
    try:
        if path.suffix == ".py":
            if not path.exists():
                raise UserInputError(f"{path}: plugin file not found; check the --plugin path")
            name = f"pyro_minvae_plugin_{path.stem}"
            record = str(path.resolve())
            folder = str(path.resolve().parent)
            if folder not in sys.path:
                sys.path.insert(0, folder)
            if name not in sys.modules:  # run once per process
                module_spec = importlib.util.spec_from_file_location(name, path)
                module = importlib.util.module_from_spec(module_spec)
                sys.modules[name] = module
                try:
                    module_spec.loader.exec_module(module)
                except BaseException:
                    del sys.modules[name]
                    raise
        elif path.exists() or os.sep in spec:
            raise UserInputError(
                f"--plugin {spec}: a plugin is a .py file or an importable module name; rename the file to .py"
            )
        else:
            importlib.import_module(spec)
    except UserInputError:
        raise
    except ModuleNotFoundError as exc:
        if exc.name == spec or spec.startswith(f"{exc.name}."):  # the module itself (or its package) is missing
            raise UserInputError(
                f"--plugin {spec}: no module named {exc.name!r}; give an importable module or a .py file"
            ) from None
        raise UserInputError(_plugin_failure(spec, exc)) from None
    except Exception as exc:  # noqa: BLE001  (the plugin's own code failed: show its error, not our stack)
        raise UserInputError(_plugin_failure(spec, exc)) from None
    loaded = [p for p in os.environ.get(ENV, "").split(os.pathsep) if p]
    if record not in loaded:
        os.environ[ENV] = os.pathsep.join(loaded + [record])  # inherited by spawned workers: see load_env_plugins


def _plugin_failure(spec: str, exc: BaseException) -> str:
    """``--plugin SPEC failed: Type: message`` and the innermost frames that are the user's code (outside this
    package and Python's import machinery)."""
    ours = tuple(
        str(Path(importlib.import_module(m).__file__).resolve().parent) for m in ("pyro_minvae", "pyro_minvae.cli")
    )
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if not f.filename.startswith("<frozen") and not str(Path(f.filename).resolve()).startswith(ours)
    ]
    lines = [f"--plugin {spec} failed: {type(exc).__name__}: {exc}"]
    for f in frames[-3:]:
        lines.append(f'  File "{f.filename}", line {f.lineno}, in {f.name}' + (f"\n    {f.line}" if f.line else ""))
    return "\n".join(lines)


def load_env_plugins() -> None:
    """Load every plugin recorded in ``$PYRO_MINVAE_PLUGINS`` (a worker process's first step; idempotent)."""
    for spec in os.environ.get(ENV, "").split(os.pathsep):
        if spec:
            load_plugin(spec)


__all__ = ["ENV", "load_env_plugins", "load_plugin"]
