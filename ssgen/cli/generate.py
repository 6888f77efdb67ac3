"""`ssgen generate` (a PNG grid) and `ssgen compare` (the same images without and with SSG, a column per
setting), with a progress bar over scales and `--save-scales` (the partial image after every scale)."""

from __future__ import annotations

import json
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional

import typer

from ..atomic import release, reserve
from ..errors import ConfigError
from .app import app, err, friendly
from .options import BetaOpt, GenFlags, SsgOpt, build_ssg, gen_options

ClassOpt = typer.Option(None, "--class", "-c", help="ImageNet class index 0..999 (VAR); repeat for several.")
PromptOpt = typer.Option(None, "--prompt", "-p", help="Text prompt (Infinity, HART); repeat for several.")
NOpt = typer.Option(1, "-n", "--num", help="Images per class/prompt.")
SeedOpt = typer.Option(0, "--seed", "-s", help="Base seed; image i uses seed + i.")
RngOpt = typer.Option("per-image", "--rng", help="per-image (each image its own generator) or batch (official order).")
SaveScalesOpt = typer.Option(None, "--save-scales",
                             help="Also decode and save the partial image after every scale into this folder.")
JsonOpt = typer.Option(False, "--json", help="Print a JSON summary instead of text.")
DEFAULT_BATCH = 8  # images per generate call: bounds memory whatever -n is
BatchOpt = typer.Option(None, "--batch-size", "-b", help=f"Images per forward pass (default {DEFAULT_BATCH}; with "
                        "--rng batch all of them, one batch as the official code draws it). Larger requests run in "
                        "such chunks, writing --each files as they go; image i keeps seed + i.")
OverwriteOpt = typer.Option(False, "--overwrite", help="Replace existing files (-o, --each, --save-scales). Without "
                            "it an existing -o is an error, and a default name that exists gets a -2, -3 ... suffix.")
EDIT_PANEL = "Editing (an input image)"
ImageOpt = typer.Option(None, "--image", rich_help_panel=EDIT_PANEL,
                        help="Input image to edit (fitted to the model's size: short side resized, center-cropped).")
MaskOpt = typer.Option(None, "--mask", rich_help_panel=EDIT_PANEL,
                       help="Keep mask, an image of the input's size: white = keep the input, black = regenerate.")
BoxOpt = typer.Option(None, "--box", rich_help_panel=EDIT_PANEL, help="X0,Y0,X1,Y1 (fractions of the image): "
                      "regenerate this box and keep the rest (inpainting), or with --outpaint the reverse.")
OutpaintOpt = typer.Option(False, "--outpaint", rich_help_panel=EDIT_PANEL,
                           help="With --box: keep the box, regenerate around it (outpainting).")
KeepScalesOpt = typer.Option(None, "--keep-scales", rich_help_panel=EDIT_PANEL,
                             help="Keep the input's first K scales whole (alone: variations of the input).")


def conditions(classes: list[int] | None, prompts: list[str] | None, n: int) -> tuple[list, int]:
    """The flat list of conditions (each repeated n times) and the number of distinct ones."""
    if n < 1:
        raise ConfigError(f"-n must be at least 1, got {n}")
    if classes and prompts:
        raise ConfigError("give either --class (VAR) or --prompt (Infinity, HART), not both")
    if not classes and not prompts:
        raise ConfigError("nothing to generate: add --class N (VAR models) or --prompt TEXT (text-to-image models)")
    conds = classes or prompts
    return [c for c in conds for _ in range(n)], len(conds)


def edit_inputs(image: Path | None, mask: Path | None, box: str | None, outpaint: bool,
                keep_scales: int | None) -> dict | None:
    """The edit flags -> generate()'s image, keep_mask, keep_scales (None: not an edit). Torch-free; the files
    are opened and checked by `check_call`."""
    from ..edit import parse_box

    if image is None:
        given = [f for f, v in (("--mask", mask), ("--box", box), ("--outpaint", outpaint),
                                ("--keep-scales", keep_scales is not None)) if v]
        if given:
            raise ConfigError(f"{given[0]} edits an input image: add --image PATH")
        return None
    if mask is not None and box is not None:
        raise ConfigError("give either --mask or --box, not both")
    if outpaint and box is None:
        raise ConfigError("--outpaint needs --box X0,Y0,X1,Y1 (the part of the image to keep)")
    if mask is None and box is None and keep_scales is None:
        raise ConfigError("nothing of the input is kept: add --mask, --box or --keep-scales K (variations)")
    keep_mask = parse_box(box, outpaint) if box is not None else mask
    return {"image": image, "keep_mask": keep_mask, "keep_scales": keep_scales}


