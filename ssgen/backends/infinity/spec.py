"""Infinity's entry in the family registry (torch-free)."""

from ..spec import FamilySpec, Flag, Kind
from . import options

SPEC = FamilySpec(
    name="infinity", title="Infinity", article="an Infinity", condition="text", options=options,
    loader="ssgen.backends.infinity.family:load", tiny="ssgen.backends.infinity.tiny:make_tiny_infinity",
    kinds=(
        Kind("infinity", "transformer", "an Infinity transformer", "infinity_2b_reg.pth of FoundationVision/Infinity",
             keys=("cfg_uncond", "text_norm.weight")),
        Kind("infinity", "vae", "an Infinity BSQ VAE",
             "infinity_vae_d32reg.pth (2B) or infinity_vae_d56_f8_14_patchify.pth (8B) of FoundationVision/Infinity",
             keys=("decoder.conv_in.conv.weight",)),
        Kind("infinity", "text_encoder", "a T5 text encoder", "the google/flan-t5-xl folder",
             keys=("shared.weight", "encoder.block.0.*"), model_types=("t5",)),
    ),
    flags=(
        Flag("negative_prompt", "Negative prompt (Infinity)."),
        Flag("tau", "Sampling temperature (Infinity): a number or one value per scale.", kind="per-scale"),
        Flag("size", "Output size WxH (Infinity: the nearest official template is used)."),
        Flag("aspect", "Aspect ratio W:H (Infinity: the nearest official template)."),
        Flag("pn", "Infinity resolution budget: 0.06M, 0.25M, 0.60M or 1M."),
        Flag("offload", "Infinity: move the text encoder off the GPU once prompts are encoded.", kind="bool"),
    ),
    job_fields=("cfg", "top_k", "top_p", "tau", "negative_prompt", "pn", "h_div_w", "size", "aspect"),
    can_edit=True,  # the VAE file holds the encoder (encoder.py); editing is ssgen's own
)
