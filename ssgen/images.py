"""Reading the images a user gives ssgen: one opener for every reader (an edit's input and mask, `pack-npz`'s
images, `eval`'s folders), so that every one refuses the same files with the same one-line errors and converts
every pixel format the same way.

`read(path, what, limit)` opens a file lazily, checks its size from the header against `limit` BEFORE anything
is decoded (a decompression bomb or a 60000x1 strip costs nothing), then decodes it once. A missing file, a file
that is not an image, a damaged or truncated one, and one over the limit are each a one-line SSGenError naming
the file (and, when too large, its size and the limit). The limits (`EDIT_LIMIT`, `METRIC_LIMIT`) are generous
(ssgen's models work at <= 1024 px) but bounded.

`rgb(im, what)` turns any mode PIL opens into the 8-bit RGB picture a viewer shows, and says what it did that
the user should know (`Converted.notes`):
- 8-bit modes (1, L, P, RGB, RGBX, CMYK, YCbCr, LAB, HSV): PIL's convert("RGB");
- 16-bit gray (I;16, I;16L, I;16B, I;16N): v / 257 rounded (65535 -> 255, as a viewer scales 16-bit data);
- 32-bit integer (I): the same when every value is in 0..65535 (16-bit data, e.g. a 16-bit PNG in older PIL),
  else its own min..max range stretched to 0..255, with a note;
- 32-bit float (F): 0..1 data (max <= 1) times 255, else taken as 0..255; values outside 0..255 (and NaN, as 0)
  are clipped, with a note;
- transparency (RGBA, LA, La, PA, RGBa, a palette or gray or RGB image with a transparent colour): composited
  on white, with a note when some pixel is not opaque (a fully opaque alpha channel is dropped silently);
- the EXIF orientation (a phone photo's Orientation tag) is applied: the image is used upright, as a viewer
  shows it (`upright=False` keeps the stored pixel order: the evaluators' convention).
`gray(im, what)` is the same for masks, ending in 8-bit L; a mask with transparent pixels is refused: ssgen
reads a mask's gray level (white = keep), and "transparent = keep" or "transparent = regenerate" would be a guess.

A PIL image given in memory (the Python API) gets the same conversions; the size limit is for files (an image in
memory was decoded by its owner).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import SSGenError, first_line


@dataclass(frozen=True)
class Limit:
    """The largest image a reader accepts: pixels on either side, and pixels in all."""

    side: int
    pixels: int

    def describe(self) -> str:
        if self.pixels >= self.side * self.side:  # the side alone bounds it
            return f"at most {self.side} px a side"
        return f"at most {self.side} px a side and {self.pixels / 1e6:g} megapixels"


# An edit's input and mask: a 48-megapixel phone photo (8064x6048) passes; the decoded RGB image is at most 192 MB.
EDIT_LIMIT = Limit(side=16384, pixels=64_000_000)
# eval's and pack-npz's images (generated at <= 1024 px, ADM references 256/512): `eval` holds two batches of up to
# 64 decoded images, so the bound is lower: 64 x 4096 x 4096 x 3 bytes = 3.2 GB a batch at most.
METRIC_LIMIT = Limit(side=4096, pixels=4096 * 4096)

EDIT_HINT = "give a PNG or JPEG file"
SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")
ALPHA_MODES = ("RGBA", "LA", "La", "PA", "RGBa")
ORIENTATION_TAG = 0x0112  # EXIF Orientation


def _transposes() -> dict[int, Any]:
    """EXIF Orientation -> the transpose that makes the image upright (PIL.ImageOps.exif_transpose's table)."""
    from PIL import Image

    T = Image.Transpose
    return {2: T.FLIP_LEFT_RIGHT, 3: T.ROTATE_180, 4: T.FLIP_TOP_BOTTOM, 5: T.TRANSPOSE, 6: T.ROTATE_270,
            7: T.TRANSVERSE, 8: T.ROTATE_90}


def check_size(name: Any, size: tuple[int, int], limit: Limit, what: str = "image") -> None:
    """(W, H) from a header within `limit`, else a one-line SSGenError with the file, its size and the limit."""
    w, h = size
    if max(w, h) > limit.side or w * h > limit.pixels:
        raise SSGenError(f"{what} {name} is too large: {w}x{h} ({w * h / 1e6:.1f} megapixels); ssgen reads images of "
                         f"{limit.describe()}: scale it down first")


def open_lazily(fp: Any, name: Any, limit: Limit, what: str = "image", hint: str = ""):
    """Image.open (header only: nothing decoded) with the size checked against `limit`. `fp` is a path or a file
    object, `name` what messages call it. Errors are one-line SSGenErrors."""
    from PIL import Image

    tail = f"; {hint}" if hint else ""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # `limit` is lower and says it better
            im = Image.open(fp)
    except Image.DecompressionBombError as e:  # over twice PIL's limit: refused inside Image.open
        raise SSGenError(f"{what} {name} is too large ({first_line(e)}); ssgen reads images of {limit.describe()}: "
                         "scale it down first") from None
    except FileNotFoundError:
        raise SSGenError(f"{what} {name} not found{tail}") from None
    except PermissionError:
        raise SSGenError(f"cannot read {what} {name} (permission denied)") from None
    except MemoryError:
        raise
    except Image.UnidentifiedImageError:  # its message repeats the file name
        raise SSGenError(f"{what} {name} is not an image PIL can read{tail}") from None
    except Exception as e:  # a format PIL knows, its header damaged or cut (SyntaxError, OSError, ValueError, ...)
        raise SSGenError(f"{what} {name} is damaged ({first_line(e)}){tail}") from None
    try:
        check_size(name, im.size, limit, what)
    except SSGenError:
        im.close()
        raise
    return im


def read(path: str | Path, what: str = "image", limit: Limit = EDIT_LIMIT, hint: str = EDIT_HINT):
    """A file -> (PIL image decoded once, its mode kept, the file closed; notes): see the module docstring for the
    errors. An animated image's first frame is read, and a note says so."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise SSGenError(f"{what} {p} is a folder; {hint}" if hint else f"{what} {p} is a folder")
    im = open_lazily(p, p, limit, what, hint)
    tail = f"; {hint}" if hint else ""
    with im:
        try:
            frames = getattr(im, "n_frames", 1) if getattr(im, "is_animated", False) else 1
            im.seek(0)
            im.load()
        except MemoryError:
            raise
        except Exception as e:  # a truncated or damaged file (OSError, SyntaxError, ValueError, zlib/struct errors)
            raise SSGenError(f"{what} {p} is damaged ({first_line(e)}){tail}") from None
    return im, [f"{what} {p} has {frames} frames: the first is used"] if frames > 1 else []


@dataclass
class Converted:
    """An image in the mode a reader needs (RGB or L) and what the conversion did that the user should know."""

    image: Any  # PIL image
    notes: list[str] = field(default_factory=list)
    turned: bool = False  # the EXIF orientation swapped width and height


def _orientation(im) -> int:
    """The EXIF Orientation (1 = as stored); a missing or malformed EXIF block counts as 1, as viewers do."""
    try:
        o = im.getexif().get(ORIENTATION_TAG, 1)
    except Exception:  # a malformed EXIF block is not worth refusing the image for
        return 1
    return o if isinstance(o, int) and 1 <= o <= 8 else 1


def _to_8bit(im, label: str, notes: list[str]):
    """A 16-bit, 32-bit integer or float image -> 8-bit L, as the module docstring says; any other image as it is.
    A transparent colour (a 16-bit PNG's tRNS) becomes an alpha channel (LA)."""
    import numpy as np
    from PIL import Image

    if im.mode not in SIXTEEN_BIT + ("I", "F"):
        return im
    a = np.asarray(im)
    if im.mode == "F":
        finite = np.isfinite(a)
        a = np.where(finite, a, 0).astype(np.float32)  # NaN and infinities: 0
        hi = float(a.max()) if a.size else 0.0
        v = a * 255 if hi <= 1.0 else a  # 0..1 data, else 0..255 data
        if not finite.all() or (a.size and (float(v.min()) < 0 or float(v.max()) > 255)):
            notes.append(f"{label} is a float image with values outside {'0..1' if hi <= 1.0 else '0..255'} "
                         "(or not numbers): clipped")
        out = np.rint(np.clip(v, 0, 255)).astype(np.uint8)
    else:
        lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
        if im.mode in SIXTEEN_BIT or (lo >= 0 and hi <= 65535):  # 16-bit data
            out = ((a.astype(np.uint32) + 128) // 257).astype(np.uint8)  # round(v / 257): 65535 -> 255, 257 -> 1
        else:
            out = np.rint((a.astype(np.float64) - lo) * (255.0 / max(hi - lo, 1))).astype(np.uint8)
            notes.append(f"{label} is a 32-bit image with values {lo}..{hi}: stretched to 0..255")
    L = Image.fromarray(out, "L")
    t = im.info.get("transparency")
    if isinstance(t, int) and not isinstance(t, bool):  # one gray value is transparent (PNG tRNS)
        alpha = Image.fromarray(np.where(np.asarray(im) == t, 0, 255).astype(np.uint8), "L")
        L = Image.merge("LA", (L, alpha))
    return L


def has_alpha(im) -> bool:
    return im.mode in ALPHA_MODES or "transparency" in im.info


def _rgba(im):
    if im.mode == "RGBA":
        return im
    return (im.convert("LA") if im.mode == "La" else im).convert("RGBA")  # PIL cannot go from La to RGBA at once


def _open_or_take(image: Any, what: str, limit: Limit, hint: str):
    """(PIL image, what messages call it, notes): a PIL image as it is, a path read."""
    from PIL import Image

    if isinstance(image, Image.Image):
        return image, what, []
    p = Path(image).expanduser()
    im, notes = read(p, what, limit, hint)
    return im, f"{what} {p}", notes


def rgb(image: Any, what: str = "image", limit: Limit = EDIT_LIMIT, upright: bool = True,
        hint: str = EDIT_HINT) -> Converted:
    """A path or PIL image -> the 8-bit RGB picture a viewer shows (module docstring), read once. `hint` ends the
    messages about a file that cannot be read."""
    from PIL import Image

    im, label, notes = _open_or_take(image, what, limit, hint)
    orientation = _orientation(im) if upright else 1
    im = _to_8bit(im, label, notes)
    if has_alpha(im):
        rgba = _rgba(im)
        if rgba.getextrema()[3][0] < 255:  # some pixel is not opaque
            out = Image.new("RGB", rgba.size, (255, 255, 255))
            out.paste(rgba, mask=rgba)  # over white, the alpha band as the mask (no RGB copy of the source)
            notes.append(f"{label} has transparent pixels: composited on a white background")
        else:
            out = rgba.convert("RGB")
    elif im.mode != "RGB":
        out = im.convert("RGB")
    else:
        out = im
    return _upright(out, orientation, notes)


def gray(image: Any, what: str = "mask", limit: Limit = EDIT_LIMIT) -> Converted:
    """A path or PIL image -> 8-bit L (white = 255), upright, read once; a mask with transparent pixels is refused."""
    im, label, notes = _open_or_take(image, what, limit, EDIT_HINT)
    orientation = _orientation(im)
    im = _to_8bit(im, label, notes)
    if has_alpha(im):
        rgba = _rgba(im)
        if rgba.getextrema()[3][0] < 255:
            raise SSGenError(f"{label} has transparent pixels; a mask is read by its gray level (white = keep, "
                             "black = regenerate), not its transparency: save it without an alpha channel")
        im = rgba
    out = im if im.mode == "L" else im.convert("L")
    return _upright(out, orientation, notes)


def _upright(im, orientation: int, notes: list[str]) -> Converted:
    if orientation == 1:
        return Converted(im, notes)
    return Converted(im.transpose(_transposes()[orientation]), notes, turned=orientation >= 5)
