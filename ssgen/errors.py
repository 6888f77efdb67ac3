"""User-facing errors.

Every problem a user can fix (bad input, missing weights, bad checkpoint, ...) is raised as an
`SSGenError`: its message is one line that says what was wrong and how to fix it. The CLI prints
it without a traceback and exits with code 2. Anything else is a bug and keeps its traceback.
"""


class SSGenError(Exception):
    """A problem the user can fix; the message is a one-line explanation with a hint."""


class ConfigError(SSGenError):
    """A model config, a generation option or a command-line value is invalid."""


class OptionError(ConfigError):
    """A bad value of one named option: a keyword of the Python API, a field of a job file or config, a flag.

    The message is `FIELD PROBLEM` ("top_k must be a whole number >= 0, got 2.5"), so that each entry point can
    name the option as its user wrote it: the command line says `--top-k` for a value typed there (`named`,
    applied by `ssgen.cli.app.friendly`), a job file or config prefixes where the value was written (`at`)."""

    def __init__(self, field: str, problem: str, where: str = ""):
        self.field, self.problem, self.where = field, problem, where
        super().__init__(f"{where}: {field} {problem}" if where else f"{field} {problem}")

    def named(self, label: str) -> "OptionError":
        """The same error naming the option `label` (a command-line flag)."""
        return OptionError(label, self.problem)

    def at(self, where: str) -> "OptionError":
        """The same error said of the value written at `where` ("jobs.jsonl:3", "t.yaml: defaults")."""
        return OptionError(self.field, self.problem, where)

    def __reduce__(self):  # pickles (torch.distributed broadcasts errors between ranks)
        return OptionError, (self.field, self.problem, self.where)


class WeightsError(SSGenError):
    """Weights cannot be found, downloaded, verified or loaded."""


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first non-empty line of an exception's message, shortened; its type name when it has none."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
