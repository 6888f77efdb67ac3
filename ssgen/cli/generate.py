"""`ssgen generate` (a PNG grid, `--each` files) and `ssgen compare` (the same images without and with SSG, a
column per setting): thin commands over `ssgen.runner` (plan in cli/plan.py, sinks in ssgen/sinks.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import List, Optional

import typer

from ..errors import ConfigError
from ..terminal import safe
from .app import app, err, friendly
from .options import BetaOpt, GenFlags, SsgOpt, build_ssg, gen_options
from .plan import (
    BatchOpt,
    BoxOpt,
    ClassOpt,
    ImageOpt,
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
    conditions,
    edit_inputs,
    load_model,
    note,
    plan,
)


def start(flags: GenFlags, classes, prompts, n: int, edit_flags: tuple | None = None):
    """The config, the edit input (opened once), the flat conditions and their key: the common first step."""
    from ..backends import family
    from ..config import load_config

    config = load_config(flags.model)
    edit = edit_inputs(config, *edit_flags) if edit_flags else None
    if edit is not None and not classes and not prompts and family(config.family).condition == "class":
        classes = [None]  # the null class, as upstream's editing without a class
    flat, _ = conditions(classes, prompts, n)
    return config, edit, flat, "classes" if classes else "prompts"


def scale_saver(save_scales: Path | None, tags: list[str], n: int, overwrite: bool, model: str):
    """The --save-scales watcher, its folder checked first (writable; no files this run would replace)."""
    from ..output import check_scale_files
    from ..sinks import ScaleSaver

    if save_scales is None:
        return None
    folder = check_scale_files(Path(save_scales).expanduser(), tags, n, overwrite)
    return ScaleSaver(folder, tags, model, overwrite)


def watchers(saver) -> list:
    from ..runner import ScaleBar

    return [ScaleBar(err)] + ([saver] if saver is not None else [])


@app.command()
@friendly
@gen_options
def generate(
    flags: GenFlags,
    classes: Optional[List[int]] = ClassOpt,
    prompts: Optional[List[str]] = PromptOpt,
    n: int = NOpt,
    seed: int = SeedOpt,
    rng: str = RngOpt,
    batch_size: Optional[int] = BatchOpt,
    ssg_on: Optional[bool] = SsgOpt,
    ssg_beta: Optional[str] = BetaOpt,
    output: Optional[Path] = typer.Option(None, "--output", "-o",
                                          help="Grid PNG to write (default outputs/MODEL-TIME.png)."),
    each: bool = typer.Option(False, "--each", help="Also write every image as its own PNG, OUTPUT-000.png, ... "
                              "(the only output past 64 images: a grid holds at most 64)."),
    overwrite: bool = OverwriteOpt,
    save_scales: Optional[Path] = SaveScalesOpt,
    as_json: bool = JsonOpt,
):
    """Generate images and write them as one PNG grid (with all settings embedded).

    Images are generated --batch-size at a time: memory stays bounded however large -n is, and --each
    files are written after every batch. A grid holds at most 64 images; more need --each (one PNG per
    image, no grid) or `ssgen batch`."""
    from ..output import GRID_LIMIT, plan_outputs
    from ..runner import drive
    from ..sinks import GridSink

    t_start = time.perf_counter()  # --json "timings": load, per image, first image (scripts/rehearse.py reads them)
    config, _, flat, key = start(flags, classes, prompts, n)
    ssg = build_ssg(config, flags, ssg_on, ssg_beta)
    works, per_call = plan(config, flags, flat, key, [("", ssg)], seed=seed, rng=rng, batch_size=batch_size)
    total = len(flat)
    if total > GRID_LIMIT and not each:
        raise ConfigError(f"{total} images are too many for one grid (at most {GRID_LIMIT}); add --each to write "
                          "one PNG per image and no grid, or use `ssgen batch` (resumable)")
    saver = scale_saver(save_scales, ["ssg-" if ssg else "plain-"], total, overwrite, config.name)
    outs = plan_outputs(output, flags.model, "", total, total <= GRID_LIMIT, each, overwrite)
    pipe = load_model(config, flags, outs, per_call)
    t_loaded = time.perf_counter()
    report = drive(pipe, works, GridSink(outs, total, n, each), watchers=watchers(saver), on_note=note)
    files = [str(f) for f in report.files]
    if as_json:
        timings = {"load_s": round(t_loaded - t_start, 3), "generate_s": round(time.perf_counter() - t_loaded, 3),
                   "first_image_s": round(report.first_image_at - t_start, 3),
                   "per_image_s": [round(t, 3) for t in report.per_image]}
        print(json.dumps({"files": files, "seconds": round(report.seconds, 3), "timings": timings,
                          "images": report.settings}))
    elif outs.grid is not None:
        each_files = files[1:]
        extra = f" and {len(each_files)} single PNGs ({safe(each_files[0], markup=False)}, ...)" if each_files else ""
        print(f"wrote {safe(outs.grid, markup=False)} ({total} image(s), {report.seconds:.1f} s){extra}")
    else:
        print(f"wrote {total} images as {safe(files[0], markup=False)} ... {safe(files[-1], markup=False)} "
              f"({report.seconds:.1f} s; no grid past 64 "
              "images)")


@app.command()
@friendly
@gen_options
def compare(
    flags: GenFlags,
    classes: Optional[List[int]] = ClassOpt,
    prompts: Optional[List[str]] = PromptOpt,
    n: int = NOpt,
    seed: int = SeedOpt,
    rng: str = RngOpt,
    batch_size: Optional[int] = BatchOpt,
    ssg_beta: Optional[List[str]] = typer.Option(
        None, "--ssg-beta", rich_help_panel="SSG", help="One SSG column per occurrence: 0.5, a per-scale list "
        "0,0,0.2,..., or linear:START:END (default: the model's SSG setting)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o",
                                          help="Comparison grid to write (default outputs/MODEL-compare-TIME.png)."),
    overwrite: bool = OverwriteOpt,
    save_scales: Optional[Path] = SaveScalesOpt,
    as_json: bool = JsonOpt,
    image: Optional[Path] = ImageOpt,
    mask: Optional[Path] = MaskOpt,
    box: Optional[str] = BoxOpt,
    outpaint: bool = OutpaintOpt,
    keep_scales: Optional[int] = KeepScalesOpt,
):
    """The same images without SSG and with each SSG setting, side by side (a column per setting).

    With --image (and --mask, --box or --keep-scales) the images are edits of that input, as `ssgen edit`
    makes them, and every row starts with the input and its reconstruction. A comparison grid holds at most 64
    cells (images x settings); for more, run `ssgen batch` once per setting."""
    from ..output import GRID_LIMIT, plan_outputs
    from ..runner import drive
    from ..sinks import CompareSink

    config, edit, flat, key = start(flags, classes, prompts, n, (image, mask, box, outpaint, keep_scales))
    settings = [build_ssg(config, flags, True, b) for b in (ssg_beta or [None])]
    columns = [("no SSG", False)] + [(s.label(), s) for s in settings]
    works, per_call = plan(config, flags, flat, key, columns, seed=seed, rng=rng, batch_size=batch_size, edit=edit)
    total = len(flat)
    if total * len(columns) > GRID_LIMIT:
        raise ConfigError(f"{total} images x {len(columns)} settings are too many for one comparison grid (at "
                          f"most {GRID_LIMIT} cells); compare fewer images, or run `ssgen batch` once per setting")
    saver = scale_saver(save_scales, [f"col{j}-" for j in range(len(columns))], total, overwrite, config.name)
    outs = plan_outputs(output, flags.model, "-compare", total, True, False, overwrite)
    pipe = load_model(config, flags, outs, per_call)
    labels = [label for label, _ in columns]
    sink = CompareSink(outs, labels, key)
    drive(pipe, works, sink, watchers=watchers(saver), on_note=note)
    if as_json:
        print(json.dumps({"files": [str(outs.grid)], "columns": labels, "images": sink.settings}))
    else:
        print(f"wrote {safe(outs.grid, markup=False)} ({total} image(s) x {len(columns)} settings)")
