"""`ssgen sweep`: generate a grid of settings (a batch folder per cell, the same seeds in every cell) and
evaluate every cell against one reference (ssgen/sweep.py does the work); prints the table and the best cell."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import List, Optional

import typer

from ..errors import ConfigError
from ..terminal import safe
from .app import app, friendly, out
from .options import parse_cfg

EVAL_PANEL = "Evaluation"
GRID_PANEL = "Grid (each option may be given several times: one cell per combination)"


def _family_list_options() -> list[inspect.Parameter]:
    """The families' own text and per-scale flags as repeatable options (`--tau 0.5 --tau 1`); their on/off
    flags are not swept."""
    from .options import family_flags

    params = []
    for flag in family_flags().values():
        if flag.kind == "bool":
            continue
        opt = typer.Option(None, flag.decl, rich_help_panel=GRID_PANEL, help=flag.help + " Repeat to sweep.")
        each = {"int": int, "number": float}.get(flag.kind, str)  # Typer parses whole numbers and numbers
        params.append(inspect.Parameter(flag.name, inspect.Parameter.KEYWORD_ONLY, default=opt,
                                        annotation=Optional[List[each]]))
    return params


def sweep(
    model: str = typer.Option(..., "--model", "-m", help="A registered model name or a YAML config."),
    out_dir: Path = typer.Option(..., "--out", help="Output folder: cells/<cell>/ batch folders, sweep.json, "
                                 "sweep.csv, sweep.png."),
    ref: Path = typer.Option(..., "--ref", rich_help_panel=EVAL_PANEL,
                             help="Reference: an ADM reference batch (.npz) or a folder/npz of images."),
    cfg: Optional[List[str]] = typer.Option(None, "--cfg", rich_help_panel=GRID_PANEL,
                                            help="CFG: a number or one value per scale; repeat to sweep."),
    top_k: Optional[List[int]] = typer.Option(None, "--top-k", rich_help_panel=GRID_PANEL, help="Top-k; repeat."),
    top_p: Optional[List[float]] = typer.Option(None, "--top-p", rich_help_panel=GRID_PANEL, help="Top-p; repeat."),
    ssg_beta: Optional[List[str]] = typer.Option(None, "--ssg-beta", rich_help_panel=GRID_PANEL,
                                                 help="SSG strength (0.5, a per-scale list, linear:A:B); repeat."),
    ssg_scales: Optional[List[str]] = typer.Option(None, "--ssg-scales", rich_help_panel=GRID_PANEL,
                                                   help="SSG scale range (e.g. 2-9); repeat."),
    ssg_prior: Optional[List[str]] = typer.Option(None, "--ssg-prior", rich_help_panel=GRID_PANEL,
                                                  help="SSG prior (dse, bilinear, ...); repeat."),
    no_ssg: bool = typer.Option(False, "--no-ssg", rich_help_panel=GRID_PANEL,
                                help="Add a cell without SSG for every setting of the other options."),
    classes: Optional[str] = typer.Option(None, "--classes", help="Class range, e.g. 0-999 or 1,5,9 (VAR)."),
    per_class: int = typer.Option(1, "--per-class", help="Images per class with --classes."),
    prompts_file: Optional[Path] = typer.Option(None, "--prompts-file", help="One prompt per line."),
    per_prompt: int = typer.Option(1, "--per-prompt", help="Images per prompt with --prompts-file."),
    jobs_file: Optional[Path] = typer.Option(None, "--jobs", help="Jobs: YAML, JSON Lines or CSV (as ssgen batch)."),
    seed: int = typer.Option(0, "--seed", "-s", help="Base seed: image i uses seed + i in every cell."),
    batch_size: int = typer.Option(4, "--batch-size", "-b", help="Images per forward pass, per process."),
    metrics: Optional[str] = typer.Option(None, "--metrics", rich_help_panel=EVAL_PANEL,
                                          help="Comma-separated: fid,sfid,is,precision,recall (default: all the "
                                          "reference allows)."),
    best_by: str = typer.Option("fid", "--best", rich_help_panel=EVAL_PANEL, help="The metric that picks the best "
                                "cell (fid, sfid: lowest; is, precision, recall: highest)."),
    bootstrap: int = typer.Option(0, "--bootstrap", rich_help_panel=EVAL_PANEL,
                                  help="Resamples for a 95% interval of every metric (0 = none)."),
    inception: Optional[Path] = typer.Option(None, "--inception", rich_help_panel=EVAL_PANEL,
                                             help="The Inception weights file (default: the cached download)."),
    eval_batch_size: Optional[int] = typer.Option(None, "--eval-batch-size", rich_help_panel=EVAL_PANEL,
                                                  help="Images per Inception forward pass."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N, mps."),
    dtype: str = typer.Option("auto", "--dtype", help="auto, float32, bfloat16, float16 (generation only)."),
    offline: bool = typer.Option(False, "--offline", help="Use only files already in the local cache."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace cell folders that hold another run."),
    as_json: bool = typer.Option(False, "--json", help="Print sweep.json's cells as JSON instead of a table."),
    **family,
):
    """Generate a grid of settings and evaluate every cell: one batch folder per cell with the same seeds
    (a paired comparison), FID/sFID/IS/precision/recall against one reference, sweep.csv, sweep.json, a plot,
    and the best cell. Resumable: run the same command again after an interruption."""
    from .. import batch as B
    from .. import sweep as S
    from ..config import load_config

    config = load_config(model)
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {batch_size}")
    if best_by not in S.LOWER_IS_BETTER:
        raise ConfigError(f"unknown --best metric {best_by!r}; use one of: {', '.join(S.LOWER_IS_BETTER)}")
    wanted = [m.strip() for m in metrics.split(",")] if metrics else None
    if wanted is not None and best_by not in wanted:
        raise ConfigError(f"--best {best_by} is not among --metrics {metrics}")
    jobs = B.jobs_of(config, jobs_file, classes, per_class, prompts_file, per_prompt, seed)
    from .options import family_flags

    flags = family_flags()
    swept = {"cfg": [parse_cfg(c) for c in cfg or []], "top_k": list(top_k or []), "top_p": list(top_p or []),
             "ssg_beta": list(ssg_beta or []), "ssg_scales": list(ssg_scales or []),
             "ssg_prior": list(ssg_prior or [])}
    for name, values in family.items():
        kind = flags[name].kind
        swept[name] = [parse_cfg(v, flags[name].decl) if kind == "per-scale" else v for v in values or []]
    cells = S.grid(config, swept, no_ssg)
    report = S.run(config, jobs, out_dir, cells, ref, metrics=wanted, batch_size=batch_size, device=device,
                   dtype=dtype, offline=True if offline else None, inception=inception, bootstrap=bootstrap,
                   eval_batch_size=eval_batch_size, overwrite=overwrite)
    if report.rank != 0:
        return
    if as_json:
        print(json.dumps([r.__dict__ for r in report.rows], default=str))
        return
    _print_table(report.rows)
    top = S.best(report.rows, best_by)
    iv = top.intervals.get(best_by)
    ci = f" (95% interval {iv[0]:.4g}-{iv[1]:.4g})" if iv else ""
    out.print(safe(f"best by {best_by}: {top.cell} with {best_by} {top.metrics[best_by]:.4g}{ci}", markup=False),
              highlight=False, markup=False)
    out.print("wrote " + ", ".join(safe(f, markup=False) for f in report.files), highlight=False, markup=False)


def _print_table(rows) -> None:
    from rich.table import Table
    from rich.text import Text

    names = list(dict.fromkeys(m for r in rows for m in r.metrics))
    t = Table(show_header=True)
    for col in ["cell"] + names + ["s/image"]:
        t.add_column(col)
    for r in rows:
        cells = [Text(safe(r.cell, markup=False))]
        for m in names:
            v, iv = r.metrics.get(m), r.intervals.get(m)
            cells.append(Text("" if v is None else f"{v:.4g}" + (f" [{iv[0]:.4g}, {iv[1]:.4g}]" if iv else "")))
        cells.append(Text("" if r.seconds_per_image is None else f"{r.seconds_per_image:.2f}"))
        t.add_row(*cells)
    out.print(t)


def _register() -> None:
    """The families' flags join the command's parameters (as in cli/options.gen_options), then Typer sees it."""
    sig = inspect.signature(sweep)
    params = [p for p in sig.parameters.values() if p.kind != inspect.Parameter.VAR_KEYWORD]
    params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in params] + _family_list_options()
    sweep.__signature__ = inspect.Signature(params)
    sweep.__annotations__ = {p.name: p.annotation for p in params}
    app.command()(friendly(sweep))


_register()
