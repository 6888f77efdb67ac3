"""Step 2: the family's spec (torch-free)."""

from ssgen.backends.spec import FamilySpec, Flag, Kind

from . import options

SPEC = FamilySpec(
    name="toy", title="Toy", article="a Toy", condition="class", options=options,
    loader="toyfam.family:load", tiny="toyfam.tiny:make_tiny_toy",
    kinds=(Kind("toy", "transformer", "a Toy transformer", "toy.pth", keys=("codebook", "class_emb")),),
    flags=(Flag("temperature", "Toy: divide the logits by this (a number or one per scale).", kind="per-scale"),),
    job_fields=("cfg", "temperature"),
)
