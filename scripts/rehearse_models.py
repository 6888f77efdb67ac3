"""What the rehearsal serves for each released model: the Hub repos, their files and every tensor in them
(official names, shapes, dtypes, training-only buffers), built from ssgen's own modules on the meta device.

Sources (../shared/notes/{var,infinity,hart}.md section 2, switti.md section 1):
- FoundationVision/var: `var_d{16,30,36}.pth` and `vae_ch160v4096z32.pth`, flat fp32 state dicts with their
  buffers (`lvl_1L`, `attn_bias_for_masking`, `zero_k_bias`; the VAE's encoder, `quant_conv` and
  `ema_vocab_hit_SV`).
- FoundationVision/Infinity: `infinity_2b_reg.pth` (flat fp32 state dict with `zero_k_bias`),
  `infinity_8b_weights/` (4 fp32 safetensors shards + index), the VAEs as `{'vae': state_dict}` with the
  quantizer's `lfq.mask` buffers.
- google/flan-t5-xl: T5ForConditionalGeneration (encoder + decoder + lm_head), fp32, 2 safetensors shards.
- mit-han-lab/hart-0.7b-1024px: `llm/` (config.json, ema_model.bin, pytorch_model.bin) and `tokenizer/`
  (config.json, model.safetensors with `vae.`-prefixed keys).
- mit-han-lab/Qwen2-VL-1.5B-Instruct: a Qwen2-1.5B causal LM folder (config.json, safetensors shards + index).
- yresearch/Switti (-AR, -1024, -1024-AR) and yresearch/VQVAE-Switti: PyTorchModelHubMixin folders (config.json
  = the constructor's arguments, model.safetensors without `__metadata__`, the card); the transformer's file
  holds `lvl_1L` and `attn_bias_for_masking` (block-diagonal, block-causal for the AR models), the VAE's
  is VAR's VQVAE (encoder, quant_conv, ema_vocab_hit_SV).
- openai/clip-vit-large-patch14 (one model.safetensors) and laion/CLIP-ViT-bigG-14-laion2B-39B-b160k (2 shards
  + index): full CLIPModel checkpoints (text and vision towers), fp32.

What the notes do not know is a documented guess (`Plan.notes`): HART's architecture values (the notes'
estimate, `common.hart_config_files`), the Qwen2 files' dtype (bf16 here), the Infinity VAEs' encoder
(mirrored from the decoder), no discriminator in HART's tokenizer file, Switti's VAE dtype (fp16) and the CLIP
repos' config files and vision towers (standard values). Tokenizers are small
offline-built ones (the tiny makers' approach): prompts tokenise to other ids than the real vocabularies.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml
from common import HART_SCHEDULES, hart_config_files, hart_modules, infinity_modules, var_modules
from rehearse_files import (
    PT_METADATA,
    TensorSpec,
    bit_mask,
    level_buffers,
    shard,
    shard_index,
    shard_names,
    specs_from,
    st_order,
)

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("var-d16", "var-d30", "var-d36", "var-d16-ddo", "var-d30-ddo", "infinity-2b", "infinity-8b",
          "hart-0.7b-1024px", "switti", "switti-ar", "switti-1024", "switti-1024-ar")
PROMPT = "a photo of a red fox on a beach"  # every word is in the tiny T5 vocabulary; the tiny CLIP BPE is byte-level


@dataclass
class RepoFile:
    """One file of a served repo: tensors in a format (pth: torch.save, safetensors: generated on demand)
    or plain bytes; `same_as` serves another file's bytes (HART's pytorch_model.bin, see hart())."""

    path: str
    fmt: str = "bytes"  # pth | safetensors | bytes
    tensors: list[TensorSpec] = field(default_factory=list)
    data: bytes = b""
    wrap: str | None = None  # pth: the state dict nested under this key ({'vae': sd})
    same_as: str | None = None
    metadata: dict | None = field(default_factory=lambda: dict(PT_METADATA))  # safetensors `__metadata__` (None: none)

    @property
    def size_hint(self) -> int:
        return sum(t.nbytes for t in self.tensors) if self.tensors else len(self.data)


@dataclass
class Plan:
    name: str
    family: str
    repos: dict[str, list[RepoFile]]
    params: dict[str, int]  # role -> parameters ssgen loads (transformer, vae, text_encoder)
    args: list[str]  # generate arguments: the condition and the schedule
    schedule: str
    notes: list[str] = field(default_factory=list)


def config(name: str) -> dict:
    return yaml.safe_load((ROOT / "configs" / f"{name}.yaml").read_text())


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def shapes(module: torch.nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in module.state_dict().items()]


def insert_zero_k_bias(items: list[tuple[str, tuple[int, ...]]], prefixes: list[str]) -> list:
    """Put `{p}.zero_k_bias` right after `{p}.v_bias`, where the official files have it."""
    out = []
    for name, shape in items:
        out.append((name, shape))
        p = name[: -len(".v_bias")] if name.endswith(".v_bias") else None
        if p in prefixes:
            out.append((f"{p}.zero_k_bias", shape))
    return out


def scale_mul_first(items: list[tuple[str, tuple[int, ...]]]) -> list:
    """The official attention modules register `scale_mul_1H11` before `q_bias` (record order in the files)."""
    shape_of = dict(items)
    out = []
    for name, shape in items:
        if name.endswith(".scale_mul_1H11") and name.replace("scale_mul_1H11", "q_bias") in shape_of:
            continue  # moved in front of its q_bias
        scale = name.replace("q_bias", "scale_mul_1H11")
        if name.endswith(".q_bias") and scale in shape_of:
            out.append((scale, shape_of[scale]))
        out.append((name, shape))
    return out


def levels_of(patch_nums, prefix: int = 0) -> torch.Tensor:
    """Scale id per token (`lvl_1L`): `prefix` text tokens at level 0 (HART), then scale k's tokens."""
    parts = [torch.zeros(prefix, dtype=torch.long)] if prefix else []
    first = 1 if prefix else 0
    pns = patch_nums[1:] if prefix else patch_nums
    parts += [torch.full((pn * pn,), i + first, dtype=torch.long) for i, pn in enumerate(pns)]
    return torch.cat(parts)


