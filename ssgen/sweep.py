"""`ssgen sweep`: a grid of settings (cells), one batch folder per cell with the same jobs and seeds in every
cell (a paired comparison), then `ssgen.eval.evaluate` on each cell against one reference; `sweep.csv`,
`sweep.json` and a plot, and the best cell by the metric asked for.

    out/
      cells/<cell>/        a batch folder per cell (ssgen.batch: NNNNNN.png, run.json, manifest.jsonl)
      sweep.json           the cells: settings, every metric with its interval, seconds per image, folder
      sweep.csv            the same, one row per cell
      sweep.png            FID against IS across cfg (one curve per SSG setting, no-SSG dashed), or FID
                           against beta when cfg is fixed (needs matplotlib: `pip install 'ssgen[eval]'`)

Every cell is `ssgen.batch.run` (resumable, torchrun-shardable, the same runner as `ssgen batch`), and a
re-run of the same command resumes where it stopped: finished cells are skipped image by image, and
features computed once are read from the evaluation cache. Under torchrun every process generates its share
of every cell; rank 0 evaluates and writes the tables.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .atomic import write_atomic
from .errors import ConfigError, SSGenError
from .settings import SSG
from .textfile import read_text

LOWER_IS_BETTER = {"fid": True, "sfid": True, "is": False, "precision": False, "recall": False, "clip": False}
SSG_FIELDS = {"ssg_beta": "beta", "ssg_scales": "scales", "ssg_prior": "prior"}
SHORT = {"ssg_beta": "beta", "ssg_scales": "scales", "ssg_prior": "prior", "top_k": "topk", "top_p": "topp"}


@dataclass(frozen=True)
class Cell:
    """One setting of the grid: generate options and an SSG setting (False = off)."""

    name: str  # "cfg=1.5 beta=0.25", what tables and the plot show
    options: dict[str, Any]
    ssg: SSG | bool
    values: dict[str, Any] = field(default_factory=dict)  # the swept values, by option name

    @property
    def folder(self) -> str:
        """The cell's folder name: its values, filesystem-safe ("cfg1.5_beta0.25", "cfg1.5_nossg")."""
        slug = re.sub(r"[^A-Za-z0-9.+-]+", "", self.name.replace("=", "").replace(" ", "_").replace(",", "_"))
        return slug.replace("__", "_") or "default"


def grid(config: Any, swept: dict[str, list], no_ssg: bool = False) -> list[Cell]:
    """The cells: the product of every swept option's values (generate options, `ssg_beta`, `ssg_scales`,
    `ssg_prior`), and with `no_ssg` one SSG-off cell per setting of the generate options. An option given
    once is fixed in every cell (and not part of the names)."""
    swept = {k: list(v) for k, v in swept.items() if v}
    gen = {k: v for k, v in swept.items() if k not in SSG_FIELDS}
    ssg_axes = {k: v for k, v in swept.items() if k in SSG_FIELDS}
    base_ssg = config.ssg or SSG()
    out: list[Cell] = []
    for gvals in itertools.product(*gen.values()) if gen else [()]:
        options = dict(zip(gen, gvals))
        gname = [f"{SHORT.get(k, k)}={v}" for k, v in options.items() if len(gen[k]) > 1]
        if no_ssg:
            out.append(Cell(" ".join(gname + ["no SSG"]), options, False, dict(options, ssg=False)))
        for svals in itertools.product(*ssg_axes.values()) if ssg_axes else [()]:
            given = {SSG_FIELDS[k]: v for k, v in zip(ssg_axes, svals)}
            ssg = replace(base_ssg, **given)  # SSG parses the text forms and checks them
            sname = [f"{SHORT[k]}={v}" for k, v in zip(ssg_axes, svals) if len(ssg_axes[k]) > 1]
            name = " ".join(gname + sname) or ("SSG" if no_ssg else "default")
            out.append(Cell(name, options, ssg, dict(options, **{SHORT[k]: v for k, v in zip(ssg_axes, svals)})))
    names = [c.folder for c in out]
    if len(set(names)) != len(names):
        raise ConfigError("two cells of the sweep have the same settings; give each value once")
    return out


