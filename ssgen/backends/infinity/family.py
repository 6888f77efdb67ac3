"""Infinity as a family the generic loop drives: loading (config <-> checkpoint checks) and one
generation call.

Weights roles: `transformer` (infinity_2b_reg.pth, or the 8B folder of safetensors shards with its
`*.index.json`), `vae` (infinity_vae_d32reg.pth / the 8B's f8 patchify VAE) and `text_encoder` (a
folder with flan-t5-xl's config, tokenizer and weights).

The call options, their sampling semantics and the resolution templates are in options.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ...checkpoint import drop_keys, empty_model, load_into, read_state_dict, unused_note, unwrap
from ...config import ModelConfig
from ...errors import ConfigError, WeightsError
from ...loop import ScaleSampling
from ...request import Request
from ..common import Call, per_image
from .encoder import BSQEncoder, encode_image, load_encoder
from .model import IGNORED_KEYS_INFINITY, Infinity, InfinityConfig, fields_from_state_dict, rope_2d, upstream_cfg_uncond
from .options import PX_PER_TOKEN, InfinityOptions, Resolution
from .text import TextEncoder
from .vae import BSQVAE, IGNORED_KEYS_VAE, VAEConfig, patchify, unpatchify_bits, upsample_to

# ------------------------------------------------------------------------------------------------
# the loaded model and one generation call
# ------------------------------------------------------------------------------------------------


@dataclass
class InfinityFamily:
    """Loaded Infinity (a `common.Family`): transformer, BSQ VAE and T5 text encoder on one device.

    The VAE's encoder side (image -> bits, for editing: ssgen's own) is read from `vae_path` on the first edit
    (`encoder()`)."""

    config: ModelConfig
    icfg: InfinityConfig
    model: Infinity
    vae: BSQVAE
    text: Any  # TextEncoder, or anything with .encode(prompts, offload=, what=[, batched=]) -> (packed, lens, notes)
    device: torch.device
    dtype: torch.dtype
    notes: list[str] = field(default_factory=list)  # what loading adapted, as upstream does (one line)
    vae_path: Path | None = None  # the resolved VAE file, for the encoder
    _encoder: BSQEncoder | None = field(default=None, repr=False)

    def encoder(self) -> BSQEncoder:
        """The VAE's encoder, loaded (float32) from the VAE file on first use (generation never reads it)."""
        if self._encoder is None:
            if self.vae_path is None:
                raise WeightsError(f"{self.config.name}: no VAE file known to read the encoder from; load the model "
                                   "with ssgen.load to edit images")
            self._encoder = load_encoder(self.vae_path, self.vae.cfg, self.device)
        return self._encoder

    @property
    def facts(self) -> dict[str, Any]:
        return {}  # the scales come from each call's resolution (pn and the aspect template)

    @property
    def step_module(self) -> Infinity:
        """The transformer whose `forward_scale` is the per-scale step (what `ssgen.compile` compiles)."""
        return self.model

    def start(self, request: Request) -> Call:
        o: InfinityOptions = request.parsed
        rng = request.rng
        run = InfinityBackend(self, o.prompts, o.negative, o.cfg, o.tau, o.top_k, o.top_p, o.res, o.offload,
                          official=rng == "batch")
        return Call(run, o.settings, self.notes + run.notes)


