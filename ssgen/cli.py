"""The `ssgen` command line: a thin layer that parses, calls the API and prints with rich.

Bad input ends with a one-line `error: ...` on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import functools
import json
import math
import sys
import time
from pathlib import Path
from typing import Callable, List, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from .errors import ConfigError, SSGenError

app = typer.Typer(add_completion=True, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Multi-scale visual autoregressive image generation (VAR, Infinity, HART) with SSG.")
models_app = typer.Typer(no_args_is_help=True, help="List, download, locate and remove model weights.")
app.add_typer(models_app, name="models")

out = Console()
err = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        from . import __version__

        print(f"ssgen {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Multi-scale visual autoregressive image generation (VAR, Infinity, HART) with SSG."""


def friendly(fn: Callable) -> Callable:
    """Turn SSGenError into a one-line message and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SSGenError as e:
            err.print(f"[bold red]error:[/] {e}", highlight=False, markup=True, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper


# ----------------------------------------------------------------------------------------------
# shared option parsing
# ----------------------------------------------------------------------------------------------


def parse_cfg(text: str | None, flag: str = "--cfg") -> float | list[float] | None:
    if text is None:
        return None
    try:
        vals = [float(v) for v in text.split(",")]
    except ValueError:
        raise ConfigError(f"malformed {flag} {text!r}; use a number (4.0) or one value per scale (0,1,2,...)") from None
    return vals[0] if len(vals) == 1 else vals


def build_ssg(config, on: bool | None, beta: str | None, scales: str | None, prior: str | None,
              interp: str | None, no_rescale: bool):
    """The SSG setting from CLI flags on top of the model config's default. Returns an SSG, or False for off."""
    from .guidance import SSG, parse_beta, parse_scales

    if on is False:
        return False
    base = config.ssg or SSG()
    if on is None and config.ssg is None and not any([beta, scales, prior, interp, no_rescale]):
        return False
    kw = base.to_dict()
    if beta is not None:
        kw["beta"] = parse_beta(beta)
    if scales is not None:
        kw["scales"] = parse_scales(scales)
    if prior is not None:
        kw["prior"] = prior
    if interp is not None:
        kw["interp"] = interp
    if no_rescale:
        kw["rescale"] = False
    kw["scales"] = tuple(kw["scales"])
    return SSG(**kw)


def conditions(classes: list[int] | None, prompts: list[str] | None, n: int):
    if n < 1:
        raise ConfigError(f"-n must be at least 1, got {n}")
    if classes and prompts:
        raise ConfigError("give either --class (VAR) or --prompt (Infinity, HART), not both")
    if not classes and not prompts:
        raise ConfigError("nothing to generate: add --class N (VAR models) or --prompt TEXT (text-to-image models)")
    conds = classes or prompts
    flat = [c for c in conds for _ in range(n)]
    return flat, len(conds)


def default_output(model: str, kind: str = "") -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = Path(model).stem if model.endswith((".yaml", ".yml")) else model
    return Path("outputs") / f"{name}{kind}-{stamp}.png"


def scale_progress(total_scales: int, label: str):
    """A rich progress bar over scales; returns (progress, callback)."""
    prog = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("scales"), TimeElapsedColumn(), console=err, transient=True)
    task = prog.add_task(label, total=total_scales)

    def cb(k, backend):
        prog.update(task, completed=k + 1)

    return prog, task, cb


def go_offline() -> None:
    """--offline: like HF_HUB_OFFLINE=1 for the whole process, so huggingface_hub (which reads it at
    import) sends no request at all, not even its own telemetry."""
    import os

    os.environ["HF_HUB_OFFLINE"] = "1"
    if "huggingface_hub" in sys.modules:
        sys.modules["huggingface_hub"].constants.HF_HUB_OFFLINE = True


def load_pipe(model, device: str, dtype: str, offline: bool, show: bool = True):
    """Load a model (name, YAML path or ModelConfig); `show=False` (batch ranks other than 0) prints nothing."""
    from .pipeline import load

    if offline:
        go_offline()

    # no spinner here: downloads draw their own rich progress bars (only one live display at a time)
    if show and err.is_terminal:
        err.print(f"[dim]loading {getattr(model, 'name', model)} ...[/]", highlight=False)
    return load(model, device=device, dtype=dtype, offline=True if offline else None, progress=show)


