"""Everything about one generation call that the model config alone decides, checked before any
weights are resolved: the conditions, every sampling and family option (defaults merged in), the SSG
setting against the scale count, the RNG mode and the seeds. No torch here: the CLI answers a bad
option at once, and a batch checks every job before it writes anything. `Pipeline.generate` runs the
same checks, and the loaded family repeats the ones that depend on the checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .backends import options as family_options
from .config import ModelConfig
from .errors import ConfigError
from .ssg_settings import SSG

RNG_MODES = ("per-image", "batch")
MAX_SEED = 2**64 - 1  # torch.Generator.manual_seed takes 0 .. 2**64 - 1


@dataclass
class CheckedCall:
    options: dict[str, Any]  # the config's defaults with the call's options on top
    ssg: SSG | None  # the SSG setting to use (None = off)
    notes: list[str] = field(default_factory=list)  # accepted, but worth saying


def resolve_ssg(config: ModelConfig, ssg: SSG | bool | None) -> SSG | None:
    """`None` = the config's default, `False` = off, `True` = the config's (or ssgen's) default on."""
    if ssg is None:
        return config.ssg
    if ssg is False:
        return None
    if ssg is True:
        return config.ssg or SSG()
    if not isinstance(ssg, SSG):
        raise ConfigError(f"ssg must be None, False, True or ssgen.SSG(...), got {ssg!r}")
    return ssg


def check_seeds(seeds: list[Any]) -> list[int]:
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= MAX_SEED:
            raise ConfigError(f"seed {s!r} is not a whole number in 0..2**64-1 (what torch's generators take)")
    return [int(s) for s in seeds]


def num_scales(config: ModelConfig, options: dict[str, Any]) -> int | None:
    """Scales a call runs, from the config alone (None: only the weights know, e.g. HART without patch_nums)."""
    return family_options(config.family).num_scales(config.model, {**config.defaults, **options})


def editing_families() -> list[str]:
    """The families whose options.py says CAN_EDIT."""
    from .backends import FAMILIES

    return [f for f in FAMILIES if getattr(family_options(f), "CAN_EDIT", False)]


def check_edit(config: ModelConfig, image: Any, keep_mask: Any, keep_scales: Any, options: dict[str, Any]) -> None:
    """An edit's input, before any model loads: the family can edit, the image and mask open and agree in size,
    keep_scales is in 0..K (K from the config; the loaded model checks again)."""
    from .edit import check_inputs

    if not getattr(family_options(config.family), "CAN_EDIT", False):
        raise ConfigError(f"{config.name} ({config.family}) cannot edit yet; editing works with: "
                          + ", ".join(editing_families()))
    check_inputs(image, keep_mask, keep_scales, num_scales(config, options))


def check_call(config: ModelConfig, classes: list | None = None, prompts: list | None = None,
               options: dict[str, Any] | None = None, ssg: SSG | bool | None = None, rng: str = "per-image",
               seeds: list[Any] | None = None, *, image: Any = None, keep_mask: Any = None,
               keep_scales: Any = None) -> CheckedCall:
    """Raise ConfigError for anything wrong with this call that the config can tell; return the merged
    options, the SSG setting and notes for what is accepted but unusual. `image`, `keep_mask`, `keep_scales`:
    an edit (ssgen/edit.py), refused at once for a family that cannot edit yet."""
    if rng not in RNG_MODES:
        raise ConfigError(f"unknown rng mode {rng!r}; use one of: {', '.join(RNG_MODES)}")
    if seeds is not None:
        check_seeds(seeds)
    opts = dict(config.defaults)
    opts.update({k: v for k, v in (options or {}).items() if v is not None})
    fam = family_options(config.family)
    if image is not None or keep_mask is not None or keep_scales is not None:
        check_edit(config, image, keep_mask, keep_scales, opts)
    notes = list(fam.check(config.name, config.model, classes, prompts, opts))
    ssg = resolve_ssg(config, ssg)
    if ssg is not None:
        K = fam.num_scales(config.model, opts)
        if K is not None:
            ssg.plan(K)  # the range and a beta list against this model's scales
        betas = ssg.beta if isinstance(ssg.beta, tuple) else [ssg.beta] if not isinstance(ssg.beta, str) else [
            float(v) for v in ssg.beta.split(":")[1:]]
        if any(b < 0 for b in betas):
            notes.append("SSG beta < 0 pulls the logits toward the coarser scale's prior: the opposite of SSG")
    return CheckedCall(opts, ssg, notes)