def with_levels(specs: list[TensorSpec], levels: torch.Tensor, after: str | None,
                causal: bool = True) -> list[TensorSpec]:
    """Add lvl_1L (1, L) and attn_bias_for_masking (1, 1, L, L) after `after` (None: in front); the mask is
    block-causal, or block-diagonal with causal=False (`level_buffers`)."""
    L = levels.numel()
    lvl, mask = level_buffers(levels, causal)
    extra = [TensorSpec("lvl_1L", (1, L), torch.int64, lvl),
             TensorSpec("attn_bias_for_masking", (1, 1, L, L), torch.float32, mask)]
    if after is None:
        return extra + specs
    i = next(i for i, s in enumerate(specs) if s.name == after) + 1
    return specs[:i] + extra + specs[i:]


def vqvae_encoder(ch: int = 160, ch_mult=(1, 1, 2, 2, 4), z: int = 32, blocks: int = 2) -> list:
    """The encoder keys of VAR's VQVAE (ssgen has no encoder: generation never uses it), in file order."""
    def res(p, cin, cout):
        out = [(f"{p}.norm1.weight", (cin,)), (f"{p}.norm1.bias", (cin,)), (f"{p}.conv1.weight", (cout, cin, 3, 3)),
               (f"{p}.conv1.bias", (cout,)), (f"{p}.norm2.weight", (cout,)), (f"{p}.norm2.bias", (cout,)),
               (f"{p}.conv2.weight", (cout, cout, 3, 3)), (f"{p}.conv2.bias", (cout,))]
        return out + ([(f"{p}.nin_shortcut.weight", (cout, cin, 1, 1)), (f"{p}.nin_shortcut.bias", (cout,))]
                      if cin != cout else [])

    def attn(p, c):
        return [(f"{p}.norm.weight", (c,)), (f"{p}.norm.bias", (c,)), (f"{p}.qkv.weight", (3 * c, c, 1, 1)),
                (f"{p}.qkv.bias", (3 * c,)), (f"{p}.proj_out.weight", (c, c, 1, 1)), (f"{p}.proj_out.bias", (c,))]

    out = [("encoder.conv_in.weight", (ch, 3, 3, 3)), ("encoder.conv_in.bias", (ch,))]
    cin = ch
    for i, m in enumerate(ch_mult):
        for j in range(blocks):
            out += res(f"encoder.down.{i}.block.{j}", cin, ch * m)
            cin = ch * m
        if i == len(ch_mult) - 1:
            for j in range(blocks):
                out += attn(f"encoder.down.{i}.attn.{j}", cin)
        else:
            out += [(f"encoder.down.{i}.downsample.conv.weight", (cin, cin, 3, 3)),
                    (f"encoder.down.{i}.downsample.conv.bias", (cin,))]
    out += res("encoder.mid.block_1", cin, cin) + attn("encoder.mid.attn_1", cin) + res("encoder.mid.block_2", cin, cin)
    return out + [("encoder.norm_out.weight", (cin,)), ("encoder.norm_out.bias", (cin,)),
                  ("encoder.conv_out.weight", (z, cin, 3, 3)), ("encoder.conv_out.bias", (z,))]