# ----------------------------------------------------------------------------------------------
# commands
# ----------------------------------------------------------------------------------------------

ModelOpt = typer.Option(..., "--model", "-m",
                        help="A registered model name (see `ssgen models list`) or a YAML config.")
ClassOpt = typer.Option(None, "--class", "-c", help="ImageNet class index 0..999 (VAR); repeat for several.")
PromptOpt = typer.Option(None, "--prompt", "-p", help="Text prompt (Infinity, HART); repeat for several.")
NOpt = typer.Option(1, "-n", "--num", help="Images per class/prompt.")
SeedOpt = typer.Option(0, "--seed", "-s", help="Base seed; image i uses seed + i.")
CfgOpt = typer.Option(None, "--cfg", help="Classifier-free guidance: a number, or one value per scale (a,b,...).")
TopKOpt = typer.Option(None, "--top-k", help="Top-k filtering (0 = off).")
TopPOpt = typer.Option(None, "--top-p", help="Top-p (nucleus) filtering (0 = off).")
SmoothOpt = typer.Option(None, "--more-smooth/--no-more-smooth", help="Gumbel-smoothed token embeddings (VAR, HART).")
RngOpt = typer.Option("per-image", "--rng",
                      help="per-image (each image its own generator) or batch (official order).")
DeviceOpt = typer.Option("auto", "--device", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N, mps.")
DtypeOpt = typer.Option("auto", "--dtype",
                        help="auto, float32, bfloat16, float16 (bf16 is much faster on AMX CPUs).")
OfflineOpt = typer.Option(False, "--offline",
                          help="Use only weights already in the local cache (like HF_HUB_OFFLINE=1).")
SsgOpt = typer.Option(None, "--ssg/--no-ssg", help="Turn SSG on/off (default: the model config's setting).")
BetaOpt = typer.Option(None, "--ssg-beta", help="SSG strength: 0.5, a per-scale list 0,0,0.2,..., or linear:START:END.")
ScalesOpt = typer.Option(None, "--ssg-scales",
                         help="Inclusive 0-based scale range, e.g. 2-9 (negatives count from the end).")
PriorOpt = typer.Option(None, "--ssg-prior",
                        help="dse (default), or an ablation prior: bilinear, bicubic, nearest, area.")
InterpOpt = typer.Option(None, "--dse-interp", help="DSE interpolation: bilinear (default) or bicubic.")
NoRescaleOpt = typer.Option(False, "--dse-no-rescale", help="Do not rescale the coarse DCT band.")


NegOpt = typer.Option(None, "--negative-prompt", help="Negative prompt (Infinity).")
TauOpt = typer.Option(None, "--tau", help="Sampling temperature (Infinity): a number or one value per scale.")
SizeOpt = typer.Option(None, "--size", help="Output size WxH (Infinity: the nearest official template is used).")
AspectOpt = typer.Option(None, "--aspect", help="Aspect ratio W:H (Infinity: the nearest official template).")
PnOpt = typer.Option(None, "--pn", help="Infinity resolution budget: 0.06M, 0.25M, 0.60M or 1M.")
SysPromptOpt = typer.Option(None, "--system-prompt/--no-system-prompt", help="HART's conditioning prefix.")
ResidualOpt = typer.Option(None, "--residual/--no-residual", help="HART's residual diffusion head.")
OffloadOpt = typer.Option(None, "--offload/--no-offload",
                          help="Infinity: move the text encoder off the GPU once prompts are encoded.")
SafetyOpt = typer.Option(None, "--safety-check/--no-safety-check",
                         help="HART: check prompts with ShieldGemma-2B (gated: accept its licence, set HF_TOKEN).")


def family_options(negative_prompt=None, tau=None, size=None, aspect=None, pn=None, system_prompt=None,
                   residual=None, safety_check=None, offload=None) -> dict:
    """Family-specific options that were given on the command line (the family validates them)."""
    d = dict(negative_prompt=negative_prompt, tau=parse_cfg(tau, "--tau") if tau is not None else None, size=size,
             aspect=aspect, pn=pn, system_prompt=system_prompt, residual=residual, safety_check=safety_check,
             offload=offload)
    return {k: v for k, v in d.items() if v is not None}


SaveScalesOpt = typer.Option(None, "--save-scales",
                             help="Also decode and save the partial image after every scale into this folder.")


class ScaleSaver:
    """on_scale callback for --save-scales: decode the running latent after every scale and write
    DIR/{tag}{i:03d}-k{k:02d}.png, plus a strip DIR/{tag}{i:03d}-scales.png per image at the end."""

    def __init__(self, folder: Path, tag: str, settings: dict):
        self.folder, self.tag, self.settings = folder, tag, settings
        self.frames: list[list] = []  # per scale: list of PIL images (one per batch image)

    def __call__(self, k: int, backend) -> None:
        from .output import save_png
        from .pipeline import to_pil

        ims = to_pil(backend.preview())
        self.frames.append(ims)
        for i, im in enumerate(ims):
            save_png(im, self.folder / f"{self.tag}{i:03d}-k{k:02d}.png", dict(self.settings, scale=k, image=i))

    def strips(self) -> None:
        from .output import grid, save_png

        for i in range(len(self.frames[0]) if self.frames else 0):
            row = [f[i] for f in self.frames]
            save_png(grid(row, cols=len(row), col_labels=[f"k={k}" for k in range(len(row))]),
                     self.folder / f"{self.tag}{i:03d}-scales.png", dict(self.settings, image=i))


def chain(*callbacks):
    """One on_scale callback calling several (skipping None)."""
    cbs = [c for c in callbacks if c is not None]
    return lambda k, backend: [c(k, backend) for c in cbs]


def grid_cols(n_images: int, per_cond: int) -> int:
    if per_cond > 1:
        return per_cond
    return n_images if n_images <= 8 else math.ceil(math.sqrt(n_images))


def prepare(model, classes, prompts, n, output, kind, device, dtype, offline, save_scales, ssg_flags):
    """Shared start of generate/compare: validate the config, conditions, SSG flags and output paths
    before any weights are downloaded or loaded. `ssg_flags` are build_ssg's arguments after the config."""
    from .config import load_config
    from .output import check_writable

    config = load_config(model)
    flat, n_conds = conditions(classes, prompts, n)
    config.check_conditions(classes, prompts)
    for flags in ssg_flags:
        build_ssg(config, *flags)
    out_path = check_writable(output or default_output(model, kind))
    if save_scales is not None:
        check_writable(Path(save_scales) / "probe.png")
    pipe = load_pipe(config, device, dtype, offline)
    return flat, n_conds, out_path, pipe


def run_one(pipe, kw: dict, label: str, save_scales: Path | None, tag: str):
    """One generate call with a progress bar over scales (and --save-scales frames)."""
    saver = ScaleSaver(Path(save_scales), tag, {"model": pipe.config.name, "run": label}) if save_scales else None
    opts = {k: v for k, v in kw.items() if k not in ("seed", "ssg", "rng", "classes", "prompts")}  # the options
    prog, _, cb = scale_progress(pipe.num_scales(**opts), label)
    with prog:
        res = pipe.generate(on_scale=chain(cb, saver), **kw)
    if saver is not None:
        saver.strips()
    for note in res.notes:
        err.print(f"[yellow]note:[/] {note}", highlight=False)
    return res


@app.command()
@friendly
def generate(
    model: str = ModelOpt,
    classes: Optional[List[int]] = ClassOpt,
    prompts: Optional[List[str]] = PromptOpt,
    n: int = NOpt,
    seed: int = SeedOpt,
    cfg: Optional[str] = CfgOpt,
    top_k: Optional[int] = TopKOpt,
    top_p: Optional[float] = TopPOpt,
    more_smooth: Optional[bool] = SmoothOpt,
    ssg_on: Optional[bool] = SsgOpt,
    ssg_beta: Optional[str] = BetaOpt,
    ssg_scales: Optional[str] = ScalesOpt,
    ssg_prior: Optional[str] = PriorOpt,
    dse_interp: Optional[str] = InterpOpt,
    dse_no_rescale: bool = NoRescaleOpt,
    rng: str = RngOpt,
    device: str = DeviceOpt,
    dtype: str = DtypeOpt,
    output: Optional[Path] = typer.Option(None, "--output", "-o",
                                          help="Grid PNG to write (default outputs/MODEL-TIME.png)."),
    each: bool = typer.Option(False, "--each", help="Also write every image as its own PNG next to the grid."),
    negative_prompt: Optional[str] = NegOpt,
    tau: Optional[str] = TauOpt,
    size: Optional[str] = SizeOpt,
    aspect: Optional[str] = AspectOpt,
    pn: Optional[str] = PnOpt,
    system_prompt: Optional[bool] = SysPromptOpt,
    residual: Optional[bool] = ResidualOpt,
    safety_check: Optional[bool] = SafetyOpt,
    offload: Optional[bool] = OffloadOpt,
    save_scales: Optional[Path] = SaveScalesOpt,
    offline: bool = OfflineOpt,
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary instead of text."),
):
    """Generate images and write them as one PNG grid (with all settings embedded)."""
    from .output import grid, save_png, summary

    parsed_cfg = parse_cfg(cfg)
    flat, n_conds, out_path, pipe = prepare(
        model, classes, prompts, n, output, "", device, dtype, offline, save_scales,
        [(ssg_on, ssg_beta, ssg_scales, ssg_prior, dse_interp, dse_no_rescale)])
    ssg = build_ssg(pipe.config, ssg_on, ssg_beta, ssg_scales, ssg_prior, dse_interp, dse_no_rescale)
    fam = family_options(negative_prompt, tau, size, aspect, pn, system_prompt, residual, safety_check, offload)
    kw = dict(seed=seed, cfg=parsed_cfg, top_k=top_k, top_p=top_p, more_smooth=more_smooth, ssg=ssg, rng=rng, **fam)
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
def compare(
    model: str = ModelOpt,
    classes: Optional[List[int]] = ClassOpt,
    prompts: Optional[List[str]] = PromptOpt,
    n: int = NOpt,
    seed: int = SeedOpt,
    cfg: Optional[str] = CfgOpt,
    top_k: Optional[int] = TopKOpt,
    top_p: Optional[float] = TopPOpt,
    more_smooth: Optional[bool] = SmoothOpt,
    ssg_beta: Optional[List[str]] = typer.Option(
        None, "--ssg-beta", help="One SSG column per occurrence: 0.5, a per-scale list 0,0,0.2,..., or "
        "linear:START:END (default: the model's SSG setting)."),
    ssg_scales: Optional[str] = ScalesOpt,
    ssg_prior: Optional[str] = PriorOpt,
    dse_interp: Optional[str] = InterpOpt,
    dse_no_rescale: bool = NoRescaleOpt,
    rng: str = RngOpt,
    device: str = DeviceOpt,
    dtype: str = DtypeOpt,
    output: Optional[Path] = typer.Option(None, "--output", "-o",
                                          help="Comparison grid to write (default outputs/MODEL-compare-TIME.png)."),
    negative_prompt: Optional[str] = NegOpt,
    tau: Optional[str] = TauOpt,
    size: Optional[str] = SizeOpt,
    aspect: Optional[str] = AspectOpt,
    pn: Optional[str] = PnOpt,
    system_prompt: Optional[bool] = SysPromptOpt,
    residual: Optional[bool] = ResidualOpt,
    safety_check: Optional[bool] = SafetyOpt,
    offload: Optional[bool] = OffloadOpt,
    save_scales: Optional[Path] = SaveScalesOpt,
    offline: bool = OfflineOpt,
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary instead of text."),
):
    """The same images without SSG and with each SSG setting, side by side (a column per setting)."""
    from .output import grid, save_png, summary

    parsed_cfg = parse_cfg(cfg)
    flat, _, out_path, pipe = prepare(
        model, classes, prompts, n, output, "-compare", device, dtype, offline, save_scales,
        [(True, b, ssg_scales, ssg_prior, dse_interp, dse_no_rescale) for b in (ssg_beta or [None])])
    settings = [build_ssg(pipe.config, True, b, ssg_scales, ssg_prior, dse_interp, dse_no_rescale)
                for b in (ssg_beta or [None])]
    extra = family_options(negative_prompt, tau, size, aspect, pn, system_prompt, residual, safety_check, offload)
    for s in settings:
        s.plan(pipe.num_scales(**extra))  # validate every column before generating anything
    kw = dict(seed=seed, cfg=parsed_cfg, top_k=top_k, top_p=top_p, more_smooth=more_smooth, rng=rng, **extra)
    kw["classes" if classes else "prompts"] = flat
    columns = [("no SSG", False)] + [(s.label(), s) for s in settings]
    results = [run_one(pipe, dict(kw, ssg=s), f"{label}: {len(flat)} image(s)", save_scales, f"col{j}-")
               for j, (label, s) in enumerate(columns)]
    cells = [res.images[i] for i in range(len(flat)) for res in results]  # row per image
    cell_meta = [res.settings[i] for i in range(len(flat)) for res in results]
    rows = [f"class {c}" if classes else (c if len(c) <= 24 else c[:23] + "…") for c in flat]
    rows = [f"{r}, seed {s}" for r, s in zip(rows, results[0].seeds)]
    img = grid(cells, cols=len(columns), col_labels=[label for label, _ in columns], row_labels=rows)
    meta = {"grid": {"rows": len(flat), "cols": len(columns), "columns": [label for label, _ in columns]},
            "images": cell_meta}
    save_png(img, out_path, meta, text=" | ".join(summary(s) for s in cell_meta))
    if as_json:
        print(json.dumps({"files": [str(out_path)], "columns": [label for label, _ in columns], "images": cell_meta}))
    else:
        print(f"wrote {out_path} ({len(flat)} image(s) x {len(columns)} settings)")


@app.command()
@friendly
def batch(
    model: str = ModelOpt,
    out_dir: Path = typer.Option(..., "--out", help="Output folder: one PNG per image, run.json, manifest.jsonl."),
    jobs_file: Optional[Path] = typer.Option(None, "--jobs", help="Jobs: YAML list, JSON Lines or CSV (class or "
                                             "prompt, seed, per-job overrides); one job = one image."),
    classes: Optional[str] = typer.Option(None, "--classes", help="Class range, e.g. 0-999 or 1,5,9 (VAR)."),
    per_class: int = typer.Option(1, "--per-class", help="Images per class with --classes."),
    prompts_file: Optional[Path] = typer.Option(None, "--prompts-file", help="One prompt per line."),
    per_prompt: int = typer.Option(1, "--per-prompt", help="Images per prompt with --prompts-file."),
    preset: Optional[str] = typer.Option(None, "--preset", help="imagenet-fid: 50 per class, cfg 1.5, top-k 900, "
                                         "top-p 0.96, no smoothing (VAR's evaluation protocol)."),
    seed: int = typer.Option(0, "--seed", "-s", help="Base seed: image i uses seed + i unless its job sets one."),
    batch_size: int = typer.Option(4, "--batch-size", "-b", help="Images per forward pass, per process."),
    cfg: Optional[str] = CfgOpt,
    top_k: Optional[int] = TopKOpt,
    top_p: Optional[float] = TopPOpt,
    more_smooth: Optional[bool] = SmoothOpt,
    ssg_on: Optional[bool] = SsgOpt,
    ssg_beta: Optional[str] = BetaOpt,
    ssg_scales: Optional[str] = ScalesOpt,
    ssg_prior: Optional[str] = PriorOpt,
    dse_interp: Optional[str] = InterpOpt,
    dse_no_rescale: bool = NoRescaleOpt,
    negative_prompt: Optional[str] = NegOpt,
    tau: Optional[str] = TauOpt,
    size: Optional[str] = SizeOpt,
    aspect: Optional[str] = AspectOpt,
    pn: Optional[str] = PnOpt,
    system_prompt: Optional[bool] = SysPromptOpt,
    residual: Optional[bool] = ResidualOpt,
    safety_check: Optional[bool] = SafetyOpt,
    offload: Optional[bool] = OffloadOpt,
    device: str = DeviceOpt,
    dtype: str = DtypeOpt,
    offline: bool = OfflineOpt,
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a folder that holds another run's images."),
):
    """Generate many images into a folder; resumable; shards across processes under torchrun."""
    from . import batch as B
    from .config import load_config

    rank, world, local_rank = B.dist_env()
    config = load_config(model)
    options: dict = {}
    if preset is not None:
        if preset not in B.PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; known: {', '.join(B.PRESETS)}")
        pr = B.PRESETS[preset]
        if pr["family"] != config.family:
            raise ConfigError(f"preset {preset} is for {pr['family'].upper()} models; {config.name} is "
                              f"{config.family}")
        options.update(pr["options"])
        if not (jobs_file or classes or prompts_file):
            classes, per_class = pr["classes"], pr["per_class"]
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {batch_size}")
    if jobs_file is not None:
        if classes or prompts_file:
            raise ConfigError("give either --jobs or --classes/--prompts-file, not both")
        jobs = B.read_jobs(jobs_file, seed)
    else:
        jobs = B.jobs_from_flags(classes, per_class, str(prompts_file) if prompts_file else None, per_prompt, seed)
    B.validate_jobs(jobs, config)
    fam = family_options(negative_prompt, tau, size, aspect, pn, system_prompt, residual, safety_check, offload)
    flags = dict(cfg=parse_cfg(cfg), top_k=top_k, top_p=top_p, more_smooth=more_smooth, **fam)
    options.update({k: v for k, v in flags.items() if v is not None})
    ssg = build_ssg(config, ssg_on, ssg_beta, ssg_scales, ssg_prior, dse_interp, dse_no_rescale) or None
    record = B.run_record(config, options, ssg, jobs)

    dist = None
    if world > 1:
        import torch
        import torch.distributed as dist

        use_cuda = device in ("auto", "cuda") and torch.cuda.is_available()
        if use_cuda:
            torch.cuda.set_device(local_rank)
            device = f"cuda:{local_rank}"
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    try:
        problem = None
        if rank == 0:
            try:
                B.check_run_folder(out_dir, record, overwrite)
            except SSGenError as e:
                problem = str(e)
        if dist is not None:
            box = [problem]
            dist.broadcast_object_list(box, src=0)
            problem = box[0]
        if problem:
            raise SSGenError(problem)
        pipe = load_pipe(config, device, dtype, offline, show=rank == 0)
        mine = jobs[rank::world]
        todo = [j for j in mine if not B.is_complete(B.image_path(out_dir, j.index))]
        t0 = time.perf_counter()
        _run_batches(pipe, todo, options, ssg, batch_size, out_dir, rank, world, len(mine))
        if dist is not None:
            dist.barrier()
        if rank == 0:
            n = B.write_manifest(out_dir, len(jobs))
            dt = time.perf_counter() - t0
            done = len(todo) * world
            rate = f", {done / dt:.2f} images/s" if todo and dt > 0 else ""
            print(f"{out_dir}: {n}/{len(jobs)} images ({len(mine) - len(todo)} of rank 0's {len(mine)} were "
                  f"already there){rate}; manifest {out_dir / B.MANIFEST}")
            if n != len(jobs):
                raise SSGenError(f"{len(jobs) - n} images are missing in {out_dir}; re-run the same command")
    finally:
        if dist is not None and dist.is_initialized():
            dist.destroy_process_group()


def _run_batches(pipe, todo, options, ssg, batch_size, out_dir, rank, world, n_mine) -> None:
    """Generate this rank's missing images, batch by batch, each written atomically with its settings."""
    from . import batch as B
    from .guidance import SSG
    from .output import save_png, summary

    prog = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                    console=err, disable=rank != 0)
    label = f"{pipe.config.name}" + (f" (rank 0 of {world})" if world > 1 else "")
    with prog:
        task = prog.add_task(label, total=n_mine, completed=n_mine - len(todo), rate="")
        t0, done = time.perf_counter(), 0
        for group in B.groups(todo, batch_size):
            opts = {**options, **group[0].overrides}
            job_ssg = opts.pop("ssg", ssg)
            if isinstance(job_ssg, dict):
                job_ssg = SSG(**{k: tuple(v) if k == "scales" else v for k, v in job_ssg.items()})
            if group[0].cls is not None:
                kw = {"classes": [j.cls for j in group]}
            else:
                kw = {"prompts": [j.prompt for j in group]}
            res = pipe.generate(**kw, seeds=[j.seed for j in group], ssg=job_ssg or False, rng="per-image", **opts)
            for j, im, st in zip(group, res.images, res.settings):
                st = dict(st, index=j.index)
                st.pop("batch_index", None)
                save_png(im, B.image_path(out_dir, j.index), st, text=summary(st))
            done += len(group)
            rate = done * world / (time.perf_counter() - t0)
            prog.update(task, advance=len(group), rate=f"{rate:.2f} img/s" + (" (all ranks)" if world > 1 else ""))


