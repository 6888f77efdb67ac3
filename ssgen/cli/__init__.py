"""The `ssgen` command line: a thin layer that parses flags, calls the API and prints with rich.

One module per job: `app` (the Typer app, --version, errors as one `error: ...` line + exit 2),
`options` (the generation options generate/compare/batch share, declared once), `generate` (generate,
compare), `edit`, `batch`, `models` (list/download/path/remove), `info` (info, pack-npz). Importing a module
registers its commands; none imports torch until a command runs.
"""

from .app import app, main  # noqa: I001  (the imports below register the commands, in --help's order)
from . import generate, edit, batch, sweep, info, eval, models  # noqa: F401

__all__ = ["app", "main"]
