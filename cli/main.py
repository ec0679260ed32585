"""The ``pyro-minvae`` command: prepare | train | enhance | evaluate | tune.

User errors (``UserInputError``, ``MissingDependencyError``) print one line and exit with status 2; no traceback.
"""

from __future__ import annotations

import signal
import sys
import threading


def _stopped_while_loading(signum, frame):
    """Ctrl-C/SIGTERM while the command's modules are still loading: nothing was done yet, so exit at once with
    128 + signum and one line (was: a KeyboardInterrupt traceback from deep inside the import machinery)."""
    sys.stderr.write(f"interrupted ({signal.Signals(signum).name}) while starting; nothing was done\n")
    raise SystemExit(128 + signum)


# Active only while this module loads (see the end of the module); main() then installs the run-time handlers.
_LOADING_HANDLERS = {}
if threading.current_thread() is threading.main_thread():
    for _sig in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(_sig) in (signal.default_int_handler, signal.SIG_DFL):
            _LOADING_HANDLERS[_sig] = signal.signal(_sig, _stopped_while_loading)

import importlib  # noqa: E402
import logging  # noqa: E402

import click  # noqa: E402

# numpy now, while a Ctrl-C still ends the start cleanly: imported later from inside torch's C initialisation, an
# interruption of numpy's import is swallowed there (torch only warns "Failed to initialize NumPy"), so the command
# ran on to the end (measured: SIGINT/SIGTERM ~0.9 s into `enhance --manifest` ignored; or an ImportError traceback).
import numpy  # noqa: E402,F401

from pyro_minvae import __version__  # noqa: E402
from pyro_minvae.entry import user_error_ending  # noqa: E402
from pyro_minvae.errors import Interrupted, MissingDependencyError, UserInputError, flatten  # noqa: E402
from pyro_minvae.plugins import load_plugin  # noqa: E402

# Sub-command modules; each exposes a click command or group named ``command``.
SUBCOMMANDS = ("prepare", "train", "enhance", "evaluate", "tune")


class FriendlyGroup(click.Group):
    """A click group that turns user errors into one-line messages."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.exceptions.NoArgsIsHelpError:
            raise  # `pyro-minvae prepare` alone: click prints the help
        except click.UsageError as exc:  # click's usage block (3 lines) -> the one-line form of every other error
            where = exc.ctx.command_path if exc.ctx is not None else ctx.command_path
            click.echo(f"error: {flatten(exc.format_message()).rstrip('.')}; see '{where} --help'", err=True)
            ctx.exit(2)
        except (UserInputError, MissingDependencyError, Interrupted, OSError) as exc:
            ending = user_error_ending(exc)  # the scripts end the same way (pyro_minvae.entry)
            if ending is None:
                raise
            click.echo(ending.message, err=True)
            ctx.exit(ending.exit_code)


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
@click.option(
    "--plugin",
    "plugins",
    multiple=True,
    metavar="MODULE|FILE.py",
    help="Import a module or Python file first (repeatable): its registrations (priors, encoders, "
    "kernels, modalities, ...) become usable by name and in checkpoints.",
)
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


for _name in SUBCOMMANDS:
    cli.add_command(importlib.import_module(f"pyro_minvae.cli.{_name}").command, name=_name)

for _sig, _old in _LOADING_HANDLERS.items():  # loaded: back to the handlers the process had
    signal.signal(_sig, _old)


def main() -> None:
    from pyro_minvae.parallel import raise_on_stop_signals

    raise_on_stop_signals()  # Ctrl-C and SIGTERM anywhere: Interrupted -> one line, exit 130 / 143
    cli(prog_name="pyro-minvae")


if __name__ == "__main__":
    main()
