"""`--compile` and `--cuda-graphs` on a CUDA GPU give eager's tokens, on the tiny models. Marked `gpu`; they skip
without CUDA. Each case compiles every scale (about a minute): scripts/gpu_check.py runs the VAR cases by default
and the Infinity and HART ones with --compile.

VAR and HART must equal eager at every scale. Infinity's cross-attention rounds to bf16, which turns inductor's other
float order into flipped bits on float boundaries (ssgen/compile.py), after which the scales differ: it must equal
eager at the first scale, and CUDA graphs must replay the compiled tokens exactly (the same kernels)."""

from __future__ import annotations

import pytest
import torch

import ssgen

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

CASES = {  # family: fixture, conditions
    "var": ("tiny_var", dict(classes=[1, 2])),
    "infinity": ("tiny_inf", dict(prompts=["a red fox", "a cat"])),
    "hart": ("tiny_hart", dict(prompts=["a red fox", "a cat"])),
}


@pytest.fixture(scope="module", autouse=True)
def _forget_compiled_code():
    yield
    torch._dynamo.reset()  # the compiled graphs and their guards hold the tiny models: free them


def compiled_run(yml: str, mode, conditions: dict):
    """The second call of a pipe compiled in `mode` (the first compiles every scale)."""
    pipe = ssgen.load(yml, device="cuda", dtype="float32", compile=mode)
    pipe.generate(**conditions, seed=3, ssg=False)
    return pipe.generate(**conditions, seed=3, ssg=False)


def equal_scales(a, b) -> list[bool]:
    return [torch.equal(x, y) for x, y in zip(a.tokens, b.tokens)]


@pytest.mark.parametrize("family", list(CASES))
def test_compiled_tokens_equal_eager(request, family):
    fixture, conditions = CASES[family]
    yml = str(request.getfixturevalue(fixture))
    eager = ssgen.load(yml, device="cuda", dtype="float32").generate(**conditions, seed=3, ssg=False)
    compiled = compiled_run(yml, True, conditions)
    graphs = compiled_run(yml, "cuda-graphs", conditions)
    assert len(compiled.tokens) == len(eager.tokens) == len(graphs.tokens)
    if family == "infinity":
        assert equal_scales(compiled, eager)[0] and all(equal_scales(graphs, compiled))
    else:
        assert all(equal_scales(compiled, eager)), equal_scales(compiled, eager)
        assert all(equal_scales(graphs, eager)), equal_scales(graphs, eager)
