"""The opt-in torch.compile of the per-scale step (ssgen/compile.py) on the CPU: eager's tokens, one graph per
scale, no recompile on the next call; the mode checks and the CLI flags.

Backends: the tiny VAR goes through inductor, as `ssgen.load(compile=True)` runs it. Infinity and HART go
through `backend="aot_eager"`: the same dynamo capture (guards, the KV caches' in-place writes, graph
breaks, recompiles) without inductor's code generation, because inductor compiles C++ on the CPU and a
cold compile (empty inductor cache) is slow on 2 shared cores: measured, the tiny VAR's 4 graphs ~75 s
(vectorised C++) or 18-40 s (scalar), the tiny HART's ~45 s, the tiny Infinity's 7 graphs ~90 s. The VAR
test therefore compiles scalar C++ (`cpp.vec_isa_ok=False`), which changes nothing this test checks; with
a warm inductor cache (/tmp/torchinductor_$USER) the whole file takes ~20 s. Infinity
under inductor also flips bits (its bf16-rounded cross-attention turns float-order differences into other
bits), so its equality to eager only holds with a backend that keeps eager's arithmetic.
"""

from __future__ import annotations

import pytest
import torch
from helpers import ssgen_here

import ssgen
from ssgen.compile import RECOMPILE_LIMIT, compile_family, compile_mode
from ssgen.errors import ConfigError

# torch's own inductor import uses torch.jit.script_method, deprecated in torch 2.13: not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")


def graphs() -> int:
    """Graphs dynamo has compiled in this process so far (every recompile is a new one)."""
    from torch._dynamo.utils import counters

    return counters["stats"]["unique_graphs"]


@pytest.fixture(scope="module", autouse=True)
def _forget_compiled_code():
    yield
    torch._dynamo.reset()  # the compiled graphs and their guards hold the tiny models: free them


def same_tokens(a, b) -> bool:
    return len(a.tokens) == len(b.tokens) and all(torch.equal(x, y) for x, y in zip(a.tokens, b.tokens))


CASES = {  # family: fixture, conditions, backend
    "var": ("tiny_var", dict(classes=[1, 7]), "inductor"),
    "infinity": ("tiny_inf", dict(prompts=["a red fox", "a cat on a mat"]), "aot_eager"),
    "hart": ("tiny_hart", dict(prompts=["a red fox", "a cat on a mat"]), "aot_eager"),
}


@pytest.mark.parametrize("family", list(CASES))
def test_compiled_step_gives_eager_tokens_and_compiles_once_per_scale(request, family):
    fixture, conds, backend = CASES[family]
    yml = str(request.getfixturevalue(fixture))
    kw = dict(seed=5, rng="per-image", **conds)
    eager = ssgen.load(yml, device="cpu", dtype="float32").generate(**kw)
    if backend == "inductor":  # the user's path: ssgen.load(compile=True)
        pipe = ssgen.load(yml, device="cpu", dtype="float32", compile=True)
    else:
        pipe = ssgen.load(yml, device="cpu", dtype="float32")
        compile_family(pipe.family, "default", backend=backend)
        pipe.compile = "default"
    K = pipe.num_scales()
    assert K <= RECOMPILE_LIMIT
    before = graphs()
    # a process-wide recompile limit below the scale count: the step's own limit (RECOMPILE_LIMIT) applies
    with torch._dynamo.config.patch(recompile_limit=1), torch._inductor.config.patch({"cpp.vec_isa_ok": False}):
        first = pipe.generate(**kw)
    assert graphs() - before == K  # one graph per scale: no graph break, no second compile, no eager fallback
    second = pipe.generate(**kw)
    assert graphs() - before == K  # the second call replays every scale's graph
    assert same_tokens(first, eager) and same_tokens(second, eager)
    assert torch.allclose(first.pixels, eager.pixels, atol=1e-4)
    assert first.settings[0]["compile"] == "default" and "compile" not in eager.settings[0]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("family", list(CASES))
def test_cuda_graphs_replay_the_compiled_step(request, family):
    """On a GPU: CUDA graphs change no number (the tokens of mode "default", the same kernels), on the warm-up,
    recording and replay calls alike (a KV cache overwritten between scales would change them); no recompile,
    and no graph left out of CUDA graphs."""
    from torch._dynamo.utils import counters

    fixture, conds, _ = CASES[family]
    yml = str(request.getfixturevalue(fixture))
    kw = dict(seed=5, rng="per-image", **conds)
    compiled = ssgen.load(yml, device="cuda", dtype="float32", compile=True).generate(**kw)
    pipe = ssgen.load(yml, device="cuda", dtype="float32", compile="cuda-graphs")
    before, skips = graphs(), counters["inductor"]["cudagraph_skips"]
    runs = [pipe.generate(**kw) for _ in range(3)]  # warm-up, recording, replay
    assert graphs() - before == pipe.num_scales()
    assert counters["inductor"]["cudagraph_skips"] == skips
    assert all(same_tokens(r, compiled) for r in runs)
    assert runs[-1].settings[0]["compile"] == "cuda-graphs"


def test_compile_modes_are_checked_before_loading():
    assert compile_mode(False, torch.device("cpu")) is None and compile_mode(None, "cpu") is None
    assert compile_mode(True, "cpu") == compile_mode("default", torch.device("cpu")) == "default"
    assert compile_mode("cuda-graphs", "auto") == "cuda-graphs"  # judged again once "auto" is resolved
    with pytest.raises(ConfigError, match="unknown compile mode 'bogus'"):
        compile_mode("bogus", "cpu")
    with pytest.raises(ConfigError, match="^cuda-graphs needs --device cuda; use --compile on the CPU$"):
        compile_mode("cuda-graphs", torch.device("cpu"))


def test_bogus_mode_fails_before_any_weights(tiny_var, monkeypatch):
    import ssgen.backends.var.family

    monkeypatch.setattr(ssgen.backends.var.family, "load", lambda *a, **kw: pytest.fail("weights were loaded"))
    with pytest.raises(ConfigError, match="unknown compile mode 'bogus'"):
        ssgen.load(str(tiny_var), device="cpu", compile="bogus")
    with pytest.raises(ConfigError, match="cuda-graphs needs --device cuda"):
        ssgen.load(str(tiny_var), device="cpu", compile="cuda-graphs")


@pytest.mark.parametrize("command", ["generate", "compare", "batch"])
def test_cli_cuda_graphs_on_the_cpu_is_a_one_line_error(tiny_var, tmp_path, command):
    out = ["--out", str(tmp_path / "run"), "--classes", "1"] if command == "batch" else \
        ["-c", "1", "-o", str(tmp_path / "x.png")]
    r = ssgen_here(command, "-m", str(tiny_var), "--device", "cpu", "--cuda-graphs", *out)
    assert r.exit_code == 2, (r.stdout, r.stderr)
    assert r.stderr.strip() == "error: cuda-graphs needs --device cuda; use --compile on the CPU", r.stderr
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "run" / "run.json").exists()


def test_cli_help_describes_the_compile_flags():
    r = ssgen_here("generate", "--help")
    assert r.exit_code == 0
    text = " ".join(r.stdout.replace("│", " ").split())  # the help text as words, without rich's box
    for words in ("--compile", "--cuda-graphs", "Opt-in", "first image pays the compile time",
                  "one compile per scale", "tokens equal eager ones up to float rounding"):
        assert words in text, words
