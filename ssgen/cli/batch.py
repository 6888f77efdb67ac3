"""`ssgen batch`: parse the flags into jobs and options, then `ssgen.batch.run` does the work (resume,
torchrun sharding, progress); this prints its report."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..terminal import safe
from .app import app, friendly
from .options import BetaOpt, GenFlags, SsgOpt, build_ssg, gen_options


@app.command()
@friendly
@gen_options
def batch(
    flags: GenFlags,
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
    batch_size: Optional[int] = typer.Option(None, "--batch-size", "-b", help="Images per forward pass, per process "
                                             "(default 8 on a CPU, 32 on a GPU: the images do not depend on it)."),
    ssg_on: Optional[bool] = SsgOpt,
    ssg_beta: Optional[str] = BetaOpt,
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a folder that holds another run's images."),
):
    """Generate many images into a folder; resumable; shards across processes under torchrun."""
    from .. import batch as B
    from ..config import load_config

    config = load_config(flags.model)
    options: dict = {}
    if preset is not None:
        pr = B.preset(preset, config)
        options.update(pr["options"])
        if not (jobs_file or classes or prompts_file):
            classes, per_class = pr["classes"], pr["per_class"]
    jobs = B.jobs_of(config, jobs_file, classes, per_class, prompts_file, per_prompt, seed)
    options.update(flags.options())
    ssg = build_ssg(config, flags, ssg_on, ssg_beta)
    from .plan import batch_size_of

    batch_size, _ = batch_size_of(batch_size, len(jobs), "per-image", flags.device)
    report = B.run(config, jobs, out_dir, options=options, ssg=ssg, batch_size=batch_size, device=flags.device,
                   dtype=flags.dtype, offline=True if flags.offline else None, overwrite=overwrite,
                   compile=flags.compile_mode())
    if report.rank == 0:
        fast = report.generated and report.seconds > 0
        rate = f", {report.generated * report.world / report.seconds:.2f} images/s" if fast else ""
        print(f"{safe(out_dir, markup=False)}: {report.present}/{report.total} images ({report.skipped} of rank 0's "
              f"{report.mine} were already there){rate}; manifest {safe(out_dir / B.MANIFEST, markup=False)}")
