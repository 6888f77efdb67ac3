"""Output: PNG grids, settings embedded as PNG text chunks, atomic writes, reading settings back, and the
planning of a command's output files (names claimed before any model loads).

Every PNG carries:
- `ssgen`: JSON with the full settings (model, revision, seeds, every sampling and SSG knob, version);
  a grid stores {"grid": {...layout...}, "images": [per-image settings]}.
- `parameters`: a one-line human summary (A1111 style), shown by most image viewers.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from PIL import Image, ImageDraw, ImageFont, PngImagePlugin

from .atomic import Claim, atomic_file, release, reserve
from .errors import ConfigError, SSGenError, first_line

META_KEY = "ssgen"
# The most images one grid holds. A grid is for looking at: 64 images of 256 px already make a
# 2 kpx square (64 of 1024 px: 8 kpx, 200 MB of pixels in memory). More: one PNG per image
# (`generate --each`) or `ssgen batch`.
GRID_LIMIT = 64


def summary(s: dict[str, Any]) -> str:
    """One-line human summary of one image's settings."""
    cond = f"class {s['class']}" if "class" in s else f"prompt: {s.get('prompt', '')!r}"
    parts = [cond, f"model {s.get('model')}", f"seed {s.get('seed')}"]
    for k in ("cfg", "top_k", "top_p", "more_smooth", "tau", "pn", "h_div_w"):
        if k in s and s[k] is not None:
            parts.append(f"{k} {s[k]}")
    ssg = s.get("ssg")
    parts.append("SSG off" if not ssg else
                 f"SSG beta {ssg['beta']} scales {ssg['scales'][0]}..{ssg['scales'][1]} prior {ssg['prior']}")
    return ", ".join(parts)


def writable_folder(folder: str | Path, flag: str) -> Path:
    """Create `folder` if needed and check that it can be written; the error names the real cause and the
    flag that chose the folder (`-o`, `--out`, `--save-scales`)."""
    d = Path(folder).expanduser()
    d = d if str(d) else Path(".")
    if d.exists() and not d.is_dir():
        raise SSGenError(f"cannot write into {d}: it is a file, not a folder; choose another {flag}")
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        why = "a part of it is a file, not a folder" if isinstance(e, (FileExistsError, NotADirectoryError)) else (
            e.strerror or first_line(e))
        raise SSGenError(f"cannot create the folder {d}: {why}; choose another {flag}") from None
    if not os.access(d, os.W_OK | os.X_OK):
        raise SSGenError(f"cannot write to the folder {d} (permission denied); choose another {flag}")
    return d


