"""Editing a real image, the torch-free half: `Box`, `--box` parsing, the range checks, and `EditInput`
(the input image and keep mask opened, checked and described once per command). The torch half (the fitted
pixels, masks on the token grids, the `loop.Edit`) is ssgen/edit.py.

Editing: inpainting, outpainting, class-conditional editing and variations.

The input image is fitted to the call's image size and encoded into its per-scale tokens
(`backend.encode`); a keep mask (white/1 = keep the input) says, per scale, which positions take the
input's tokens instead of the sampled ones (`loop.Edit`), as VAR's zero-shot editing notebook does:
the mask is resized bilinearly (align_corners=False) to each scale's grid and thresholded at 0.5, and
scales of at most 3 tokens are always kept. `keep_scales=k` keeps scales 0..k-1 whole (variations).

"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .checks import as_float, as_int
from .errors import ConfigError, OptionError, SSGenError

MAX_GRID_TOKENS_ALWAYS_KEPT = 3  # scales with at most this many tokens always keep the input (the notebook's rule)

# ------------------------------------------------------------------------------------------------
# torch-free: boxes, ranges, opening files
# ------------------------------------------------------------------------------------------------


def check_box(x0: float, y0: float, x1: float, y1: float) -> None:
    """A box in image fractions: inside [0, 1], x0 < x1 and y0 < y1."""
    vals = tuple(as_float(v, "box", hint=" (X0,Y0,X1,Y1 are fractions of the image, 0..1)") for v in (x0, y0, x1, y1))
    x0, y0, x1, y1 = vals
    if not all(0.0 <= v <= 1.0 for v in vals):
        raise ConfigError(f"box {','.join(f'{v:g}' for v in vals)} is outside [0, 1]; give fractions of the "
                          "image, e.g. --box 0.25,0.25,0.75,0.75")
    if not (x0 < x1 and y0 < y1):
        raise ConfigError(f"box {','.join(f'{v:g}' for v in vals)} is empty: it needs x0 < x1 and y0 < y1 "
                          "(X0,Y0 the top left corner, X1,Y1 the bottom right)")


@dataclass(frozen=True)
class Box:
    """A rectangle of the image in fractions (x to the right, y down). Inpainting (default): the box is
    regenerated and the rest kept; `outpaint=True`: the box is kept and the rest regenerated."""

    x0: float
    y0: float
    x1: float
    y1: float
    outpaint: bool = False

    def __post_init__(self):
        check_box(self.x0, self.y0, self.x1, self.y1)

    def label(self) -> str:
        """What a PNG records: "0.25,0.25,0.75,0.75 inpaint"."""
        return f"{self.x0:g},{self.y0:g},{self.x1:g},{self.y1:g} {'outpaint' if self.outpaint else 'inpaint'}"


def parse_box(text: str, outpaint: bool = False) -> Box:
    """`--box X0,Y0,X1,Y1` -> Box (checked)."""
    try:
        vals = [float(v) for v in text.split(",")]
    except ValueError:
        vals = []
    if len(vals) != 4:
        raise ConfigError(f"malformed --box {text!r}; give X0,Y0,X1,Y1 as fractions of the image, "
                          "e.g. --box 0.25,0.25,0.75,0.75")
    return Box(*vals, outpaint=outpaint)


def check_keep_scales(keep_scales: Any, num_scales: int | None) -> int:
    """keep_scales: a whole number in 0..K (K = every scale kept: the reconstruction)."""
    k = as_int(keep_scales, "keep_scales", hint=" (the input's first scales to keep)")
    if k < 0 or (num_scales is not None and k > num_scales):
        hi = num_scales if num_scales is not None else "K"
        raise OptionError("keep_scales", f"{k} is out of range: give 0..{hi} (the input's first scales to keep; "
                                         "this model runs " + (f"{num_scales} scales)" if num_scales else "K scales)"))
    return k


def is_tensor(x: Any) -> bool:
    """Whether x is a torch tensor, without importing torch (if torch is not loaded, x cannot be one)."""
    return "torch" in sys.modules and isinstance(x, sys.modules["torch"].Tensor)


def open_image(image: Any, what: str = "image"):
    """A path or a PIL image -> `ssgen.images.Converted` (the RGB image as a viewer shows it, upright; notes), through
    the one opener of user images (`ssgen.images`: size limit from the header, one decode, one-line errors)."""
    from .images import rgb

    return _converted(image, what, rgb)


def open_mask(mask: Any):
    """A mask path or PIL image -> `ssgen.images.Converted` (the L image, upright; notes): `ssgen.images.gray`."""
    from .images import gray

    return _converted(mask, "mask", gray)


def _converted(image: Any, what: str, convert):
    from PIL import Image

    if not isinstance(image, (str, Path, Image.Image)):
        raise ConfigError(f"{what} must be a file path or a PIL image, got {type(image).__name__}")
    try:
        return convert(image, what)
    except ConfigError:
        raise
    except SSGenError as e:  # one kind for every input problem of an edit
        raise ConfigError(str(e)) from None


def fit_box(src: tuple[int, int], dst: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int, int, int]]:
    """How an image of size src (W, H) fits dst (W, H): resize to `size` (the short side to dst's) and crop
    `box` (left, top, right, bottom), centered."""
    (w, h), (W, H) = src, dst
    s = max(W / w, H / h)
    size = (max(W, round(w * s)), max(H, round(h * s)))
    left, top = (size[0] - W) // 2, (size[1] - H) // 2
    return size, (left, top, left + W, top + H)


def fit(im, size_hw: tuple[int, int]):
    """PIL image -> (PIL image of (H, W), note or None). One of that size is used as is; another is resized
    (short side, LANCZOS) and center-cropped, and the note says so."""
    from PIL import Image

    H, W = size_hw
    if im.size == (W, H):
        return im, None
    size, crop = fit_box(im.size, (W, H))
    # Resizing only the crop's source region (`box`) is the resize-then-crop above, filter taps included, without
    # the whole resized image: a 16384x1 strip would be 16384*H x H pixels before its crop.
    sx, sy = size[0] / im.size[0], size[1] / im.size[1]
    out = im.resize((W, H), Image.LANCZOS, box=(crop[0] / sx, crop[1] / sy, crop[2] / sx, crop[3] / sy))
    return out, f"input {im.size[0]}x{im.size[1]} resized and center-cropped to {W}x{H}"


def file_digest(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(Path(path).expanduser(), "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def describe(image: Any, keep_mask: Any, keep_scales: int | None, used: Any, mask: Any) -> dict[str, Any]:
    """What a PNG records about an edit: the input's sha256 (of the file's bytes, or of a PIL image's RGB pixels
    as used: the key says which), the mask (a box, a mask file's sha256 or a PIL mask's L pixels as used,
    "tensor") and keep_scales. `used`, `mask`: the RGB image and the mask as the edit uses them."""
    d: dict[str, Any] = {}
    if isinstance(image, (str, Path)):
        d["input_sha256"] = file_digest(image)
    else:
        d["input_pixels_sha256"] = hashlib.sha256(used.tobytes()).hexdigest()
    if keep_mask is None:
        d["keep_mask"] = None
    elif isinstance(keep_mask, Box):
        d["keep_mask"] = keep_mask.label()
    elif isinstance(keep_mask, (str, Path)):
        d["keep_mask"] = "sha256:" + file_digest(keep_mask)
    elif is_tensor(keep_mask):
        d["keep_mask"] = "tensor"
    else:
        d["keep_mask"] = "pixels-sha256:" + hashlib.sha256(mask.tobytes()).hexdigest()
    d["keep_scales"] = keep_scales
    return d


@dataclass(frozen=True)
class EditInput:
    """An edit's input, opened, checked and described once per command: the image (decoded once, as a viewer shows
    it: RGB, upright), the keep mask (a Box, a (h, w) tensor or an L mask image of the image's size, decoded once),
    keep_scales, what the PNGs record, and the notes of opening them (transparency, frames, ...). `fitted(size)`
    fits the image to a call's size once per size."""

    image: Any  # RGB PIL image (`ssgen.images.rgb`)
    keep_mask: Any  # Box | torch.Tensor (h, w) | L PIL image | None
    keep_scales: int | None
    settings: dict[str, Any]  # the input's sha256, the mask, keep_scales (ssgen info shows them)
    notes: tuple[str, ...] = ()  # what opening the image and mask did that the user should know
    _fits: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def size(self) -> tuple[int, int]:
        """(W, H) of the input as used (upright)."""
        return self.image.size

    def fitted(self, size_hw: tuple[int, int]):
        """(RGB PIL image of (H, W), note or None): resized and center-cropped once per size."""
        key = tuple(size_hw)
        if key not in self._fits:
            self._fits[key] = fit(self.image, key)
        return self._fits[key]


def edit_input(image: Any, keep_mask: Any = None, keep_scales: Any = None) -> EditInput:
    """Open and check an edit's input (no model needed): the image opens, the mask is a Box, a (h, w) tensor or
    an image (path or PIL) of the input's size, keep_scales is a whole number, and something is kept. Both images
    are read as a viewer shows them (`ssgen.images`: EXIF orientation applied, so a mask is drawn on the upright
    image). Range checks that need the scale count run when a request is resolved."""
    if isinstance(image, EditInput):
        return image
    if image is None:
        raise ConfigError("keep_mask and keep_scales edit an input image: pass image=PATH or a PIL image (--image)")
    opened = open_image(image)
    if keep_scales is not None:
        check_keep_scales(keep_scales, None)
    mask, notes = keep_mask, list(opened.notes)
    if keep_mask is None:
        if keep_scales is None:
            raise ConfigError("nothing of the input is kept: give keep_mask (--mask, --box) and/or keep_scales "
                              "(--keep-scales K: variations)")
    elif isinstance(keep_mask, Box):
        pass
    elif is_tensor(keep_mask):
        if keep_mask.ndim != 2 or keep_mask.shape[0] < 1 or keep_mask.shape[1] < 1:
            raise ConfigError(f"keep_mask tensor has shape {tuple(keep_mask.shape)}; give one (h, w) mask, 1 = keep")
    else:
        m = open_mask(keep_mask)
        mask = m.image
        notes += m.notes
        if mask.size != opened.image.size:
            (mw, mh), (w, h) = mask.size, opened.image.size
            shown = " as a viewer shows it (its EXIF orientation turns it upright)" if opened.turned else ""
            raise ConfigError(f"mask is {mw}x{mh} but the image is {w}x{h}{shown}; give a mask of the image's size "
                              "(white = keep)")
    settings = describe(image, keep_mask, keep_scales, opened.image, mask)
    return EditInput(opened.image, mask, keep_scales, settings, tuple(dict.fromkeys(notes)))
