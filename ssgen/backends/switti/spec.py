"""Switti's entry in the family registry (torch-free)."""

from ..spec import FamilySpec, Flag, Kind
from . import options

CLIP_KEYS = ("text_model.embeddings.token_embedding.weight", "text_model.encoder.layers.0.*")

SPEC = FamilySpec(
    name="switti", title="Switti", article="a Switti", condition="text", options=options,
    loader="ssgen.backends.switti.family:load", tiny="ssgen.backends.switti.tiny:make_tiny_switti",
    kinds=(
        Kind("switti", "transformer", "a Switti transformer",
             "the yresearch/Switti folder (or Switti-AR, Switti-1024, Switti-1024-AR): config.json + model.safetensors",
             keys=("text_pooler.weight", "blocks.0.cross_attn.to_kv.weight")),
        Kind("switti", "vae", "a Switti VQVAE", "the yresearch/VQVAE-Switti folder: config.json + model.safetensors",
             keys=("quantize.embedding.weight", "decoder.conv_in.weight"),
             also=("var", "vae")),  # Switti's VAE is VAR's VQVAE: its files are recognised as that kind
        Kind("switti", "text_encoder", "a CLIP text encoder", "the openai/clip-vit-large-patch14 folder",
             keys=CLIP_KEYS, model_types=("clip", "clip_text_model")),
        Kind("switti", "text_encoder_2", "a CLIP text encoder", "the laion/CLIP-ViT-bigG-14-laion2B-39B-b160k folder",
             keys=CLIP_KEYS, model_types=("clip", "clip_text_model"),
             also=("switti", "text_encoder")),  # both CLIP folders look alike: the first kind names them
    ),
    flags=(
        Flag("negative_prompt", "Switti: its null prompt, one for the batch."),
        Flag("smooth_start", "Switti: the first scale of --more-smooth's Gumbel-softmax mixing (a scale index).",
             kind="int"),
        Flag("cfg_start", "Switti: CFG applies from this scale on (before it: conditional logits alone).",
             kind="int"),
        Flag("cfg_stop", "Switti: CFG is switched off from this scale on (the number of scales = never).",
             kind="int"),
        Flag("last_scale_temp", "Switti: divide the logits by this temperature once CFG is off.", kind="number"),
    ),
    job_fields=("cfg", "top_k", "top_p", "more_smooth", "smooth_start", "cfg_start", "cfg_stop", "last_scale_temp",
                "negative_prompt"),
    can_edit=True,  # the VAE folder holds VAR's encoder (var/encoder.py); editing is ssgen's own
)