def default_output(model: str, kind: str = "") -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = Path(model).stem if model.endswith((".yaml", ".yml")) else model
    return Path("outputs") / f"{name}{kind}-{stamp}.png"


def grid_cols(n_images: int, per_cond: int) -> int:
    if per_cond > 1:
        return per_cond
    return n_images if n_images <= 8 else math.ceil(math.sqrt(n_images))


def chunks(n: int, size: int) -> list[tuple[int, int]]:
    """[start, end) index ranges of at most `size` images: one generate call each."""
    return [(a, min(a + size, n)) for a in range(0, n, size)]


def _existing(paths: list[Path]) -> list[Path]:
    """Those of `paths` (all in one folder) that exist; one directory listing, not a stat per file."""
    if not paths:
        return []
    try:
        have = set(os.listdir(paths[0].parent))
    except OSError:
        have = set()
    return [p for p in paths if p.name in have]


@dataclass
class Outputs:
    """Where a generate/compare run writes, decided before any model loads. Unless --overwrite was given,
    the grid's name is claimed at once (`ssgen.atomic.reserve`: an empty placeholder, created exclusively)
    so two runs can never choose the same name; the grid replaces it, and `release` removes it if the
    run ends without a grid (a failure, or --each without a grid)."""

    grid: Path | None  # the grid PNG; None when there are too many images for a grid (--each alone)
    stem: Path  # --each files are STEM-000.png, STEM-001.png, ...
    n: int  # images
    overwrite: bool  # may --each files replace existing ones
    placeholder: Path | None = None

    def each_path(self, i: int) -> Path:
        return each_path(self.stem, i, self.n)

    def release(self) -> None:
        if self.placeholder is not None:
            release(self.placeholder)


def each_path(stem: Path, i: int, n: int) -> Path:
    """Image i's own PNG next to the grid: STEM-007.png (wider numbers past 1000 images, so names sort)."""
    return stem.with_name(f"{stem.stem}-{i:0{max(3, len(str(n - 1)))}d}.png")


def plan_outputs(output: Path | None, model: str, kind: str, n: int, grid: bool, each: bool,
                 overwrite: bool) -> Outputs:
    """The output files of a run. An explicit -o that exists (or whose --each files exist) is an error
    naming --overwrite; a default name that exists gets a -2, -3, ... suffix (--overwrite never applies to
    default names)."""
    from ..output import check_writable

    def names(p: Path) -> list[Path]:
        return ([p] if grid else []) + ([each_path(p, i, n) for i in range(n)] if each else [])

    if output is not None:
        p = check_writable(output, "-o")
        if overwrite:
            return Outputs(grid=p if grid else None, stem=p, n=n, overwrite=True)
        present = _existing(names(p))
        if present or (grid and not reserve(p)):
            first = present[0] if present else p
            more = f" (and {len(present) - 1} more files this run would write)" if len(present) > 1 else ""
            raise ConfigError(f"{first} already exists{more}; add --overwrite to replace, or choose another -o")
        return Outputs(grid=p if grid else None, stem=p, n=n, overwrite=False, placeholder=p if grid else None)
    base = p = check_writable(default_output(model, kind), "-o")
    k = 1
    while _existing(names(p) + [p]) or not reserve(p):  # the grid's name claims the stem, grid or not
        k += 1
        p = base.with_name(f"{base.stem}-{k}{base.suffix}")
    return Outputs(grid=p if grid else None, stem=p, n=n, overwrite=False, placeholder=p)


SCALE_FILE = re.compile(r"(.+?)(\d{3,})-(?:k\d+|scales)\.png")