@app.command()
@friendly
def info(image: Path = typer.Argument(..., help="A PNG written by ssgen."),
         as_json: bool = typer.Option(False, "--json", help="Print the raw JSON.")):
    """Print the settings embedded in a PNG written by ssgen."""
    from .output import read_metadata

    meta = read_metadata(image)
    if as_json:
        print(json.dumps(meta, indent=2, sort_keys=True))
        return
    images = meta.get("images", [meta])
    if "grid" in meta:
        out.print(f"{image}: grid of {len(images)} image(s), {meta['grid'].get('rows')} x {meta['grid'].get('cols')}")
    for i, s in enumerate(images):
        t = Table(title=f"image {i}" if len(images) > 1 else None, show_header=False, box=None)
        for k in sorted(s):
            v = s[k]
            t.add_row(k, json.dumps(v) if isinstance(v, (dict, list)) else str(v))
        out.print(t)


@app.command("pack-npz")
@friendly
def pack_npz(folder: Path = typer.Argument(..., help="A folder written by `ssgen batch`."),
             output: Optional[Path] = typer.Option(None, "--output", "-o", help="Default: FOLDER.npz"),
             num: Optional[int] = typer.Option(None, "--num", help="Images to pack (default: the run's count).")):
    """Pack a batch folder into the `arr_0` (N, H, W, 3) uint8 .npz that FID evaluators read."""
    from .batch import pack_npz as pack

    path, shape = pack(folder, output, num)
    print(f"wrote {path}: arr_0 {shape} uint8")


