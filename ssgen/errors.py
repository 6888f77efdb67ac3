"""User-facing errors.

Every problem a user can fix (bad input, missing weights, bad checkpoint, ...) is raised as an
`SSGenError`: its message is one line that says what was wrong and how to fix it. The CLI prints
it without a traceback and exits with code 2. Anything else is a bug and keeps its traceback.
"""


class SSGenError(Exception):
    """A problem the user can fix; the message is a one-line explanation with a hint."""


class ConfigError(SSGenError):
    """A model config, a generation option or a command-line value is invalid."""


class WeightsError(SSGenError):
    """Weights cannot be found, downloaded, verified or loaded."""


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first non-empty line of an exception's message, shortened; its type name when it has none."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
