"""Model backends: one sub-package per model family, and the registry that names them.

Each family package has the same layout: `spec.py` (its `FamilySpec`: torch-free), `options.py` (its call
options, torch-free), `model.py` (the transformer, official key names), `vae.py` / `tokenizer.py`,
`text.py` for text-to-image families, `family.py` (`load()` -> a `common.Family`, whose `start(request)`
gives one `loop.Backend` per generation call) and `tiny.py` (tiny random-weight models in the official
checkpoint formats). A family's model code is imported only when one is loaded, so reading configs and
checking input (and the CLI's help and listing) never import torch.

The registry is the only list of families. A family in this package is one line of `BUILTIN`; a family
outside it (a plugin) registers its spec under the entry-point group `ssgen.families`
(`[project.entry-points."ssgen.families"] name = "package.module:SPEC"`), read the first time the
registry is asked.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from ..errors import ConfigError
from .spec import FamilySpec

BUILTIN = ("var", "infinity", "hart", "switti")  # ssgen/backends/<name>/spec.py, each with its SPEC

_registry: dict[str, FamilySpec] = {}


def families() -> dict[str, FamilySpec]:
    """name -> spec of every registered family (built in first, then plugins)."""
    if not _registry:
        for name in BUILTIN:
            _add(importlib.import_module(f"{__name__}.{name}.spec").SPEC)
        for ep in entry_points(group="ssgen.families"):
            _add(ep.load())
    return _registry


def _add(spec: FamilySpec) -> None:
    if not isinstance(spec, FamilySpec):
        raise TypeError(f"a family's SPEC must be a FamilySpec, got {type(spec).__name__}")
    _registry.setdefault(spec.name, spec)


def family(name: str) -> FamilySpec:
    """The spec of a registered family; a ConfigError naming the known ones otherwise."""
    fams = families()
    if name not in fams:
        raise ConfigError(f"unknown model family {name!r}; known: {', '.join(fams)}")
    return fams[name]
