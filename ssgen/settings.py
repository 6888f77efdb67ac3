"""Settings every layer shares, with no torch: SSG (which scales, how strong, which prior), the RNG modes
and the seeds (one per image, `seed + i` from a base seed, all within torch's range). Configs, job files and
the CLI's input checks read and validate them without importing torch (`ssgen.guidance` has SSG's tensor
math and re-exports `SSG`). The SSG definition is in docs/ssg.md. Types are judged by `ssgen.checks`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Sequence

from .checks import MAX_SEED, as_bool, as_float, as_int
from .errors import ConfigError, OptionError

RNG_MODES = ("per-image", "batch")  # see ssgen/sampling.py
SEED_HINT = " (what torch's generators take)"


# ----------------------------------------------------------------------------------------------
# Seeds
# ----------------------------------------------------------------------------------------------


def check_seeds(seeds: Sequence[Any], name: str = "seed") -> list[int]:
    """Every seed a whole number in 0..2**64-1."""
    return [as_int(s, name, 0, MAX_SEED, SEED_HINT) for s in seeds]


def check_seed_span(seed: Any, count: int, name: str = "seed") -> int:
    """A base seed whose `count` images take seed, seed + 1, ..., seed + count - 1: all of them must be seeds.
    An overflow names the base seed the user gave (`name`), not a seed + i they never wrote."""
    s = as_int(seed, name, 0, MAX_SEED, SEED_HINT)
    last = s + count - 1
    if last > MAX_SEED:
        raise OptionError(name, f"{s} with {count} images needs seeds up to {last}, past 2**64-1; pick a seed <= "
                                f"{MAX_SEED - count + 1}")
    return s
PRIORS = ("dse", "bilinear", "bicubic", "nearest", "area")
INTERPS = ("bilinear", "bicubic")


# ----------------------------------------------------------------------------------------------
# Settings: which scales, how strong
# ----------------------------------------------------------------------------------------------


def _beta_value(b: Any) -> float | tuple[float, ...] | str:
    """A beta in any accepted form -> how SSG stores it: a float, a tuple with one float per scale, or
    "linear:START:END" with both ends written exactly (repr), so the ramp keeps its values.

    Text (flags, YAML, job files) may say `0.5`, `0,0,0.2,...` or `linear:1.0:0.2`."""
    if isinstance(b, str):
        s = b.strip()
        try:
            if s.startswith("linear:"):
                _, start, end = s.split(":")  # ValueError unless exactly two values
                ends = [float(start), float(end)]
                _check_finite(ends, b)
                return f"linear:{ends[0]!r}:{ends[1]!r}"
            b = [float(v) for v in s.split(",")] if "," in s else float(s)
        except ValueError:
            raise ConfigError(
                f"malformed SSG beta {b!r}; use a number (0.5), one value per scale (0,0,0.2,...) "
                "or a linear ramp over the active scales (linear:START:END)"
            ) from None
    if isinstance(b, (list, tuple)):
        return tuple(as_float(v, "SSG beta list value") for v in b)
    if isinstance(b, (int, float)) and not isinstance(b, bool):
        return as_float(b, "SSG beta")
    raise ConfigError(f"SSG beta must be a number, a list or 'linear:START:END', got {b!r}")


def _check_finite(vals: Sequence[float], text: str) -> None:
    if not all(math.isfinite(v) for v in vals):
        raise ConfigError(f"SSG beta must be finite, got {text!r}")


_RANGE = re.compile(r"^\s*(-?\d+)\s*(?:-|:|\.\.)\s*(-?\d+)\s*$")


def _scales_value(sc: Any) -> tuple[int, int]:
    """A scale range in any accepted form -> (start, end): a pair, or text `2-9`, `2:9`, `-4--1`, `5`."""
    if isinstance(sc, str):
        m = _RANGE.match(sc)
        if m:
            return int(m.group(1)), int(m.group(2))
        if re.fullmatch(r"\s*-?\d+\s*", sc):
            return int(sc), int(sc)
        raise ConfigError(f"malformed SSG scale range {sc!r}; use START-END (inclusive, 0-based, e.g. 2-9 or -4--1)")
    if not (isinstance(sc, (list, tuple)) and len(sc) == 2):
        raise ConfigError(f"SSG scales must be an inclusive [start, end] pair of integers, got {sc!r}")
    return as_int(sc[0], "SSG scales start"), as_int(sc[1], "SSG scales end")


@dataclass(frozen=True)
class SSG:
    """SSG settings.

    beta: a number, a list with one value per scale (length = the model's number of scales), or a
          linear ramp over the active range written "linear:START:END".
    scales: inclusive (start, end) range of 0-based scale indices; negatives count from the last.
          Scale 0 is never guided (it has no previous scale); a range that includes it is fine.
    prior: "dse" (default) or an ablation prior: "bilinear", "bicubic", "nearest", "area".
    interp: DSE's interpolation, "bilinear" (default) or "bicubic".
    rescale: scale the coarse DCT band by sqrt(h*w / (h'*w')) (mean preserving; default True).
    """

    beta: float | tuple[float, ...] | str = 0.5
    scales: tuple[int, int] = (2, -1)
    prior: str = "dse"
    interp: str = "bilinear"
    rescale: bool = True

    def __post_init__(self):  # normalise every accepted form (values or text), so equal settings compare equal
        object.__setattr__(self, "beta", _beta_value(self.beta))
        object.__setattr__(self, "scales", _scales_value(self.scales))
        object.__setattr__(self, "rescale", as_bool(self.rescale, "SSG rescale"))
        a, b = self.scales
        if (a >= 0) == (b >= 0) and a > b:  # same sign: comparable without knowing the number of scales
            raise ConfigError(f"SSG scale range {a}-{b} has start > end; write it as START-END with START <= END")
        if self.prior not in PRIORS:
            raise ConfigError(f"unknown SSG prior {self.prior!r}; use one of: {', '.join(PRIORS)}")
        if self.interp not in INTERPS:
            raise ConfigError(f"unknown DSE interpolation {self.interp!r}; use one of: {', '.join(INTERPS)}")

    def plan(self, num_scales: int) -> list[float]:
        """One beta per scale (0.0 where SSG is off). Validates the range and list length."""
        a, b = self.scales
        ra = a + num_scales if a < 0 else a
        rb = b + num_scales if b < 0 else b
        if not (0 <= ra < num_scales and 0 <= rb < num_scales):
            raise ConfigError(
                f"SSG scale range {a}-{b} is outside this model's scales 0-{num_scales - 1} "
                f"(negatives count from the last, -1 = {num_scales - 1})"
            )
        if ra > rb:
            raise ConfigError(f"SSG scale range {a}-{b} has start > end; write it as START-END with START <= END")
        active = [k for k in range(num_scales) if ra <= k <= rb and k > 0]
        betas = [0.0] * num_scales
        if isinstance(self.beta, tuple):
            if len(self.beta) != num_scales:
                raise ConfigError(
                    f"SSG beta list has {len(self.beta)} values but this model has {num_scales} scales; "
                    "give one value per scale"
                )
            for k in active:
                betas[k] = self.beta[k]
        elif isinstance(self.beta, str):  # linear:START:END over the active scales
            _, s, e = self.beta.split(":")
            s, e = float(s), float(e)
            n = len(active)
            for j, k in enumerate(active):
                betas[k] = s if n == 1 else s + (e - s) * j / (n - 1)
        else:
            for k in active:
                betas[k] = self.beta
        return betas

    def to_dict(self) -> dict:
        beta = list(self.beta) if isinstance(self.beta, tuple) else self.beta
        return {"beta": beta, "scales": list(self.scales), "prior": self.prior, "interp": self.interp,
                "rescale": self.rescale}

    def label(self) -> str:
        """A short human label for grids, e.g. 'SSG beta=0.5\\nscales 2..-1' (multi-line)."""
        beta = ",".join(f"{v:g}" for v in self.beta) if isinstance(self.beta, tuple) else (
            self.beta if isinstance(self.beta, str) else f"{self.beta:g}")
        extra = "" if self.prior == "dse" else f"\nprior {self.prior}"
        return f"SSG beta={beta}\nscales {self.scales[0]}..{self.scales[1]}{extra}"


def ssg_from_config(section: Any) -> SSG | None:
    """An `ssg:` mapping (a model config's section, a batch job's `ssg:`) -> SSG, or None when it is absent,
    `false` or says `enabled: false`. Missing fields take SSG's defaults; an unknown field is a ConfigError."""
    if section is None or section is False:
        return None
    if not isinstance(section, dict):
        raise ConfigError(f"ssg: must be a mapping (beta, scales, prior, interp, rescale, enabled), got {section!r}")
    d = dict(section)
    enabled = as_bool(d.pop("enabled", True), "SSG enabled")
    known = set(SSG.__dataclass_fields__)
    unknown = set(d) - known
    if unknown:
        raise ConfigError(f"unknown field(s) in ssg: section: {', '.join(sorted(unknown))}; known: enabled, "
                          + ", ".join(sorted(known)))
    s = SSG(**d)
    return s if enabled else None
