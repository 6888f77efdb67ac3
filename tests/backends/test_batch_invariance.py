"""rng="per-image": an image depends on its condition and seed alone, not on the rest of its batch.

On the tiny models of the three families (CPU, float32, SSG on as configured), image (condition A,
seed 7) is generated alone, first and second of a batch of 2, and second among 3 with other
conditions (the text families: longer and shorter prompts). Its tokens and pixels must be the same
each time, and its logits within a bound:
- Infinity: exactly equal. Its cross-attention rounds to bf16 (as upstream), which turns any float-order
  difference into a 4e-3 one and then into flipped bits, so its CPU path is bit-exact by construction
  (oneDNN matmuls whose rows do not depend on the row count, attention to the text per length group
  unpadded, T5 prompt by prompt; model.py "Batch invariance").
- VAR and HART: within 1e-4. Their matmuls (MKL) sum a row in an order that depends on the row count:
  float noise of ~1e-5 (measured 1.3e-5 and 3.3e-5), which nothing there amplifies.
One thread (the promise holds for any fixed thread count; 2 threads measured the same), which keeps
these tiny models fast on a busy machine.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import ssgen

BOUND = {"var": 1e-4, "hart": 1e-4, "infinity": 0.0}  # max |logit difference| of the image across batches

A = "a photo of a cat sitting on a red sofa"  # the image under test; other prompts are longer and shorter
LONG, SHORT = "an oil painting of a lighthouse at sunset on a lake", "a dog"
CONDITIONS = {"var": (207, 88, 3), "hart": (A, LONG, SHORT), "infinity": (A, LONG, SHORT)}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny_models(tiny_var, tiny_hart, tiny_inf) -> dict[str, Path]:
    return {"var": tiny_var, "hart": tiny_hart, "infinity": tiny_inf}


def same_image(ref, i, res, j, family: str, what: str) -> None:
    """Image i of `ref` and image j of `res`: equal tokens and pixels, logits within the family's bound."""
    for k, (a, b) in enumerate(zip(ref.tokens, res.tokens)):
        assert torch.equal(a[i], b[j]), f"{family} {what}: tokens differ at scale {k}"
    diff = max((a[i] - b[j]).abs().max().item() for a, b in zip(ref.logits, res.logits))
    assert diff <= BOUND[family], f"{family} {what}: logits differ by {diff}"
    pix = (ref.pixels[i] - res.pixels[j]).abs().max().item()
    assert pix <= (0.0 if family == "infinity" else 1e-4), f"{family} {what}: pixels differ by {pix}"


@pytest.mark.parametrize("family", ["var", "hart", "infinity"])
def test_an_image_does_not_depend_on_its_batch(family, tiny_models):
    pipe = ssgen.load(str(tiny_models[family]), device="cpu", dtype="float32")
    a, b, c = CONDITIONS[family]
    key = "classes" if family == "var" else "prompts"

    def gen(conds, seeds):
        return pipe.generate(**{key: list(conds)}, seeds=seeds, rng="per-image", keep_logits=True)

    alone = gen([a], [7])
    same_image(alone, 0, gen([a, b], [7, 8]), 0, family, "first of 2")
    same_image(alone, 0, gen([b, a], [8, 7]), 1, family, "second of 2")
    same_image(alone, 0, gen([c, a, b], [1, 7, 2]), 1, family, "second of 3")


def test_infinity_negative_prompts_of_other_lengths(tiny_models):
    """Unconditional rows from negative prompts (other lengths than the prompts, and than each other)."""
    pipe = ssgen.load(str(tiny_models["infinity"]), device="cpu", dtype="float32")
    alone = pipe.generate(prompts=[A], seeds=[7], negative_prompt="blurry", keep_logits=True)
    res = pipe.generate(prompts=[SHORT, A], seeds=[1, 7], negative_prompt=["low quality , watermark", "blurry"],
                        keep_logits=True)
    same_image(alone, 0, res, 1, "infinity", "with negative prompts")


def test_onednn_linear_rows_do_not_depend_on_the_row_count():
    """What Infinity's CPU batch invariance rests on, at the released width (2048): a row of a prepacked
    Linear is bit-identical whatever the other rows, one row included (oneDNN's own one-row kernel
    sums in another order; `linear` computes one row as two)."""
    from ssgen.backends.infinity.model import Linear, linear

    torch.manual_seed(0)
    m = Linear(2048, 1024)
    if not torch.backends.mkldnn.is_available():
        pytest.skip("no oneDNN in this PyTorch build")
    m.packed = torch.ops.mkldnn._reorder_linear_weight(m.weight.detach())
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for rows in (1, 3, 16, 144):
            x = torch.randn(rows, 2048, generator=g)
            want = linear(m, x)
            assert torch.equal(linear(m, x[None])[0], want)  # (1, rows, C) as the blocks call it
            for extra in (1, 5, 3 * rows):
                got = linear(m, torch.cat((x, torch.randn(extra, 2048, generator=g))))[:rows]
                assert torch.equal(got, want), f"{rows} rows + {extra}: differ by {(got - want).abs().max()}"
