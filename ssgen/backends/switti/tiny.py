"""A tiny random-weight Switti in the released Hub layouts, made with ssgen's own modules, plus a YAML config.

For tests, demos and trying the CLI without downloading gigabytes: the folders load through exactly the
code path of the released ones. Layout (as yresearch/Switti, yresearch/VQVAE-Switti and the two CLIP repos):

    OUT/switti/config.json               SwittiHF's arguments (depth, reso, rope, ..., use_ar, use_crop_cond)
    OUT/switti/model.safetensors         float32, incl. the buffers lvl_1L and attn_bias_for_masking
    OUT/vae/config.json                  VQVAEHF's arguments (vocab_size, z_channels, ch, share_quant_resi, reso)
    OUT/vae/model.safetensors            float16, encoder side and ema_vocab_hit_SV included
    OUT/text_encoder/                    a tiny CLIPModel (text width 768, as CLIP-L) + CLIP tokenizer
    OUT/text_encoder_2/                  a tiny CLIPModel (text width 1280, as CLIP-bigG; 2 shards) + tokenizer
                                         padding with "!", as bigG's
    OUT/NAME.yaml

    python -m ssgen.tiny switti OUT_DIR
The text widths are the real ones (Switti's cross-attention takes 768 + 1280 channels); one layer each. The
images are noise, of course.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import yaml

from ...quiet import quiet_transformers
from .model import Switti, SwittiConfig
from .options import PATCH_NUMS


def training_buffers(cfg: SwittiConfig) -> dict[str, torch.Tensor]:
    """The buffers upstream's constructor registers and the released files carry (models/switti.py:171-189)."""
    L = cfg.num_tokens
    d = torch.cat([torch.full((pn * pn,), i) for i, pn in enumerate(cfg.patch_nums)]).view(1, L, 1)
    dT = d.transpose(1, 2)  # (1, 1, L)
    allowed = d >= dT if cfg.use_ar else d == dT
    mask = torch.where(allowed, 0.0, float("-inf")).reshape(1, 1, L, L)
    return {"lvl_1L": dT[:, 0].contiguous(), "attn_bias_for_masking": mask.contiguous()}


def write_transformer(out: Path, cfg: SwittiConfig, seed: int = 0) -> Path:
    """config.json + model.safetensors of a random-weight Switti (the layout `SwittiHF.save_pretrained` writes)."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = Switti(cfg).init_random(seed)
    sd = {k: v.contiguous() for k, v in model.state_dict().items()}
    sd.update(training_buffers(cfg))
    save_file(sd, str(out / "model.safetensors"))
    (out / "config.json").write_text(json.dumps(cfg.fields(), indent=2, sort_keys=True))
    return out


def write_vae(out: Path, reso: int, ch: int = 32, seed: int = 0) -> Path:
    """config.json + model.safetensors (float16, as the release) of a random-weight VQVAE, encoder included."""
    from safetensors.torch import save_file

    from ..var.tiny import encoder_weights
    from ..var.vae import VQVAE, VQVAEConfig

    out.mkdir(parents=True, exist_ok=True)
    pns = PATCH_NUMS[reso]
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        vae = VQVAE(VQVAEConfig(ch=ch, patch_nums=pns))
        with torch.no_grad():
            vae.quantize.embedding.weight.normal_(0, 1.0)
    sd = dict(vae.state_dict(), **{"quantize.ema_vocab_hit_SV": torch.zeros(len(pns), 4096)})
    sd.update(encoder_weights(vae.cfg, seed))
    save_file({k: v.half().contiguous() for k, v in sd.items()}, str(out / "model.safetensors"))
    cfg = {"ch": ch, "reso": reso, "share_quant_resi": 4, "test_mode": True, "vocab_size": 4096, "z_channels": 32}
    (out / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True))
    return out


def _byte_symbols() -> list[str]:
    """CLIP's (GPT-2's) 256 printable stand-ins for the bytes, in CLIP's vocabulary order: the printable bytes
    first ("!" is id 0, as in the released vocabularies), then the others, mapped to 256 and up."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    rest = [b for b in range(256) if b not in keep]
    return [chr(b) for b in keep] + [chr(256 + n) for n in range(len(rest))]


