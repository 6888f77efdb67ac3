"""VAR as a family the generic loop drives: loading (config <-> checkpoint checks) and one generation call.

Weights roles: `transformer` (var_d*.pth) and `vae` (vae_ch160v4096z32.pth). The call options and
their sampling semantics are in options.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ...checkpoint import drop_keys, empty_model, load_into, read_state_dict
from ...config import ModelConfig
from ...errors import ConfigError, WeightsError
from ...loop import ScaleSampling
from ...request import Request
from ..checks import smoothing
from ..common import Call, cfg_mix, per_image
from .encoder import VQEncoder, encode_images, load_encoder
from .model import IGNORED_KEYS_VAR, VAR, VARConfig, fields_from_state_dict
from .options import VarOptions
from .vae import IGNORED_KEYS_VAE, VQVAE, VQVAEConfig

CHECKED_FIELDS = ("depth", "width", "heads", "vocab_size", "latent_channels", "num_classes", "shared_aln")


def _check_fields(config: ModelConfig, vcfg: VARConfig, found: dict, path) -> VARConfig:
    """Compare the config's architecture with the checkpoint's; a mismatch is an error naming the field."""
    for f in CHECKED_FIELDS:
        want = getattr(vcfg, f)
        if found[f] != want:
            raise WeightsError(
                f"transformer checkpoint {path} has {f}={found[f]} but config {config.name} says {f}={want}: "
                "a checkpoint of another model (e.g. a d20 file for d30)? fix the config's weights or model section"
            )
    if found["num_tokens"] != vcfg.num_tokens or found["num_scales"] != len(vcfg.patch_nums):
        raise WeightsError(
            f"transformer checkpoint {path} has {found['num_scales']} scales / {found['num_tokens']} tokens but "
            f"config {config.name} has patch_nums {list(vcfg.patch_nums)} ({vcfg.num_tokens} tokens); "
            "fix model.patch_nums (256 px: 1,2,3,4,5,6,8,10,13,16; 512 px: 1,2,3,4,6,9,13,18,24,32)"
        )
    if found["attn_l2_norm"] != vcfg.attn_l2_norm:
        # Checkpoints from before 2024-04-16 use plain scaled attention (no scale_mul_1H11): supported,
        # detected from the file rather than trusted from the config.
        vcfg = VARConfig(**{**vcfg.__dict__, "attn_l2_norm": found["attn_l2_norm"]})
    return vcfg


@dataclass
class VarFamily:
    """Loaded VAR (a `common.Family`): the transformer and the VQVAE, on one device and dtype.

    The VAE's encoder side (image -> tokens) is read from `vae_path` on the first edit (`encoder()`)."""

    config: ModelConfig
    var_cfg: VARConfig
    var: VAR
    vae: VQVAE
    device: torch.device
    dtype: torch.dtype
    vae_path: Path | None = None  # the resolved VAE file, for the encoder
    _encoder: VQEncoder | None = field(default=None, repr=False)

    def __post_init__(self):
        self.vae.channels_last()  # the decoder runs NHWC (VQVAE.channels_last)
        if self.device.type == "cpu":
            self.var.prepack_cpu()  # oneDNN-prepacked linears (ssgen/backends/onednn.py)

    def encoder(self) -> VQEncoder:
        """The VAE's encoder + quant_conv, loaded from the VAE file on first use (generation never reads them)."""
        if self._encoder is None:
            if self.vae_path is None:
                raise WeightsError(f"{self.config.name}: no VAE file known to read the encoder from; load the model "
                                   "with ssgen.load to edit images")
            self._encoder = load_encoder(self.vae_path, self.vae.cfg, self.dtype, self.device)
        return self._encoder

    @property
    def patch_nums(self) -> tuple[int, ...]:
        return self.var_cfg.patch_nums

    @property
    def facts(self) -> dict[str, Any]:
        return {}  # the config's `model:` holds (or defaults) every number; the loader checked them

    @property
    def step_module(self) -> VAR:
        """The transformer whose `forward_scale` is the per-scale step (what `ssgen.compile` compiles)."""
        return self.var

    def start(self, request: Request) -> Call:
        o: VarOptions = request.parsed
        return Call(VarBackend(self, list(request.classes), o.t, o.top_k, o.top_p, o.smooth), o.settings)


