"""VAR's entry in the family registry (torch-free)."""

from ..spec import FamilySpec, Kind
from . import options

SPEC = FamilySpec(
    name="var", title="VAR", article="a VAR", condition="class", options=options,
    loader="ssgen.backends.var.family:load", tiny="ssgen.backends.var.tiny:make_tiny_var",
    kinds=(
        Kind("var", "transformer", "a VAR transformer", "var_d16.pth ... var_d36.pth of FoundationVision/var",
             keys=("class_emb.weight", "pos_1LC")),
        Kind("var", "vae", "a VAR VQVAE", "vae_ch160v4096z32.pth of FoundationVision/var",
             keys=("quantize.embedding.weight", "decoder.conv_in.weight")),
    ),
    job_fields=("cfg", "top_k", "top_p", "more_smooth"),
    can_edit=True,  # the VAE file holds the encoder (encoder.py)
    presets={  # the upstream VAR evaluation protocol (VAR README): 50 images per class, PNG
        "imagenet-fid": {"classes": "0-999", "per_class": 50,
                         "options": {"cfg": 1.5, "top_k": 900, "top_p": 0.96, "more_smooth": False}},
    },
)
