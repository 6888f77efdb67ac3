"""The Typer app, `--version`, and `friendly`: user errors become one `error: ...` line and exit code 2.

Every module of the CLI imports only typer and rich at the top; torch and the models are imported
inside the commands, so `ssgen --help` answers at once.
"""

from __future__ import annotations

import functools
import inspect
from typing import Callable

import typer
from rich.console import Console
from rich.markup import escape

from ..errors import OptionError, SSGenError

app = typer.Typer(add_completion=True, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Multi-scale visual autoregressive image generation (VAR, Infinity, HART) with SSG.")

out = Console()  # results (tables)
err = Console(stderr=True)  # progress bars, notes, errors


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


def friendly(fn: Callable) -> Callable:
    """Wrap a command: an SSGenError (a problem the user can fix) is printed as one `error: ...` line and
    exits with code 2 (an option of the command line named by its flag: `as_typed`); Ctrl-C exits with 130.
    Anything else is a bug and keeps its traceback."""
    flags = long_flags(fn)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SSGenError as e:
            if isinstance(e, OptionError):
                e = as_typed(e, flags)
            err.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper


def main() -> None:
    app()