@dataclass
class Row:
    """One cell's line of the tables."""

    cell: str
    folder: str
    settings: dict[str, Any]
    metrics: dict[str, float]
    intervals: dict[str, list[float]]
    seconds_per_image: float | None
    n: int

    def flat(self) -> dict[str, Any]:
        d: dict[str, Any] = {"cell": self.cell, "folder": self.folder, "n": self.n,
                             "seconds_per_image": self.seconds_per_image}
        d.update({k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in self.settings.items()})
        for m, v in self.metrics.items():
            d[m] = v
            if m in self.intervals:
                d[f"{m}_low"], d[f"{m}_high"] = self.intervals[m]
        return d


def best(rows: list[Row], metric: str) -> Row:
    """The best cell by `metric` (lowest FID/sFID, highest IS/precision/recall)."""
    have = [r for r in rows if metric in r.metrics]
    if not have:
        done = ", ".join(rows[0].metrics) if rows else "none"
        raise ConfigError(f"no cell has {metric}; the sweep evaluated: {done}")
    key = (lambda r: r.metrics[metric]) if LOWER_IS_BETTER.get(metric, True) else (lambda r: -r.metrics[metric])
    return min(have, key=key)


def write_tables(out: Path, rows: list[Row], meta: dict[str, Any]) -> tuple[Path, Path]:
    """sweep.json (meta + rows) and sweep.csv (one row per cell, the union of every row's columns)."""
    js = out / "sweep.json"
    write_atomic(js, json.dumps({**meta, "cells": [r.__dict__ for r in rows]}, indent=1, default=str).encode())
    flat = [r.flat() for r in rows]
    cols = list(dict.fromkeys(k for f in flat for k in f))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols)
    w.writeheader()
    w.writerows(flat)
    cs = out / "sweep.csv"
    write_atomic(cs, buf.getvalue().encode())
    return js, cs


