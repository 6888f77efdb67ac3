"""HART's hybrid tokenizer (`tokenizer/` of hart-0.7b-1024px), generation part only.

It is VAR's multi-scale VQVAE (same decoder, codebook and shared phi convs; see
`ssgen.backends.var.vae`, imported rather than duplicated) used in a "hybrid" way: the discrete
scales are summed exactly as in VAR (bicubic up, phi blend, area down for the next input), but the
**last scale is added without phi**, together with the continuous residual that the diffusion head
predicts. Files: `tokenizer/config.json` (HARTAutoEncoderWithDiscConfig) and `model.safetensors`
(or `pytorch_model.bin`) whose keys carry a `vae.` prefix (`disc.*`, the discriminator, is unused).

Latent bookkeeping of one batch (B images, K scales, f_hat on the P x P grid of the last scale):

    f_hat = zeros(B, Cvae, P, P)
    for k < K - 1:  f_hat = tok.add_scale(f_hat, h_k, k, K); next_map = tok.next_map(f_hat, pn_{k+1})
    f_hat = tok.add_last(f_hat, h_last + residual)         # (B, l, Cvae) tokens, no phi
    image = tok.decode(f_hat)                               # (B, 3, 16P, 16P) in [0, 1]
"""

from __future__ import annotations

from pathlib import Path

import torch

from ...checkpoint import drop_keys, read_json, read_state_dict
from ...errors import ConfigError, WeightsError
from ..kinds import expect_kind
from ..var.vae import IGNORED_KEYS_VAE, VQVAE, VQVAEConfig

# Keys of the official tokenizer file (after removing the `vae.` prefix) that generation does not use:
# VAR's (encoder, quant_conv, ema_vocab_hit_SV) plus the discriminator and the unused second decoder.
IGNORED_KEYS_TOKENIZER: tuple[str, ...] = IGNORED_KEYS_VAE + ("disc.*", "decoder2.*", "post_quant_conv2.*")

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


def read_config(folder: Path) -> dict:
    """tokenizer/config.json; a missing, unreadable or malformed file is a WeightsError."""
    p = Path(folder) / "config.json"
    if not p.exists():
        raise WeightsError(f"{p} not found: weights.vae must be HART's tokenizer/ folder (config.json and the "
                           "weights) or a weights file inside it")
    return read_json(p, "HART's tokenizer/config.json")


def vqvae_config(d: dict, patch_nums: tuple[int, ...]) -> VQVAEConfig:
    """`tokenizer/config.json` -> VQVAEConfig; values the decoder cannot honour are ConfigErrors."""

    def bad(name, allowed):
        raise ConfigError(f"tokenizer/config.json: {name}={d.get(name)!r} is not supported; ssgen supports {allowed}")

    if d.get("quantizer_type", "var") not in ("var", "var_hybrid"):
        bad("quantizer_type", "'var' or 'var_hybrid' (the only ones upstream builds)")
    if abs(float(d.get("quant_resi", 0.5)) - 0.5) > 1e-9:
        bad("quant_resi", "0.5 (the phi blend ratio of every released VAR/HART tokenizer)")
    if int(d.get("share_quant_resi", 4)) < 2:
        bad("share_quant_resi", "2 or more (partially shared phi, as released)")
    if int(d.get("quant_conv_ks", 3)) != 3:
        bad("quant_conv_ks", "3")
    try:
        return VQVAEConfig(vocab_size=int(d.get("vocab_size", 4096)), latent_channels=int(d.get("z_channels", 32)),
                           ch=int(d.get("ch", 160)), ch_mult=tuple(d.get("ch_mult", (1, 1, 2, 2, 4))),
                           share_quant_resi=int(d.get("share_quant_resi", 4)), patch_nums=tuple(patch_nums))
    except (TypeError, ValueError, NotImplementedError) as e:
        raise ConfigError(f"tokenizer/config.json: {e}") from None


def weight_file(folder: Path) -> Path:
    for name in WEIGHT_FILES:
        if (Path(folder) / name).is_file():
            return Path(folder) / name
    raise WeightsError(f"no tokenizer weights in {folder} (looked for {', '.join(WEIGHT_FILES)}); "
                       "check weights.vae (the tokenizer/ folder of hart-0.7b-1024px)")


def read_tokenizer_state(path: Path) -> dict[str, torch.Tensor]:
    """The tokenizer state dict with the `vae.` prefix removed and unused entries dropped."""
    sd = read_state_dict(path, "vae")
    expect_kind(sd, "hart", "vae", path)
    sd = {k[4:] if k.startswith("vae.") else k: v for k, v in sd.items()}
    return drop_keys(sd, IGNORED_KEYS_TOKENIZER)


class HybridTokenizer(VQVAE):
    """VQVAE + the hybrid last scale (no phi, plus the continuous residual)."""

    def add_last(self, f_hat: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """f_hat (B, Cvae, P, P) + last-scale tokens (B, P*P, Cvae) in raster order, without phi."""
        B, Cv, P, _ = f_hat.shape
        return f_hat + tokens.transpose(1, 2).reshape(B, Cv, P, P).to(f_hat.dtype)
