"""What a model family declares, in one place: `FamilySpec`. No torch here (the CLI, config checks and
input checks read specs before anything heavy is imported).

A family is a folder `ssgen/backends/<name>/` with a `spec.py` holding `SPEC = FamilySpec(...)`, and one
line in the registry (`ssgen/backends/__init__.py`). Everything else reads the registry: config checks
(`model:` and `defaults:` fields), the request checks (`options.parse`), the CLI's flags, batch job fields,
`python -m ssgen.tiny`, the checkpoint-kind messages and the tests that iterate families.
See docs/architecture.md ("Adding a family").
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable


@dataclass(frozen=True)
class Kind:
    """One part of a family's checkpoint, as its released file or folder is recognised (backends/kinds.py)."""

    family: str  # the family whose role this file fills
    role: str  # transformer | vae | text_encoder | ...
    what: str  # how a message names it ("a VAR VQVAE")
    released: str  # the released file or folder of this kind (the hint)
    keys: tuple[str, ...] = ()  # fnmatch patterns that each match a key of such a state dict
    model_types: tuple[str, ...] = ()  # the `model_type` of such a folder's config.json
    also: tuple[str, str] | None = None  # (family, role) of another kind this role also takes


@dataclass(frozen=True)
class Flag:
    """A command-line flag for a family option beyond the shared ones (cfg, top-k, top-p, smoothing, SSG).
    `kind`: "text" (a string), "per-scale" (a number or one value per scale, `a,b,...`), "int" (a whole
    number), "number" (one number) or "bool" (`--name/--no-name`). Two families may declare the same option:
    the CLI shows it once."""

    name: str  # the option's Python name, as `Pipeline.generate(**options)` takes it
    help: str
    kind: str = "text"

    @property
    def decl(self) -> str:
        flag = "--" + self.name.replace("_", "-")
        return f"{flag}/--no-{flag[2:]}" if self.kind == "bool" else flag


def _attr(path: str) -> Any:
    """`"package.module:name"` -> that object, imported on first use."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class FamilySpec:
    """A model family: its name, condition, options, loader, tiny-model maker, checkpoint kinds and flags.

    `options` is the family's torch-free options module: `OPTIONS` (the call options it takes), `MODEL_FIELDS`
    (what a config's `model:` may hold), `num_scales(model, options) -> int | None` (None: only the weights
    know) and `parse(name, model, classes, prompts, options)` -> an object with `settings` (what the PNGs
    record) and `notes`, which the loaded family's `start` receives as `request.parsed`.
    `loader`/`tiny` are "module:function" paths, imported only when used: `load(config, device, dtype,
    offline=None, progress=True) -> Family` and `make(out_dir) -> Path` (the tiny model's YAML)."""

    name: str  # what a config's `family:` says
    title: str  # how messages name the family ("VAR")
    article: str  # "a VAR", "an Infinity"
    condition: str  # "class" (class-conditional) or "text" (text-to-image)
    options: ModuleType
    loader: str
    tiny: str
    kinds: tuple[Kind, ...] = ()
    flags: tuple[Flag, ...] = ()
    job_fields: tuple[str, ...] = ()  # per-job overrides a batch job file may give (besides class/prompt/seed/ssg)
    can_edit: bool = False  # the VAE file holds the encoder: `ssgen edit` works
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)  # `ssgen batch --preset NAME`

    def load(self) -> Callable[..., Any]:
        """The family's `load` function (imports its model code: torch)."""
        return _attr(self.loader)

    def make_tiny(self) -> Callable[..., Any]:
        return _attr(self.tiny)