class InfinityBackend:
    """One generation call (a `loop.Backend`): the text state, the running latent (summed codes) and the
    next input.

    `official` (rng="batch"): compute as upstream does for this batch, so that its tokens are upstream's:
    T5 over all prompts in one padded batch, every Linear as upstream's nn.Linear (model.py, "Official
    arithmetic") and the running sum in upstream's memory layout. Otherwise (rng="per-image") an image's
    numbers do not depend on its batch. Either way the bf16-rounded cross-attention turns a 1e-7
    difference into flipped bits, so "the same within float rounding" is not enough for either promise."""

    def __init__(self, m: InfinityFamily, prompts: list[str], neg: list[str] | None, cfg: list[float],
                 tau: list[float], top_k: int, top_p: float, res: Resolution, offload: bool, official: bool = False):
        self.m, self.cfg, self.tau, self.top_k, self.top_p, self.res = m, cfg, tau, top_k, top_p, res
        self.official = official
        self.grid = res.grid
        self.B = B = len(prompts)
        model, icfg = m.model, m.icfg
        self.patchify = bool(icfg.apply_spatial_patchify)
        f = 2 if self.patchify else 1
        self.vae_grid = [(h * f, w * f) for h, w in self.grid]  # the VAE's latent grid per scale

        batched = {"batched": True} if official else {}  # T5 as upstream runs it (a text stand-in may lack it)
        packed, lens, self.notes = m.text.encode(prompts, offload=offload, **batched)  # (N, Ct5)
        if packed.shape[-1] != icfg.text_channels:
            raise WeightsError(f"the text encoder gives {packed.shape[-1]} channels but {m.config.name}'s "
                               f"transformer expects {icfg.text_channels}; check weights.text_encoder")
        self.use_cfg = any(c != 1 for c in cfg)  # upstream runs unconditional rows only then
        if self.use_cfg:
            if neg is not None:
                npacked, nlens, nnotes = m.text.encode(neg, offload=offload, what="negative prompt", **batched)
                self.notes += nnotes
            else:
                npacked, nlens = model.uncond_text(lens).to(packed.device), lens
            packed, lens = torch.cat((packed, npacked)), lens + nlens
        self.bs = len(lens)
        model.reset_cache()
        self.text = model.prepare_text(packed, lens, official)
        self.x = model.first_input(self.text)  # (bs, 1, C)
        # every scale's RoPE cos/sin, built on the CPU and copied to the device here: inside the loop a copy
        # to the GPU would wait for the GPU (a host-device sync per scale)
        self.ropes = [rope_2d(h, w, res.full_hw, icfg.head_dim, m.device) for h, w in self.grid]
        Hf, Wf = self.vae_grid[-1]
        self.summed = torch.zeros(B, icfg.codebook_dim, 1, Hf, Wf, device=m.device)  # (B, d, 1, H, W)
        if official:
            # upstream's running sum inherits the codes' layout (d last in memory: channels_last_3d), so its resize
            # to the next scale runs PyTorch's channels-last trilinear kernel, which rounds differently (~1 ulp)
            # from the contiguous one; the same values, summed the same way, in the same layout
            self.summed = self.summed.contiguous(memory_format=torch.channels_last_3d)

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W) pixels of this call's images: the last scale's grid, 16 pixels per token."""
        h, w = self.grid[-1]
        return h * PX_PER_TOKEN, w * PX_PER_TOKEN

    @torch.inference_mode()
    def encode(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """x (B, 3, H, W) float32 in [-1, 1] (H, W = image_size) -> (tokens, recon): per scale the input's bits in
        the sampled layout (B, h*w*d) int64 (upstream training's ground truth, encoder.py) and (B, 3, H, W) float32
        in [0, 1], their decoding (the latent `advance` reaches when every bit is kept). Image by image, as the
        decoder runs, so an image's bits do not depend on its batch."""
        if x.ndim != 4 or x.shape[1] != 3 or tuple(x.shape[-2:]) != self.image_size:
            H, W = self.image_size
            raise ValueError(f"encode takes (B, 3, {H}, {W}) images, got {tuple(x.shape)}")
        enc, vae = self.m.encoder(), self.m.vae
        per = [encode_image(enc, vae, x[i:i + 1].contiguous(), self.vae_grid, self.patchify) for i in range(x.shape[0])]
        tokens = [torch.cat([t[k] for t, _ in per]) for k in range(len(self.grid))]  # each (B, h*w*d)
        latent = torch.cat([z for _, z in per])  # (B, d_vae, H/p, W/p) float32
        return tokens, per_image(vae.decode, latent)

    @property
    def latent(self) -> torch.Tensor:
        """The running latent (B, d, H, W) float32: summed codes, what the VAE decodes."""
        return self.summed.squeeze(2)

    def logits(self, k: int) -> torch.Tensor:
        last = k == len(self.grid) - 1  # nothing attends to the last scale: no need to cache it
        return self.m.model.forward_scale(self.x, self.text, k, self.ropes[k], cache=not last)  # (bs, h*w, 2d) f32

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
            self.x = self.m.model.next_input(nxt, self.bs, self.official)  # (bs, h*w, C)
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
    # not text_maxlen: the model's comes from the config, and cfg_uncond is fitted to it (_fit_cfg_uncond)
    checks = [("depth", icfg.depth), ("embed_dim", icfg.embed_dim), ("num_heads", icfg.num_heads),
              ("block_chunks", icfg.block_chunks), ("text_channels", icfg.text_channels),
              ("ffn_hidden", icfg.ffn_hidden)]
    for f, want in checks:
        if found[f] != want:
            raise WeightsError(f"transformer checkpoint {path} has {f}={found[f]} but config {config.name} says "
                               f"{f}={want}: a checkpoint of another model? fix the config's weights or model section")
    if found["d"] != icfg.d or found["V"] != 2 * icfg.d:
        raise WeightsError(
            f"transformer checkpoint {path} takes {found['d']}-bit tokens but config {config.name} says "
            f"codebook_dim={icfg.codebook_dim}, apply_spatial_patchify={icfg.apply_spatial_patchify} "
            f"({icfg.d} bits); fix the model section")


def _fit_cfg_uncond(sd: dict, icfg: InfinityConfig, path: Path) -> str | None:
    """Fit the checkpoint's null text `cfg_uncond` (rows, Ct5) to the model's text_maxlen rows, as upstream's
    `load_state_dict` does: longer is truncated, shorter is completed with the rows upstream's constructor
    gives (`upstream_cfg_uncond`; they only matter for prompts longer than the file's rows). Returns what
    was done, for the load note; None when it already fits (or is no (rows, Ct5) matrix: check_keys names that)."""
    old, rows, Ct5 = sd.get("cfg_uncond"), icfg.text_maxlen, icfg.text_channels
    if not isinstance(old, torch.Tensor) or old.dim() != 2 or old.shape[1] != Ct5 or old.shape[0] == rows:
        return None
    n = old.shape[0]
    if n > rows:
        sd["cfg_uncond"] = old[:rows]
        return f"cfg_uncond of {path.name} truncated from {n} to the model's text_maxlen {rows} rows"
    sd["cfg_uncond"] = torch.cat((old.float(), upstream_cfg_uncond(rows, Ct5)[n:]))  # (rows, Ct5)
    return (f"cfg_uncond of {path.name} padded from {n} to the model's text_maxlen {rows} rows with upstream's "
            "initial null text")


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
         progress: bool = True, text: Any = None) -> InfinityFamily:
    """Load transformer, VAE and text encoder (`text` replaces the T5 encoder, e.g. in benchmarks).

    As upstream (`load_state_dict(strict=False)` for the transformer, `load_cnn` for the VAE), keys the
    model lacks are ignored, the training-only buffers dropped and cfg_uncond fitted to text_maxlen, all
    said in one note (`InfinityFamily.notes`); missing keys and wrong shapes stay errors naming the file.
    Precision as upstream: the blocks in `dtype`, the rest of the transformer in float32, the VAE in
    `dtype`, T5 in bfloat16 unless the run is float32 (text.py); each tensor is cast as it is assigned.

    Memory (Infinity-8B in bf16 on a 24 GiB CPU machine): transformer 16.45 GB of bf16 blocks + 0.61 GB
    of float32 rest, T5-xl's encoder 2.45 GB, VAE decoder ~0.1 GB, torch and transformers ~0.3 GB, one
    256 px image's KV caches ~1 GB: ~21 GB of 25.3 GB, so both stay resident. Encoding the prompts first
    and freeing the encoder before the transformer loads would only help the first call (every later call
    needs the encoder again while the transformer is resident), so it is not done.
    """
    from ...weights import resolve_weight
    from ..kinds import expect_blocks, expect_folder_kind, expect_kind

    try:
        icfg = InfinityConfig.from_dict(config.model)
    except (TypeError, ValueError, ConfigError) as e:
        raise ConfigError(f"{config.name}: invalid model section: {e}") from None

    t_path = _transformer_file(resolve_weight(config, "transformer", offline=offline, progress=progress))
    v_path = resolve_weight(config, "vae", offline=offline, progress=progress)
    te_path = resolve_weight(config, "text_encoder", offline=offline, progress=progress) if text is None else None
    if te_path is not None:  # a wrong folder is named before gigabytes load
        expect_folder_kind(te_path, "infinity", "text_encoder")

    sd = read_state_dict(t_path, "transformer")  # memory-mapped: nothing is read yet
    expect_kind(sd, "infinity", "transformer", t_path)
    expect_blocks(sd, "block_chunks.", t_path, "an Infinity transformer")
    sd = drop_keys(sd, IGNORED_KEYS_INFINITY)
    try:
        found = fields_from_state_dict(sd)
    except (KeyError, ValueError, IndexError) as e:
        raise WeightsError(f"{t_path} is not an Infinity transformer checkpoint (no {e}); "
                           "check weights.transformer") from None
    _check_transformer(config, icfg, found, t_path)
    done = [_fit_cfg_uncond(sd, icfg, Path(t_path))]
    with empty_model():
        model = Infinity(icfg)
    ignored = load_into(model, sd, "transformer", t_path, dtype=dtype, device=device, cast=Infinity.in_blocks,
                        unexpected_ok=True)
    done.append(unused_note(ignored, Path(t_path).name))
    del sd

    vsd = read_state_dict(v_path, "vae")
    expect_kind(vsd, "infinity", "vae", v_path)
    vsd = drop_keys(unwrap(vsd, "vae"), IGNORED_KEYS_VAE)
    try:
        vcfg = VAEConfig.from_state_dict(vsd)
    except (KeyError, ValueError, IndexError) as e:
        raise WeightsError(f"{v_path} is not an Infinity BSQ VAE checkpoint (no {e}); check weights.vae") from None
    _check_vae(config, icfg, vcfg, v_path)
    with empty_model():
        vae = BSQVAE(vcfg)
    ignored = load_into(vae, vsd, "vae", v_path, dtype=dtype, device=device, unexpected_ok=True)
    done.append(unused_note(ignored, Path(v_path).name))

    if text is None:
        text = TextEncoder.load(te_path, device, dtype)
    if getattr(text, "channels", icfg.text_channels) != icfg.text_channels:
        raise WeightsError(f"the text encoder has {text.channels} channels but {config.name}'s transformer "
                           f"expects {icfg.text_channels} (flan-t5-xl: 2048); check weights.text_encoder")
    model.eval().prepack_cpu()  # on the CPU: every Linear oneDNN-prepacked (faster; a row does not depend on the batch)
    done = [d for d in done if d]
    notes = [f"{config.name} loaded as upstream's loader does: {'; '.join(done)}"] if done else []
    return InfinityFamily(config, icfg, model, vae.eval(), text, device, dtype, notes, vae_path=Path(v_path))

