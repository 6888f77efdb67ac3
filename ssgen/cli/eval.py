"""`ssgen eval SAMPLES --ref REF`: ADM's FID, sFID, IS, precision and recall; `ssgen.eval.evaluate` does the work,
this prints its result as a table (or JSON) and its notes on stderr."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from ..terminal import safe
from .app import app, err, friendly, out


@app.command("eval")
@friendly
def eval_command(
    samples: Path = typer.Argument(..., help="A batch folder (`ssgen batch`), a folder of PNG/JPEG images, or an "
                                   ".npz with arr_0 (N, H, W, 3) uint8 (`ssgen pack-npz`)."),
    ref: Optional[Path] = typer.Option(None, "--ref", help="ADM's reference npz (e.g. VIRTUAL_imagenet256_labeled.npz: "
                                       "arr_0 and/or mu, sigma, mu_s, sigma_s), or another folder or npz of images."),
    metrics: Optional[str] = typer.Option(None, "--metrics", help="Comma-separated: fid,sfid,is,precision,recall "
                                          "(default: every one the reference can give; the others are named)."),
    as_json: bool = typer.Option(False, "--json", help="Print the whole result as JSON."),
    device: str = typer.Option("auto", "--device", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", "-b", help="Images per forward pass (default 64 "
                                             "on GPUs, ADM's; 32 on the CPU)."),
    inception: Optional[Path] = typer.Option(None, "--inception", help="The Inception weights file (default: "
                                             "torch-fidelity's weights-inception-2015-12-05-6726825d.pth, found in "
                                             "the cache or downloaded once)."),
    offline: bool = typer.Option(False, "--offline", help="Never download the weights (like HF_HUB_OFFLINE=1)."),
    bootstrap: int = typer.Option(0, "--bootstrap", help="N resamples of the samples for 95% intervals of FID, sFID "
                                  "and IS. From 2048 samples on, each FID resample costs a 2048x2048 sqrtm (10-60 s "
                                  "on 2 cores); IS alone (--metrics is) is cheap."),
    cache: Optional[Path] = typer.Option(None, "--cache", help="The feature cache folder (default "
                                         "$HF_HOME/assets/ssgen/eval)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Neither read nor write cached features."),
    clip: bool = typer.Option(False, "--clip", help="Also the CLIP score of a text-to-image batch folder against "
                              "its prompts (CLIP ViT-L/14; without --ref, the CLIP score alone)."),
    clip_model: Optional[str] = typer.Option(None, "--clip-model", help="Another CLIPModel folder or Hub repo for "
                                             "--clip."),
):
    """Evaluate images against a reference with ADM's FID, sFID, IS, precision and recall."""
    from ..eval import evaluate

    result = evaluate(samples, ref, metrics=metrics, inception=inception, device=device, batch_size=batch_size,
                      bootstrap=bootstrap, cache=False if no_cache else cache, offline=True if offline else None,
                      progress=True, clip=(clip_model or True) if (clip or clip_model) else False)
    for line in result.notes:
        err.print(f"[yellow]note:[/] {safe(line)}", highlight=False, soft_wrap=True)
    if as_json:
        print(json.dumps(result.to_dict(), indent=1))
        return
    show(result)


def _set(d: dict[str, Any]) -> str:
    """`path (kind, N images HxW, sha256 1234abcd5678...)`."""
    what = [d["kind"]]
    if d.get("count"):
        size = f" {d['size'][1]}x{d['size'][0]}" if d.get("size") else ""
        what.append(f"{d['count']} images{size}")
    if d.get("statistics"):
        what.append(f"{d['statistics']} statistics")
    if d.get("features"):
        what.append("features from the cache" if d["features"] == "cache" else "features computed")
    what.append(f"sha256 {d['sha256'][:16]}...")
    return f"{d['path']} ({', '.join(what)})"


def show(result: Any) -> None:
    """The metrics as a table, then where they come from."""
    from rich.table import Table

    from ..eval import TITLES

    boot = result.bootstrap
    t = Table(title=None, box=None, show_header=True, header_style="bold")
    t.add_column("metric")
    t.add_column("value", justify="right")
    if boot:
        t.add_column(f"95% interval ({boot['n']} resamples)")
    for name, value in result.metrics.items():
        row = [TITLES[name], f"{value:.4f}"]
        if boot:
            lo_hi = result.intervals.get(name)
            row.append(f"[{lo_hi[0]:.4f}, {lo_hi[1]:.4f}]" if lo_hi else "-")
        t.add_row(*(safe(c) for c in row))
    out.print(t)
    x, v, s = result.extractor, result.versions, result.seconds
    if not result.ref:  # the CLIP score alone
        out.print(f"samples: {safe(_set(result.samples))}\nCLIP model: {safe(x['clip_model'])} on {x['device']}",
                  highlight=False)
        return
    lines = [f"samples: {_set(result.samples)}", f"reference: {_set(result.ref)}",
             f"extractor: Inception 2015-12-05, weights {x['weights']} (sha256 {x['weights_sha256'][:16]}..."
             f"{', torch-fidelity' + chr(39) + 's file' if x['official'] else ', NOT the official file'}) on "
             f"{x['device']}, batch {x['batch_size']}",
             "versions: " + ", ".join(f"{k} {v[k]}" for k in ("ssgen", "torch", "numpy", "scipy", "pillow")),
             f"time: {s['total']:.1f} s (" + ", ".join(f"{k} {s[k]:.1f} s" for k in s if k != "total") + ")"]
    for name, why in result.skipped.items():
        lines.append(f"skipped {TITLES[name]}: {why}")
    for line in lines:
        out.print(safe(line, markup=False), highlight=False, markup=False, soft_wrap=True)
