"""`ssgen info IMAGE` (the settings a PNG carries, and how to get the image again) and `ssgen pack-npz`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from ..terminal import safe
from .app import app, friendly, out


def reproduce(s: dict[str, Any]) -> str | None:
    """One line on what reproduces an image. rng "batch" draws the whole batch from one generator, so an
    image comes back only with its whole batch; rng "per-image" images come back alone from their seed."""
    rng = s.get("rng")
    edit = ""
    if s.get("input_sha256") or s.get("input_pixels_sha256"):  # an edit: the same input and mask are needed too
        edit = f" with the input image (sha256 {s.get('input_sha256') or s.get('input_pixels_sha256')}) and its mask"
    if rng == "batch":
        size = f", {s['batch_size']} images" if "batch_size" in s else ""
        return (f"reproduce: only by re-running the whole batch (seed {s.get('seed')}{size}, --rng batch){edit}; "
                f"this is its image {s.get('batch_index')} (0-based)")
    if rng == "per-image":
        return f"reproduce: alone from seed {s.get('seed')} (--rng per-image){edit}"
    return None


def license_line(s: dict[str, Any]) -> str | None:
    """"license: ID (non-commercial)" when the image was made with non-commercial weights (DDO's CC-BY-NC-SA-4.0):
    the row of the table says the id, this line says what it means."""
    from ..config import license_label, non_commercial

    lic = s.get("license")
    return f"license: {license_label(lic)}" if non_commercial(lic) else None


@app.command()
@friendly
def info(image: Path = typer.Argument(..., help="A PNG written by ssgen."),
         as_json: bool = typer.Option(False, "--json", help="Print the raw JSON.")):
    """Print the settings embedded in a PNG written by ssgen."""
    from rich.table import Table

    from ..output import read_metadata

    meta = read_metadata(image)
    if as_json:
        print(json.dumps(meta, indent=2, sort_keys=True))
        return
    # Everything below comes from the file: shown through `safe` (a crafted PNG must not drive the terminal)
    images = meta.get("images", [meta])
    images = images if isinstance(images, list) else [images]
    if isinstance(meta.get("grid"), dict):
        layout = meta["grid"]
        out.print(f"{safe(image)}: grid of {len(images)} image(s), {safe(layout.get('rows'))} x "
                  f"{safe(layout.get('cols'))}", soft_wrap=True)
    for i, s in enumerate(images):
        s = s if isinstance(s, dict) else {"settings": s}
        t = Table(title=f"image {i}" if len(images) > 1 else None, show_header=False, box=None)
        for k in sorted(s):
            v = s[k]
            t.add_row(safe(k), safe(json.dumps(v) if isinstance(v, (dict, list)) else v))
        out.print(t)
        for line in (reproduce(s), license_line(s)):
            if line:
                out.print(safe(line, markup=False), highlight=False, markup=False, soft_wrap=True)


@app.command("pack-npz")
@friendly
def pack_npz(folder: Path = typer.Argument(..., help="A folder written by `ssgen batch`."),
             output: Optional[Path] = typer.Option(
                 None, "--output", "-o", help="The .npz to write (default: FOLDER.npz beside the folder). A name "
                 "without .npz gets it appended, as numpy.savez does; a missing folder is created."),
             num: Optional[int] = typer.Option(None, "--num", help="Images to pack (default: the run's count)."),
             overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing .npz.")):
    """Pack a batch folder into the `arr_0` (N, H, W, 3) uint8 .npz that FID evaluators read."""
    from ..batch import pack_npz as pack
    from .plan import note

    path, shape = pack(folder, output, num, overwrite=overwrite, on_note=note)
    print(f"wrote {safe(path, markup=False)}: arr_0 {shape} uint8")