def check_writable(path: str | Path, flag: str = "-o", suffix: str = ".png") -> Path:
    """Fail early, with a one-line hint naming `flag`, when the file `path` cannot be written; creates its
    folder. `path` must end in `suffix`."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise SSGenError(f"{flag} {p} is a folder; give a file name such as {p / ('out' + suffix)}")
    if p.suffix.lower() != suffix:
        raise SSGenError(f"{flag} {p} must end in {suffix}")
    writable_folder(p.parent, flag)
    return p


def save_png(img: Image.Image, path: str | Path, meta: dict[str, Any], text: str | None = None,
             overwrite: bool = True) -> Path:
    """Write `img` with its settings as PNG text chunks, atomically and with ordinary permissions
    (`ssgen.atomic`). overwrite=False never replaces an existing file. The folder must exist."""
    p = Path(path).expanduser()
    info = PngImagePlugin.PngInfo()
    info.add_text(META_KEY, json.dumps(meta, sort_keys=True, default=str))
    if text:
        info.add_text("parameters", text)
    with atomic_file(p, overwrite=overwrite) as f:
        img.save(f, format="PNG", pnginfo=info)
    return p


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The `ssgen` settings stored in a PNG written by ssgen; an SSGenError saying what the file is otherwise."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise SSGenError(f"{p} is a folder; give a PNG file written by ssgen")
    try:
        with Image.open(p) as im:
            if im.format != "PNG":
                raise SSGenError(f"{p} is a {im.format or 'non-PNG'} image; ssgen keeps its settings in the PNGs it "
                                 "writes")
            text = dict(getattr(im, "text", {}) or {})  # reads the chunks: a truncated file fails here
    except FileNotFoundError:
        raise SSGenError(f"{p} does not exist") from None
    except PermissionError:
        raise SSGenError(f"cannot read {p} (permission denied)") from None
    except Image.UnidentifiedImageError:
        raise SSGenError(f"{p} is not an image; give a PNG written by ssgen") from None
    except (OSError, SyntaxError, ValueError) as e:  # PIL reports damaged chunks as any of these
        raise SSGenError(f"{p} is a damaged PNG ({first_line(e)})") from None
    if META_KEY not in text:
        raise SSGenError(f"{p} has no ssgen settings (it was not written by ssgen, or they were stripped)")
    why = settings_problem(text[META_KEY])
    if why:
        raise SSGenError(f"{p} has a damaged ssgen settings chunk ({why})")
    return json.loads(text[META_KEY])


MAX_SETTINGS_DEPTH = 32  # ssgen writes 5 levels (grid -> images -> image -> ssg -> scales); JSON can nest 100,000


def settings_problem(chunk: str) -> str | None:
    """What is wrong with a PNG's ssgen settings chunk, or None when it has the shape ssgen writes: a JSON mapping
    (one image's settings, or a grid's: `grid` a mapping and `images` a list of mappings), nested a few levels."""
    try:
        meta = json.loads(chunk)
    except RecursionError:
        return "nested too deeply"
    except ValueError:
        return "not JSON"
    if not isinstance(meta, dict):
        return f"a JSON {_json_type(meta)}, not a mapping"
    images = meta.get("images", [])
    if not (isinstance(images, list) and all(isinstance(s, dict) for s in images)):
        return "`images` is not a list of mappings"
    if not isinstance(meta.get("grid", {}), dict):
        return "`grid` is not a mapping"
    level, depth = [meta], 1  # walked level by level: no recursion
    while level:
        if depth > MAX_SETTINGS_DEPTH:
            return "nested too deeply"
        level = [v for c in level for v in (c.values() if isinstance(c, dict) else c) if isinstance(v, (dict, list))]
        depth += 1
    return None


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "list", str: "string", bool: "boolean", int: "number", float: "number"}
    return names.get(type(value), "null")


@functools.lru_cache(maxsize=None)
def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one bitmap size
        return ImageFont.load_default()


LABEL_MIN_FONT = 8  # labels shrink down to this size; below it they are unreadable, so tiny images get wider slots
LABEL_MAX_SLOT = 160  # a column is never widened past this for a label: a longer word is broken across lines
MARGIN = 1  # between a label and the edges of its column


@dataclass(frozen=True)
class GridLayout:
    """Where `grid` puts things. Column c's slot spans x in [slot_x(c), slot_x(c) + slot); its label lies in
    the strip above (y < top) inside that span; its images are centered in it. Row r's images start at
    y = row_y(r). The slot is wider than the images only when their column labels need it (tiny images)."""

    size: tuple[int, int]  # one image (w, h)
    cols: int
    rows: int
    pad: int
    slot: int  # a column's width
    left: int  # the row-label strip's width (0 without row labels)
    top: int  # the column-label strip's height (0 without column labels)
    col_font: int  # font sizes of the column and row labels
    row_font: int
    col_lines: tuple[tuple[str, ...], ...]  # each column label, wrapped to its slot

    @property
    def width(self) -> int:
        return self.left + self.cols * self.slot + (self.cols + 1) * self.pad

    @property
    def height(self) -> int:
        return self.top + self.rows * self.size[1] + (self.rows + 1) * self.pad

    def slot_x(self, c: int) -> int:
        return self.left + self.pad + c * (self.slot + self.pad)

    def image_xy(self, r: int, c: int) -> tuple[int, int]:
        return self.slot_x(c) + (self.slot - self.size[0]) // 2, self.row_y(r)

    def row_y(self, r: int) -> int:
        return self.top + self.pad + r * (self.size[1] + self.pad)


_measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))


def _wide(text: str, font) -> float:
    return _measure.textlength(text, font=font)


def wrap(text: str, font, width: int) -> list[str]:
    """`text` in lines no wider than `width` px: its own lines, words filled greedily, a word wider than
    `width` broken between characters (at least one character a line)."""
    lines = []
    for para in text.split("\n"):
        line = ""
        for word in para.split():
            joined = f"{line} {word}" if line else word
            if _wide(joined, font) <= width:
                line = joined
                continue
            if line:
                lines.append(line)
            while _wide(word, font) > width and len(word) > 1:
                k = max([i for i in range(1, len(word)) if _wide(word[:i], font) <= width] or [1])
                lines.append(word[:k])
                word = word[k:]
            line = word
        lines.append(line)
    return lines


def grid_layout(size: tuple[int, int], n: int, cols: int | None = None, pad: int = 2,
                col_labels: Sequence[str] | None = None, row_labels: Sequence[str] | None = None) -> GridLayout:
    """How `grid` lays out `n` images of `size`: columns, rows and the label strips. Column labels are fitted to
    their column: the largest font (up to the usual size for these images, down to LABEL_MIN_FONT) at which
    every word fits, the words wrapped into as many lines as they need (the strip grows). Images too small for
    a label's longest word at LABEL_MIN_FONT get wider columns (up to LABEL_MAX_SLOT). Row labels get a font
    no taller than a row. So no label ever reaches into a neighbour's column or row."""
    w, h = size
    if cols is None:
        cols = n if n <= 8 else math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    fs = max(11, min(28, w // 14))
    slot, col_font, col_lines, top = w, fs, (), 0
    if col_labels:
        words = [word for t in col_labels for word in t.split()]
        need = max((_wide(word, _font(LABEL_MIN_FONT)) for word in words), default=0) + 2 * MARGIN
        slot = max(w, min(math.ceil(need), LABEL_MAX_SLOT))
        col_font = next((f for f in range(fs, LABEL_MIN_FONT, -1)
                         if all(_wide(word, _font(f)) <= slot - 2 * MARGIN for word in words)), LABEL_MIN_FONT)
        font = _font(col_font)
        col_lines = tuple(tuple(wrap(t, font, slot - 2 * MARGIN)) for t in col_labels)
        top = max(_measure.multiline_textbbox((0, 0), "\n".join(lines), font=font, spacing=2)[3]
                  for lines in col_lines) + 2 * pad + 4
    row_font, left = fs, 0
    if row_labels:
        row_font = next((f for f in range(fs, 6, -1) if _font(f).getbbox("Ag")[3] <= h), 6)
        left = max(math.ceil(_wide(t, _font(row_font))) for t in row_labels) + 3 * pad
    return GridLayout(size=size, cols=cols, rows=rows, pad=pad, slot=slot, left=left, top=top, col_font=col_font,
                      row_font=row_font, col_lines=col_lines)


def grid(images: Sequence[Image.Image], cols: int | None = None, pad: int = 2,
         col_labels: Sequence[str] | None = None, row_labels: Sequence[str] | None = None) -> Image.Image:
    """Tile images row-major into a grid, with optional column headers and row labels (`grid_layout`); a None
    image leaves its cell white. One image without labels is returned as it is (no border)."""
    n = len(images)
    if n == 0:
        raise ValueError("no images to tile")
    if n == 1 and not col_labels and not row_labels:
        return images[0].convert("RGB")
    size = next(im.size for im in images if im is not None)
    lay = grid_layout(size, n, cols, pad, col_labels, row_labels)
    out = Image.new("RGB", (lay.width, lay.height), (255, 255, 255))
    for i, im in enumerate(images):
        if im is not None:
            out.paste(im.convert("RGB"), lay.image_xy(*divmod(i, lay.cols)))
    font = _font(lay.col_font)
    for c, lines in enumerate(lay.col_lines):  # each label drawn in its own box: it cannot reach a neighbour
        box = Image.new("RGB", (lay.slot, lay.top - pad), (255, 255, 255))
        ImageDraw.Draw(box).multiline_text((MARGIN, 0), "\n".join(lines), fill=(0, 0, 0), font=font, spacing=2)
        out.paste(box, (lay.slot_x(c), pad))
    font = _font(lay.row_font)
    for r, t in enumerate(row_labels or []):
        box = Image.new("RGB", (lay.left - 2 * pad, size[1]), (255, 255, 255))
        y = max(0, (size[1] - font.getbbox("Ag")[3]) // 2)
        ImageDraw.Draw(box).text((0, y), t, fill=(0, 0, 0), font=font)
        out.paste(box, (pad, lay.row_y(r)))
    return out


# ------------------------------------------------------------------------------------------------
# planning a command's files
# ------------------------------------------------------------------------------------------------


def default_output(model: str, kind: str = "") -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = Path(model).stem if model.endswith((".yaml", ".yml")) else model
    return Path("outputs") / f"{name}{kind}-{stamp}.png"


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
    """Where a generate/compare/edit run writes, decided before any model loads. Unless --overwrite was given,
    the grid's name is claimed at once (`ssgen.atomic.reserve`: a lock beside it, held while the run lives) so
    two runs can never choose the same name; `release` gives it back when the run ends, written or not. Nothing
    is put at the name before the grid itself: a killed run leaves no empty file that would block its retry."""

    grid: Path | None  # the grid PNG; None when there are too many images for a grid (--each alone)
    stem: Path  # --each files are STEM-000.png, STEM-001.png, ...
    n: int  # images
    overwrite: bool  # may the grid and --each files replace existing ones
    claim: Claim | None = None

    def each_path(self, i: int) -> Path:
        return each_path(self.stem, i, self.n)

    def release(self) -> None:
        release(self.claim)


def each_path(stem: Path, i: int, n: int) -> Path:
    """Image i's own PNG next to the grid: STEM-007.png (wider numbers past 1000 images, so names sort)."""
    return stem.with_name(f"{stem.stem}-{i:0{max(3, len(str(n - 1)))}d}.png")


def plan_outputs(output: Path | None, model: str, kind: str, n: int, grid: bool, each: bool,
                 overwrite: bool) -> Outputs:
    """The output files of a run. An explicit -o that exists (or whose --each files exist) is an error
    naming --overwrite; a default name that exists gets a -2, -3, ... suffix (--overwrite never applies to
    default names)."""
    def names(p: Path) -> list[Path]:
        return ([p] if grid else []) + ([each_path(p, i, n) for i in range(n)] if each else [])

    if output is not None:
        p = check_writable(output, "-o")
        if overwrite:
            return Outputs(grid=p if grid else None, stem=p, n=n, overwrite=True)
        claim = reserve(p) if grid else None
        present = _existing(names(p))  # looked at once the name is ours: no run can write it meanwhile
        if present:
            release(claim)
            more = f" (and {len(present) - 1} more files this run would write)" if len(present) > 1 else ""
            raise ConfigError(f"{present[0]} already exists{more}; add --overwrite to replace, or choose another -o")
        if grid and claim is None:
            raise ConfigError(f"{p} is being written by another ssgen run; wait for it, or choose another -o")
        return Outputs(grid=p if grid else None, stem=p, n=n, overwrite=False, claim=claim)
    base = p = check_writable(default_output(model, kind), "-o")
    k = 1
    while True:  # the grid's name claims the stem, grid or not
        claim = reserve(p)
        if claim is not None and not _existing(names(p) + [p]):
            return Outputs(grid=p if grid else None, stem=p, n=n, overwrite=False, claim=claim)
        release(claim)
        k += 1
        p = base.with_name(f"{base.stem}-{k}{base.suffix}")


SCALE_FILE = re.compile(r"(.+?)(\d{3,})-(?:k\d+|scales)\.png")


def check_scale_files(folder: Path, tags: list[str], n: int, overwrite: bool) -> Path:
    """The --save-scales folder: writable, and (unless --overwrite) without files this run would replace."""
    d = writable_folder(folder, "--save-scales")
    if not overwrite:
        for name in sorted(os.listdir(d)):
            m = SCALE_FILE.fullmatch(name)
            if m and m.group(1) in tags and int(m.group(2)) < n:
                raise ConfigError(f"{d / name} already exists (an earlier --save-scales run); add --overwrite to "
                                  "replace such files, or choose another --save-scales folder")
    return d
