"""Opt-in `torch.compile` of the per-scale transformer step, and CUDA-graph replay of it on CUDA.

    pipe = ssgen.load("var-d30", compile=True)           # or "default"; CLI: --compile
    pipe = ssgen.load("var-d30", compile="cuda-graphs")  # CUDA only;    CLI: --cuda-graphs

What is compiled: each family's step over one scale, the transformer's `forward_scale` (the blocks and
the head over that scale's tokens, KV-cache writes included), which every family names with its
`step_module` property (VAR: `VAR`, Infinity: `Infinity`, HART: `HART`). The rest of a call (text
encoder, CFG, SSG, sampling, the VAE and HART's diffusion head) stays eager: it is cheap, or runs once.

One compile per scale: `dynamic=False`, so each scale (its own token count, its own KV-cache length; the
cache's Python counters are guarded constants) is one graph, compiled by the first call that reaches it
and reused by every later call of the same shape. The first image pays the compile time; a new batch
size (Infinity: a new set of prompt lengths, whose text keys/values enter every block) compiles again.
Dynamo's default recompile limit (8 entries per function) is below the scale counts (VAR 10, Infinity
up to 13, HART 14), so the step runs under `recompile_limit=RECOMPILE_LIMIT`, set around the call only:
the limit is read when dynamo decides whether to compile a frame (it is `compile_ignored`, not part of
any guard), so nothing else in the process is affected.

The KV caches compile as they are, without graph breaks (tests/backends/test_compile.py counts them): VAR and
HART write each scale in place into buffers the first scale allocates (`common.KVCache`); Infinity appends
with `torch.cat`, a new tensor per scale. Every call starts with the caches released (`decode` releases
them, and so does the compiled family's `start`, in case a call was interrupted), so its first scale
always meets the graph compiled for empty caches. On the CPU, the oneDNN-prepacked Linears of every family
go through the custom op `ssgen::onednn_linear` (backends/onednn.py), which inductor calls as it stands.
Tokens equal eager ones up to float rounding: inductor fuses and reorders float sums, so a token whose
probability sits on a sampling boundary can differ, and then everything after it (Infinity's bf16-rounded
cross-attention flips bits most easily; on the CPU its tiny model's images differ from eager's).

"cuda-graphs" is torch.compile's mode "reduce-overhead": inductor records every scale's graph as a CUDA
graph and replays it, with no per-kernel launch cost. cudagraph trees treat every call of a compiled
function as a new "generation" that may overwrite the outputs of the previous one, unless
`torch.compiler.cudagraph_mark_step_begin()` says where an iteration begins. Here an iteration is one
generation call: the KV buffers a scale's graph allocates are written by the next scales' graphs, so
they must live across the steps of a call. `start()` (one per call) marks the step, and within it
every scale's graph is a child of the previous one in the tree, which keeps the live caches. (Marking
every scale step instead would end the iteration at each scale and free the caches the earlier scales'
graphs wrote; cloning them every step would copy the whole cache per scale.) The step's output is
cloned, so what the eager code keeps (logits with keep_logits, HART's last hidden states) is an ordinary
tensor that no later replay can overwrite. The CUDA paths are checked by tests/gpu (`pytest -m gpu`, which
scripts/gpu_check.py runs on a GPU machine).
"""

from __future__ import annotations

import functools
from typing import Any, Callable

from .errors import ConfigError

MODES = ("default", "cuda-graphs")  # what `compile=` takes besides False / True
RECOMPILE_LIMIT = 64  # graphs per step function: every scale (<= 14) for a few call shapes (batch sizes, ...)


def compile_mode(compile: bool | str | None, device: Any) -> str | None:
    """`ssgen.load(compile=...)` -> None (eager), "default" or "cuda-graphs". Raises ConfigError on an unknown
    value, or "cuda-graphs" on a device that is not CUDA (called before any model loads). Torch-free."""
    if compile is None or compile is False:
        return None
    mode = "default" if compile is True else compile
    if mode not in MODES:
        raise ConfigError(f"unknown compile mode {compile!r}; use False, True (= \"default\") or \"cuda-graphs\"")
    kind = getattr(device, "type", str(device).split(":")[0])  # a torch.device, or the --device text
    if mode == "cuda-graphs" and kind not in ("cuda", "auto"):  # "auto" is judged again once resolved
        where = "the CPU" if kind == "cpu" else kind
        raise ConfigError(f"cuda-graphs needs --device cuda; use --compile on {where}")
    return mode


def compile_family(family: Any, mode: str | None, backend: str = "inductor") -> Any:
    """Compile `family.step_module.forward_scale` in place (mode "default" or "cuda-graphs"; None: nothing).

    `backend`: torch.compile's backend; tests use "aot_eager" (the same tracing, no code generation) where
    inductor's C++ compile would be too slow. Returns the family.
    """
    if mode is None:
        return family
    import torch

    m = family.step_module
    if "forward_scale" in vars(m):
        raise RuntimeError(f"{type(m).__name__}.forward_scale is already compiled")
    graphs = mode == "cuda-graphs"
    kw = {"mode": "reduce-overhead" if graphs else "default"} if backend == "inductor" else {}
    compiled = torch.compile(m.forward_scale, backend=backend, dynamic=False, **kw)

    @functools.wraps(m.forward_scale)
    def step(*args, **kwargs):
        with torch._dynamo.config.patch(recompile_limit=RECOMPILE_LIMIT):
            out = compiled(*args, **kwargs)
        return out.clone() if graphs else out  # cuda-graphs: the output leaves the graph pool (module docstring)

    m.forward_scale = step  # an instance attribute: the class's eager method is untouched
    family.start = _starting(family.start, m, graphs)
    return family


def _starting(start: Callable, m: Any, graphs: bool) -> Callable:
    """Wrap `family.start` (one generation call): empty KV caches, so the first scale's graph (compiled for
    empty caches) is the one that runs, even after an interrupted call; with CUDA graphs, begin a cudagraph
    iteration (the call's steps are one path of the tree, see the module docstring)."""
    import torch

    @functools.wraps(start)
    def start_call(*args, **kwargs):
        m.reset_cache(release=True)
        if graphs:
            torch.compiler.cudagraph_mark_step_begin()
        return start(*args, **kwargs)

    return start_call