def check_scale_files(folder: Path, tags: list[str], n: int, overwrite: bool) -> Path:
    """The --save-scales folder: writable, and (unless --overwrite) without files this run would replace."""
    from ..output import check_folder

    d = check_folder(folder, "--save-scales")
    if not overwrite:
        for name in sorted(os.listdir(d)):
            m = SCALE_FILE.fullmatch(name)
            if m and m.group(1) in tags and int(m.group(2)) < n:
                raise ConfigError(f"{d / name} already exists (an earlier --save-scales run); add --overwrite to "
                                  "replace such files, or choose another --save-scales folder")
    return d


class ScaleSaver:
    """on_scale callback for --save-scales: decode the running latent after every scale and write
    DIR/{tag}{i:03d}-k{k:02d}.png, plus a strip DIR/{tag}{i:03d}-scales.png per image at the end.
    `offset`: the global index of this call's first image (a run is generated in chunks)."""

    def __init__(self, folder: Path, tag: str, settings: dict, offset: int = 0, overwrite: bool = False):
        self.folder, self.tag, self.settings, self.offset, self.overwrite = folder, tag, settings, offset, overwrite
        self.frames: list[list] = []  # per scale: list of PIL images (one per image of this call)

    def __call__(self, k: int, backend) -> None:
        from ..output import save_png
        from ..pipeline import to_pil

        ims = to_pil(backend.preview())
        self.frames.append(ims)
        for i, im in enumerate(ims, self.offset):
            save_png(im, self.folder / f"{self.tag}{i:03d}-k{k:02d}.png", dict(self.settings, scale=k, image=i),
                     overwrite=self.overwrite)

    def strips(self) -> None:
        from ..output import grid, save_png

        for i in range(len(self.frames[0]) if self.frames else 0):
            row = [f[i] for f in self.frames]
            save_png(grid(row, cols=len(row), col_labels=[f"k={k}" for k in range(len(row))]),
                     self.folder / f"{self.tag}{i + self.offset:03d}-scales.png",
                     dict(self.settings, image=i + self.offset), overwrite=self.overwrite)


@dataclass
class Run:
    """What prepare() decided: the images, where they go, the loaded model, the SSG setting per column."""

    flat: list  # one condition per image
    outputs: Outputs
    pipe: Any
    settings: list  # SSG (or False) per column
    chunks: list[tuple[int, int]]
    tags: list[str]  # --save-scales file prefix per column
    overwrite: bool
    save_scales: Path | None
    key: str = "classes"  # what the conditions are: "classes" or "prompts"


def prepare(flags: GenFlags, classes, prompts, n: int, output: Path | None, save_scales: Path | None,
            ssg_flags: list[tuple], *, options: dict, seed: int, rng: str, batch_size: int | None, overwrite: bool,
            each: bool = False, compare: bool = False, edit: dict | None = None, kind: str | None = None) -> Run:
    """Shared start of generate and compare: check the config, conditions, SSG flags, the grid's size and
    the output files, and claim the output name, all before any weights are downloaded or loaded.
    `ssg_flags`: build_ssg's (on, beta) per setting (compare adds a no-SSG column in front); `options`: the
    generate options given (GenFlags.options()); image i gets seed + i. `edit`: edit_inputs' dict (an edit
    without --class on a class-conditional model uses the null class); `kind`: the default name's tag."""
    from ..backends import options as family_options
    from ..calls import check_call, check_edit
    from ..config import load_config
    from ..output import GRID_LIMIT

    config = load_config(flags.model)
    if edit is not None:  # first: a family that cannot edit is the error, whatever else is missing
        check_edit(config, edit["image"], edit["keep_mask"], edit["keep_scales"], options)
    if edit is not None and not classes and not prompts and "num_classes" in family_options(config.family).MODEL_FIELDS:
        classes = [None]  # the null class, as upstream's editing without a class
    flat, _ = conditions(classes, prompts, n)
    settings = [build_ssg(config, flags, on, beta) for on, beta in ssg_flags]
    seeds = [seed + i for i in range(len(flat))]
    for ssg in settings:  # every option against the config, before any name is claimed or weight resolved
        check_call(config, flat if classes else None, None if classes else flat, options, ssg, rng, seeds,
                   **(edit or {}))

    if batch_size is not None and batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {batch_size}")
    size = batch_size or (len(flat) if rng == "batch" else DEFAULT_BATCH)
    columns = len(settings) + 1 if compare else 1
    cells = len(flat) * columns
    if cells > GRID_LIMIT and compare:
        raise ConfigError(f"{len(flat)} images x {columns} settings are too many for one comparison grid (at most "
                          f"{GRID_LIMIT} cells); compare fewer images, or run `ssgen batch` once per setting")
    if cells > GRID_LIMIT and not each:
        raise ConfigError(f"{cells} images are too many for one grid (at most {GRID_LIMIT}); add --each to write "
                          "one PNG per image and no grid, or use `ssgen batch` (resumable)")
    tags = [f"col{j}-" for j in range(columns)] if compare else ["ssg-" if settings[0] else "plain-"]
    if save_scales is not None:
        save_scales = check_scale_files(Path(save_scales).expanduser(), tags, len(flat), overwrite)
    kind = kind if kind is not None else "-compare" if compare else ""
    outputs = plan_outputs(output, flags.model, kind, len(flat), cells <= GRID_LIMIT, each, overwrite)
    try:
        # no spinner here: downloads draw their own rich progress bars (only one live display at a time)
        from ..pipeline import describe_placement, load  # torch: only once every input check has passed

        if err.is_terminal:
            err.print(f"[dim]loading {config.name} ({describe_placement(flags.device, flags.dtype)}) ...[/]",
                      highlight=False)

        pipe = load(config, device=flags.device, dtype=flags.dtype, offline=True if flags.offline else None,
                    progress=True, compile=flags.compile_mode())
    except BaseException:
        outputs.release()
        raise
    return Run(flat=flat, outputs=outputs, pipe=pipe, settings=settings, chunks=chunks(len(flat), size), tags=tags,
               overwrite=overwrite, save_scales=save_scales, key="classes" if classes else "prompts")


