"""Switti's call options, checked without torch: before any weights load (from the config alone, when its
`model:` section names `reso`) and again when the loaded model starts a call.

Sampling as upstream's `SwittiPipeline.__call__` (yandex-research/switti models/pipeline.py:88-244), per
scale k of K, with ratio r = k / (K - 1):
- `cfg_start` <= k < `cfg_stop` (upstream `turn_on_cfg_start_si` / `turn_off_cfg_start_si`): CFG,
  logits (1 + t) cond - t uncond with t = cfg * r (a ramp from 0); a list `cfg` gives every t_k (no ramp);
- k < `cfg_start`: the conditional logits alone (the batch still runs both halves);
- k >= `cfg_stop`: the unconditional half is dropped for good (rows, text, KV caches), the logits are
  divided by `last_scale_temp` when given, and no smoothing happens there;
- `more_smooth` and k >= `smooth_start` (`smooth_start_si`), while CFG is not off: no draw at all, the
  Gumbel-softmax weights of logits * (1 + r) at tau = max(0.27 (1 - 0.95 r), 0.005) mix the codebook
  (no top-k/top-p there); the token ssgen reports for such a scale is the argmax of those weights;
- otherwise one draw after top-k / top-p.
`negative_prompt` is upstream's `null_prompt` (default "": the empty prompt is the unconditional branch).

When neither the call nor the config's `defaults:` gives an option, upstream's `__call__` default applies
(CALL_DEFAULTS); the released configs carry the README's recommended settings instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...checks import as_float, as_int, as_str
from ...errors import ConfigError, OptionError
from ..checks import MAX_WEIGHT, check_known, check_text, flag, per_scale, recorded, top_k_top_p

OPTIONS = ("cfg", "top_k", "top_p", "more_smooth", "smooth_start", "cfg_start", "cfg_stop", "last_scale_temp",
           "negative_prompt")
# upstream's `SwittiPipeline.__call__` defaults (models/pipeline.py:89-103), under ssgen's names
CALL_DEFAULTS = {"cfg": 6.0, "top_k": 400, "top_p": 0.95, "more_smooth": False, "smooth_start": 0, "cfg_start": 0,
                 "cfg_stop": 10, "last_scale_temp": None, "negative_prompt": ""}
# what a config's `model:` may hold, and each field's kind (`ssgen.checks.KINDS`): the keys of the transformer
# folder's config.json (SwittiHF.__init__'s arguments), checked against that file as the model loads
MODEL_FIELDS = {"depth": "int", "reso": "int", "rope": "bool", "rope_theta": "float", "rope_size": "float",
                "use_swiglu_ffn": "bool", "use_ar": "bool", "use_crop_cond": "bool"}
# upstream's RESOLUTION_PATCH_NUMS_MAPPING (utils/arg_util.py:33-37): the only resolutions SwittiHF builds
PATCH_NUMS = {
    256: (1, 2, 3, 4, 5, 6, 8, 10, 13, 16),
    512: (1, 2, 3, 4, 6, 9, 13, 18, 24, 32),
    1024: (1, 2, 3, 4, 5, 7, 9, 12, 16, 21, 27, 36, 48, 64),
}
VOCAB = 4096
MAX_SCALES = max(len(p) for p in PATCH_NUMS.values())


def patch_nums(reso: Any, where: str = "reso") -> tuple[int, ...]:
    """The scale schedule of a resolution; anything but 256, 512 or 1024 is an error naming `where`."""
    if isinstance(reso, bool) or reso not in PATCH_NUMS:
        raise ConfigError(f"{where} must be 256, 512 or 1024 (the resolutions Switti defines), got {reso!r}")
    return PATCH_NUMS[reso]


@dataclass
class SwittiOptions:
    """One call's parsed options."""

    prompts: list[str]
    negative_prompt: str
    cfg: list[float]  # t_k per scale (used where CFG is on)
    top_k: int
    top_p: float
    more_smooth: bool
    smooth_start: int
    cfg_start: int
    cfg_stop: int
    last_scale_temp: float | None
    settings: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    scales: int | None = None  # the scale count these options were judged against (None: not known yet)

    def mode(self, k: int) -> str:
        """How scale k combines its logits: "cond" (before cfg_start), "cfg" or "off" (from cfg_stop on)."""
        return "cond" if k < self.cfg_start else "cfg" if k < self.cfg_stop else "off"

    def smooth(self, k: int) -> bool:
        """Whether scale k mixes the codebook with Gumbel-softmax weights instead of drawing a token."""
        return self.more_smooth and k >= self.smooth_start and k < self.cfg_stop


