"""Infinity's call options, checked without torch: before any weights load (from the config alone)
and again when the loaded model starts a call. Also the resolution templates (pn, aspect, size).

Sampling as upstream's `autoregressive_infer_cfg` with `cfg_insertion_layer=[0]`: per scale k the
logits (B, h*w, 2d) are `cfg_k * l_cond/tau_k + (1 - cfg_k) * l_uncond/tau_k`, top-k/top-p act on the
2 classes of every bit (top-k is then a no-op; top-p 0.97 zeroes a bit's minority class below 3 %), and
every bit is one independent draw. The unconditional rows use the learned null text `cfg_uncond`
cut to each prompt's length, or the negative prompt. With every cfg == 1 no unconditional rows run.

Options (generate(..., **options)): cfg (>= 0; 1 = no guidance) and tau (> 0) (a number or one value
per scale), top_k, top_p, negative_prompt (a string, or one per prompt), pn ("0.06M", "0.25M", "0.60M",
"1M"), h_div_w (height / width; the nearest official template is used), aspect ("W:H", the same as
h_div_w = H/W), size ("WxH": picks pn and the template nearest to that pixel size and shape; overrides
pn), offload (move the text encoder to the CPU after encoding).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from ...checks import as_float, as_str
from ...errors import ConfigError, OptionError
from ..checks import MAX_WEIGHT, check_known, check_prompts, check_text, flag, per_scale, top_k_top_p

OPTIONS = ("cfg", "tau", "top_k", "top_p", "negative_prompt", "pn", "h_div_w", "aspect", "size", "offload")
# what a config's `model:` may hold, and each field's kind (`ssgen.checks.KINDS`; None: not checked here):
# InfinityConfig's fields, the architecture switches upstream's constructor takes (FIXED_ARCH, compared with
# the supported values as the model loads), the VAE's (checked against the file), and upstream's training-only
# constructor arguments, accepted and ignored so that its argument lists can be pasted.
_IGNORED = ("batch_size", "checkpointing", "cond_drop_rate", "drop_path_rate", "drop_rate", "fused_mlp", "fused_norm",
            "pad_to_multiplier", "rand_uncond", "raw_scale_schedule", "always_training_scales", "train_h_div_w_list",
            "video_frames", "inference_mode", "schedule_mode", "selecting_idx")
_FIXED = ("rms_norm", "shared_aln", "head_aln", "cos_attn", "swiglu", "nm0", "head_depth", "use_bit_label",
          "rope2d_each_sa_layer", "rope2d_normalized_by_hw", "add_lvl_embeding_only_first_block",
          "cross_attn_layer_scale", "customized_flash_attn", "use_flex_attn")
MODEL_FIELDS = {
    "depth": "int", "embed_dim": "int", "num_heads": "int", "mlp_ratio": "float", "text_channels": "int",
    "text_maxlen": "int", "block_chunks": "int", "norm_eps": "float", "codebook_dim": "int",
    "apply_spatial_patchify": "int", "vae_type": "int",
    **{f: None for f in _FIXED},
    "base_ch": "int", "num_res_blocks": "int", "decoder_ch_mult": "ints", "encoder_ch_mult": "ints",
    "patch_size": "int", "codebook_size": "int", "quantizer_type": None,
    **{f: None for f in _IGNORED},
}


# ------------------------------------------------------------------------------------------------
# resolution templates (upstream's infinity/utils/dynamic_resolution.py, vae stride 16)
# ------------------------------------------------------------------------------------------------

# (h, w) token grids of the 13 scales of the 1M schedule, per height/width ratio >= 1; the ratio < 1
# templates are these transposed, keyed int(1000 / r) / 1000 (0.8, 0.75, 0.666, ...). pn "0.06M",
# "0.25M", "0.60M" and "1M" take the first 7, 10, 12 and 13 scales.
_TALL = {
    1.000: [(1, 1), (2, 2), (4, 4), (6, 6), (8, 8), (12, 12), (16, 16), (20, 20), (24, 24), (32, 32), (40, 40),
            (48, 48), (64, 64)],
    1.250: [(1, 1), (2, 2), (3, 3), (5, 4), (10, 8), (15, 12), (20, 16), (25, 20), (30, 24), (35, 28), (45, 36),
            (55, 44), (70, 56)],
    1.333: [(1, 1), (2, 2), (4, 3), (8, 6), (12, 9), (16, 12), (20, 15), (24, 18), (28, 21), (36, 27), (48, 36),
            (60, 45), (72, 54)],
    1.500: [(1, 1), (2, 2), (3, 2), (6, 4), (9, 6), (15, 10), (21, 14), (27, 18), (33, 22), (39, 26), (48, 32),
            (63, 42), (78, 52)],
    1.750: [(1, 1), (2, 2), (3, 3), (7, 4), (11, 6), (14, 8), (21, 12), (28, 16), (35, 20), (42, 24), (56, 32),
            (70, 40), (84, 48)],
    2.000: [(1, 1), (2, 2), (4, 2), (6, 3), (10, 5), (16, 8), (22, 11), (30, 15), (38, 19), (46, 23), (60, 30),
            (74, 37), (90, 45)],
    2.500: [(1, 1), (2, 2), (5, 2), (10, 4), (15, 6), (20, 8), (25, 10), (30, 12), (40, 16), (50, 20), (65, 26),
            (80, 32), (100, 40)],
    3.000: [(1, 1), (2, 2), (6, 2), (9, 3), (15, 5), (21, 7), (27, 9), (36, 12), (45, 15), (54, 18), (72, 24),
            (90, 30), (111, 37)],
}
SCHEDULES: dict[float, list[tuple[int, int]]] = {}
for _r, _hw in _TALL.items():
    SCHEDULES[_r] = _hw
    if _r != 1.0:
        SCHEDULES[int(1000 / _r) / 1000] = [(w, h) for h, w in _hw]
TEMPLATES = tuple(SCHEDULES)  # 1.0, 1.25, 0.8, 1.333, 0.75, ... (upstream's order: ties go to the first)
PN_SCALES = {"0.06M": 7, "0.25M": 10, "0.60M": 12, "1M": 13}
PX_PER_TOKEN = 16  # pixels per transformer token (VAE stride; 8B: f8 latents patchified 2x2)


@dataclass
class Resolution:
    """The scale schedule a generation call uses."""

    pn: str
    template: float  # height / width of the official template
    grid: list[tuple[int, int]]  # transformer (h, w) per scale
    full_hw: tuple[int, int]  # last scale of the template's 1M schedule (RoPE normalisation)
    notes: list[str]

    @property
    def pixels(self) -> tuple[int, int]:
        """(width, height) of the image."""
        h, w = self.grid[-1]
        return w * PX_PER_TOKEN, h * PX_PER_TOKEN


def nearest_template(h_div_w: float) -> float:
    """Upstream's choice: argmin |template - h/w| (the first on ties)."""
    return min(TEMPLATES, key=lambda t: abs(t - h_div_w))


