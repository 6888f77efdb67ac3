"""HART's entry in the family registry (torch-free)."""

from ..spec import FamilySpec, Flag, Kind
from . import options

SPEC = FamilySpec(
    name="hart", title="HART", article="a HART", condition="text", options=options,
    loader="ssgen.backends.hart.family:load", tiny="ssgen.backends.hart.tiny:make_tiny_hart",
    kinds=(
        Kind("hart", "transformer", "a HART transformer (llm/)", "the llm/ folder of mit-han-lab/hart-0.7b-1024px",
             keys=("context_embed.weight", "word_embed.weight"), model_types=("hart_transformer_t2i",)),
        Kind("hart", "vae", "a HART tokenizer (tokenizer/)", "the tokenizer/ folder of mit-han-lab/hart-0.7b-1024px",
             keys=("vae.quantize.embedding.weight",), model_types=("hart_autoencoder_with_disc",),
             also=("var", "vae")),  # HART's tokenizer is VAR's VQVAE with a `vae.` prefix
        Kind("hart", "text_encoder", "a Qwen2 text encoder", "the mit-han-lab/Qwen2-VL-1.5B-Instruct folder",
             keys=("*embed_tokens.weight", "*layers.0.self_attn.q_proj.weight"), model_types=("qwen2",)),
    ),
    flags=(
        Flag("system_prompt", "HART's conditioning prefix.", kind="bool"),
        Flag("residual", "HART's residual diffusion head.", kind="bool"),
        Flag("safety_check", "HART: check prompts with ShieldGemma-2B (gated: accept its licence, set HF_TOKEN).",
             kind="bool"),
    ),
    job_fields=("cfg", "top_k", "top_p", "more_smooth", "system_prompt", "residual"),
)