def run_one(pipe, kw: dict, label: str, save_scales: Path | None, tag: str, offset: int = 0,
            overwrite: bool = False, seen_notes: set | None = None):
    """One generate call with a progress bar over scales (on a terminal only: elsewhere rich would print
    an empty line when the bar closes) and --save-scales frames. Notes already in `seen_notes` are not
    printed again (a run of many chunks)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    saver = ScaleSaver(Path(save_scales), tag, {"model": pipe.config.name, "run": label}, offset,
                       overwrite) if save_scales else None
    opts = {k: v for k, v in kw.items() if k not in ("seed", "seeds", "ssg", "rng", "classes", "prompts", "image",
                                                     "keep_mask", "keep_scales")}
    prog = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("scales"), TimeElapsedColumn(), console=err, transient=True,
                    disable=not err.is_terminal)
    task = prog.add_task(label, total=pipe.num_scales(**opts))

    def on_scale(k: int, backend) -> None:
        prog.update(task, completed=k + 1)
        if saver is not None:
            saver(k, backend)

    with prog:
        res = pipe.generate(on_scale=on_scale, **kw)
    if saver is not None:
        saver.strips()
    seen = set() if seen_notes is None else seen_notes
    for note in res.notes:
        if note not in seen:
            seen.add(note)
            err.print(f"[yellow]note:[/] {note}", highlight=False)
    return res


def cond_label(c, key: str) -> str:
    """A grid row's label: "class 207", "null class" or the prompt (shortened)."""
    if key == "classes":
        return "null class" if c is None else f"class {c}"
    return c if len(c) <= 24 else c[:23] + "…"