def write_clip(out: Path, hidden: int, heads: int, act: str, pad: str, seed: int, shards: int = 1) -> Path:
    """A tiny CLIPModel folder (text width `hidden`, one layer; a token vision tower) with a byte-level CLIP BPE
    tokenizer whose special tokens come last (the legacy eos_token_id 2 pooling, argmax of the ids, then finds
    <|endoftext|> as in the released configs), max length 77, padding with `pad`."""
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

    symbols = _byte_symbols()
    merges = [("t", "h"), ("th", "e</w>"), ("a", "n"), ("an", "d</w>"), ("o", "n</w>"), ("c", "a"), ("ca", "t</w>")]
    tokens = symbols + [s + "</w>" for s in symbols] + [a + b for a, b in merges] + ["<|startoftext|>",
                                                                                      "<|endoftext|>"]
    tok = CLIPTokenizer(vocab={t: i for i, t in enumerate(tokens)}, merges=merges, pad_token=pad)
    tok.model_max_length = 77
    config = CLIPConfig(
        text_config=dict(vocab_size=len(tokens), hidden_size=hidden, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=heads, max_position_embeddings=77, hidden_act=act, bos_token_id=0,
                         eos_token_id=2),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=28, patch_size=14),
        projection_dim=16)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = CLIPModel(config)
        with torch.no_grad():  # O(1) embeddings: different prompts get clearly different features
            model.text_model.embeddings.token_embedding.weight.normal_()
            model.text_model.embeddings.position_embedding.weight.normal_(std=0.5)
    out.mkdir(parents=True, exist_ok=True)
    with quiet_transformers():
        model.half().save_pretrained(out, max_shard_size="10MB" if shards > 1 else "10GB")
        tok.save_pretrained(out)
    # the slow tokenizer's files too, as the released folders hold them (transformers 5 writes tokenizer.json only)
    (out / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}, ensure_ascii=False))
    (out / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    return out


def make_tiny_switti(out_dir: str | Path, seed: int = 0, depth: int = 2, reso: int = 256, use_ar: bool = False,
                     name: str = "switti-tiny", **over) -> Path:
    """Write the tiny Switti (layout above) into `out_dir`; return the YAML path. `over`: other config.json
    fields (rope=False, use_swiglu_ffn=False, use_crop_cond=False, ...)."""
    out = Path(out_dir)
    cfg = SwittiConfig(depth=depth, reso=reso, use_ar=use_ar, **over)
    write_transformer(out / "switti", cfg, seed)
    write_vae(out / "vae", reso, seed=seed + 1)
    write_clip(out / "text_encoder", 768, 12, "quick_gelu", "<|endoftext|>", seed + 2)
    write_clip(out / "text_encoder_2", 1280, 20, "gelu", "!", seed + 3, shards=2)
    K = len(cfg.patch_nums)
    conf = {
        "name": name, "family": "switti",
        "description": "tiny random-weight Switti (noise images; for tests and demos)",
        "weights": {"transformer": {"path": "switti"}, "vae": {"path": "vae"},
                    "text_encoder": {"path": "text_encoder"}, "text_encoder_2": {"path": "text_encoder_2"}},
        "model": {"reso": reso},
        "defaults": {"cfg": 6.0, "top_k": 400, "top_p": 0.95, "more_smooth": True, "smooth_start": 2, "cfg_start": 0,
                     "cfg_stop": K - 2, "last_scale_temp": 0.1, "negative_prompt": ""},
        "ssg": {"enabled": True, "beta": 0.5, "scales": [2, -1], "prior": "dse", "interp": "bilinear", "rescale": True},
    }
    p = out / f"{name}.yaml"
    p.write_text(yaml.safe_dump(conf, sort_keys=False))
    return p
