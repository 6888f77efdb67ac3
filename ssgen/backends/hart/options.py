"""HART's call options, checked without torch: before any weights load (from the config alone, when its
`model:` section names `patch_nums`) and again when the loaded model starts a call.

Sampling as upstream's `autoregressive_infer_cfg`, made explicit (options of `Pipeline.generate`):
- `cfg` (4.5, >= 0): VAR's ramp, t_k = cfg * k / (K - 1), logits (1 + t) * cond - t * uncond; **the last
  scale uses t = cfg * (K - 2) / (K - 1)** (upstream reuses the previous scale's ratio there: a
  stale variable, kept because the released outputs depend on it); the residual diffusion head uses
  the same last-scale t. A list gives t_k for every scale explicitly (no ramp, no stale value).
- `top_k`: a number for every scale, or a list with one value per scale (a shorter list repeats its
  last value); by default upstream's hard-coded 600 for scales 0-6 and 300 after (the packaged config
  spells it `[600, 600, 600, 600, 600, 600, 600, 300]`). `top_p` (0 = off).
- `more_smooth` (True): Gumbel soft embeddings as VAR (logits * (1 + r), tau = max(0.27 (1 - 0.95 r),
  0.005), r = k / (K - 1), the stale r at the last scale), drawn after the multinomial; the residual
  head still conditions on the hard codes.
- `system_prompt` (True): the conditioning prefix in front of every prompt (see text.py).
- `residual` (True): the diffusion head adds the continuous residual at the last scale; False is
  upstream's final_stage=1 (discrete tokens only).
- `safety_check` (False): ShieldGemma-2B prompt check (gated model; see safety.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...checks import as_int
from ...errors import OptionError
from ..checks import cfg_weights, check_known, check_text, flag, recorded, top_k_top_p

OPTIONS = ("cfg", "top_k", "top_p", "more_smooth", "system_prompt", "residual", "safety_check")
BOOL_OPTIONS = {"more_smooth": True, "system_prompt": True, "residual": True, "safety_check": False}
# what a config's `model:` may hold, and each field's kind (`ssgen.checks.KINDS`): fields checked against
# llm/config.json and tokenizer/config.json, and which weights file of llm/ to load
MODEL_FIELDS = {"patch_nums": "ints", "vocab_size": "int", "latent_channels": "int", "context_token": "int",
                "resolution": "int", "use_ema": "bool"}


def upstream_top_k(k: int) -> int:
    """Upstream's hard-coded top-k: 600 for scales 0-6, 300 after."""
    return 600 if k < 7 else 300


def smooth_ratio(k: int, num_scales: int) -> float:
    """The ratio r of scale k in the Gumbel smoothing (stale (K-2)/(K-1) at the last scale, as upstream)."""
    K = num_scales
    return (k if k < K - 1 else K - 2) / (K - 1)


@dataclass
class HartOptions:
    """One call's parsed options."""

    prompts: list[str]
    t: list[float]  # CFG weight per scale
    top_k: list[int]  # per scale
    top_p: float
    more_smooth: bool
    system_prompt: bool
    residual: bool
    safety_check: bool
    settings: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    scales: int | None = None  # the scale count these options were judged against (None: not known yet)


def parse(name: str, model: dict[str, Any], classes: list | None, prompts: list | None,
          options: dict[str, Any]) -> HartOptions:
    """One call's options. Without `patch_nums` in `model:` (the files know it) the per-scale values cannot be
    judged yet: everything else is checked, lists are judged by their first value, and `scales` is None, so
    the request is resolved again once the model is loaded (`Pipeline.run`)."""
    K = num_scales(model, options)
    if K is None:
        options = {k: (v[0] if isinstance(v, (list, tuple)) and v else v) for k, v in options.items()}
    o = _parse(name, classes, prompts, options, K or 2, int(model.get("vocab_size", 4096)))
    o.scales = K
    return o


def _parse(model: str, classes: list | None, prompts: list | None, options: dict[str, Any], K: int,
           vocab: int) -> HartOptions:
    prompts = check_text(classes, prompts, model)
    no_neg = " (HART has no negative prompt: its unconditional branch is fixed)"
    check_known(options, OPTIONS, "HART", no_neg if "negative_prompt" in options else "")
    cfg = options.get("cfg", 4.5)
    t = cfg_weights(cfg, K, model, stale_last=True)
    top_k = options.get("top_k")
    if top_k is None:
        ks = [upstream_top_k(k) for k in range(K)]
    elif isinstance(top_k, (list, tuple)):  # one per scale; a shorter list repeats its last value
        if not 1 <= len(top_k) <= K:
            raise OptionError("top_k", f"list has {len(top_k)} values but {model} has {K} scales")
        ks = [as_int(v, "top_k", 0) for v in top_k]
        ks += [ks[-1]] * (K - len(ks))
    else:
        ks = [as_int(top_k, "top_k", 0)] * K
    _, top_p, _ = top_k_top_p({"top_p": options.get("top_p", 0.0)})
    flags = {name: flag(options, name, default) for name, default in BOOL_OPTIONS.items()}
    notes = [f"top_k {max(ks)} >= the codebook size {vocab}: top-k filters nothing"] if max(ks) >= vocab else []
    settings = {"cfg": recorded(cfg), "cfg_per_scale": t, "top_k": ks, "top_p": top_p, **flags}
    return HartOptions(prompts, t, ks, top_p, settings=settings, notes=notes, **flags)


def num_scales(model: dict[str, Any], options: dict[str, Any]) -> int | None:
    """Known before loading only when the config's `model:` names `patch_nums` (else llm/config.json does)."""
    pns = model.get("patch_nums")
    return len(pns) if isinstance(pns, (list, tuple)) else None

