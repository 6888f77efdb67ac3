"""What `generate`, `compare` and `edit` share before any weights load: the options they all take, the
conditions, the edit flags, and the plan of a run: its resolved requests (`ssgen.request`), one `Work` per
call of at most `--batch-size` images (per column for compare). Then `load_model` loads the model, and the commands
hand the works to `ssgen.runner.drive` with their sink. Nothing here imports torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ..errors import ConfigError
from ..terminal import safe
from .app import err
from .options import GenFlags

ClassOpt = typer.Option(None, "--class", "-c", help="ImageNet class index 0..999 (VAR); repeat for several.")
PromptOpt = typer.Option(None, "--prompt", "-p", help="Text prompt (Infinity, HART); repeat for several.")
NOpt = typer.Option(1, "-n", "--num", help="Images per class/prompt.")
SeedOpt = typer.Option(0, "--seed", "-s", help="Base seed; image i uses seed + i.")
RngOpt = typer.Option("per-image", "--rng", help="per-image (each image its own generator) or batch (official order).")
SaveScalesOpt = typer.Option(None, "--save-scales",
                             help="Also decode and save the partial image after every scale into this folder.")
JsonOpt = typer.Option(False, "--json", help="Print a JSON summary instead of text.")
# Images per call when --batch-size is not given (rng per-image: the images do not depend on it). It bounds memory
# whatever -n is. CPU: per-image time is flat from 1 to 16 (scripts/bench.py --per-image, README "Performance"),
# and 8 keeps the early scales' small matmuls batched; GPU: large batches fill the device.
DEFAULT_BATCH = {"cpu": 8, "gpu": 32}
BatchOpt = typer.Option(None, "--batch-size", "-b", help=f"Images per forward pass (default {DEFAULT_BATCH['cpu']} on "
                        f"a CPU, {DEFAULT_BATCH['gpu']} on a GPU; with --rng batch all of them, one batch as the "
                        "official code draws it). Larger requests run in such chunks, writing --each files as they "
                        "go; image i keeps seed + i.")
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


def edit_inputs(config: Any, image: Path | None, mask: Path | None, box: str | None, outpaint: bool,
                keep_scales: int | None) -> Any:
    """The edit flags -> the input opened and checked once for the whole command (`ssgen.edit_input.EditInput`),
    or None when it is not an edit. A family that cannot edit is the error first, whatever else is missing."""
    from ..edit_input import edit_input, parse_box
    from ..request import check_can_edit

    edits = image is not None or mask is not None or box is not None or outpaint or keep_scales is not None
    if edits:
        check_can_edit(config)
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
    return edit_input(image, keep_mask, keep_scales)


def chunks(n: int, size: int) -> list[tuple[int, int]]:
    """[start, end) index ranges of at most `size` images: one generate call each."""
    return [(a, min(a + size, n)) for a in range(0, n, size)]


def chunk_label(name: str, a: int, b: int, total: int) -> str:
    span = f"{b - a} image(s)" if b - a == total else f"images {a + 1}-{b} of {total}"
    return f"{name}: {span}"


def batch_size_of(batch_size: int | None, total: int, rng: str, device: str = "auto") -> tuple[int, str]:
    """Images per call and how it was chosen: --batch-size, else all of them with --rng batch (one batch, as
    upstream draws it), else the device's default (DEFAULT_BATCH: a GPU where `device` is cuda, or auto with a
    GPU present)."""
    if batch_size is not None:
        if batch_size < 1:
            raise ConfigError(f"--batch-size must be at least 1, got {batch_size}")
        return batch_size, "--batch-size"
    if rng == "batch":
        return total, "--rng batch: one batch"
    from ..hardware import cuda_visible

    gpu = device.startswith("cuda") or (device == "auto" and cuda_visible())
    return DEFAULT_BATCH["gpu" if gpu else "cpu"], f"the {'GPU' if gpu else 'CPU'} default"


def plan(config: Any, flags: GenFlags, flat: list, key: str, columns: list[tuple[str, Any]], *, seed: int,
         rng: str, batch_size: int | None, edit: Any = None, what: str = "") -> list:
    """Every call of a run, resolved (checked once, before any weights): for each chunk of images, one Work per
    column (label, SSG setting or False). An error names the first problem and nothing has been written."""
    from ..request import resolve
    from ..runner import Work
    from ..settings import check_seed_span

    size, how = batch_size_of(batch_size, len(flat), rng, flags.device)
    check_seed_span(seed, len(flat))  # seed + i for every image: an overflow names --seed, not a seed never typed
    options = flags.options()
    works = []
    for a, b in chunks(len(flat), size):
        for j, (label, ssg) in enumerate(columns):
            request = resolve(config, **{key: flat[a:b]}, options=options, ssg=ssg, rng=rng,
                              seeds=[seed + i for i in range(a, b)], image=edit)
            name = label if len(columns) > 1 else (what or config.name)
            works.append(Work(request, tuple(range(a, b)), column=j, label=chunk_label(name, a, b, len(flat))))
    return works, f"{size} image(s) per call ({how})"


def load_model(config: Any, flags: GenFlags, outputs: Any = None, per_call: str = "") -> Any:
    """Load the model once every input check has passed (torch is imported here). `outputs`, if given, is
    released when loading fails (its placeholder names were claimed). `per_call`: the plan's batch size, said in
    the load line."""
    try:
        # no spinner here: downloads draw their own rich progress bars (only one live display at a time)
        from ..pipeline import describe_placement, slow_dtype_note
        from ..pipeline import load as load_pipeline

        if err.is_terminal:
            where = describe_placement(flags.device, flags.dtype) + (f"; {per_call}" if per_call else "")
            err.print(f"[dim]loading {safe(config.name)} ({where}) ...[/]", highlight=False)
        slow = slow_dtype_note(flags.device, flags.dtype)
        if slow:
            note(slow)
        return load_pipeline(config, device=flags.device, dtype=flags.dtype, offline=True if flags.offline else None,
                             progress=True, compile=flags.compile_mode())
    except BaseException:
        if outputs is not None:
            outputs.release()
        raise


def note(text: str) -> None:
    """A note on stderr; its text may quote a prompt, a name or a path: escaped."""
    err.print(f"[yellow]note:[/] {safe(text)}", highlight=False, soft_wrap=True)
