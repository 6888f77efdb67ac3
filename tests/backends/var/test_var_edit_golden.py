"""VAR editing conformance: the official zero-shot edit notebook's sampler (`autoregressive_infer_cfg_with_mask`,
`replace_embedding`, `get_edit_mask`) and encoder (`img_to_idxBl`), run on the goldens' tiny256 checkpoint and
tests/data/var_edit/input.png (see that folder's README), reproduced through the public API.

rng="batch", CPU, float32: the keep masks and the tokens equal at every scale, images within 1e-4, for an
inpainting box, an outpainting box and a class-conditional edit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import ssgen
from ssgen.edit import box_mask, keep_per_scale

DATA = Path(__file__).resolve().parents[2] / "data" / "var_edit"
EDITS = ["inpaint", "outpaint", "classedit"]


@pytest.fixture(scope="module")
def refs():
    from safetensors import safe_open

    with safe_open(str(DATA / "refs.safetensors"), "pt") as f:
        meta = {k: json.loads(v) for k, v in f.metadata().items() if k != "official_commit"}
        return meta, {k: f.get_tensor(k) for k in f.keys()}


@pytest.mark.parametrize("name", EDITS)
def test_var_edit_golden(name, refs, var_golden_pipe):
    meta, ref = refs
    call, box, edit = meta["call"], meta["box"], meta[name]
    K = len(var_golden_pipe.family.patch_nums)
    b = ssgen.Box(box["x0"], box["y0"], box["x1"], box["y1"], outpaint=not edit["inpainting"])
    # the keep masks: the notebook's edit_mask on the last grid, then per scale
    mask = box_mask(b, 16, 16)
    assert torch.equal(mask, ref[f"{name}.edit_mask"])
    keep = keep_per_scale(mask, [(p, p) for p in var_golden_pipe.family.patch_nums], None, 1, "cpu")
    for k in range(K):
        assert torch.equal(keep[k], ref[f"{name}.keep.{k}"]), f"keep mask differs at scale {k}"
    label = edit["class_label"]
    res = var_golden_pipe.generate(
        classes=[None if label == 1000 else label] * call["B"], image=DATA / "input.png", keep_mask=b,
        seed=call["g_seed"], cfg=call["cfg"], top_k=call["top_k"], top_p=call["top_p"],
        more_smooth=call["more_smooth"], ssg=False, rng="batch",
    )
    assert res.notes == []  # 256x256: used as is
    for k in range(K):
        assert torch.equal(res.tokens[k], ref[f"{name}.tokens.{k}"]), f"tokens differ at scale {k}"
        kept = ref[f"{name}.keep.{k}"]
        assert torch.equal(res.tokens[k][kept], ref[f"input.tokens.{k}"][kept])  # kept = the input's own
    diff = (res.pixels - ref[f"{name}.image"]).abs().max().item()
    assert diff <= 1e-4, f"image differs by {diff}"
    assert res.settings[0]["class"] == (None if label == 1000 else label)
