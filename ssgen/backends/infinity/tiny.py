"""A tiny random-weight Infinity, saved in the official formats, with a YAML config.

For tests, demos and trying the CLI without downloading ~15 GB: the files load through exactly the
code path of the released checkpoints (a flat `torch.save(state_dict)` with the official key names
and the `zero_k_bias` buffers for the transformer, `{'vae': state_dict}` with random encoder weights
(for editing) and the quantizer entries for the VAE, a `save_pretrained` T5 encoder folder with its
tokenizer). Images are noise.

    python -m ssgen.backends.infinity.tiny out/
    # -> out/transformer.pth, out/vae.pth, out/text_encoder/, out/infinity-tiny.yaml
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import yaml

WORDS = ("a an the of on in at with and photo portrait painting oil cat dog fox woman man hat red blue green "
         "sofa car street night lighthouse sunset mountain lake boat river small wooden bowl fruit table beach "
         "sitting running wearing blurry low quality watermark , .").split()


def make_tiny_t5(out_dir: Path, d_model: int = 128, seed: int = 0) -> Path:
    """A 2-layer T5EncoderModel + a WordLevel tokenizer ('<pad>'=0, '</s>'=1 appended, '<unk>'=2),
    loadable with AutoTokenizer / T5EncoderModel.from_pretrained(out_dir)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, T5Config, T5EncoderModel

    from ...quiet import quiet_transformers

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for w in WORDS:
        vocab.setdefault(w, len(vocab))
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tk.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>",
                                                      special_tokens=[("</s>", 1)])
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                  model_max_length=512, padding_side="right")
    torch.manual_seed(seed)
    cfg = T5Config(vocab_size=64, d_model=d_model, d_kv=32, num_heads=4, d_ff=2 * d_model, num_layers=2,
                   feed_forward_proj="gated-gelu", dropout_rate=0.0, use_cache=False, is_encoder_decoder=False,
                   pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
    enc = T5EncoderModel(cfg).eval()
    with torch.no_grad():
        for name, p in enc.named_parameters():
            if "layer_norm" in name:
                p.add_(torch.randn_like(p) * 0.1)
    out_dir.mkdir(parents=True, exist_ok=True)
    with quiet_transformers():
        tok.save_pretrained(str(out_dir))
        enc.save_pretrained(str(out_dir))
    return out_dir


def tiny_encoder_weights(vcfg, seed: int) -> dict[str, torch.Tensor]:
    """Random `encoder.*` weights for a VAE of config `vcfg`, drawn from their own generator (the global one,
    and so every other tiny weight, stays as it was): convs N(0, 1/fan_in), biases N(0, 0.02), GroupNorm
    weights 1 + N(0, 0.1) and biases N(0, 0.1)."""
    from ...checkpoint import empty_model
    from .encoder import BSQEncoder

    with empty_model():
        shapes = {k: v.shape for k, v in BSQEncoder(vcfg).state_dict().items()}
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, shape in shapes.items():
        x = torch.randn(shape, generator=g)
        if ".norm." in k:
            out[k] = 1 + 0.1 * x if k.endswith("weight") else 0.1 * x
        elif k.endswith("weight"):
            out[k] = x * (1 / (shape[1] * shape[2] * shape[3])) ** 0.5
        else:
            out[k] = 0.02 * x
    return out


def make_tiny_infinity(out_dir: str | Path, seed: int = 0, depth: int = 2, embed_dim: int = 128, num_heads: int = 2,
                       block_chunks: int = 2, vae_ch: int = 32, patchify: bool = False,
                       name: str = "infinity-tiny") -> Path:
    """Write transformer.pth, vae.pth, text_encoder/ and NAME.yaml into `out_dir`; return the YAML path.

    Text channels = embed_dim = 128 (upstream's text pool needs a multiple of 128); d = 32 bits,
    patch 16 VAE with channels `vae_ch` (ch_mult [1, 1, 2, 2, 2], 1 res block); default pn 0.06M (256 px).
    `patchify=True` gives the 8B layout instead: 14-bit f8 VAE (ch_mult [1, 1, 2, 2]) and 56-bit tokens.
    """
    from .model import Infinity, InfinityConfig
    from .vae import BSQVAE, VAEConfig

    bits, mult = (14, (1, 1, 2, 2)) if patchify else (32, (1, 1, 2, 2, 2))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    make_tiny_t5(out / "text_encoder", d_model=embed_dim, seed=seed)

    icfg = InfinityConfig(depth=depth, embed_dim=embed_dim, num_heads=num_heads, text_channels=embed_dim,
                          block_chunks=block_chunks, codebook_dim=bits, apply_spatial_patchify=int(patchify))
    model = Infinity(icfg).init_random(seed=seed)
    sd = dict(model.state_dict())
    C = icfg.embed_dim
    sd["text_proj_for_sos.ca.zero_k_bias"] = torch.zeros(C)  # buffers the official files carry
    n = depth // block_chunks
    for i in range(depth):
        for part in ("sa", "ca"):
            sd[f"block_chunks.{i // n}.module.{i % n}.{part}.zero_k_bias"] = torch.zeros(C)
    torch.save(sd, out / "transformer.pth")

    vcfg = VAEConfig(codebook_dim=bits, base_ch=vae_ch, ch_mult=mult, num_res_blocks=1)
    torch.manual_seed(seed)
    vae = BSQVAE(vcfg)
    with torch.no_grad():
        for pname, p in vae.named_parameters():
            if ".norm." in pname:
                p.add_(torch.randn_like(p) * 0.1)
    vsd = dict(vae.state_dict())
    vsd.update(tiny_encoder_weights(vcfg, seed))  # for editing; generation ignores them
    vsd["quantizer.lfq.mask"] = vsd["quantize.lfq.mask"] = 2 ** torch.arange(bits - 1, -1, -1)
    torch.save({"vae": vsd}, out / "vae.pth")

    cfg = {
        "name": name, "family": "infinity",
        "description": "tiny random-weight Infinity (noise images; for tests and demos)",
        "weights": {"transformer": {"path": "transformer.pth"}, "vae": {"path": "vae.pth"},
                    "text_encoder": {"path": "text_encoder"}},
        "model": {"depth": depth, "embed_dim": embed_dim, "num_heads": num_heads, "mlp_ratio": 4,
                  "text_channels": embed_dim, "text_maxlen": 512, "block_chunks": block_chunks,
                  "codebook_dim": bits, "apply_spatial_patchify": int(patchify), "patch_size": 2 ** (len(mult) - 1),
                  "base_ch": vae_ch, "decoder_ch_mult": list(mult), "num_res_blocks": 1},
        "defaults": {"cfg": 3.0, "tau": 0.5, "top_k": 900, "top_p": 0.97, "pn": "0.06M"},
        "ssg": {"enabled": True, "beta": 0.5, "scales": [2, -1], "prior": "dse", "interp": "bilinear",
                "rescale": True},
    }
    p = out / f"{name}.yaml"
    p.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return p


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m ssgen.backends.infinity.tiny OUT_DIR")
    print(make_tiny_infinity(sys.argv[1]))
