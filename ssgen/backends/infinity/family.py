"""Infinity as a family the generic loop drives: loading (config <-> checkpoint checks), resolution
templates, and one generation call.

Weights roles: `transformer` (infinity_2b_reg.pth, or the 8B folder of safetensors shards with its
`*.index.json`), `vae` (infinity_vae_d32reg.pth / the 8B's f8 patchify VAE) and `text_encoder` (a
folder with flan-t5-xl's config, tokenizer and weights).

Sampling as upstream's `autoregressive_infer_cfg` with `cfg_insertion_layer=[0]`: per scale k the
logits (B, h*w, 2d) are `cfg_k * l_cond/tau_k + (1 - cfg_k) * l_uncond/tau_k`, top-k/top-p act on the
2 classes of every bit (top-k is then a no-op; top-p 0.97 zeroes a bit's minority class below 3 %), and
every bit is one independent draw. The unconditional rows use the learned null text `cfg_uncond`
cut to each prompt's length, or the negative prompt. With every cfg == 1 no unconditional rows run.

Options (generate(..., **options)): cfg and tau (a number or one value per scale), top_k, top_p,
negative_prompt (a string, or one per prompt), pn ("0.06M", "0.25M", "0.60M", "1M"), h_div_w
(height / width; the nearest official template is used), aspect ("W:H", the same as h_div_w = H/W),
size ("WxH": picks pn and the template nearest to that pixel size and shape; overrides pn), offload
(move the text encoder to the CPU after encoding).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ...checkpoint import drop_keys, load_into, read_state_dict, unwrap
from ...config import ModelConfig
from ...errors import ConfigError, WeightsError
from ...loop import ScaleSampling
from ..common import Call, check_known, check_text, flag, per_image, per_scale, top_k_top_p
from .model import IGNORED_KEYS_INFINITY, Infinity, InfinityConfig, fields_from_state_dict, rope_2d
from .text import TextEncoder, check_prompts
from .vae import BSQVAE, IGNORED_KEYS_VAE, VAEConfig, patchify, unpatchify_bits, upsample_to

OPTIONS = ("cfg", "tau", "top_k", "top_p", "negative_prompt", "pn", "h_div_w", "aspect", "size", "offload")

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


def _ratio(text: Any, sep: str, what: str, example: str) -> tuple[float, float]:
    m = re.fullmatch(rf"\s*(\d+(?:\.\d+)?)\s*{sep}\s*(\d+(?:\.\d+)?)\s*", str(text))
    if not m or float(m.group(1)) <= 0 or float(m.group(2)) <= 0:
        raise ConfigError(f"malformed {what} {text!r}; use {example}")
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
        W, H = _ratio(size, "[xX]", "size", "WxH, e.g. 1024x1024 or 1152x864")
        want = H / W
    elif aspect is not None:
        W, H = _ratio(aspect, ":", "aspect", "W:H, e.g. 16:9 or 1:1")
        want = H / W
    elif h_div_w is not None:
        try:
            want = float(h_div_w)
        except (TypeError, ValueError):
            raise ConfigError(f"h_div_w must be a number (height / width), got {h_div_w!r}") from None
        if not (math.isfinite(want) and want > 0):
            raise ConfigError(f"h_div_w must be a positive number (height / width), got {h_div_w!r}")
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
        pn = options.get("pn", "1M")
        if pn not in PN_SCALES:
            raise ConfigError(f"unknown pn {pn!r}; use one of: {', '.join(PN_SCALES)}")
    res = Resolution(pn=pn, template=t, grid=list(sched[: PN_SCALES[pn]]), full_hw=sched[-1], notes=notes)
    w_px, h_px = res.pixels
    if size is not None and (round(W), round(H)) != (w_px, h_px):
        notes.append(f"size {size} is not an official template: using {w_px}x{h_px} (h/w template {t:g}, pn {pn})")
    elif size is None and abs(want - t) > 0.005 * t:
        notes.append(f"aspect h/w {want:.4g} is not an official template: using the nearest, {t:g} "
                     f"({w_px}x{h_px} at pn {pn})")
    return res


# ------------------------------------------------------------------------------------------------
# the loaded model and one generation call
# ------------------------------------------------------------------------------------------------


@dataclass
class InfinityModel:
    """Loaded Infinity (a `common.Family`): transformer, BSQ VAE and T5 text encoder on one device."""

    config: ModelConfig
    icfg: InfinityConfig
    model: Infinity
    vae: BSQVAE
    text: Any  # TextEncoder, or anything with .encode(prompts, offload=, what=) -> (packed, lens, notes)
    device: torch.device
    dtype: torch.dtype

    def num_scales(self, options: dict[str, Any]) -> int:
        """Scales a call with these options runs (pn and the aspect template decide)."""
        return len(resolve_resolution(options).grid)

    @property
    def n_scales(self) -> int:
        return self.num_scales(dict(self.config.defaults))

    def start(self, classes: list[int] | None, prompts: list[str] | None, options: dict[str, Any]) -> Call:
        name = self.config.name
        prompts = check_prompts(check_text(classes, prompts, name))
        check_known(options, OPTIONS, "Infinity")
        B = len(prompts)
        res = resolve_resolution(options)
        K = len(res.grid)
        cfg = per_scale(options.get("cfg", 3.0), K, "cfg", name)
        tau = per_scale(options.get("tau", 1.0), K, "tau", name)
        if any(t <= 0 for t in tau):
            raise ConfigError(f"tau must be > 0 (a temperature), got {options.get('tau')!r}")
        top_k, top_p = top_k_top_p(options)
        neg = options.get("negative_prompt")
        if isinstance(neg, str):
            neg = None if not neg.strip() else [neg] * B  # upstream: an empty negative prompt is none
        elif neg is not None:
            neg = list(neg)
            if len(neg) != B:
                raise ConfigError(f"{len(neg)} negative prompts for {B} prompts; give one, or one per prompt")
            check_prompts(neg, "negative prompt")
        offload = flag(options, "offload", False)
        run = InfinityRun(self, prompts, neg, cfg, tau, top_k, top_p, res, offload)
        w_px, h_px = res.pixels
        settings = {
            "cfg": cfg if isinstance(options.get("cfg"), (list, tuple)) else cfg[0],
            "tau": tau if isinstance(options.get("tau"), (list, tuple)) else tau[0],
            "top_k": top_k, "top_p": top_p, "negative_prompt": options.get("negative_prompt") or None,
            "pn": res.pn, "h_div_w": res.template, "size": f"{w_px}x{h_px}",
        }
        return Call(run, settings, res.notes + run.notes)


class InfinityRun:
    """One generation call (a `loop.Backend`): the text state, the running latent (summed codes) and the
    next input."""

    def __init__(self, m: InfinityModel, prompts: list[str], neg: list[str] | None, cfg: list[float],
                 tau: list[float], top_k: int, top_p: float, res: Resolution, offload: bool):
        self.m, self.cfg, self.tau, self.top_k, self.top_p, self.res = m, cfg, tau, top_k, top_p, res
        self.grid = res.grid
        self.B = B = len(prompts)
        model, icfg = m.model, m.icfg
        self.patchify = bool(icfg.apply_spatial_patchify)
        f = 2 if self.patchify else 1
        self.vae_grid = [(h * f, w * f) for h, w in self.grid]  # the VAE's latent grid per scale

        packed, lens, self.notes = m.text.encode(prompts, offload=offload)  # (N, Ct5)
        if packed.shape[-1] != icfg.text_channels:
            raise WeightsError(f"the text encoder gives {packed.shape[-1]} channels but {m.config.name}'s "
                               f"transformer expects {icfg.text_channels}; check weights.text_encoder")
        self.use_cfg = any(c != 1 for c in cfg)  # upstream runs unconditional rows only then
        if self.use_cfg:
            if neg is not None:
                npacked, nlens, nnotes = m.text.encode(neg, offload=offload, what="negative prompt")
                self.notes += nnotes
            else:
                npacked, nlens = model.uncond_text(lens).to(packed.device), lens
            packed, lens = torch.cat((packed, npacked)), lens + nlens
        self.bs = len(lens)
        model.reset_cache()
        self.text = model.prepare_text(packed, lens)
        self.x = model.first_input(self.text)  # (bs, 1, C)
        Hf, Wf = self.vae_grid[-1]
        self.summed = torch.zeros(B, icfg.codebook_dim, 1, Hf, Wf, device=m.device)  # (B, d, 1, H, W)

    @property
    def latent(self) -> torch.Tensor:
        """The running latent (B, d, H, W) float32: summed codes, what the VAE decodes."""
        return self.summed.squeeze(2)

    def logits(self, k: int) -> torch.Tensor:
        h, w = self.grid[k]
        rope = rope_2d(h, w, self.res.full_hw, self.m.icfg.head_dim, self.m.device)
        last = k == len(self.grid) - 1  # nothing attends to the last scale: no need to cache it
        return self.m.model.forward_scale(self.x, self.text, k, rope, cache=not last)  # (bs, h*w, 2d) f32

    def guide(self, k: int, raw: torch.Tensor) -> torch.Tensor:
        l = raw.mul(1 / self.tau[k])  # (bs, h*w, 2d), as upstream: temperature first
        if not self.use_cfg:
            return l
        B, c = self.B, self.cfg[k]
        if c == 1:
            return l[:B]
        return c * l[:B] + (1 - c) * l[B:]  # (B, h*w, 2d)

    def sampling(self, k: int) -> ScaleSampling:
        return ScaleSampling(self.top_k, self.top_p, None)

    def categories(self, l: torch.Tensor) -> torch.Tensor:
        B, L, V = l.shape
        return l.view(B, L * V // 2, 2)  # (B, h*w*d, 2): one 2-way categorical per bit

    def advance(self, k: int, tokens: torch.Tensor, soft: torch.Tensor | None) -> torch.Tensor:
        h, w = self.grid[k]
        bits = tokens.view(self.B, h, w, -1)  # (B, h, w, d) on the transformer grid
        vbits = unpatchify_bits(bits) if self.patchify else bits  # (B, h', w', d_vae)
        codes = self.m.vae.bits_to_codes(vbits)  # (B, d_vae, 1, h', w') float32
        K = len(self.grid)
        if k < K - 1:
            self.summed += upsample_to(codes, self.vae_grid[-1])
            nxt = upsample_to(self.summed, self.vae_grid[k + 1]).squeeze(2)  # (B, d_vae, h'', w'')
            if self.patchify:
                nxt = patchify(nxt)  # (B, 4 d_vae, h, w)
            self.x = self.m.model.next_input(nxt, self.bs)  # (bs, h*w, C)
        else:
            self.summed += codes
        return bits.to(torch.uint8)

    def decode(self, rng=None) -> torch.Tensor:
        self.m.model.reset_cache()
        return self.preview()

    def preview(self) -> torch.Tensor:
        """Decode the running latent as it stands -> (B, 3, H, W) float32 in [0, 1], image by image."""
        return per_image(self.m.vae.decode, self.latent)


# ------------------------------------------------------------------------------------------------
# loading
# ------------------------------------------------------------------------------------------------

VAE_FILES = {  # the released VAE for each transformer's token layout: (bits per token, patchify) -> file
    (32, 0): "infinity_vae_d32reg.pth",
    (56, 1): "infinity_vae_d56_f8_14_patchify.pth",
}


def _transformer_file(path: Path) -> Path:
    """A checkpoint file, or a folder holding one (the 8B shards: its *.index.json)."""
    if not path.is_dir():
        return path
    for pattern in ("*.index.json", "*.safetensors", "*.pth"):
        found = sorted(path.glob(pattern))
        if len(found) == 1 or (found and pattern == "*.index.json"):
            return found[0]
    raise WeightsError(f"no checkpoint (*.index.json, one *.safetensors or *.pth) in {path}; "
                       "check weights.transformer")


def _check_transformer(config: ModelConfig, icfg: InfinityConfig, found: dict, path) -> None:
    checks = [("depth", icfg.depth), ("embed_dim", icfg.embed_dim), ("num_heads", icfg.num_heads),
              ("block_chunks", icfg.block_chunks), ("text_channels", icfg.text_channels),
              ("text_maxlen", icfg.text_maxlen), ("ffn_hidden", icfg.ffn_hidden)]
    for f, want in checks:
        if found[f] != want:
            raise WeightsError(f"transformer checkpoint {path} has {f}={found[f]} but config {config.name} says "
                               f"{f}={want}: a checkpoint of another model? fix the config's weights or model section")
    if found["d"] != icfg.d or found["V"] != 2 * icfg.d:
        raise WeightsError(
            f"transformer checkpoint {path} takes {found['d']}-bit tokens but config {config.name} says "
            f"codebook_dim={icfg.codebook_dim}, apply_spatial_patchify={icfg.apply_spatial_patchify} "
            f"({icfg.d} bits); fix the model section")


def _check_vae(config: ModelConfig, icfg: InfinityConfig, vcfg: VAEConfig, path) -> None:
    """A VAE that does not match the transformer is an error naming the right file."""
    want_patch = 8 if icfg.apply_spatial_patchify else 16
    if vcfg.codebook_dim != icfg.codebook_dim or vcfg.patch_size != want_patch:
        right = VAE_FILES.get((icfg.d, icfg.apply_spatial_patchify))
        hint = f"use {right}" if right else f"use a {icfg.codebook_dim}-bit, patch-{want_patch} BSQ VAE"
        raise WeightsError(
            f"VAE checkpoint {path} has {vcfg.codebook_dim}-bit codes with patch size {vcfg.patch_size} but "
            f"{config.name}'s transformer needs {icfg.codebook_dim} bits with patch size {want_patch}: {hint} "
            "as weights.vae")
    m = config.model
    for key, got in (("base_ch", vcfg.base_ch), ("num_res_blocks", vcfg.num_res_blocks),
                     ("decoder_ch_mult", list(vcfg.ch_mult)), ("patch_size", vcfg.patch_size)):
        if key in m and m[key] is not None and (list(m[key]) if key.endswith("mult") else m[key]) != got:
            raise WeightsError(f"VAE checkpoint {path} has {key}={got} but config {config.name} says "
                               f"{key}={m[key]}; fix the model section or weights.vae")


def load(config: ModelConfig, device: torch.device, dtype: torch.dtype, offline: bool | None = None,
         progress: bool = True, text: Any = None) -> InfinityModel:
    """Load transformer, VAE and text encoder (`text` replaces the T5 encoder, e.g. in benchmarks)."""
    from ...weights import resolve_weight

    try:
        icfg = InfinityConfig.from_dict(config.model)
    except (TypeError, ValueError, ConfigError) as e:
        raise ConfigError(f"{config.name}: invalid model section: {e}") from None

    t_path = _transformer_file(resolve_weight(config, "transformer", offline=offline, progress=progress))
    v_path = resolve_weight(config, "vae", offline=offline, progress=progress)
    te_path = resolve_weight(config, "text_encoder", offline=offline, progress=progress) if text is None else None

    sd = drop_keys(read_state_dict(t_path), IGNORED_KEYS_INFINITY)
    try:
        found = fields_from_state_dict(sd)
    except (KeyError, ValueError, IndexError) as e:
        raise WeightsError(f"{t_path} is not an Infinity transformer checkpoint (no {e}); "
                           "check weights.transformer") from None
    _check_transformer(config, icfg, found, t_path)
    with torch.device("meta"):
        model = Infinity(icfg)
    load_into(model, sd, "transformer", t_path)
    del sd

    vsd = drop_keys(unwrap(read_state_dict(v_path), "vae"), IGNORED_KEYS_VAE)
    try:
        vcfg = VAEConfig.from_state_dict(vsd)
    except (KeyError, ValueError, IndexError) as e:
        raise WeightsError(f"{v_path} is not an Infinity BSQ VAE checkpoint (no {e}); check weights.vae") from None
    _check_vae(config, icfg, vcfg, v_path)
    with torch.device("meta"):
        vae = BSQVAE(vcfg)
    load_into(vae, vsd, "vae", v_path)

    if text is None:
        text = TextEncoder.load(te_path, device, dtype)
    if getattr(text, "channels", icfg.text_channels) != icfg.text_channels:
        raise WeightsError(f"the text encoder has {text.channels} channels but {config.name}'s transformer "
                           f"expects {icfg.text_channels} (flan-t5-xl: 2048); check weights.text_encoder")
    model = model.blocks_to(dtype).to(device=device).eval()  # blocks cast before they travel
    model.prepack_cpu()  # on the CPU: every Linear oneDNN-prepacked (faster; a row does not depend on the batch)
    vae = vae.to(device=device, dtype=dtype).eval()
    return InfinityModel(config, icfg, model, vae, text, device, dtype)
