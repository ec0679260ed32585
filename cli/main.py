"""The ``pyro-minvae`` command: prepare | train | enhance | evaluate | tune.

User errors (``UserInputError``, ``MissingDependencyError``) print one line and exit with status 2; no traceback.
"""

from __future__ import annotations

import errno
import importlib
import logging
import sys

import click

from pyro_minvae import __version__
from pyro_minvae.errors import Interrupted, MissingDependencyError, UserInputError

# Sub-command modules; each exposes a click command or group named ``command``.
SUBCOMMANDS = ("prepare", "train", "enhance", "evaluate", "tune")


# Operating-system errors that are about the user's environment (full disk, permissions), not bugs.
_ENV_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EACCES, errno.EPERM, errno.EROFS}


class FriendlyGroup(click.Group):
    """A click group that turns user errors into one-line messages."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (UserInputError, MissingDependencyError) as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)
        except Interrupted as exc:  # a batch run stopped by Ctrl-C/SIGTERM after keeping its finished work
            click.echo(str(exc), err=True)
            ctx.exit(exc.exit_code)
        except OSError as exc:
            if exc.errno not in _ENV_ERRNOS:
                raise
            where = f"{exc.filename}: " if exc.filename else ""
            from pyro_minvae.atomic import write_error_hint  # the fix differs per errno (full disk vs read-only)

            click.echo(f"error: {where}{exc.strerror or exc}; {write_error_hint(exc.errno)}", err=True)
            ctx.exit(2)


class _StderrHandler(logging.StreamHandler):
    """Log handler writing to the *current* ``sys.stderr`` (so in-process runners such as click's CliRunner
    capture the messages of every invocation, not only the first one's)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


@click.group(cls=FriendlyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pyro-minvae")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
@click.option("--plugin", "plugins", multiple=True, metavar="MODULE|FILE.py",
              help="Import a module or Python file first (repeatable): its registrations (priors, encoders, "
                   "kernels, modalities, ...) become usable by name and in checkpoints.")
def cli(verbose: int, quiet: bool, plugins: tuple) -> None:
    """MIN-VAE audio-visual speech enhancement (Pyro).

    \b
    Typical session:
      pyro-minvae prepare demo
      pyro-minvae train --model minvae
      pyro-minvae enhance --checkpoint CKPT noisy.wav --video lips.npy -o out.wav
      pyro-minvae evaluate --checkpoint minvae=CKPT
    """
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    logger = logging.getLogger("pyro_minvae")
    logger.setLevel(level)
    if not any(getattr(h, "_pyro_minvae", False) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._pyro_minvae = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    for plugin in plugins:
        load_plugin(plugin)


def load_plugin(spec: str) -> None:
    """Import ``spec``: a dotted module name, or the path of a ``.py`` file (run once, as a module, with its folder
    on ``sys.path`` so it can import its siblings). An error raised by the plugin's own code becomes a
    :class:`UserInputError` of a few lines: the plugin, the exception, and where in the user's files it happened."""
    import importlib.util
    from pathlib import Path

    path = Path(spec)
    try:
        if path.suffix == ".py":
            if not path.exists():
                raise UserInputError(f"{path}: plugin file not found; check the --plugin path")
            name = f"pyro_minvae_plugin_{path.stem}"
            if name in sys.modules:
                return
            folder = str(path.resolve().parent)
            if folder not in sys.path:
                sys.path.insert(0, folder)
            module_spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[name] = module
            try:
                module_spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[name]
                raise
        else:
            importlib.import_module(spec)
    except UserInputError:
        raise
    except ModuleNotFoundError as exc:
        if exc.name == spec:
            raise UserInputError(f"--plugin {spec}: no module named {exc.name!r}; give an importable module or a "
                                 ".py file") from None
        raise UserInputError(_plugin_failure(spec, exc)) from None
    except Exception as exc:  # the plugin's own code failed: show its error, not our stack
        raise UserInputError(_plugin_failure(spec, exc)) from None


def _plugin_failure(spec: str, exc: BaseException) -> str:
    """``--plugin SPEC failed: Type: message`` and the innermost frames that are the user's code (outside this
    package and Python's import machinery)."""
    import traceback
    from pathlib import Path

    import pyro_minvae

    ours = (str(Path(pyro_minvae.__file__).resolve().parent), str(Path(__file__).resolve().parent))
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not f.filename.startswith("<frozen") and not str(Path(f.filename).resolve()).startswith(ours)]
    lines = [f"--plugin {spec} failed: {type(exc).__name__}: {exc}"]
    for f in frames[-3:]:
        lines.append(f'  File "{f.filename}", line {f.lineno}, in {f.name}' + (f"\n    {f.line}" if f.line else ""))
    return "\n".join(lines)


for _name in SUBCOMMANDS:
    cli.add_command(importlib.import_module(f"pyro_minvae.cli.{_name}").command, name=_name)


def main() -> None:
    from pyro_minvae.parallel import raise_on_stop_signals

    raise_on_stop_signals()  # Ctrl-C and SIGTERM anywhere: Interrupted -> one line, exit 130 / 143
    cli(prog_name="pyro-minvae")


if __name__ == "__main__":
    main()