def _ratio(text: Any, sep: str, name: str, example: str) -> tuple[float, float]:
    as_str(text, name, f"text such as {example}")
    m = re.fullmatch(rf"\s*(\d+(?:\.\d+)?)\s*{sep}\s*(\d+(?:\.\d+)?)\s*", text)
    if not m or float(m.group(1)) <= 0 or float(m.group(2)) <= 0:
        raise OptionError(name, f"{text!r} is malformed; use {example}")
    return float(m.group(1)), float(m.group(2))


def resolve_resolution(options: dict) -> Resolution:
    """pn / h_div_w / aspect / size -> the official template and schedule, with notes when the request
    was not exactly a template."""
    notes: list[str] = []
    size, aspect, h_div_w = options.get("size"), options.get("aspect"), options.get("h_div_w")
    if aspect is not None and h_div_w is not None:
        raise ConfigError("give either aspect (W:H) or h_div_w, not both")
    if size is not None and (aspect is not None or h_div_w is not None):
        raise ConfigError("give either size (WxH) or an aspect ratio, not both: size sets both")
    if size is not None:
        W, H = _ratio(size, "[xX]", "size", "WxH: 1024x1024 or 1152x864")
        want = H / W
    elif aspect is not None:
        W, H = _ratio(aspect, ":", "aspect", "W:H: 16:9 or 1:1")
        want = H / W
    elif h_div_w is not None:
        want = as_float(h_div_w, "h_div_w", hint=" (height / width)")
        if want <= 0:
            raise OptionError("h_div_w", f"must be a positive number (height / width), got {h_div_w!r}")
    else:
        want = 1.0
    t = nearest_template(want)
    sched = SCHEDULES[t]
    if size is not None:  # the budget whose pixel count is nearest (log scale) to W*H
        def px(n):
            h, w = sched[n - 1]
            return h * w * PX_PER_TOKEN**2

        pn = min(PN_SCALES, key=lambda p: abs(math.log(px(PN_SCALES[p]) / (W * H))))
    else:
        pn = as_str(options.get("pn", "1M"), "pn", f"one of {', '.join(PN_SCALES)}")
        if pn not in PN_SCALES:
            raise OptionError("pn", f"{pn!r} is unknown; use one of: {', '.join(PN_SCALES)}")
    res = Resolution(pn=pn, template=t, grid=list(sched[: PN_SCALES[pn]]), full_hw=sched[-1], notes=notes)
    w_px, h_px = res.pixels
    if size is not None and (round(W), round(H)) != (w_px, h_px):
        notes.append(f"size {size} is not an official template: using {w_px}x{h_px} (h/w template {t:g}, pn {pn})")
    elif size is None and abs(want - t) > 0.005 * t:
        notes.append(f"aspect h/w {want:.4g} is not an official template: using the nearest, {t:g} "
                     f"({w_px}x{h_px} at pn {pn})")
    return res


