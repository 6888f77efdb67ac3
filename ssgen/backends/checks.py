"""Option checks the families share. No torch here: the same functions validate a call before any
weights are resolved (`ssgen.request.resolve`, for the API, the CLI and every job of a batch), so an
option error never waits for a download.

Each function is the one place a rule lives; the families differ only in which rules they use (VAR
and HART share the CFG ramp and smoothing; Infinity has its own CFG form and per-scale temperature).
Types are judged by `ssgen.checks` (no coercion: True is not 1, 2.0 is not a class, "3" is not a
number); an error names the option by its field (`OptionError`), which the CLI turns into its flag.
"""

from __future__ import annotations

from typing import Any

from ..checks import as_bool, as_float, as_int
from ..errors import ConfigError, OptionError


def check_known(options: dict[str, Any], allowed: tuple[str, ...], family: str, hint: str = "") -> None:
    """An option the family does not take is an error naming it (and what the family takes)."""
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise OptionError(unknown[0], f"is not an option of {family}{hint}; {family} takes " + ", ".join(allowed))


def check_classes(classes: list | None, prompts: list | None, num_classes: int, model: str) -> list[int]:
    """Class-conditional families: integer classes in [0, num_classes), or None for the null class (the
    unconditional embedding, label num_classes: what editing without a class uses)."""
    if prompts is not None or classes is None:
        raise ConfigError(f"{model} is class-conditional: pass classes (--class N), not prompts")
    out = []
    for c in classes:
        if c is not None:
            c = as_int(c, "class", hint=f" (an ImageNet class of {model}: 0..{num_classes - 1})")
            if not 0 <= c < num_classes:
                raise OptionError("class", f"{c} is out of range: {model} takes ImageNet classes 0..{num_classes - 1}")
        out.append(c)
    return out


def check_text(classes: list | None, prompts: list | None, model: str, name: str = "prompt") -> list[str]:
    """Text-to-image families: prompts, not classes; every prompt a non-blank string."""
    if classes is not None or prompts is None:
        raise ConfigError(f"{model} is text-to-image: pass prompts (--prompt TEXT), not classes")
    return check_prompts(prompts, name)


def check_prompts(prompts: list, name: str = "prompt") -> list[str]:
    """Every prompt must be a non-blank string (`name`: the option, e.g. negative_prompt; an error gives the
    0-based index of the prompt)."""
    for i, p in enumerate(prompts):
        if not isinstance(p, str):
            raise OptionError(name, f"{i} must be text, got {p!r}")
        if not p.strip():
            raise OptionError(name, f"{i} is empty; give some text (e.g. --prompt \"a red fox\")")
    return list(prompts)


def top_k_top_p(options: dict[str, Any], vocab: int | None = None, default_k: int = 0) -> tuple[int, float, list[str]]:
    """The one-number top_k (>= 0, 0 = off) and top_p (in [0, 1], 0 = off) of a call, and a note when
    top_k >= the number of categories (then it filters nothing, as upstream)."""
    k = as_int(options.get("top_k", default_k), "top_k", 0, hint=" (0 = off)")
    p = as_float(options.get("top_p", 0.0), "top_p", 0.0, 1.0, " (0 = off)")
    notes = []
    if vocab is not None and k >= vocab:
        notes.append(f"top_k {k} >= the codebook size {vocab}: top-k filters nothing")
    return k, p, notes


def flag(options: dict[str, Any], name: str, default: bool) -> bool:
    """A true/false option."""
    return as_bool(options.get(name, default), name)


MAX_WEIGHT = 1000.0  # guidance weights and temperatures beyond this overflow float32 logits


def per_scale(value: Any, K: int, name: str, model: str, lo: float = -MAX_WEIGHT, hi: float = MAX_WEIGHT,
              hint: str = "") -> list[float]:
    """A number or a list of one value per scale -> K finite floats within [lo, hi] (bounds keep logits finite:
    larger weights overflow them). Text is not a number: the CLI and the CSV reader parse theirs first."""
    if isinstance(value, (list, tuple)):
        if len(value) != K:
            raise OptionError(name, f"list has {len(value)} values but {model} runs {K} scales; give one number or "
                                    f"{K} values")
        vals = value
    else:
        vals = [value] * K
    return [as_float(v, name, lo, hi, hint) for v in vals]


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
    if isinstance(cfg, (list, tuple)):
        return per_scale(cfg, K, "cfg", model, 0.0, MAX_WEIGHT, " (0 = no guidance)")
    (c,) = per_scale(cfg, 1, "cfg", model, 0.0, MAX_WEIGHT, " (0 = no guidance)")
    t = [c * k / (K - 1) for k in range(K)]
    if stale_last:
        t[-1] = c * (K - 2) / (K - 1)
    return t


def smoothing(ratio: float) -> tuple[float, float]:
    """Upstream's Gumbel smoothing at progress `ratio` in [0, 1]: (logit multiplier, tau)."""
    return 1 + ratio, max(0.27 * (1 - 0.95 * ratio), 0.005)


