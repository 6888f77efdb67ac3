"""The type checks every entry point shares: the Python API's arguments, job files, a YAML config's `model:`,
`defaults:` and `ssg:` sections and, through them, the command line. A value of the wrong type is refused
naming its field (`OptionError`), never coerced. No torch here.

The rules, the same everywhere:
- a whole number (a class, a seed, a count: top_k, a batch size, a scale index) is an int (numpy's too): not a
  bool (True is not class 1), not a float, even an integral one (2.0: write 2), not text ("3");
- a number (cfg, top_p, tau, h_div_w, a beta) is an int or a float, finite: not a bool, not text;
- a flag is true or false: not 1, not "yes";
- text is a str.
JSON and YAML give typed values, so a quoted number there is text and refused. A CSV cell is text by nature:
the job-file reader parses it strictly (`ssgen.batch.parse_cell`) before these checks see it. The command line
parses its flags (Typer) before these checks see them.
"""

from __future__ import annotations

import math
import numbers
import re
from typing import Any

from .errors import OptionError

MAX_SEED = 2**64 - 1  # torch.Generator.manual_seed takes 0 .. 2**64 - 1


def _show(v: Any) -> str:
    return "2**64-1" if v == MAX_SEED else f"{v:g}" if isinstance(v, float) else str(v)


def _range(lo: Any, hi: Any) -> str:
    if lo is not None and hi is not None:
        return f" in {_show(lo)}..{_show(hi)}"
    if lo is not None:
        return f" >= {_show(lo)}"
    return f" <= {_show(hi)}" if hi is not None else ""


def _why(value: Any) -> str:
    """Why a value that looks like a number is not one here."""
    if isinstance(value, bool):
        return " (true/false is not a number)"
    if isinstance(value, str):
        if re.fullmatch(r"\s*[-+]?\d+[eE][-+]?\d+\s*", value):  # YAML 1.1 reads 1e-6 as text
            return f" (text: YAML reads {value.strip()} as text, write it with a dot, e.g. 1.0e-6)"
        return " (text, not a number)"
    return ""


def as_int(value: Any, name: str, lo: int | None = None, hi: int | None = None, hint: str = "") -> int:
    """A whole number within [lo, hi] (None: unbounded). `hint` follows the range in the message."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        v = int(value)
        if (lo is None or v >= lo) and (hi is None or v <= hi):
            return v
        if hi is None:
            raise OptionError(name, f"must be at least {_show(lo)}{hint}, got {v}")
        raise OptionError(name, f"must be a whole number{_range(lo, hi)}{hint}, got {v}")
    why = _why(value)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        why = f" (write {int(value)}, not {value!r})"
    raise OptionError(name, f"must be a whole number{_range(lo, hi)}{hint}, got {value!r}{why}")


def as_float(value: Any, name: str, lo: float | None = None, hi: float | None = None, hint: str = "") -> float:
    """A finite number within [lo, hi] (None: unbounded); ints are numbers too."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        try:
            v = float(value)
        except OverflowError:  # an int past float's range
            v = math.inf
        if math.isfinite(v) and (lo is None or v >= lo) and (hi is None or v <= hi):
            return v
        raise OptionError(name, f"must be a finite number{_range(lo, hi)}{hint}, got {value!r}")
    raise OptionError(name, f"must be a number{_range(lo, hi)}{hint}, got {value!r}{_why(value)}")


def as_bool(value: Any, name: str) -> bool:
    """true or false."""
    if isinstance(value, bool):
        return value
    raise OptionError(name, f"must be true or false, got {value!r}")


def as_str(value: Any, name: str, what: str = "text") -> str:
    """A str (`what`: how the message describes the text wanted, e.g. "text such as 1024x1024")."""
    if isinstance(value, str):
        return value
    raise OptionError(name, f"must be {what}, got {value!r}")


def as_ints(value: Any, name: str, lo: int | None = None) -> list[int]:
    """A list of whole numbers (each >= lo)."""
    if not isinstance(value, (list, tuple)):
        raise OptionError(name, f"must be a list of whole numbers, got {value!r}")
    return [as_int(v, name, lo) for v in value]


# what a declared kind (a family's MODEL_FIELDS) means; None: not checked (accepted and ignored)
KINDS = {"int": as_int, "float": as_float, "bool": as_bool, "text": as_str, "ints": as_ints}


def as_kind(value: Any, kind: str | None, name: str) -> Any:
    """`value` checked as `kind` (a key of KINDS; None: anything)."""
    return value if kind is None else KINDS[kind](value, name)
