"""Output: PNG grids, settings embedded as PNG text chunks, atomic writes, reading settings back.

Every PNG carries:
- `ssgen`: JSON with the full settings (model, revision, seeds, every sampling and SSG knob, version);
  a grid stores {"grid": {...layout...}, "images": [per-image settings]}.
- `parameters`: a one-line human summary (A1111 style), shown by most image viewers.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

from PIL import Image, ImageDraw, ImageFont, PngImagePlugin

from .errors import SSGenError, first_line

META_KEY = "ssgen"


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


def check_writable(path: str | Path) -> Path:
    """Fail early, with a one-line hint, when `path` cannot be written."""
    p = Path(path).expanduser()
    parent = p.parent if str(p.parent) else Path(".")
    if p.is_dir():
        raise SSGenError(f"output path {p} is a directory; give a file name such as {p / 'out.png'}")
    if p.suffix.lower() != ".png":
        raise SSGenError(f"output path {p} must end in .png")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SSGenError(f"cannot create the output folder {parent}: {e.strerror or first_line(e)}; "
                         "choose another -o") from None
    if not os.access(parent, os.W_OK):
        raise SSGenError(f"cannot write to {parent} (permission denied); choose another -o")
    return p


def save_png(img: Image.Image, path: str | Path, meta: dict[str, Any], text: str | None = None) -> Path:
    """Write `img` with its settings as PNG text chunks, atomically (temp file + rename)."""
    p = check_writable(path)
    info = PngImagePlugin.PngInfo()
    info.add_text(META_KEY, json.dumps(meta, sort_keys=True, default=str))
    if text:
        info.add_text("parameters", text)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            img.save(f, format="PNG", pnginfo=info)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise SSGenError(f"cannot write {p}: {e.strerror or first_line(e)}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The `ssgen` settings stored in a PNG written by ssgen."""
    p = Path(path).expanduser()
    try:
        with Image.open(p) as im:
            text = dict(getattr(im, "text", {}) or {})
    except FileNotFoundError:
        raise SSGenError(f"{p} does not exist") from None
    except (OSError, Image.UnidentifiedImageError) as e:
        raise SSGenError(f"cannot read {p} as an image: {first_line(e)}") from None
    if META_KEY not in text:
        raise SSGenError(f"{p} has no ssgen settings (it was not written by ssgen, or they were stripped)")
    try:
        return json.loads(text[META_KEY])
    except ValueError:
        raise SSGenError(f"{p} has a damaged ssgen settings chunk") from None


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def grid(images: Sequence[Image.Image], cols: int | None = None, pad: int = 2,
         col_labels: Sequence[str] | None = None, row_labels: Sequence[str] | None = None) -> Image.Image:
    """Tile images row-major into a grid, with optional column headers and row labels."""
    n = len(images)
    if n == 0:
        raise ValueError("no images to tile")
    if cols is None:
        cols = n if n <= 8 else math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    w, h = images[0].size
    fs = max(11, min(28, w // 14))
    font = _font(fs)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    top = 0
    if col_labels:
        top = max(measure.multiline_textbbox((0, 0), t, font=font)[3] for t in col_labels) + 2 * pad + 4
    left = 0
    if row_labels:
        left = max(int(measure.textlength(t, font=font)) for t in row_labels) + 3 * pad
    W = left + cols * w + (cols + 1) * pad
    H = top + rows * h + (rows + 1) * pad
    out = Image.new("RGB", (W, H), (255, 255, 255))
    draw = ImageDraw.Draw(out)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        out.paste(im.convert("RGB"), (left + pad + c * (w + pad), top + pad + r * (h + pad)))
    for c, t in enumerate(col_labels or []):
        draw.multiline_text((left + pad + c * (w + pad) + 2, pad), t, fill=(0, 0, 0), font=font, spacing=2)
    for r, t in enumerate(row_labels or []):
        draw.text((pad, top + pad + r * (h + pad) + h // 2 - fs // 2), t, fill=(0, 0, 0), font=font)
    return out