class VarBackend:
    """One generation call (a `loop.Backend`): the running latent and the transformer's next input."""

    def __init__(self, m: VarFamily, classes: list[int], t: list[float], top_k: int, top_p: float, smooth: bool):
        self.m, self.t, self.top_k, self.top_p, self.smooth = m, t, top_k, top_p, smooth
        pns = m.patch_nums
        self.grid = [(p, p) for p in pns]
        self.B = len(classes)
        null = m.var_cfg.num_classes  # class None = the null class (the unconditional embedding), as upstream
        labels = torch.tensor([null if c is None else c for c in classes], dtype=torch.long, device=m.device)
        m.var.reset_cache()
        self.cond = m.var.cond_embed(labels)  # (2B, C)
        self.x = m.var.first_input(self.cond)  # (2B, 1, C)
        Cvae, P = m.var_cfg.latent_channels, pns[-1]
        self.f_hat = torch.zeros(self.B, Cvae, P, P, device=m.device, dtype=m.dtype)  # (B, Cvae, P, P)

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W) pixels of this call's images: the last scale's grid times the VAE's downsampling (16)."""
        P = self.grid[-1][0] * self.m.vae.downsample
        return P, P

    @torch.inference_mode()
    def encode(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """x (B, 3, H, W) float32 in [-1, 1] (H, W = image_size) -> (tokens, recon): per scale the input's
        (B, pn*pn) int64 codes (upstream's img_to_idxBl) and (B, 3, H, W) float32 in [0, 1], their decoding.
        Image by image, as the decoder runs, so an image's tokens do not depend on its batch."""
        return encode_images(self.m.encoder(), self.m.vae, x, self.image_size, len(self.grid))

    def logits(self, k: int) -> torch.Tensor:
        return self.m.var.forward_scale(self.x, self.cond)  # (2B, pn*pn, V) float32

    def guide(self, k: int, raw: torch.Tensor) -> torch.Tensor:
        return cfg_mix(raw, self.t[k])  # (B, pn*pn, V)

    def sampling(self, k: int) -> ScaleSampling:
        smooth = smoothing(k / (len(self.grid) - 1)) if self.smooth else None
        return ScaleSampling(self.top_k, self.top_p, smooth)

    def categories(self, l: torch.Tensor) -> torch.Tensor:
        return l  # (B, pn*pn, V): one categorical over the codebook per position

    def advance(self, k: int, tokens: torch.Tensor, soft: torch.Tensor | None) -> torch.Tensor:
        vae, pn = self.m.vae, self.grid[k][0]
        h = vae.embed(tokens) if soft is None else vae.embed_soft(soft.to(self.m.dtype))  # (B, pn*pn, Cvae)
        h = h.transpose(1, 2).reshape(self.B, -1, pn, pn)  # (B, Cvae, pn, pn)
        K = len(self.grid)
        self.f_hat = per_image(lambda f, x: vae.add_scale(f, x, k, K), self.f_hat, h)
        if k + 1 < K:
            nxt = self.grid[k + 1][0]
            self.x = self.m.var.next_input(vae.next_map(self.f_hat, nxt), k + 1)  # (2B, nxt*nxt, C)
        return tokens

    def decode(self, rng=None) -> torch.Tensor:
        self.m.var.reset_cache(release=True)
        return self.preview()

    def preview(self) -> torch.Tensor:
        """Decode the running latent as it stands -> (B, 3, H, W) float32 in [0, 1]."""
        return per_image(self.m.vae.decode, self.f_hat).float()


def load(config: ModelConfig, device: torch.device, dtype: torch.dtype, offline: bool | None = None,
         progress: bool = True) -> VarFamily:
    from ...weights import resolve_weight
    from ..kinds import expect_blocks, expect_kind

    try:
        vcfg = VARConfig.from_dict(config.model)
    except (TypeError, ValueError, ConfigError) as e:
        raise ConfigError(f"{config.name}: invalid model section: {e}") from None
    vae_cfg = VQVAEConfig(vocab_size=vcfg.vocab_size, latent_channels=vcfg.latent_channels,
                          ch=int(config.model.get("vae_ch", 160)), patch_nums=vcfg.patch_nums)

    t_path = resolve_weight(config, "transformer", offline=offline, progress=progress)
    v_path = resolve_weight(config, "vae", offline=offline, progress=progress)

    sd = read_state_dict(t_path, "transformer")
    expect_kind(sd, "var", "transformer", t_path)
    expect_blocks(sd, "blocks.", t_path, "a VAR transformer")
    sd = drop_keys(sd, IGNORED_KEYS_VAR)
    try:
        found = fields_from_state_dict(sd)
    except (KeyError, ValueError, IndexError) as e:
        raise WeightsError(f"{t_path} is not a VAR transformer checkpoint (no {e}); "
                           "check weights.transformer") from None
    vcfg = _check_fields(config, vcfg, found, t_path)
    # upstream loads both files strictly (load_state_dict(strict=True)); every tensor is cast to the run dtype
    with empty_model():
        var = VAR(vcfg)
    load_into(var, sd, "transformer", t_path, dtype=dtype, device=device)

    vsd = read_state_dict(v_path, "vae")
    expect_kind(vsd, "var", "vae", v_path)
    vsd = drop_keys(vsd, IGNORED_KEYS_VAE)
    if "decoder.conv_in.weight" in vsd and vsd["decoder.conv_in.weight"].shape[0] != vae_cfg.ch * vae_cfg.ch_mult[-1]:
        got = vsd["decoder.conv_in.weight"].shape[0] // vae_cfg.ch_mult[-1]
        raise WeightsError(f"VAE checkpoint {v_path} has ch={got} but config {config.name} says vae_ch={vae_cfg.ch}; "
                           "fix model.vae_ch or weights.vae")
    with empty_model():
        vae = VQVAE(vae_cfg)
    load_into(vae, vsd, "vae", v_path, dtype=dtype, device=device)
    return VarFamily(config, vcfg, var.eval(), vae.eval(), device, dtype, vae_path=Path(v_path))