def num_scales(model: dict[str, Any], options: dict[str, Any]) -> int | None:
    """Known before loading when the config's `model:` names `reso` (else the transformer's config.json does)."""
    reso = model.get("reso")
    return len(PATCH_NUMS[reso]) if reso in PATCH_NUMS and not isinstance(reso, bool) else None


def parse(name: str, model: dict[str, Any], classes: list | None, prompts: list | None,
          options: dict[str, Any]) -> SwittiOptions:
    """One call's options. Without `reso` in `model:` the scale indices and per-scale lists cannot be judged
    yet: everything else is checked (against 14 scales, the most Switti has; lists by their first value) and
    `scales` is None, so the request is resolved again once the model is loaded (`Pipeline.run`)."""
    if model.get("reso") is not None:
        patch_nums(model["reso"], f"{name}: model.reso")
    K = num_scales(model, options)
    if K is None:
        options = {k: (v[0] if isinstance(v, (list, tuple)) and v else v) for k, v in options.items()}
    o = _parse(name, classes, prompts, options, K or MAX_SCALES)
    o.scales = K
    return o


def _parse(model: str, classes: list | None, prompts: list | None, options: dict[str, Any], K: int) -> SwittiOptions:
    prompts = check_text(classes, prompts, model)
    check_known(options, OPTIONS, "Switti")
    o = {**CALL_DEFAULTS, **options}
    cfg = o["cfg"]
    if isinstance(cfg, (list, tuple)):  # every t_k given
        t = per_scale(cfg, K, "cfg", model, 0.0, MAX_WEIGHT, " (0 = no guidance)")
    else:  # upstream's ramp t_k = cfg * ratio, ratio = k / (K - 1) (computed in this order, as upstream)
        c = as_float(cfg, "cfg", 0.0, MAX_WEIGHT, " (0 = no guidance)")
        t = [c * (k / (K - 1)) for k in range(K)]
    top_k, top_p, notes = top_k_top_p(o, VOCAB)
    smooth = flag(o, "more_smooth", False)
    scale = f" (a scale index; {model} has {K} scales: 0..{K - 1})"
    smooth_start = as_int(o["smooth_start"], "smooth_start", 0, K - 1, scale)
    cfg_start = as_int(o["cfg_start"], "cfg_start", 0, K, f" (a scale index, {K} = never; {model} has {K} scales)")
    cfg_stop = as_int(o["cfg_stop"], "cfg_stop", 0, K, f" (a scale index, {K} = never; {model} has {K} scales)")
    if cfg_start > cfg_stop:
        raise OptionError("cfg_start", f"({cfg_start}) must not be after cfg_stop ({cfg_stop}): CFG applies on the "
                                       "scales cfg_start <= k < cfg_stop")
    temp = o["last_scale_temp"]
    if temp is not None:
        temp = as_float(temp, "last_scale_temp", 0.0, MAX_WEIGHT, " (a temperature > 0, or null for none)")
        if temp <= 0:
            raise OptionError("last_scale_temp", f"must be > 0 (a temperature), got {o['last_scale_temp']!r}")
    neg = as_str(o["negative_prompt"], "negative_prompt", 'text (one negative prompt for the batch; "" = none)')
    if cfg_stop < K:
        notes.append(f"CFG is off from scale {cfg_stop} of {K} (cfg_stop {cfg_stop}): the last {K - cfg_stop} "
                     f"scale(s) run without guidance" + (f", their logits / {temp:g}" if temp is not None else ""))
    elif temp is not None:
        notes.append(f"last_scale_temp {temp:g} has no effect: CFG is never switched off (cfg_stop {cfg_stop} of "
                     f"{K} scales)")
    if smooth and smooth_start >= cfg_stop:
        notes.append(f"more_smooth has no effect: smoothing starts at scale {smooth_start}, CFG (and with it "
                     f"smoothing) is off from scale {cfg_stop}")
    settings = {"cfg": recorded(cfg), "top_k": top_k, "top_p": top_p, "more_smooth": smooth,
                "smooth_start": smooth_start, "cfg_start": cfg_start, "cfg_stop": cfg_stop,
                "last_scale_temp": temp, "negative_prompt": neg}
    return SwittiOptions(prompts, neg, t, top_k, top_p, smooth, smooth_start, cfg_start, cfg_stop, temp, settings,
                         notes)
