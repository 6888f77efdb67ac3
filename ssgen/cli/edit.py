"""`ssgen edit`: inpainting, outpainting, class-conditional editing and variations of an input image, as
one PNG grid: the input (fitted to the model's size), its reconstruction, then the edits."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import List, Optional

import typer

from .app import app, friendly
from .generate import (
    BatchOpt,
    BoxOpt,
    ClassOpt,
    JsonOpt,
    KeepScalesOpt,
    MaskOpt,
    NOpt,
    OutpaintOpt,
    OverwriteOpt,
    PromptOpt,
    RngOpt,
    SaveScalesOpt,
    SeedOpt,
    chunk_label,
    edit_inputs,
    grid_cols,
    prepare,
    run_one,
)
from .options import BetaOpt, GenFlags, SsgOpt, gen_options


@app.command()
@friendly
@gen_options
def edit(
    flags: GenFlags,
    image: Path = typer.Option(..., "--image", help="Input image to edit (fitted to the model's size: short side "
                               "resized, center-cropped)."),
    mask: Optional[Path] = MaskOpt,
    box: Optional[str] = BoxOpt,
    outpaint: bool = OutpaintOpt,
    keep_scales: Optional[int] = KeepScalesOpt,
    classes: Optional[List[int]] = ClassOpt,
    prompts: Optional[List[str]] = PromptOpt,
    n: int = NOpt,
    seed: int = SeedOpt,
    rng: str = RngOpt,
    batch_size: Optional[int] = BatchOpt,
    ssg_on: Optional[bool] = SsgOpt,
    ssg_beta: Optional[str] = BetaOpt,
    output: Optional[Path] = typer.Option(None, "--output", "-o",
                                          help="Grid PNG to write (default outputs/MODEL-edit-TIME.png)."),
    overwrite: bool = OverwriteOpt,
    save_scales: Optional[Path] = SaveScalesOpt,
    as_json: bool = JsonOpt,
):
    """Edit an image: regenerate what the mask or box does not keep (white = keep), or with --keep-scales K
    alone make variations that keep its first K scales. Without --class, VAR uses the null class.

    The grid starts with the input and its reconstruction (what the model's VAE makes of it), then the edits;
    the PNG records every setting, the input's sha256 and the mask."""
    from ..edit import fit, open_image
    from ..output import grid, save_png, summary

    options = flags.options()
    ed = edit_inputs(image, mask, box, outpaint, keep_scales)
    run = prepare(flags, classes, prompts, n, output, save_scales, [(ssg_on, ssg_beta)], options=options, seed=seed,
                  rng=rng, batch_size=batch_size, overwrite=overwrite, edit=ed, kind="-edit")
    from ..pipeline import to_pil  # torch: only once every input check has passed and the model is loaded
    outs, [ssg], total = run.outputs, run.settings, len(run.flat)
    cells, settings, seconds, notes, recon = [], [], 0.0, set(), None
    try:
        for a, b in run.chunks:
            kw = dict(options, seeds=[seed + i for i in range(a, b)], ssg=ssg, rng=rng, **{run.key: run.flat[a:b]},
                      **ed)
            res = run_one(run.pipe, kw, chunk_label(run.pipe.config.name, a, b, total, "edit"), run.save_scales,
                          run.tags[0], a, run.overwrite, notes)
            if recon is None:
                H, W = res.pixels.shape[-2:]
                recon = [fit(open_image(image).convert("RGB"), (H, W))[0], to_pil(res.reconstruction[:1])[0]]
            cells.extend(res.images)
            settings.extend(res.settings)
            seconds += res.seconds
            del res
        cols = grid_cols(total + 2, 1)
        meta = {"grid": {"rows": math.ceil((total + 2) / cols), "cols": cols, "leading": ["input", "reconstruction"]},
                "images": settings}
        save_png(grid(recon + cells, cols=cols), outs.grid, meta, text=" | ".join(summary(s) for s in settings))
    finally:
        outs.release()
    if as_json:
        print(json.dumps({"files": [str(outs.grid)], "seconds": round(seconds, 3), "images": settings}))
    else:
        print(f"wrote {outs.grid} (input, reconstruction and {total} edit(s), {seconds:.1f} s)")