def vqvae_file(vae: torch.nn.Module, num_scales: int, vocab: int = 4096, z: int = 32) -> list:
    """A full VAR-style VQVAE state dict in file order: encoder, decoder, quantizer (+ ema_vocab_hit_SV),
    quant_conv, post_quant_conv (what ssgen's VQVAE holds plus the keys it drops)."""
    mine = dict(shapes(vae))
    quant = sorted([(k, s) for k, s in mine.items() if k.startswith("quantize.")],
                   key=lambda item: item[0].startswith("quantize.embedding"))  # phi convs, then the codebook
    rest = [(k, s) for k, s in mine.items() if not k.startswith("quantize.")]
    post = [(k, s) for k, s in rest if k.startswith("post_quant_conv.")]
    dec = [(k, s) for k, s in rest if not k.startswith("post_quant_conv.")]
    return (vqvae_encoder(z=z) + dec + [("quantize.ema_vocab_hit_SV", (num_scales, vocab))] + quant
            + [("quant_conv.weight", (z, z, 3, 3)), ("quant_conv.bias", (z,))] + post)


# ---------------------------------------------------------------------------------------------------
# VAR
# ---------------------------------------------------------------------------------------------------


def var(name: str) -> Plan:
    from ssgen.backends.var.model import VARConfig
    from ssgen.backends.var.vae import VQVAEConfig

    c = config(name)
    vcfg = VARConfig.from_dict(c["model"])
    model, vae = var_modules(vcfg, VQVAEConfig(), "meta")  # the VAE file is the 256-px one for every depth
    items = scale_mul_first(insert_zero_k_bias(shapes(model), [f"blocks.{i}.attn" for i in range(vcfg.depth)]))
    t = with_levels(specs_from(items), levels_of(vcfg.patch_nums), after="pos_1LC")
    v = specs_from(vqvae_file(vae, num_scales=10))
    w = c["weights"]
    repos: dict[str, list[RepoFile]] = {}  # the DDO transformers live in NVIDIA's repo, their VAE in VAR's
    repos.setdefault(w["transformer"]["repo"], []).append(RepoFile(w["transformer"]["file"], "pth", t))
    repos.setdefault(w["vae"]["repo"], []).append(RepoFile(w["vae"]["file"], "pth", v))
    return Plan(name, "var", repos,
                {"transformer": n_params(model), "vae": n_params(vae)}, ["--class", "207"],
                f"{vcfg.patch_nums[-1] * 16} px (the model's only schedule)")


# ---------------------------------------------------------------------------------------------------
# text encoders (transformers' classes at the released sizes, random weights, offline tokenizers)
# ---------------------------------------------------------------------------------------------------

