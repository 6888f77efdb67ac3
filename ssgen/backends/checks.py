"""Option checks the families share. No torch here: the same functions validate a call before any
weights are resolved (`ssgen.calls.check_call`, the CLI, every job of a batch) and again when a
loaded family starts it, so an option error never waits for a download.

Each function is the one place a rule lives; the families differ only in which rules they use (VAR
and HART share the CFG ramp and smoothing; Infinity has its own CFG form and per-scale temperature).
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import ConfigError


def check_known(options: dict[str, Any], allowed: tuple[str, ...], family: str, hint: str = "") -> None:
    """An option the family does not take is an error naming it (and what the family takes)."""
    unknown = set(options) - set(allowed)
    if unknown:
        raise ConfigError(f"unknown option(s) for {family}: {', '.join(sorted(unknown))}{hint}; {family} takes "
                          + ", ".join(allowed))


def check_classes(classes: list | None, prompts: list | None, num_classes: int, model: str) -> list[int]:
    """Class-conditional families: integer classes in [0, num_classes), or None for the null class (the
    unconditional embedding, label num_classes: what editing without a class uses)."""
    if prompts is not None or classes is None:
        raise ConfigError(f"{model} is class-conditional: pass classes (--class N), not prompts")
    for c in classes:
        if c is None:
            continue
        if not isinstance(c, int) or isinstance(c, bool) or not 0 <= c < num_classes:
            raise ConfigError(f"class {c!r} is out of range: {model} takes ImageNet classes 0..{num_classes - 1}")
    return list(classes)


def check_text(classes: list | None, prompts: list | None, model: str, what: str = "prompt") -> list[str]:
    """Text-to-image families: prompts, not classes; every prompt a non-blank string."""
    if classes is not None or prompts is None:
        raise ConfigError(f"{model} is text-to-image: pass prompts (--prompt TEXT), not classes")
    return check_prompts(prompts, what)


def check_prompts(prompts: list, what: str = "prompt") -> list[str]:
    """Every prompt must be a non-blank string."""
    for i, p in enumerate(prompts):
        if not isinstance(p, str):
            raise ConfigError(f"{what} {i} is {type(p).__name__}, not text")
        if not p.strip():
            raise ConfigError(f"{what} {i} is empty; give some text (e.g. --prompt \"a red fox\")")
    return list(prompts)


def integer(value: Any, name: str, lo: int = 0) -> int:
    """A whole number >= lo (YAML/CSV may give 900.0; booleans and 3.5 are errors)."""
    ok = isinstance(value, int) or (isinstance(value, float) and math.isfinite(value) and value == int(value))
    if not ok or isinstance(value, bool) or int(value) < lo:
        raise ConfigError(f"{name} must be a whole number >= {lo}, got {value!r}")
    return int(value)


def number(value: Any, name: str, lo: float, hi: float, hint: str = "") -> float:
    """A finite number within [lo, hi] (bounds keep logits finite: larger weights overflow them)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or not lo <= v <= hi:
        raise ConfigError(f"{name} must be a finite number within [{lo:g}, {hi:g}]{hint}, got {value!r}")
    return v


def top_k_top_p(options: dict[str, Any], vocab: int | None = None, default_k: int = 0) -> tuple[int, float, list[str]]:
    """The one-number top_k (>= 0, 0 = off) and top_p (in [0, 1], 0 = off) of a call, and a note when
    top_k >= the number of categories (then it filters nothing, as upstream)."""
    k = integer(options.get("top_k", default_k), "top_k")
    p = number(options.get("top_p", 0.0), "top_p", 0.0, 1.0, " (0 = off)")
    notes = []
    if vocab is not None and k >= vocab:
        notes.append(f"top_k {k} >= the codebook size {vocab}: top-k filters nothing")
    return k, p, notes


def flag(options: dict[str, Any], name: str, default: bool) -> bool:
    """A true/false option."""
    v = options.get(name, default)
    if not isinstance(v, bool):
        raise ConfigError(f"{name} must be true or false, got {v!r}")
    return v


MAX_WEIGHT = 1000.0  # guidance weights and temperatures beyond this overflow float32 logits


def per_scale(value: Any, K: int, name: str, model: str, lo: float = -MAX_WEIGHT, hi: float = MAX_WEIGHT,
              hint: str = "") -> list[float]:
    """A number or a list of one value per scale -> K finite floats within [lo, hi]."""
    if isinstance(value, str):  # "1,2,3" from a CSV cell or a YAML string
        try:
            value = [float(v) for v in value.split(",")] if "," in value else float(value)
        except ValueError:
            raise ConfigError(f"{name} must be a number or a list of numbers, got {value!r}") from None
    if isinstance(value, (list, tuple)):
        if len(value) != K:
            raise ConfigError(f"{name} list has {len(value)} values but {model} runs {K} scales; "
                              f"give one number or {K} values")
        vals = value
    else:
        vals = [value] * K
    return [number(v, name, lo, hi, hint) for v in vals]


def recorded(value: Any) -> Any:
    """A number or per-scale list option as the PNG records it (lists as lists)."""
    return list(value) if isinstance(value, (list, tuple)) else value


# ------------------------------------------------------------------------------------------------
# VAR-style guidance and smoothing (VAR, HART)
# ------------------------------------------------------------------------------------------------


def cfg_weights(cfg: Any, K: int, model: str, stale_last: bool = False) -> list[float]:
    """Per-scale CFG weights t_k. A number is upstream VAR's ramp t_k = cfg * k / (K - 1); HART's
    (`stale_last`) reuses the previous scale's ratio at the last scale, t = cfg * (K - 2) / (K - 1).
    A list gives every t_k directly (no ramp)."""
    if isinstance(cfg, (list, tuple)) or (isinstance(cfg, str) and "," in cfg):
        return per_scale(cfg, K, "cfg", model, 0.0, MAX_WEIGHT, " (0 = no guidance)")
    (c,) = per_scale(cfg, 1, "cfg", model, 0.0, MAX_WEIGHT, " (0 = no guidance)")
    t = [c * k / (K - 1) for k in range(K)]
    if stale_last:
        t[-1] = c * (K - 2) / (K - 1)
    return t


def smoothing(ratio: float) -> tuple[float, float]:
    """Upstream's Gumbel smoothing at progress `ratio` in [0, 1]: (logit multiplier, tau)."""
    return 1 + ratio, max(0.27 * (1 - 0.95 * ratio), 0.005)


