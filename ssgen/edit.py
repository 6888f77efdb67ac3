"""Editing a real image, the torch half: the fitted pixels, the keep mask on every scale's token grid, and
the `loop.Edit` a generation call runs with. The input is opened and checked once per command by the
torch-free `ssgen.edit_input.EditInput`.

The input image is fitted to the call's image size and encoded into its per-scale tokens
(`backend.encode`); a keep mask (white/1 = keep the input) says, per scale, which positions take the
input's tokens instead of the sampled ones (`loop.Edit`), as VAR's zero-shot editing notebook does:
the mask is resized bilinearly (align_corners=False) to each scale's grid and thresholded at 0.5, and
scales of at most 3 tokens are always kept. `keep_scales=k` keeps scales 0..k-1 whole (variations).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .edit_input import MAX_GRID_TOKENS_ALWAYS_KEPT, Box, EditInput, fit


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


def mask_tensor(keep_mask: Any, size_hw: tuple[int, int], grid_last: tuple[int, int]):
    """An EditInput's keep mask -> (h0, w0) float32, 1 = keep, or None. A tensor is taken as it is (any size:
    it lies over the fitted image); a mask image (L mode, /255, white = keep; of the input's size, checked and
    converted when the input was opened) gets the image's resize and crop to `size_hw`; a Box is the notebook's
    mask on the last grid."""
    import torch

    if keep_mask is None:
        return None
    if isinstance(keep_mask, Box):
        return box_mask(keep_mask, *grid_last)
    if isinstance(keep_mask, torch.Tensor):
        return keep_mask.detach().float().cpu()
    return gray(fit(keep_mask, size_hw)[0])  # (H, W); an L image (`ssgen.images.gray`)


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


def prepare(backend, given: EditInput, B: int, device) -> Prepared:
    """Fit the input to `backend.image_size` (once per size: EditInput keeps it), encode it once and broadcast it
    to the batch of B, and build the per-scale keep masks on the backend's grid."""
    from .loop import Edit

    size = tuple(backend.image_size)
    fitted, note = given.fitted(size)
    mask = mask_tensor(given.keep_mask, size, tuple(backend.grid[-1]))  # (h0, w0)
    tokens, recon = backend.encode(pixels(fitted).to(device))  # per scale (1, N_k); (1, 3, H, W)
    tokens = [t.expand(B, -1) for t in tokens]  # one input for the whole batch
    keep = keep_per_scale(mask, [tuple(g) for g in backend.grid], given.keep_scales, B, device)
    return Prepared(Edit(tokens, keep), recon.float().cpu().repeat(B, 1, 1, 1), dict(given.settings),
                    [note] if note else [], fitted)