@dataclass
class InfinityOptions:
    """One call's parsed options."""

    prompts: list[str]
    negative: list[str] | None
    cfg: list[float]
    tau: list[float]
    top_k: int
    top_p: float
    res: Resolution
    offload: bool
    settings: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    @property
    def scales(self) -> int:
        return len(self.res.grid)


def parse(name: str, model: dict[str, Any], classes: list | None, prompts: list | None,
          options: dict[str, Any]) -> InfinityOptions:
    """One call's options; the resolution (pn and the aspect template) decides the scales."""
    prompts = check_text(classes, prompts, name)
    check_known(options, OPTIONS, "Infinity")
    B = len(prompts)
    res = resolve_resolution(options)
    K = len(res.grid)
    cfg = per_scale(options.get("cfg", 3.0), K, "cfg", name, 0.0, MAX_WEIGHT, " (1 = no guidance)")
    tau = per_scale(options.get("tau", 1.0), K, "tau", name, 0.0, MAX_WEIGHT, " (a temperature)")
    if any(t <= 0 for t in tau):
        raise OptionError("tau", f"must be > 0 (a temperature), got {options.get('tau')!r}")
    top_k, top_p, _ = top_k_top_p(options)  # top-k acts on 2-way bits: a no-op, kept as upstream passes it
    neg = options.get("negative_prompt")
    if isinstance(neg, str):
        neg = None if not neg.strip() else [neg] * B  # upstream: an empty negative prompt is none
    elif neg is not None:
        if not isinstance(neg, (list, tuple)):
            raise OptionError("negative_prompt", f"must be a text or a list of one per prompt, got {neg!r}")
        if len(neg) != B:
            raise OptionError("negative_prompt", f"has {len(neg)} texts for {B} prompts; give one, or one per prompt")
        neg = check_prompts(list(neg), "negative_prompt")
    offload = flag(options, "offload", False)
    w_px, h_px = res.pixels
    settings = {
        "cfg": cfg if isinstance(options.get("cfg"), (list, tuple)) else cfg[0],
        "tau": tau if isinstance(options.get("tau"), (list, tuple)) else tau[0],
        "top_k": top_k, "top_p": top_p, "negative_prompt": options.get("negative_prompt") or None,
        "pn": res.pn, "h_div_w": res.template, "size": f"{w_px}x{h_px}",
    }
    return InfinityOptions(prompts, neg, cfg, tau, top_k, top_p, res, offload, settings, list(res.notes))


def num_scales(model: dict[str, Any], options: dict[str, Any]) -> int:
    """Scales a call with these options runs (pn and the aspect template decide)."""
    return len(resolve_resolution(options).grid)

