"""The Typer app, `--version`, and `friendly`: user errors become one `error: ...` line and exit code 2;
Ctrl-C and SIGTERM clean up and exit with 130 and 143.

Every module of the CLI imports only typer and rich at the top; torch and the models are imported
inside the commands, so `ssgen --help` answers at once. Whatever it prints that came from a file or an
argument goes through `ssgen.terminal.safe` (control characters shown as escapes, rich markup escaped).
"""

from __future__ import annotations

import functools
import inspect
import signal
from typing import Callable

import typer
from rich.console import Console

from ..errors import OptionError, SSGenError
from ..terminal import safe

app = typer.Typer(add_completion=True, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Multi-scale visual autoregressive image generation (VAR, Infinity, HART) with SSG.")

out = Console(emoji=False)  # results (tables); emoji=False: a `:smile:` in a name stays text
err = Console(stderr=True, emoji=False)  # progress bars, notes, errors


def _version(value: bool) -> None:
    if value:
        from ..version import __version__

        print(f"ssgen {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Multi-scale visual autoregressive image generation (VAR, Infinity, HART) with SSG."""


def long_flags(command: Callable) -> set[str]:
    """The long flags a command takes (`--top-k`, `--no-more-smooth`), read off its Typer options."""
    out = set()
    for p in inspect.signature(command).parameters.values():
        for decl in getattr(p.default, "param_decls", None) or ():
            out.update(d for d in decl.split("/") if d.startswith("--"))
    return out


def as_typed(e: OptionError, flags: set[str]) -> OptionError:
    """An option error said in the command line's words: the field the checks know (`top_k`) becomes the
    command's flag for it (`--top-k`: the field in the CLI's spelling, when the command has that flag). Only a
    value of the command line reaches here without a place: a job file's value or a config's `defaults:` carry
    where they were written (`OptionError.where`) and keep their field names."""
    flag = "--" + e.field.replace("_", "-")
    return e.named(flag) if not e.where and flag in flags else e


class Terminated(KeyboardInterrupt):
    """SIGTERM, as `main`'s handler raises it. A KeyboardInterrupt, so that every cleanup Ctrl-C runs runs for
    it too: temporary files removed (`ssgen.atomic`), claimed names released (`runner.drive`), no partial
    grid. torchrun sends it to the surviving workers when one fails, schedulers when a job's time is up."""


def _on_sigterm(signum, frame) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: a second SIGTERM must not cut the cleanup short
    raise Terminated()


def friendly(fn: Callable) -> Callable:
    """Wrap a command: an SSGenError (a problem the user can fix) is printed as one `error: ...` line and
    exits with code 2 (an option of the command line named by its flag: `as_typed`); Ctrl-C exits with 130 and
    SIGTERM with 143 (128 + 15, the shell's code for a process ended by SIGTERM), both after the same cleanup.
    Anything else is a bug and keeps its traceback."""
    flags = long_flags(fn)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SSGenError as e:
            if isinstance(e, OptionError):
                e = as_typed(e, flags)
            err.print(f"[bold red]error:[/] {safe(e)}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except Terminated:
            err.print("terminated (SIGTERM)")
            raise typer.Exit(143) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper


def main() -> None:
    """The `ssgen` command (and `python -m ssgen`): SIGTERM raises `Terminated` for the whole process, so a
    command cleans up after it as after Ctrl-C."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    app()