# ----------------------------------------------------------------------------------------------
# models
# ----------------------------------------------------------------------------------------------


def _specs(name: str):
    from .config import load_config

    cfg = load_config(name)
    return cfg, list(cfg.weights.values())


@models_app.command("list")
@friendly
def models_list(as_json: bool = typer.Option(False, "--json")):
    """List the registered models and whether their weights are cached."""
    from .config import read_config, registry

    rows = []
    for name, path in registry().items():
        c = read_config(path)
        cached = all(_is_local(c, role) for role in c.weights)
        rows.append({"name": name, "family": c.family, "description": c.description, "cached": cached,
                     "ssg": c.ssg.to_dict() if c.ssg else None})
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    t = Table("model", "family", "cached", "description")
    for r in rows:
        t.add_row(r["name"], r["family"], "yes" if r["cached"] else "-", r["description"])
    out.print(t)


def _is_local(config, role: str) -> bool:
    """Whether a weights role is on disk already (a cached Hub file or folder, or a local path)."""
    from .pipeline import resolve_weight

    try:
        resolve_weight(config, role, offline=True, progress=False)
        return True
    except SSGenError:
        return False


@models_app.command("download")
@friendly
def models_download(name: str = typer.Argument(..., help="Model name or YAML config.")):
    """Download (and verify) every weight file of a model into the Hugging Face cache."""
    from .pipeline import resolve_weight

    cfg, specs = _specs(name)
    for s in specs:
        p = resolve_weight(cfg, s.role)
        print(f"{s.role}: {p}")


@models_app.command("path")
@friendly
def models_path(name: str = typer.Argument(..., help="Model name or YAML config.")):
    """Print the local paths of a model's weights (offline; fails if not downloaded)."""
    from .pipeline import resolve_weight

    go_offline()
    cfg, specs = _specs(name)
    for s in specs:
        print(f"{s.role}: {resolve_weight(cfg, s.role, offline=True)}")


@models_app.command("remove")
@friendly
def models_remove(name: str = typer.Argument(..., help="Model name or YAML config."),
                  yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation.")):
    """Remove a model's downloaded files from the Hugging Face cache."""
    from . import hub

    cfg, specs = _specs(name)
    hub_specs = [s for s in specs if s.repo]
    if not hub_specs:
        out.print(f"{cfg.name} uses only local files; nothing to remove")
        return
    if not yes and not typer.confirm(f"remove the cached weights of {cfg.name}?"):
        raise typer.Exit(1)
    freed = sum(hub.remove_cached_file(s.repo, s.file, s.revision) if s.file else
                hub.remove_cached(s.repo, s.revision) for s in hub_specs)
    out.print(f"removed {freed / 1e6:.1f} MB")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
