"""One generation call, checked once and fully resolved: `resolve(config, ...) -> Request`.

No torch here. Everything the model config can judge is checked before any weights are resolved: the
conditions, every sampling and family option (the config's `defaults:` merged in, parsed by the family's
`options.parse`), the SSG setting against the scale count (its per-scale plan), the RNG mode, the seeds and
an edit's input (opened once). The result is immutable and flows down unchanged: `Pipeline.run` and the
family's `start` trust it. The CLI resolves every chunk of a command before loading anything, so a wrong
option never waits for a download, and a batch checks every job before it writes anything.

When the config leaves a number to the files (HART without `patch_nums` in `model:`), `num_scales` is None
and `Pipeline.run` resolves the request once more against the loaded model's numbers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Mapping

from .backends import families, family
from .config import ModelConfig
from .edit_input import EditInput, check_keep_scales, edit_input
from .errors import ConfigError, OptionError
from .settings import RNG_MODES, SSG, check_seed_span, check_seeds


@dataclass(frozen=True)
class Request:
    """A resolved generation call. `parsed` is the family's parsed options (what its `start` reads);
    `options` the merged options as given (config defaults, then the call's)."""

    config: ModelConfig
    classes: tuple | None  # class-conditional families: one class (or None, the null class) per image
    prompts: tuple[str, ...] | None  # text-to-image families: one prompt per image
    seeds: tuple[int, ...]
    options: Mapping[str, Any]
    parsed: Any
    ssg: SSG | None  # None = off
    betas: tuple[float, ...] | None  # SSG's beta per scale (None: SSG off, or the scale count is not known yet)
    rng: str
    edit: EditInput | None
    notes: tuple[str, ...]

    @property
    def size(self) -> int:
        """Images in this call."""
        return len(self.seeds)

    @property
    def num_scales(self) -> int | None:
        """Scales this call runs (None: only the weights know; `Pipeline.run` resolves again once loaded)."""
        return self.parsed.scales

    @property
    def conditions(self) -> tuple:
        return self.classes if self.classes is not None else self.prompts


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


def check_can_edit(config: ModelConfig) -> None:
    """An edit of a model whose family cannot edit is an error naming the families that can."""
    if not family(config.family).can_edit:
        able = ", ".join(n for n, s in families().items() if s.can_edit)
        raise ConfigError(f"{config.name} ({config.family}) cannot edit yet; editing works with: {able}")


def _listed(value: Any) -> list | None:
    """One condition or a sequence of them -> a list (None stays None). A lone value that is not a list (a class,
    a prompt, True, 2.5) is one image, judged as such by the family's checks."""
    if value is None:
        return None
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        return [value]
    return list(value)


def _betas_below_zero(ssg: SSG) -> bool:
    if isinstance(ssg.beta, tuple):
        return any(b < 0 for b in ssg.beta)
    if isinstance(ssg.beta, str):
        return any(float(v) < 0 for v in ssg.beta.split(":")[1:])
    return ssg.beta < 0


def resolve(config: ModelConfig, classes: list | int | None = None, prompts: list | str | None = None,
            options: Mapping[str, Any] | None = None, ssg: SSG | bool | None = None, rng: str = "per-image",
            seeds: list[Any] | None = None, seed: int = 0, *, image: Any = None, keep_mask: Any = None,
            keep_scales: Any = None) -> Request:
    """Check one call against `config` and resolve it. Raises ConfigError (one line) for anything wrong.

    classes / prompts: one per image (a single int or str is one image). seeds: one per image, else
    `seed + i`. options: sampling and family options (None values are "not given"). image, keep_mask,
    keep_scales: an edit (`image` may be an EditInput, opened once by the caller for many calls)."""
    spec = family(config.family)
    classes, prompts = _listed(classes), _listed(prompts)
    edit = None
    if image is not None or keep_mask is not None or keep_scales is not None:
        check_can_edit(config)
        edit = edit_input(image, keep_mask, keep_scales)
    conds = classes if classes is not None else prompts
    if not conds:
        raise ConfigError("nothing to generate: pass classes=[...] (class-conditional models) or prompts=[...] "
                          "(text-to-image models)")
    if rng not in RNG_MODES:
        raise ConfigError(f"unknown rng mode {rng!r}; use one of: {', '.join(RNG_MODES)}")
    if seeds is None:
        base = check_seed_span(seed, len(conds))
        seeds = [base + i for i in range(len(conds))]
    else:
        seeds = check_seeds(_listed(seeds))
        if len(seeds) != len(conds):
            raise ConfigError(f"{len(seeds)} seeds for {len(conds)} images; give one seed per image")
    given = {k: v for k, v in (options or {}).items() if v is not None}
    opts = {**config.defaults, **given}
    try:
        parsed = spec.options.parse(config.name, config.model, classes, prompts, opts)
    except OptionError as e:  # a value of the config's `defaults:`: say where it was written
        if e.field in config.defaults and e.field not in given and not e.where:
            raise e.at(f"{config.source or config.name}: defaults") from None
        raise
    notes = list(edit.notes if edit is not None else ()) + list(parsed.notes)  # opening the input: transparency ...
    K = parsed.scales
    if edit is not None and edit.keep_scales is not None:
        check_keep_scales(edit.keep_scales, K)
    ssg = resolve_ssg(config, ssg)
    betas = None
    if ssg is not None:
        if K is not None:
            betas = tuple(ssg.plan(K))  # the range and a beta list against this model's scales
        if _betas_below_zero(ssg):
            notes.append("SSG beta < 0 pulls the logits toward the coarser scale's prior: the opposite of SSG")
    return Request(config=config, classes=tuple(classes) if classes is not None else None,
                   prompts=tuple(prompts) if prompts is not None else None, seeds=tuple(seeds),
                   options=MappingProxyType(opts), parsed=parsed, ssg=ssg, betas=betas, rng=rng, edit=edit,
                   notes=tuple(dict.fromkeys(notes)))


def rebind(request: Request, config: ModelConfig) -> Request:
    """The same call resolved against another config (the loaded model's, which knows every number), with the
    same options: the request's `defaults:` and, on top, the call's own (those that differ), so that an error
    still says which of them it was."""
    d = request.config.defaults
    given = {k: v for k, v in request.options.items() if k not in d or d[k] != v}
    r = resolve(replace(config, defaults=dict(d), source=request.config.source), request.classes and
                list(request.classes), request.prompts and list(request.prompts), given, request.ssg or False,
                request.rng, list(request.seeds), image=request.edit)
    return replace(r, config=config)

