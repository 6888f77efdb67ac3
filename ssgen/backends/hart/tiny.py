"""A tiny random-weight HART in the official Hub layout, made with ssgen's own modules, plus a YAML config.

For tests, demos and trying the CLI without downloading gigabytes. Layout (as mit-han-lab/hart-0.7b-1024px
and mit-han-lab/Qwen2-VL-1.5B-Instruct):

    OUT/hart/llm/config.json                  every field HARTForT2IConfig.save_pretrained writes
    OUT/hart/llm/ema_model.bin                torch.save(state_dict), incl. lvl_1L, attn_bias_for_masking
    OUT/hart/llm/pytorch_model.bin            a perturbed copy (the non-EMA weights)
    OUT/hart/tokenizer/config.json            HARTAutoEncoderWithDiscConfig fields
    OUT/hart/tokenizer/model.safetensors      `vae.`-prefixed decoder side (no encoder, no discriminator)
    OUT/text_encoder/                         a tiny Qwen2 + byte-level BPE tokenizer (save_pretrained)
    OUT/NAME.yaml

    python -m ssgen.backends.hart.tiny OUT_DIR
The images are noise, of course.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import yaml

from ...quiet import quiet_transformers
from .model import HART, HARTConfig
from .options import upstream_top_k
from .text import SYSTEM_PROMPT
from .tokenizer import HybridTokenizer, vqvae_config

CORPUS = [
    SYSTEM_PROMPT,
    "Crocodile in a sweater.",
    "an astronaut sitting in a diner, eating fries, cinematic, analog film",
    "A 4k dslr image of a lemur wearing a red magician hat and a blue coat performing magic tricks.",
    "Luffy from ONEPIECE, handsome face, fantasy.",
    "Chinese architecture, ancient style, mountain, bird, lotus, pond, big tree, 4K Unity, octane rendering.",
    "a red fox in the snow, a lighthouse at dusk, a bowl of ramen, a cat on a windowsill",
]
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def llm_config(depth: int, embed_dim: int, heads: int, context_dim: int, patch_nums, diff_width: int,
               diff_depth: int, **over) -> dict:
    """A complete llm/config.json (the fields transformers 4.42 writes for HARTForT2IConfig)."""
    d = {
        "_name_or_path": "llm", "architectures": ["HARTForT2I"], "attn_drop_rate": 0.0, "attn_l2_norm": True,
        "attn_type": "llama", "cond_drop_rate": 0.1, "context_dim": context_dim, "context_norm_scale": 1.0,
        "context_token": 300, "depth": depth, "diff_depth": diff_depth, "diff_width": diff_width,
        "diffusion_batch_mul": 4, "diffusion_head_repeats": 1, "disable_aln": False, "drop_path_rate": 0.0,
        "drop_rate": 0.0, "embed_dim": embed_dim, "flash_if_available": True, "fused_if_available": True,
        "mlp_ratio": 4.0, "mlp_type": "llama", "model_type": "hart_transformer_t2i", "norm_eps": 1e-06,
        "num_heads": heads, "num_sampling_steps": "8", "patch_nums": list(patch_nums), "sampler": "iddpm",
        "sep_aln_pooling_mode": "max", "shared_aln": False, "torch_dtype": "float32",
        "transformers_version": "4.42.2", "use_context_norm": False, "use_cross_attn": False,
        "use_timestep_embed": False, "vae_path": None,
    }
    d.update(over)
    return d


def tokenizer_config(vocab_size: int, z_channels: int, ch: int, ch_mult, patch_nums) -> dict:
    return {
        "architectures": ["HARTAutoEncoderWithDisc"], "beta": 0.25, "ch": ch, "ch_mult": list(ch_mult),
        "default_qresi_counts": 0, "disable_quant_resi": False, "double_decoder": False, "dropout": 0.0,
        "freeze_codebook_for_hybrid": True, "hybrid": True, "levels": [8, 8, 8, 6, 5],
        "model_type": "hart_autoencoder_with_disc", "quant_conv_ks": 3, "quant_resi": 0.5,
        "quantizer_type": "var_hybrid", "share_quant_resi": 4, "test_mode": True, "torch_dtype": "float32",
        "transformers_version": "4.42.2", "using_znorm": False, "v_patch_nums": list(patch_nums),
        "vocab_size": vocab_size, "z_channels": z_channels,
    }


def hart_training_buffers(sd: dict, cfg: HARTConfig) -> dict:
    """Add the buffers the official llm/*.bin files carry (lvl_1L, attn_bias_for_masking, zero_k_bias)."""
    T = cfg.context_token
    lvl = torch.cat([torch.zeros(T, dtype=torch.long)]
                    + [torch.full((pn * pn,), i + 1) for i, pn in enumerate(cfg.patch_nums[1:])]).view(1, -1)
    mask = torch.where(lvl.view(-1, 1) >= lvl.view(1, -1), 0.0, float("-inf")).view(1, 1, lvl.shape[1], -1)
    sd = dict(sd, lvl_1L=lvl, attn_bias_for_masking=mask)
    for i in range(cfg.depth):
        sd[f"blocks.{i}.attn.zero_k_bias"] = torch.zeros(cfg.embed_dim)
    return sd


def make_tiny_text_encoder(out: Path, hidden: int = 32, seed: int = 0) -> Path:
    """A tiny Qwen2 base model + byte-level BPE tokenizer (pad <|endoftext|>, right padding), saved with
    save_pretrained so that AutoTokenizer/AutoModel load it like Qwen2-VL-1.5B-Instruct."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2Model

    out.mkdir(parents=True, exist_ok=True)
    bpe = Tokenizer(models.BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIAL, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(CORPUS, trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, pad_token="<|endoftext|>", eos_token="<|im_end|>",
                                  padding_side="right")
    torch.manual_seed(seed)
    cfg = Qwen2Config(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=1024,
                      rope_theta=1e6, tie_word_embeddings=True, pad_token_id=tok.pad_token_id)
    model = Qwen2Model(cfg)
    with torch.no_grad():
        model.embed_tokens.weight.normal_(0, 1.0)
    with quiet_transformers():
        tok.save_pretrained(str(out))
        model.save_pretrained(str(out))
    return out


def make_tiny_hart(out_dir: str | Path, seed: int = 0, patch_nums: tuple[int, ...] = (1, 2, 3, 4), depth: int = 2,
                   embed_dim: int = 64, heads: int = 2, context_dim: int = 32, vocab_size: int = 1024,
                   latent_channels: int = 8, vae_ch: int = 32, name: str = "hart-tiny",
                   text_encoder: str | Path | None = None, **llm_over) -> Path:
    """Write the tiny HART (layout above) into `out_dir`; return the YAML path. `llm_over` overrides
    llm/config.json fields (e.g. attn_type="gpt2", sep_aln_pooling_mode="avg"); `text_encoder` reuses
    an existing text-encoder folder (hidden size = context_dim) instead of writing a new one."""
    out = Path(out_dir)
    llm_dir, tok_dir, te_dir = out / "hart" / "llm", out / "hart" / "tokenizer", out / "text_encoder"
    llm_dir.mkdir(parents=True, exist_ok=True)
    tok_dir.mkdir(parents=True, exist_ok=True)

    lcfg = llm_config(depth, embed_dim, heads, context_dim, patch_nums, diff_width=64, diff_depth=2, **llm_over)
    tcfg = tokenizer_config(vocab_size, latent_channels, vae_ch, (1, 1, 1, 1, 1), patch_nums)
    (llm_dir / "config.json").write_text(json.dumps(lcfg, indent=2))
    (tok_dir / "config.json").write_text(json.dumps(tcfg, indent=2))

    hcfg = HARTConfig.from_files(lcfg, tcfg)
    model = HART(hcfg).init_random(seed)
    sd = hart_training_buffers(model.state_dict(), hcfg)
    torch.save(sd, llm_dir / "ema_model.bin")
    g = torch.Generator().manual_seed(seed + 1)
    raw = {k: (v + 0.05 * torch.randn(v.shape, generator=g) if v.is_floating_point() and k.startswith("blocks") else v)
           for k, v in sd.items()}
    torch.save(raw, llm_dir / "pytorch_model.bin")

    from safetensors.torch import save_file

    torch.manual_seed(seed)
    tok = HybridTokenizer(vqvae_config(tcfg, patch_nums))
    with torch.no_grad():
        tok.quantize.embedding.weight.normal_(0, 1.0)
    vsd = {f"vae.{k}": v.contiguous() for k, v in tok.state_dict().items()}
    Cv = latent_channels
    vsd["vae.quantize.ema_vocab_hit_SV"] = torch.zeros(len(patch_nums), vocab_size)
    vsd["vae.quant_conv.weight"] = torch.zeros(Cv, Cv, 3, 3)
    vsd["vae.quant_conv.bias"] = torch.zeros(Cv)
    save_file(vsd, str(tok_dir / "model.safetensors"))

    if text_encoder is None:
        make_tiny_text_encoder(te_dir, hidden=context_dim, seed=seed)
    te_path = str(Path(text_encoder).resolve()) if text_encoder is not None else "text_encoder"

    K = len(patch_nums)
    cfg = {
        "name": name, "family": "hart",
        "description": "tiny random-weight HART (noise images; for tests and demos)",
        "weights": {"transformer": {"path": "hart/llm"}, "vae": {"path": "hart/tokenizer"},
                    "text_encoder": {"path": te_path}},
        "model": {},
        "defaults": {"cfg": 4.5, "more_smooth": True, "top_k": [upstream_top_k(k) for k in range(K)], "top_p": 0.0,
                     "system_prompt": True, "residual": True},
        "ssg": {"enabled": True, "beta": 0.5, "scales": [2, -1], "prior": "dse", "interp": "bilinear", "rescale": True},
    }
    p = out / f"{name}.yaml"
    p.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return p


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m ssgen.backends.hart.tiny OUT_DIR")
    print(make_tiny_hart(sys.argv[1]))
