"""`ssgen generate` (a PNG grid) and `ssgen compare` (the same images without and with SSG, a column per
setting), with a progress bar over scales and `--save-scales` (the partial image after every scale)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import List, Optional

import typer

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


def default_output(model: str, kind: str = "") -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = Path(model).stem if model.endswith((".yaml", ".yml")) else model
    return Path("outputs") / f"{name}{kind}-{stamp}.png"


def grid_cols(n_images: int, per_cond: int) -> int:
    if per_cond > 1:
        return per_cond
    return n_images if n_images <= 8 else math.ceil(math.sqrt(n_images))


class ScaleSaver:
    """on_scale callback for --save-scales: decode the running latent after every scale and write
    DIR/{tag}{i:03d}-k{k:02d}.png, plus a strip DIR/{tag}{i:03d}-scales.png per image at the end."""

    def __init__(self, folder: Path, tag: str, settings: dict):
        self.folder, self.tag, self.settings = folder, tag, settings
        self.frames: list[list] = []  # per scale: list of PIL images (one per batch image)

    def __call__(self, k: int, backend) -> None:
        from ..output import save_png
        from ..pipeline import to_pil

        ims = to_pil(backend.preview())
        self.frames.append(ims)
        for i, im in enumerate(ims):
            save_png(im, self.folder / f"{self.tag}{i:03d}-k{k:02d}.png", dict(self.settings, scale=k, image=i))

    def strips(self) -> None:
        from ..output import grid, save_png

        for i in range(len(self.frames[0]) if self.frames else 0):
            row = [f[i] for f in self.frames]
            save_png(grid(row, cols=len(row), col_labels=[f"k={k}" for k in range(len(row))]),
                     self.folder / f"{self.tag}{i:03d}-scales.png", dict(self.settings, image=i))


def prepare(flags: GenFlags, classes, prompts, n: int, output: Path | None, kind: str, save_scales: Path | None,
            ssg_flags: list[tuple]):
    """Shared start of generate and compare: check the config, conditions, SSG flags and output paths
    before any weights are downloaded or loaded. `ssg_flags`: build_ssg's (on, beta) per setting.
    Returns (conditions, output path, pipeline, SSG settings)."""
    from ..config import load_config
    from ..output import check_writable
    from ..pipeline import load

    config = load_config(flags.model)
    flat, _ = conditions(classes, prompts, n)
    config.check_conditions(classes, prompts)
    settings = [build_ssg(config, flags, on, beta) for on, beta in ssg_flags]
    out_path = check_writable(output or default_output(flags.model, kind))
    if save_scales is not None:
        check_writable(Path(save_scales) / "probe.png")
    # no spinner here: downloads draw their own rich progress bars (only one live display at a time)
    if err.is_terminal:
        err.print(f"[dim]loading {config.name} ...[/]", highlight=False)
    pipe = load(config, device=flags.device, dtype=flags.dtype, offline=True if flags.offline else None, progress=True)
    return flat, out_path, pipe, settings


def run_one(pipe, kw: dict, label: str, save_scales: Path | None, tag: str):
    """One generate call with a progress bar over scales (and --save-scales frames)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    saver = ScaleSaver(Path(save_scales), tag, {"model": pipe.config.name, "run": label}) if save_scales else None
    opts = {k: v for k, v in kw.items() if k not in ("seed", "ssg", "rng", "classes", "prompts")}  # the options
    prog = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("scales"), TimeElapsedColumn(), console=err, transient=True)
    task = prog.add_task(label, total=pipe.num_scales(**opts))

    def on_scale(k: int, backend) -> None:
        prog.update(task, completed=k + 1)
        if saver is not None:
            saver(k, backend)

    with prog:
        res = pipe.generate(on_scale=on_scale, **kw)
    if saver is not None:
        saver.strips()
    for note in res.notes:
        err.print(f"[yellow]note:[/] {note}", highlight=False)
    return res


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
    ssg_on: Optional[bool] = SsgOpt,
    ssg_beta: Optional[str] = BetaOpt,
    output: Optional[Path] = typer.Option(None, "--output", "-o",
                                          help="Grid PNG to write (default outputs/MODEL-TIME.png)."),
    each: bool = typer.Option(False, "--each", help="Also write every image as its own PNG next to the grid."),
    save_scales: Optional[Path] = SaveScalesOpt,
    as_json: bool = JsonOpt,
):
    """Generate images and write them as one PNG grid (with all settings embedded)."""
    from ..output import grid, save_png, summary

    options = flags.options()
    flat, out_path, pipe, [ssg] = prepare(flags, classes, prompts, n, output, "", save_scales, [(ssg_on, ssg_beta)])
    kw = dict(options, seed=seed, ssg=ssg, rng=rng)
    kw["classes" if classes else "prompts"] = flat
    res = run_one(pipe, kw, f"{pipe.config.name}: {len(flat)} image(s)", save_scales, "ssg-" if ssg else "plain-")
    cols = grid_cols(len(flat), n)
    meta = {"grid": {"rows": math.ceil(len(flat) / cols), "cols": cols}, "images": res.settings}
    save_png(grid(res.images, cols=cols), out_path, meta, text=" | ".join(summary(s) for s in res.settings))
    written = [str(out_path)]
    if each:
        for i, (im, s) in enumerate(zip(res.images, res.settings)):
            p = out_path.with_name(f"{out_path.stem}-{i:03d}.png")
            save_png(im, p, s, text=summary(s))
            written.append(str(p))
    if as_json:
        print(json.dumps({"files": written, "seconds": round(res.seconds, 3), "images": res.settings}))
    else:
        print(f"wrote {out_path} ({len(flat)} image(s), {res.seconds:.1f} s)")


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
    ssg_beta: Optional[List[str]] = typer.Option(
        None, "--ssg-beta", rich_help_panel="SSG", help="One SSG column per occurrence: 0.5, a per-scale list "
        "0,0,0.2,..., or linear:START:END (default: the model's SSG setting)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o",
                                          help="Comparison grid to write (default outputs/MODEL-compare-TIME.png)."),
    save_scales: Optional[Path] = SaveScalesOpt,
    as_json: bool = JsonOpt,
):
    """The same images without SSG and with each SSG setting, side by side (a column per setting)."""
    from ..output import grid, save_png, summary

    options = flags.options()
    flat, out_path, pipe, settings = prepare(flags, classes, prompts, n, output, "-compare", save_scales,
                                             [(True, b) for b in (ssg_beta or [None])])
    for s in settings:
        s.plan(pipe.num_scales(**options))  # check every column against the model before generating anything
    kw = dict(options, seed=seed, rng=rng)
    kw["classes" if classes else "prompts"] = flat
    columns = [("no SSG", False)] + [(s.label(), s) for s in settings]
    results = [run_one(pipe, dict(kw, ssg=s), f"{label}: {len(flat)} image(s)", save_scales, f"col{j}-")
               for j, (label, s) in enumerate(columns)]
    cells = [res.images[i] for i in range(len(flat)) for res in results]  # a row per image
    cell_meta = [res.settings[i] for i in range(len(flat)) for res in results]
    rows = [f"class {c}" if classes else (c if len(c) <= 24 else c[:23] + "…") for c in flat]
    rows = [f"{r}, seed {s}" for r, s in zip(rows, results[0].seeds)]
    labels = [label for label, _ in columns]
    img = grid(cells, cols=len(columns), col_labels=labels, row_labels=rows)
    meta = {"grid": {"rows": len(flat), "cols": len(columns), "columns": labels}, "images": cell_meta}
    save_png(img, out_path, meta, text=" | ".join(summary(s) for s in cell_meta))
    if as_json:
        print(json.dumps({"files": [str(out_path)], "columns": labels, "images": cell_meta}))
    else:
        print(f"wrote {out_path} ({len(flat)} image(s) x {len(columns)} settings)")
