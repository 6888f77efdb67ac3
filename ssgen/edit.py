"""Editing a real image: inpainting, outpainting, class-conditional editing and variations.

The input image is fitted to the call's image size and encoded into its per-scale tokens
(`backend.encode`); a keep mask (white/1 = keep the input) says, per scale, which positions take the
input's tokens instead of the sampled ones (`loop.Edit`), as VAR's zero-shot editing notebook does:
the mask is resized bilinearly (align_corners=False) to each scale's grid and thresholded at 0.5, and
scales of at most 3 tokens are always kept. `keep_scales=k` keeps scales 0..k-1 whole (variations).

Two halves. Torch-free (the CLI checks its input with it before torch is imported): `Box`, parsing
`--box`, the range checks, opening the image and the mask. Torch (imported inside the functions): the
fitted pixels, the mask on the token grids, the `Edit` and the settings a PNG records.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError, first_line

MAX_GRID_TOKENS_ALWAYS_KEPT = 3  # scales with at most this many tokens always keep the input (the notebook's rule)

# ------------------------------------------------------------------------------------------------
# torch-free: boxes, ranges, opening files
# ------------------------------------------------------------------------------------------------


def check_box(x0: float, y0: float, x1: float, y1: float) -> None:
    """A box in image fractions: inside [0, 1], x0 < x1 and y0 < y1."""
    vals = (x0, y0, x1, y1)
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in vals):
        raise ConfigError(f"box {vals} must be four numbers X0,Y0,X1,Y1 (fractions of the image, 0..1)")
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


def check_keep_scales(keep_scales: Any, n_scales: int | None) -> int:
    """keep_scales: a whole number in 0..K (K = every scale kept: the reconstruction)."""
    ok = isinstance(keep_scales, int) and not isinstance(keep_scales, bool) and keep_scales >= 0
    if not ok or (n_scales is not None and keep_scales > n_scales):
        hi = n_scales if n_scales is not None else "K"
        raise ConfigError(f"keep_scales {keep_scales!r} is out of range: give 0..{hi} (the input's first scales "
                          "to keep; this model runs " + (f"{n_scales} scales)" if n_scales else "K scales)"))
    return int(keep_scales)


def is_tensor(x: Any) -> bool:
    """Whether x is a torch tensor, without importing torch (if torch is not loaded, x cannot be one)."""
    return "torch" in sys.modules and isinstance(x, sys.modules["torch"].Tensor)


def open_image(image: Any, what: str = "image"):
    """A path or a PIL image -> PIL image, loaded; a missing or unreadable file is a one-line ConfigError."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(image, Image.Image):
        return image
    if not isinstance(image, (str, Path)):
        raise ConfigError(f"{what} must be a file path or a PIL image, got {type(image).__name__}")
    p = Path(image).expanduser()
    if not p.is_file():
        raise ConfigError(f"{what} {p} not found" + (" (it is a folder)" if p.is_dir() else "")
                          + "; give the path of a PNG or JPEG file")
    try:
        with Image.open(p) as im:
            im.load()
            return im.copy()
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise ConfigError(f"cannot read {what} {p}: {first_line(e)}; give a PNG or JPEG file") from None