def plot(out: Path, rows: list[Row], cells: list[Cell], model: str = "") -> Path | None:
    """sweep.png: FID against IS across cfg (one curve per SSG setting, the no-SSG curve dashed), when cfg
    varies and IS was computed; else FID against beta (no-SSG as a horizontal line per setting). None when
    matplotlib is missing or there is nothing to draw."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    by_folder = {c.folder: c for c in cells}
    rows = [r for r in rows if "fid" in r.metrics]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    cfgs = {json.dumps(by_folder[r.folder].options.get("cfg")) for r in rows}
    curves: dict[str, list[Row]] = {}
    if len(cfgs) > 1 and all("is" in r.metrics for r in rows):
        for r in rows:
            c = by_folder[r.folder]
            label = "no SSG" if c.ssg is False else " ".join(f"{k}={v}" for k, v in c.values.items()
                                                                if k in ("beta", "scales", "prior")) or "SSG"
            curves.setdefault(label, []).append(r)
        for label, rs in curves.items():
            xs, ys = [r.metrics["is"] for r in rs], [r.metrics["fid"] for r in rs]
            style = dict(color="black", linestyle="--") if label == "no SSG" else {}
            ax.plot(xs, ys, marker="o", label=label, **style)
            for r, x, y in zip(rs, xs, ys):
                ax.annotate(f"cfg {by_folder[r.folder].options.get('cfg')}", (x, y), fontsize=7,
                            textcoords="offset points", xytext=(3, 3))
        ax.set_xlabel("Inception Score (higher is better)")
        title = "FID against IS across cfg"
    else:
        ssg_rows = [r for r in rows if by_folder[r.folder].ssg is not False]
        xs = [_beta(by_folder[r.folder]) for r in ssg_rows]
        ys = [r.metrics["fid"] for r in ssg_rows]
        err = [[y - r.intervals["fid"][0] for r, y in zip(ssg_rows, ys)],
               [r.intervals["fid"][1] - y for r, y in zip(ssg_rows, ys)]] if all(
            "fid" in r.intervals for r in ssg_rows) and ssg_rows else None
        if ssg_rows:
            ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label="SSG")
        for r in rows:
            if by_folder[r.folder].ssg is False:
                ax.axhline(r.metrics["fid"], color="black", linestyle="--", label=f"{r.cell}")
        ax.set_xlabel("SSG beta")
        title = "FID against SSG beta"
    ax.set_ylabel("FID (lower is better)")
    ax.set_title(f"{model + ': ' if model else ''}{title} (N = {rows[0].n} per cell)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    path = out / "sweep.png"
    write_atomic(path, buf.getvalue())
    return path


def _beta(cell: Cell) -> float:
    b = cell.ssg.beta if isinstance(cell.ssg, SSG) else 0.0
    return float(b) if isinstance(b, (int, float)) else float("nan")


@dataclass
class SweepReport:
    rows: list[Row]
    files: list[Path]
    rank: int = 0


def run(model: Any, jobs: list, out_dir: str | Path, cells: list[Cell], ref: str | Path, *,
        metrics: list[str] | None = None, batch_size: int = 4, device: str = "auto", dtype: str = "auto",
        offline: bool | None = None, inception: str | Path | None = None, bootstrap: int = 0,
        eval_batch_size: int | None = None, overwrite: bool = False) -> SweepReport:
    """Generate every cell into `out_dir/cells/<cell>` (ssgen.batch.run: resumable, sharded under torchrun),
    then evaluate each against `ref` (rank 0) and write the tables and the plot. Every job of every cell is
    checked before anything is written or loaded."""
    from . import batch as B
    from .config import ModelConfig, load_config

    config = model if isinstance(model, ModelConfig) else load_config(model)
    out = Path(out_dir)
    if not Path(ref).expanduser().exists():
        raise ConfigError(f"reference {ref} does not exist; give an ADM reference batch (.npz) or a folder of images")
    for cell in cells:
        try:
            B.validate_jobs(jobs, config, cell.options, cell.ssg)
        except ConfigError as e:
            raise ConfigError(f"cell {cell.name!r}: {e}") from None
    rank, world, local_rank = B.dist_env()
    pipe = None
    reports: dict[str, Any] = {}
    for cell in cells:
        if pipe is None:  # loaded once, after the first cell's folder is checked (inside batch.run)
            reports[cell.folder] = B.run(config, jobs, out / "cells" / cell.folder, options=cell.options,
                                         ssg=cell.ssg, batch_size=batch_size, device=device, dtype=dtype,
                                         offline=offline, overwrite=overwrite, keep_pipeline=True,
                                         checked=True)
            pipe = reports[cell.folder].pipeline
        else:
            reports[cell.folder] = B.run(pipe, jobs, out / "cells" / cell.folder, options=cell.options,
                                         ssg=cell.ssg, batch_size=batch_size, overwrite=overwrite, checked=True)
    if rank != 0:
        return SweepReport([], [], rank)
    from .eval import evaluate

    rows = []
    old = _previous_rows(out)
    for cell in cells:
        res = evaluate(out / "cells" / cell.folder, ref, metrics=metrics, inception=inception,
                       device=str(pipe.device) if pipe is not None else device, batch_size=eval_batch_size,
                       bootstrap=bootstrap, offline=offline, progress=True)
        rep = reports[cell.folder]
        spi = rep.seconds / rep.generated * rep.world if rep.generated else old.get(cell.folder)
        settings = dict(cell.options, ssg=cell.ssg.to_dict() if isinstance(cell.ssg, SSG) else None)
        rows.append(Row(cell.name, cell.folder, settings, dict(res.metrics),
                        {k: list(v) for k, v in res.intervals.items()}, spi, rep.total))
    meta = {"model": config.name, "ref": str(ref), "images_per_cell": len(jobs),
            "seeds": "the same jobs and seeds in every cell"}
    js, cs = write_tables(out, rows, meta)
    files = [js, cs]
    png = plot(out, rows, cells, config.name)
    if png is not None:
        files.append(png)
    return SweepReport(rows, files, rank)


def _previous_rows(out: Path) -> dict[str, float]:
    """Seconds per image of the cells a previous run of this sweep timed (a resumed cell generates nothing)."""
    try:
        data = json.loads(read_text(out / "sweep.json", "sweep record", ""))
        return {c["folder"]: c["seconds_per_image"] for c in data.get("cells", []) if c.get("seconds_per_image")}
    except (SSGenError, ValueError, TypeError, KeyError, AttributeError):
        return {}
