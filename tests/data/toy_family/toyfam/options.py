"""Step 2: the call options, checked without torch (built on ssgen.backends.checks)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ssgen.backends.checks import cfg_weights, check_classes, check_known, per_scale, recorded, top_k_top_p

OPTIONS = ("cfg", "temperature", "top_k", "top_p")
MODEL_FIELDS = ("patch_nums", "vocab_size", "num_classes")


@dataclass
class ToyOptions:
    t: list[float]  # CFG weight per scale
    temperature: list[float]
    top_k: int
    top_p: float
    settings: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    @property
    def scales(self) -> int:
        return len(self.t)


def num_scales(model: dict[str, Any], options: dict[str, Any]) -> int:
    return len(model.get("patch_nums") or (1, 2, 4))


def parse(name: str, model: dict[str, Any], classes: list | None, prompts: list | None,
          options: dict[str, Any]) -> ToyOptions:
    check_classes(classes, prompts, int(model.get("num_classes", 10)), name)
    check_known(options, OPTIONS, "Toy")
    K = num_scales(model, options)
    t = cfg_weights(options.get("cfg", 1.0), K, name)
    temp = per_scale(options.get("temperature", 1.0), K, "temperature", name, 0.01, 100.0)
    top_k, top_p, notes = top_k_top_p(options, int(model.get("vocab_size", 16)))
    settings = {"cfg": recorded(options.get("cfg", 1.0)), "temperature": recorded(options.get("temperature", 1.0)),
                "top_k": top_k, "top_p": top_p}
    return ToyOptions(t, temp, top_k, top_p, settings, notes)