T5_XL = {  # google/flan-t5-xl config.json
    "architectures": ["T5ForConditionalGeneration"], "d_ff": 5120, "d_kv": 64, "d_model": 2048,
    "decoder_start_token_id": 0, "dense_act_fn": "gelu_new", "dropout_rate": 0.1, "eos_token_id": 1,
    "feed_forward_proj": "gated-gelu", "initializer_factor": 1.0, "is_encoder_decoder": True, "is_gated_act": True,
    "layer_norm_epsilon": 1e-06, "model_type": "t5", "n_positions": 512, "num_decoder_layers": 24, "num_heads": 32,
    "num_layers": 24, "output_past": True, "pad_token_id": 0, "relative_attention_max_distance": 128,
    "relative_attention_num_buckets": 32, "tie_word_embeddings": False, "torch_dtype": "float32",
    "transformers_version": "4.23.1", "use_cache": True, "vocab_size": 32128,
}
QWEN2_1_5B = {  # Qwen2-1.5B(-Instruct) config.json (660 bytes on the Hub, as HART's copy)
    "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643, "eos_token_id": 151645,
    "hidden_act": "silu", "hidden_size": 1536, "initializer_range": 0.02, "intermediate_size": 8960,
    "max_position_embeddings": 32768, "max_window_layers": 28, "model_type": "qwen2", "num_attention_heads": 12,
    "num_hidden_layers": 28, "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
    "sliding_window": 32768, "tie_word_embeddings": True, "torch_dtype": "bfloat16",
    "transformers_version": "4.40.1", "use_cache": True, "use_sliding_window": False, "vocab_size": 151936,
}