def check_inputs(image: Any, keep_mask: Any, keep_scales: Any, n_scales: int | None) -> None:
    """Everything about an edit's input that needs no model: the image opens, the mask is a box, a (h, w)
    tensor or an image (path or PIL) of the input's size, keep_scales in 0..K, and something is kept."""
    if image is None:
        raise ConfigError("keep_mask and keep_scales edit an input image: pass image=PATH or a PIL image (--image)")
    im = open_image(image)
    if keep_scales is not None:
        check_keep_scales(keep_scales, n_scales)
    if keep_mask is None:
        if keep_scales is None:
            raise ConfigError("nothing of the input is kept: give keep_mask (--mask, --box) and/or keep_scales "
                              "(--keep-scales K: variations)")
        return
    if isinstance(keep_mask, Box):
        return
    if is_tensor(keep_mask):
        if keep_mask.ndim != 2 or keep_mask.shape[0] < 1 or keep_mask.shape[1] < 1:
            raise ConfigError(f"keep_mask tensor has shape {tuple(keep_mask.shape)}; give one (h, w) mask, 1 = keep")
        return
    m = open_image(keep_mask, "mask")
    if m.size != im.size:
        raise ConfigError(f"mask is {m.size[0]}x{m.size[1]} but the image is {im.size[0]}x{im.size[1]}; "
                          "give a mask of the image's size (white = keep)")


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
    out = im.resize(size, Image.LANCZOS).crop(crop)
    return out, f"input {im.size[0]}x{im.size[1]} resized and center-cropped to {W}x{H}"


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(Path(path).expanduser(), "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def describe(image: Any, keep_mask: Any, keep_scales: int | None) -> dict[str, Any]:
    """What a PNG records about an edit: the input's sha256 (of the file's bytes, or of a PIL image's RGB
    pixels: the key says which), the mask (a box, a mask file's or PIL image's sha256, "tensor") and keep_scales."""
    d: dict[str, Any] = {}
    if isinstance(image, (str, Path)):
        d["input_sha256"] = sha256_file(image)
    else:
        d["input_pixels_sha256"] = hashlib.sha256(image.convert("RGB").tobytes()).hexdigest()
    if keep_mask is None:
        d["keep_mask"] = None
    elif isinstance(keep_mask, Box):
        d["keep_mask"] = keep_mask.label()
    elif isinstance(keep_mask, (str, Path)):
        d["keep_mask"] = "sha256:" + sha256_file(keep_mask)
    elif is_tensor(keep_mask):
        d["keep_mask"] = "tensor"
    else:
        d["keep_mask"] = "pixels-sha256:" + hashlib.sha256(keep_mask.convert("L").tobytes()).hexdigest()
    d["keep_scales"] = keep_scales
    return d


# ------------------------------------------------------------------------------------------------
# torch: pixels, masks on the token grids, the Edit
# ------------------------------------------------------------------------------------------------


def pixels(im):
    """PIL image -> (1, 3, H, W) float32 in [-1, 1] (RGB; [0, 1] -> x * 2 - 1)."""
    import numpy as np
    import torch

    a = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0  # (H, W, 3) in [0, 1]
    return torch.from_numpy(a).permute(2, 0, 1)[None].mul(2).sub(1).contiguous()  # (1, 3, H, W)


def gray(im):
    """PIL image -> (H, W) float32 in [0, 1] (L mode, /255)."""
    import numpy as np
    import torch

    return torch.from_numpy(np.asarray(im.convert("L"), dtype=np.float32) / 255.0)  # (H, W)


def box_mask(box: Box, ph: int, pw: int):
    """The notebook's get_edit_mask on the last token grid (ph, pw) -> (ph, pw) float32 keep mask: 1 inside the
    box (rows round(y0 ph):round(y1 ph), columns round(x0 pw):round(x1 pw)) for outpainting, its complement
    for inpainting. Python's round (halves to even), as the notebook."""
    import torch

    m = torch.zeros(ph, pw)
    m[round(box.y0 * ph):round(box.y1 * ph), round(box.x0 * pw):round(box.x1 * pw)] = 1
    return m if box.outpaint else 1 - m


def mask_tensor(keep_mask: Any, src_size: tuple[int, int], size_hw: tuple[int, int], grid_last: tuple[int, int]):
    """keep_mask -> (h0, w0) float32, 1 = keep, or None. A tensor is taken as it is (any size: it lies over the
    fitted image); a mask image (path or PIL; L mode, /255, white = keep) must be of the input's size `src_size`
    (W, H) and gets the image's resize and crop to `size_hw`; a Box is the notebook's mask on the last grid."""
    import torch

    if keep_mask is None:
        return None
    if isinstance(keep_mask, Box):
        return box_mask(keep_mask, *grid_last)
    if isinstance(keep_mask, torch.Tensor):
        return keep_mask.detach().float().cpu()
    m = open_image(keep_mask, "mask")
    if m.size != tuple(src_size):
        raise ConfigError(f"mask is {m.size[0]}x{m.size[1]} but the image is {src_size[0]}x{src_size[1]}; "
                          "give a mask of the image's size (white = keep)")
    return gray(fit(m.convert("L"), size_hw)[0])  # (H, W)


def keep_per_scale(mask, grid: list[tuple[int, int]], keep_scales: int | None, B: int, device) -> list:
    """Per scale (B, h*w) bool (True = keep the input's token), or None (keep nothing).

    Scales < keep_scales: all kept. Then, with a mask (h0, w0): resized bilinearly (align_corners=False) to the
    scale's grid, > 0.5; scales of at most 3 tokens all kept. Without a mask, or with one that keeps nothing
    (no value > 0.5; the notebook would still keep the first tiny scales): nothing kept, so an all-zero mask
    is plain generation."""
    import torch
    import torch.nn.functional as F

    if mask is not None and not bool((mask > 0.5).any()):
        mask = None
    keep = []
    for k, (h, w) in enumerate(grid):
        if k < (keep_scales or 0) or (mask is not None and h * w <= MAX_GRID_TOKENS_ALWAYS_KEPT):
            m = torch.ones(h * w, dtype=torch.bool)
        elif mask is None:
            keep.append(None)
            continue
        else:
            m = F.interpolate(mask[None, None], size=(h, w), mode="bilinear", align_corners=False)[0, 0] > 0.5
            m = m.reshape(h * w)
        keep.append(m.to(device).expand(B, h * w))  # (B, h*w)
    return keep


@dataclass
class Prepared:
    """An edit ready for the loop: the Edit, the reconstruction (B, 3, H, W) in [0, 1], what the PNGs record,
    notes, and the fitted input image (PIL)."""

    edit: Any  # loop.Edit
    reconstruction: Any  # torch.Tensor
    settings: dict[str, Any]
    notes: list[str]
    fitted: Any


def prepare(backend, image: Any, keep_mask: Any, keep_scales: int | None, B: int, device) -> Prepared:
    """Fit the input to `backend.image_size`, encode it once and broadcast it to the batch of B, and build the
    per-scale keep masks on the backend's grid."""
    from .loop import Edit

    src = open_image(image)
    fitted, note = fit(src.convert("RGB"), tuple(backend.image_size))
    mask = mask_tensor(keep_mask, src.size, tuple(backend.image_size), tuple(backend.grid[-1]))  # (h0, w0)
    tokens, recon = backend.encode(pixels(fitted).to(device))  # per scale (1, N_k); (1, 3, H, W)
    tokens = [t.expand(B, -1) for t in tokens]  # one input for the whole batch
    keep = keep_per_scale(mask, [tuple(g) for g in backend.grid], keep_scales, B, device)
    return Prepared(Edit(tokens, keep), recon.float().cpu().repeat(B, 1, 1, 1),
                    describe(image, keep_mask, keep_scales), [note] if note else [], fitted)
