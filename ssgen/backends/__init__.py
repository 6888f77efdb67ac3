"""Model backends: one sub-package per model family, and the registry that names them.

Each family package has the same layout: `model.py` (the transformer, official key names), `vae.py` /
`tokenizer.py` (latents <-> pixels), `text.py` for text-to-image families, `family.py` (`load()` ->
a `common.Family`, which starts one `loop.Backend` per generation call) and `tiny.py` (tiny
random-weight models in the official checkpoint formats, for tests and demos).

The registry below is the list of families a config's `family:` may name. Each family also has a
torch-free `options.py` (its call options, the fields its `model:` section may hold, its scale count):
the input checks run from it before any weights load. A family's model code is imported only when one
is loaded, so reading configs and checking input (and the CLI's help and listing) never import torch.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Callable


def _var() -> Callable[..., Any]:
    from .var.family import load

    return load


def _infinity() -> Callable[..., Any]:
    from .infinity.family import load

    return load


def _hart() -> Callable[..., Any]:
    from .hart.family import load

    return load


# family name -> its loader, `load(config, device, dtype, offline=None, progress=True) -> Family`
FAMILIES: dict[str, Callable[[], Callable[..., Any]]] = {"var": _var, "infinity": _infinity, "hart": _hart}


def loader(family: str) -> Callable[..., Any]:
    """The `load` function of a registered family."""
    return FAMILIES[family]()


def options(family: str) -> ModuleType:
    """A family's torch-free options module: OPTIONS, MODEL_FIELDS, num_scales(model, options) and
    check(name, model, classes, prompts, options) -> notes."""
    if family == "var":
        from .var import options as mod
    elif family == "infinity":
        from .infinity import options as mod
    elif family == "hart":
        from .hart import options as mod
    else:
        raise KeyError(family)
    return mod
