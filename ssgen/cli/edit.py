"""`ssgen edit`: inpainting, outpainting, class-conditional editing and variations of an input image, as
one PNG grid: the input (fitted to the model's size), its reconstruction, then the edits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from ..errors import ConfigError
from ..terminal import safe
from .app import app, friendly
from .options import BetaOpt, GenFlags, SsgOpt, build_ssg, gen_options
from .plan import (
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
    load_model,
    note,
    plan,
)


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
    from ..output import GRID_LIMIT, plan_outputs
    from ..runner import drive
    from ..sinks import EditSink
    from .generate import scale_saver, start, watchers

    config, ed, flat, key = start(flags, classes, prompts, n, (image, mask, box, outpaint, keep_scales))
    ssg = build_ssg(config, flags, ssg_on, ssg_beta)
    works, per_call = plan(config, flags, flat, key, [("", ssg)], seed=seed, rng=rng, batch_size=batch_size, edit=ed,
                 what="edit")
    total = len(flat)
    if total > GRID_LIMIT:
        raise ConfigError(f"{total} images are too many for one grid (at most {GRID_LIMIT}); edit fewer at a time")
    saver = scale_saver(save_scales, ["ssg-" if ssg else "plain-"], total, overwrite, config.name)
    outs = plan_outputs(output, flags.model, "-edit", total, True, False, overwrite)
    pipe = load_model(config, flags, outs, per_call)
    report = drive(pipe, works, EditSink(outs, key), watchers=watchers(saver), on_note=note)
    if as_json:
        print(json.dumps({"files": [str(outs.grid)], "seconds": round(report.seconds, 3), "images": report.settings}))
    else:
        print(f"wrote {safe(outs.grid, markup=False)} (input, reconstruction and {total} edit(s), "
              f"{report.seconds:.1f} s)")
