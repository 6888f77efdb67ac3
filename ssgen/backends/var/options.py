"""VAR's call options, checked without torch, once per call (`ssgen.request.resolve`), before any weights
load; the loaded model's `start` takes the parsed result as it is.

Sampling as upstream's `autoregressive_infer_cfg`: the CFG weight ramps with the scale, t_k = cfg * k /
(K - 1), and the logits are (1 + t) cond - t uncond; a list `cfg` gives every t_k (no ramp); top-k /
top-p; optional `more_smooth` Gumbel soft embeddings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..checks import cfg_weights, check_classes, check_known, flag, recorded, top_k_top_p

OPTIONS = ("cfg", "top_k", "top_p", "more_smooth")
# what a config's `model:` may hold, and each field's kind (`ssgen.checks.KINDS`, checked as the config is
# read): VARConfig's fields (tests keep the two in sync), the VAE width and the image size (informational)
MODEL_FIELDS = {"depth": "int", "width": "int", "heads": "int", "patch_nums": "ints", "vocab_size": "int",
                "latent_channels": "int", "num_classes": "int", "shared_aln": "bool", "attn_l2_norm": "bool",
                "norm_eps": "float", "vae_ch": "int", "resolution": "int"}
PATCH_NUMS_256 = (1, 2, 3, 4, 5, 6, 8, 10, 13, 16)


@dataclass
class VarOptions:
    """One call's parsed options."""

    t: list[float]  # CFG weight per scale
    top_k: int
    top_p: float
    smooth: bool
    settings: dict[str, Any]  # what the PNGs record
    notes: list[str] = field(default_factory=list)

    @property
    def scales(self) -> int:
        return len(self.t)


def parse(name: str, model: dict[str, Any], classes: list | None, prompts: list | None,
          options: dict[str, Any]) -> VarOptions:
    """One call's options against the model's numbers (`model:` completed with what the checkpoint says, once
    loaded: the loader refuses a checkpoint whose classes, codebook or scales differ from the config)."""
    num_classes, vocab = int(model.get("num_classes", 1000)), int(model.get("vocab_size", 4096))
    check_classes(classes, prompts, num_classes, name)
    check_known(options, OPTIONS, "VAR")
    cfg = options.get("cfg", 1.5)
    t = cfg_weights(cfg, num_scales(model, options), name)
    top_k, top_p, notes = top_k_top_p(options, vocab)
    smooth = flag(options, "more_smooth", False)
    settings = {"cfg": recorded(cfg), "top_k": top_k, "top_p": top_p, "more_smooth": smooth}
    return VarOptions(t, top_k, top_p, smooth, settings, notes)


def num_scales(model: dict[str, Any], options: dict[str, Any]) -> int:
    return len(model.get("patch_nums") or PATCH_NUMS_256)