def chunk_label(name: str, a: int, b: int, total: int, what: str = "") -> str:
    span = f"{b - a} image(s)" if b - a == total else f"images {a + 1}-{b} of {total}"
    return f"{what or name}: {span}"


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
    from ..output import grid, save_png, summary

    t_start = time.perf_counter()  # --json "timings": load, per image, first image (scripts/rehearse.py reads them)
    options = flags.options()
    run = prepare(flags, classes, prompts, n, output, save_scales, [(ssg_on, ssg_beta)], options=options, seed=seed,
                  rng=rng, batch_size=batch_size, overwrite=overwrite, each=each)
    t_loaded, per_image, first_image = time.perf_counter(), [], None
    outs, [ssg], total = run.outputs, run.settings, len(run.flat)
    key = "classes" if classes else "prompts"
    kept, settings, each_files, seconds, notes = [], [], [], 0.0, set()  # kept: PIL images, for the grid only
    try:
        for a, b in run.chunks:
            t_chunk = time.perf_counter()
            kw = dict(options, seeds=[seed + i for i in range(a, b)], ssg=ssg, rng=rng, **{key: run.flat[a:b]})
            res = run_one(run.pipe, kw, chunk_label(run.pipe.config.name, a, b, total), run.save_scales,
                          run.tags[0], a, run.overwrite, notes)
            if each:
                for i, (im, s) in enumerate(zip(res.images, res.settings), a):
                    each_files.append(str(save_png(im, outs.each_path(i), s, text=summary(s),
                                                   overwrite=outs.overwrite)))
            if outs.grid is not None:
                kept.extend(res.images)
            settings.extend(res.settings)
            seconds += res.seconds
            del res  # pixels and tokens of finished images are not kept
            per_image += [(time.perf_counter() - t_chunk) / (b - a)] * (b - a)
            first_image = first_image or time.perf_counter() - t_start
        written = []
        if outs.grid is not None:
            cols = grid_cols(total, n)
            meta = {"grid": {"rows": math.ceil(total / cols), "cols": cols}, "images": settings}
            save_png(grid(kept, cols=cols), outs.grid, meta, text=" | ".join(summary(s) for s in settings))
            written.append(str(outs.grid))
    finally:
        outs.release()
    if as_json:
        timings = {"load_s": round(t_loaded - t_start, 3), "generate_s": round(time.perf_counter() - t_loaded, 3),
                   "first_image_s": round(first_image, 3), "per_image_s": [round(t, 3) for t in per_image]}
        print(json.dumps({"files": written + each_files, "seconds": round(seconds, 3), "timings": timings,
                          "images": settings}))
    elif outs.grid is not None:
        extra = f" and {len(each_files)} single PNGs ({each_files[0]}, ...)" if each_files else ""
        print(f"wrote {outs.grid} ({total} image(s), {seconds:.1f} s){extra}")
    else:
        print(f"wrote {total} images as {each_files[0]} ... {each_files[-1]} ({seconds:.1f} s; no grid past 64 "
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
    makes them. A comparison grid holds at most 64 cells (images x settings); for more, run `ssgen batch`
    once per setting."""
    from ..output import grid, save_png, summary

    options = flags.options()
    edit = edit_inputs(image, mask, box, outpaint, keep_scales)
    run = prepare(flags, classes, prompts, n, output, save_scales, [(True, b) for b in (ssg_beta or [None])],
                  options=options, seed=seed, rng=rng, batch_size=batch_size, overwrite=overwrite, compare=True,
                  edit=edit)
    total, key = len(run.flat), run.key
    cells, cell_meta, seeds, notes = [], [], [], set()  # a row per image, a column per setting
    try:
        for s in run.settings:
            s.plan(run.pipe.num_scales(**options))  # check every column against the model before generating
        columns = [("no SSG", False)] + [(s.label(), s) for s in run.settings]
        for a, b in run.chunks:
            kw = dict(options, seeds=[seed + i for i in range(a, b)], rng=rng, **{key: run.flat[a:b]}, **(edit or {}))
            results = [run_one(run.pipe, dict(kw, ssg=s), chunk_label("", a, b, total, label), run.save_scales,
                               run.tags[j], a, run.overwrite, notes) for j, (label, s) in enumerate(columns)]
            for i in range(b - a):
                cells.extend(res.images[i] for res in results)
                cell_meta.extend(res.settings[i] for res in results)
            seeds.extend(results[0].seeds)
            del results
        rows = [cond_label(c, key) for c in run.flat]
        rows = [f"{r}, seed {s}" for r, s in zip(rows, seeds)]
        labels = [label for label, _ in columns]
        img = grid(cells, cols=len(columns), col_labels=labels, row_labels=rows)
        meta = {"grid": {"rows": total, "cols": len(columns), "columns": labels}, "images": cell_meta}
        save_png(img, run.outputs.grid, meta, text=" | ".join(summary(s) for s in cell_meta))
    finally:
        run.outputs.release()
    if as_json:
        print(json.dumps({"files": [str(run.outputs.grid)], "columns": labels, "images": cell_meta}))
    else:
        print(f"wrote {run.outputs.grid} ({total} image(s) x {len(columns)} settings)")