def untied(module: torch.nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    """State-dict entries without tied copies (what save_pretrained writes: one name per tensor)."""
    seen, out = set(), []
    for k, v in module.state_dict(keep_vars=True).items():
        if id(v) not in seen:
            seen.add(id(v))
            out.append((k, tuple(v.shape)))
    return out


def tokenizer_files(make) -> dict[str, bytes]:
    """The files a tiny maker's save_pretrained writes for its tokenizer (tokenizer.json, ...), as bytes."""
    with tempfile.TemporaryDirectory() as d:
        make(Path(d))
        return {p.name: p.read_bytes() for p in sorted(Path(d).iterdir())
                if p.is_file() and not p.name.endswith((".safetensors", ".bin")) and p.name != "config.json"}


def hf_folder(prefix: str, cfg: dict, items: list, dtype: torch.dtype, max_shard: int, tok: dict[str, bytes],
              extra: dict[str, bytes] | None = None) -> list[RepoFile]:
    """A save_pretrained folder: config.json, safetensors (shards + index beyond max_shard), tokenizer files."""
    specs = specs_from(items, dtype)
    shards = shard(specs, max_shard)
    files = [RepoFile(f"{prefix}config.json", data=json.dumps(cfg, indent=2).encode() + b"\n")]
    if len(shards) == 1:  # save_pretrained writes one model.safetensors and no index
        names = ["model.safetensors"]
    else:
        names = shard_names(len(shards))
        files.append(RepoFile(f"{prefix}model.safetensors.index.json", data=shard_index(shards, names)))
    files += [RepoFile(f"{prefix}{n}", "safetensors", sorted(s, key=lambda t: t.name)) for n, s in zip(names, shards)]
    files += [RepoFile(f"{prefix}{n}", data=b) for n, b in {**tok, **(extra or {})}.items()]
    return files


def flan_t5_xl() -> tuple[list[RepoFile], int]:
    """google/flan-t5-xl (fp32, 2 shards of at most 10 GB) and the T5 encoder's parameter count."""
    from transformers import T5Config, T5EncoderModel, T5ForConditionalGeneration

    from ssgen.backends.infinity.tiny import make_tiny_t5

    cfg = T5Config(**{k: v for k, v in T5_XL.items() if k not in ("architectures", "transformers_version")})
    cfg.tie_word_embeddings = False  # transformers 5's T5Config sets it back to True; flan-t5 has its own lm_head
    with torch.device("meta"):
        full, enc = T5ForConditionalGeneration(cfg), T5EncoderModel(cfg)
    # encoder/decoder embed_tokens are `shared` (one tensor in the files); lm_head is its own
    items = [(k, s) for k, s in shapes(full) if not k.endswith("embed_tokens.weight")]
    tok = tokenizer_files(lambda d: make_tiny_t5(d, d_model=64))
    return hf_folder("", T5_XL, items, torch.float32, 10 * 10**9, tok), n_params(enc)


def qwen2_1_5b() -> tuple[list[RepoFile], int]:
    """HART's Qwen2-1.5B text encoder folder (bf16, 2 shards) and Qwen2Model's parameter count."""
    from transformers import Qwen2Config, Qwen2ForCausalLM, Qwen2Model

    from ssgen.backends.hart.tiny import make_tiny_text_encoder

    cfg = Qwen2Config(**{k: v for k, v in QWEN2_1_5B.items() if k not in ("architectures", "transformers_version")})
    with torch.device("meta"):
        full, base = Qwen2ForCausalLM(cfg), Qwen2Model(cfg)
    tok = tokenizer_files(lambda d: make_tiny_text_encoder(d, hidden=32))
    gen = {"generation_config.json": json.dumps({"bos_token_id": 151643, "eos_token_id": 151645,
                                                  "transformers_version": "4.40.1"}, indent=2).encode()}
    return hf_folder("", QWEN2_1_5B, untied(full), torch.bfloat16, 2 * 10**9, tok, gen), n_params(base)


# ---------------------------------------------------------------------------------------------------
# Infinity
# ---------------------------------------------------------------------------------------------------


def infinity(name: str, shards_kept: int | None = None) -> Plan:
    """`shards_kept`: serve only the first N shards of the 8B (a cheaper check of the shard path)."""
    c = config(name)
    icfg, model, vae = infinity_modules(c["model"], "meta")
    per = icfg.depth // icfg.block_chunks
    attn = ["text_proj_for_sos.ca"] + [f"block_chunks.{i // per}.module.{i % per}.{p}" for i in range(icfg.depth)
                                       for p in ("sa", "ca")]
    items = scale_mul_first(insert_zero_k_bias(shapes(model), attn))
    blocks = [it for it in items if it[0].startswith("block_chunks.")]  # the head comes before the blocks
    t = specs_from([it for it in items if not it[0].startswith("block_chunks.")] + blocks)
    dec = shapes(vae)
    bits = icfg.codebook_dim  # the VAE's codebook is the transformer's bits
    v = specs_from([(f"encoder.{k[len('decoder.'):]}", s) for k, s in dec if k.startswith("decoder.")] + dec)
    v += [TensorSpec(f"{q}.lfq.mask", (bits,), torch.int64, bit_mask(bits)) for q in ("quantizer", "quantize")]
    w = c["weights"]
    repo = w["transformer"]["repo"]
    notes = ["VAE encoder mirrored from the decoder (its real names and size are not in the notes; ssgen never "
             "reads it)"]
    if "file" in w["transformer"]:
        files = [RepoFile(w["transformer"]["file"], "pth", t)]
    else:  # the 8B: fp32 safetensors shards of at most 10 GB + index in a folder
        folder = w["transformer"]["folder"].strip("/") + "/"
        shards = shard(t, 10 * 10**9)
        names = shard_names(len(shards))
        if shards_kept is not None:
            shards, names = shards[:shards_kept], names[:shards_kept]
            notes.append(f"only the first {shards_kept} of the transformer's shards are served (a check of the "
                         "shard path, not a loadable model)")
        files = [RepoFile(f"{folder}model.safetensors.index.json", data=shard_index(shards, names))]
        files += [RepoFile(f"{folder}{n}", "safetensors", sorted(s, key=lambda x: x.name))
                  for n, s in zip(names, shards)]
    files.append(RepoFile(w["vae"]["file"], "pth", v, wrap="vae"))
    t5_files, t5_params = flan_t5_xl()
    return Plan(name, "infinity", {repo: files, w["text_encoder"]["repo"]: t5_files},
                {"transformer": n_params(model), "vae": n_params(vae), "text_encoder": t5_params},
                ["-p", PROMPT, "--pn", "0.06M"], "pn 0.06M: 7 scales, 256x256 (the smallest official template)",
                notes)


# ---------------------------------------------------------------------------------------------------
# HART
# ---------------------------------------------------------------------------------------------------


def hart(name: str) -> Plan:
    c = config(name)
    pns = tuple(c["model"].get("patch_nums", HART_SCHEDULES[1024]))
    lcfg, tcfg = hart_config_files(pns)  # the notes' size estimate
    hcfg, model, tok = hart_modules(pns, "meta")
    items = insert_zero_k_bias(shapes(model), [f"blocks.{i}.attn" for i in range(hcfg.depth)])
    t = with_levels(specs_from(items), levels_of(pns, prefix=hcfg.context_token - 1), after=None)
    v = specs_from([(f"vae.{k}", s) for k, s in vqvae_file(tok, num_scales=len(pns))])
    w = c["weights"]
    files = [RepoFile("llm/config.json", data=json.dumps(lcfg, indent=2).encode() + b"\n"),
             RepoFile("llm/ema_model.bin", "pth", t),
             RepoFile("llm/pytorch_model.bin", same_as="llm/ema_model.bin"),
             RepoFile("tokenizer/config.json", data=json.dumps(tcfg, indent=2).encode() + b"\n"),
             RepoFile("tokenizer/model.safetensors", "safetensors", sorted(v, key=lambda x: x.name))]
    q_files, q_params = qwen2_1_5b()
    notes = ["llm/config.json: depth 20, width 1280, 20 heads, context_dim 1536, residual MLP 1024 x 6 (the notes' "
             "estimate; the real values are unverified)",
             "llm/pytorch_model.bin is served with ema_model.bin's bytes (the config downloads only the EMA file)",
             "tokenizer/model.safetensors: VAR's VQVAE keys with the `vae.` prefix, no discriminator (its shapes are "
             "unknown; ssgen drops disc.*)",
             "Qwen2-1.5B files in bf16, 2 shards (the real files' dtype is not in the notes)"]
    return Plan(name, "hart", {w["transformer"]["repo"]: files, w["text_encoder"]["repo"]: q_files},
                {"transformer": n_params(model), "vae": n_params(tok), "text_encoder": q_params}, ["-p", PROMPT],
                f"1024 px, {len(pns)} scales: the released llm/ files define only this schedule (lvl_embed has one row "
                "per scale and ssgen checks patch_nums against it), and HART has no smaller-schedule option", notes)


# ---------------------------------------------------------------------------------------------------
# Switti
# ---------------------------------------------------------------------------------------------------

# What PyTorchModelHubMixin.save_pretrained writes beside the weights (huggingface_hub 0.26, the goldens' copy)
MIXIN_CARD = (b"---\ntags:\n- model_hub_mixin\n- pytorch_model_hub_mixin\n---\n\nThis model has been pushed to the Hub "
              b"using the [PytorchModelHubMixin](https://huggingface.co/docs/huggingface_hub/package_reference/mixins"
              b"#huggingface_hub.PyTorchModelHubMixin) integration:\n- Library: [More Information Needed]\n"
              b"- Docs: [More Information Needed]")
# the CLIP repos' config.json, reconstructed: the standard CLIP ViT-L/14 and ViT-bigG/14 architecture values
# (the notes' section 1 for the text towers), the legacy eos_token_id 2 (pooling at argmax(input_ids))
_CLIP_COMMON = {"attention_dropout": 0.0, "dropout": 0.0, "initializer_factor": 1.0, "initializer_range": 0.02,
                "layer_norm_eps": 1e-05}
CLIP_L = {
    "architectures": ["CLIPModel"], "initializer_factor": 1.0, "logit_scale_init_value": 2.6592, "model_type": "clip",
    "projection_dim": 768,
    "text_config": {**_CLIP_COMMON, "bos_token_id": 0, "eos_token_id": 2, "hidden_act": "quick_gelu",
                    "hidden_size": 768, "intermediate_size": 3072, "max_position_embeddings": 77,
                    "model_type": "clip_text_model", "num_attention_heads": 12, "num_hidden_layers": 12,
                    "pad_token_id": 1, "projection_dim": 768, "vocab_size": 49408},
    "vision_config": {**_CLIP_COMMON, "hidden_act": "quick_gelu", "hidden_size": 1024, "image_size": 224,
                      "intermediate_size": 4096, "model_type": "clip_vision_model", "num_attention_heads": 16,
                      "num_channels": 3, "num_hidden_layers": 24, "patch_size": 14, "projection_dim": 768},
    "torch_dtype": "float32", "transformers_version": "4.16.0.dev0",
}
CLIP_BIGG = {
    "architectures": ["CLIPModel"], "initializer_factor": 1.0, "logit_scale_init_value": 2.6592, "model_type": "clip",
    "projection_dim": 1280,
    "text_config": {**_CLIP_COMMON, "bos_token_id": 0, "eos_token_id": 2, "hidden_act": "gelu", "hidden_size": 1280,
                    "intermediate_size": 5120, "max_position_embeddings": 77, "model_type": "clip_text_model",
                    "num_attention_heads": 20, "num_hidden_layers": 32, "pad_token_id": 1, "projection_dim": 1280,
                    "vocab_size": 49408},
    "vision_config": {**_CLIP_COMMON, "hidden_act": "gelu", "hidden_size": 1664, "image_size": 224,
                      "intermediate_size": 8192, "model_type": "clip_vision_model", "num_attention_heads": 16,
                      "num_channels": 3, "num_hidden_layers": 48, "patch_size": 14, "projection_dim": 1280},
    "torch_dtype": "float32",
}
CLIP_PREPROCESSOR = {  # preprocessor_config.json: in both repos, not in the configs' allow lists
    "crop_size": 224, "do_center_crop": True, "do_normalize": True, "do_resize": True,
    "feature_extractor_type": "CLIPFeatureExtractor", "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711], "resample": 3, "size": 224,
}


def special_tokens_map(pad: str) -> bytes:
    """special_tokens_map.json as transformers 4.x wrote it for CLIP (transformers 5 writes none)."""
    def tok(content):
        return {"content": content, "lstrip": False, "normalized": True, "rstrip": False, "single_word": False}
    return json.dumps({"bos_token": tok("<|startoftext|>"), "eos_token": tok("<|endoftext|>"), "pad_token": pad,
                       "unk_token": tok("<|endoftext|>")}, indent=2).encode() + b"\n"


def clip_model(cfg: dict, pad: str) -> tuple[list[RepoFile], int]:
    """A full CLIPModel folder (text and vision towers, projections, logit_scale; fp32, shards of at most 10 GB as
    save_pretrained cuts them) with a tiny offline CLIP tokenizer padding with `pad`, and the parameter count of
    the text tower (CLIPTextModel: what ssgen loads)."""
    from transformers import CLIPConfig, CLIPModel, CLIPTextModel

    from ssgen.backends.switti.tiny import write_clip

    ccfg = CLIPConfig(**{k: v for k, v in cfg.items() if k not in ("architectures", "transformers_version",
                                                                    "torch_dtype")})
    with torch.device("meta"):
        full, text = CLIPModel(ccfg), CLIPTextModel(ccfg.text_config)
    t = cfg["text_config"]
    tok = tokenizer_files(lambda d: write_clip(d, t["hidden_size"], t["num_attention_heads"], t["hidden_act"], pad, 0))
    tok["special_tokens_map.json"] = special_tokens_map(pad)
    extra = {"preprocessor_config.json": json.dumps(CLIP_PREPROCESSOR, indent=2).encode() + b"\n"}
    return hf_folder("", cfg, untied(full), torch.float32, 10 * 10**9, tok, extra), n_params(text)


def switti(name: str) -> Plan:
    """Switti (../shared/notes/switti.md section 1): the transformer and VAE repos as PyTorchModelHubMixin
    saves them (config.json = the constructor's arguments, model.safetensors without `__metadata__`, the
    card), the two CLIP repos as full CLIPModel checkpoints."""
    from ssgen.backends.switti.model import Switti, SwittiConfig
    from ssgen.backends.var.vae import VQVAE, VQVAEConfig

    c = config(name)
    scfg = SwittiConfig(depth=30, reso=c["model"]["reso"], use_ar=c["model"]["use_ar"])  # width 1920, 30 heads
    with torch.device("meta"):
        model, vae = Switti(scfg), VQVAE(VQVAEConfig(patch_nums=scfg.patch_nums))
    t = [TensorSpec(s.name, s.shape, s.dtype, ("normal", 0.0, 1.0)) if s.name == "crop_embed.weight" else s
         for s in specs_from(shapes(model))]  # crop_embed: N(0, 1) as upstream's constructor draws it
    t = st_order(with_levels(t, levels_of(scfg.patch_nums), after=None, causal=scfg.use_ar))
    v = st_order(specs_from(vqvae_file(vae, num_scales=10), torch.float16))
    vcfg = {"ch": 160, "reso": 512, "share_quant_resi": 4, "test_mode": True, "vocab_size": 4096, "z_channels": 32}
    w = c["weights"]
    tfiles = [RepoFile("README.md", data=MIXIN_CARD),
              RepoFile("config.json", data=json.dumps(scfg.fields(), indent=2, sort_keys=True).encode()),
              RepoFile("model.safetensors", "safetensors", t, metadata=None)]
    vfiles = [RepoFile("README.md", data=MIXIN_CARD),
              RepoFile("config.json", data=json.dumps(vcfg, indent=2, sort_keys=True).encode()),
              RepoFile("model.safetensors", "safetensors", v, metadata=None)]
    l_files, l_params = clip_model(CLIP_L, "<|endoftext|>")
    g_files, g_params = clip_model(CLIP_BIGG, "!")
    notes = [
        f"{w['transformer']['repo']}/config.json carries `reso` (the 512 px repos may predate it; reso 512 is the "
        "default then) and the README.md is the mixin's default card (the real card's text is not known)",
        "yresearch/VQVAE-Switti/model.safetensors in float16 (as the goldens' tiny VAE; the real file's dtype is not "
        "in the notes), ema_vocab_hit_SV with 10 rows (the real row count is unknown; ssgen drops it), config.json "
        "reso 512 (ssgen takes the transformer's)",
        "CLIP config.json files reconstructed from the standard architectures (text towers as the notes say; vision "
        "towers ViT-L/14 1024 wide x 24 layers and ViT-bigG/14 1664 x 48, 224 px: assumed, ssgen never loads them), "
        "weights fp32, bigG cut into 2 shards at 10 GB in state-dict order (the real split point is not known); the "
        "repos' .bin/.h5/.msgpack/open_clip copies are not served (the allow lists skip them)",
        "tokenizers: small offline byte-level CLIP BPEs (ssgen.backends.switti.tiny; CLIP-bigG's pads with \"!\"), "
        "so prompts tokenise to other ids than the real 49408-token vocabulary",
    ]
    pns = scfg.patch_nums
    attention = "block-causal, KV cache" if scfg.use_ar else "each scale alone"
    return Plan(name, "switti", {w["transformer"]["repo"]: tfiles, w["vae"]["repo"]: vfiles,
                                 w["text_encoder"]["repo"]: l_files, w["text_encoder_2"]["repo"]: g_files},
                {"transformer": n_params(model), "vae": n_params(vae), "text_encoder": l_params,
                 "text_encoder_2": g_params}, ["-p", PROMPT],
                f"{pns[-1] * 16} px, {len(pns)} scales ({attention})",
                notes)


def plan(name: str, shards_kept: int | None = None) -> Plan:
    if name not in MODELS:
        raise SystemExit(f"unknown model {name!r}; rehearse one of: {', '.join(MODELS)}")
    if name.startswith("var-"):
        return var(name)
    if name.startswith("infinity-"):
        return infinity(name, shards_kept)
    if name.startswith("switti"):
        return switti(name)
    return hart(name)


def total_bytes(files: list[RepoFile]) -> int:
    return sum(f.size_hint for f in files if f.same_as is None)


def gb(n: float) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


if __name__ == "__main__":  # print each model's files (no file is written)
    import sys

    for n in sys.argv[1:] or MODELS:
        p = plan(n)
        print(f"{n}: params " + ", ".join(f"{r} {v / 1e6:.1f}M" for r, v in p.params.items()))
        for repo, files in p.repos.items():
            for f in files:
                print(f"  {repo}/{f.path}  {f.fmt}  {len(f.tensors)} tensors  {gb(f.size_hint)}"
                      + (f"  (= {f.same_as})" if f.same_as else ""))
