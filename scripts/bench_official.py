"""Benchmark: ssgen's VAR against the official VAR sampler, side by side, in one process.

Both run the same random real-size weights (`common.build_var`'s model, loaded strictly into
the official modules), interleaved call by call so that a busy machine slows both alike, and the
script prints the medians and the ratio ssgen/official (< 1: ssgen is faster). It also counts the
transformer FLOPs of one generation and sets the achieved rate against a large matmul on this CPU.
A benchmark, never a test.

The official code (FoundationVision/VAR) is imported at run time from a folder given by --official
or the environment variable SSGEN_OFFICIAL_VAR; nothing of it lives in this repository. Get it with
    mkdir -p /tmp/var_official && git --git-dir=/work/.mirror/FoundationVision+VAR/repo archive HEAD \\
        | tar -x -C /tmp/var_official
or `git clone https://github.com/FoundationVision/VAR /tmp/var_official`. It needs no package beyond
the venv's (torch, numpy, huggingface_hub); flash_attn / xformers are optional there and this script
builds it with flash_if_available=False, fused_if_available=False (its plain-PyTorch path, SDPA).

What runs:
- ssgen: `pipe.generate(classes, seed=r, cfg=4.0, top_k=900, top_p=0.95, more_smooth=False, ssg=False)`
  (rng per-image, the default; the result includes the PIL conversion, as a user gets it).
- official: `var.autoregressive_infer_cfg(B, label_B, cfg=4.0, top_k=900, top_p=0.95, g_seed=r,
  more_smooth=False)`.
- float32: both fp32. bfloat16: ssgen with bf16 weights (its bf16 path); the official code as its demo
  runs it: fp32 weights under `torch.autocast("cpu", dtype=torch.bfloat16)`.
Both under `torch.inference_mode()`.

The FLOP line counts ssgen's transformer only: FlopCounterMode around each `VarBackend.logits(k)` call
(all blocks + head, both CFG halves; not the VAE, the sampler or the word embedding of the next
input), in a run of its own; the transformer time is the sum of the `logits(k)` wall times in separate
un-instrumented runs, and the reference matmul is timed between those runs. `--check` compares, in
float32 with B=1 and the same seed, ssgen with rng="batch" (the official draw order) against the
official sampler: its tokens (recorded by wrapping its sampler) and the image's max abs difference.

Examples (from the repository root):
    export SSGEN_OFFICIAL_VAR=/tmp/var_official
    .venv/bin/python scripts/bench_official.py --tiny --repeat 3 --check       # seconds: develop with this
    .venv/bin/python scripts/bench_official.py --repeat 3 --dtype float32      # real-size VAR-d16
    .venv/bin/python scripts/bench_official.py --batch 1 4 --threads 16 --json d16.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from common import (
    MATMUL,
    SAMPLING,
    TINY_VAR,
    build_official,
    build_var,
    cpu_info,
    flop_formulas,
    import_official,
    interleave,
    matmul_timer,
    official_call,
    ssgen_call,
)
from torch.utils.flop_counter import FlopCounterMode

from ssgen.backends.var.family import VarBackend
from ssgen.errors import SSGenError, first_line


def gflops(flops: float, seconds: list[float]) -> float:
    return flops / statistics.median(seconds) / 1e9


def summarize_taken(keys: list[str]) -> str:
    heads = sorted({k.split(".")[0] if not k.startswith("quantize.") else k for k in keys})
    return ", ".join(heads) if heads else "nothing"


# ------------------------------------------------------------------------------------------------
# timing the transformer alone
# ------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def around_logits(make_ctx):
    """Run every `VarBackend.logits(k)` (the transformer: all blocks + head, CFG rows included) inside
    `make_ctx()`; restored on exit."""
    orig = VarBackend.logits

    def logits(self, k):
        with make_ctx():
            return orig(self, k)

    VarBackend.logits = logits
    try:
        yield
    finally:
        VarBackend.logits = orig


def transformer_flops(pipe, classes: list[int]) -> int:
    """FLOPs of the transformer calls of one ssgen generation (FlopCounterMode around `logits` only,
    so the VAE's convolutions and the sampler are not counted)."""
    counters = []

    def counting():
        counters.append(FlopCounterMode(display=False, custom_mapping=flop_formulas()))
        return counters[-1]

    with around_logits(counting):
        ssgen_call(pipe, classes, 0)
    return sum(c.get_total_flops() for c in counters)


def transformer_seconds(pipe, classes: list[int], runs: int, matmul, per_run: int = 4):
    """Sum of the `logits(k)` wall times of a generation, for `runs` un-instrumented generations, each
    followed by `per_run` timed reference matmuls (adjacent in time: on a shared machine the load
    changes from minute to minute) -> (transformer seconds per run, matmul seconds)."""
    out, mm = [], []
    for r in range(runs):
        spent = [0.0]

        @contextlib.contextmanager
        def timing(spent=spent):
            t0 = time.perf_counter()
            yield
            spent[0] += time.perf_counter() - t0

        with around_logits(timing):
            ssgen_call(pipe, classes, r)
        out.append(spent[0])
        mm += [matmul() for _ in range(per_run)]
    return out, mm


# ------------------------------------------------------------------------------------------------
# --check
# ------------------------------------------------------------------------------------------------


def check_agreement(pipe, var, models, seed: int = 0, cls: int = 207) -> dict:
    """fp32, B=1, same seed: ssgen (rng="batch", the official draw order) against the official sampler.
    The official tokens are recorded by wrapping its sampler function."""
    tokens = []
    orig = models.var.sample_with_top_k_top_p_

    def recording(*a, **kw):
        idx = orig(*a, **kw)
        tokens.append(idx[:, :, 0].clone())
        return idx

    models.var.sample_with_top_k_top_p_ = recording
    try:
        img_off = official_call(var, [cls], seed, autocast=False).float()
    finally:
        models.var.sample_with_top_k_top_p_ = orig
    res = ssgen_call(pipe, [cls], seed, rng="batch")
    same = [torch.equal(a, b) for a, b in zip(res.tokens, tokens)]
    diff = (res.pixels - img_off).abs().max().item()
    return {"class": cls, "seed": seed, "scales": len(same), "tokens_equal": sum(same),
            "first_token_difference": same.index(False) if not all(same) else None,
            "image_max_abs_diff": diff, "agree": all(same) and len(same) == len(tokens) and diff <= 1e-4}


# ------------------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--official", default=os.environ.get("SSGEN_OFFICIAL_VAR"),
                    help="folder of the official VAR source (default: $SSGEN_OFFICIAL_VAR)")
    ap.add_argument("--depth", type=int, default=16)
    ap.add_argument("--tiny", action="store_true", help="the goldens' tiny VAR (depth 2, width 128, VAE ch 32)")
    ap.add_argument("--dtype", nargs="+", default=["float32", "bfloat16"], choices=["float32", "bfloat16"])
    ap.add_argument("--batch", type=int, nargs="+", default=[1])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    ap.add_argument("--check", action="store_true", help="fp32, B=1: confirm ssgen and the official images agree")
    ap.add_argument("--json", default="bench-official.json")
    args = ap.parse_args()
    try:
        run(args)
    except SSGenError as e:
        print(f"error: {first_line(e, limit=400)}", file=sys.stderr)
        sys.exit(2)


def run(args) -> None:
    models = import_official(args.official)
    if args.threads:
        torch.set_num_threads(args.threads)
    cpu = cpu_info()
    meta = {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpu": cpu, "repeat": args.repeat,
            "official": str(Path(args.official).resolve()), "sampling": SAMPLING}
    print(f"CPU: {cpu['model_name']} ({cpu['cores']} cores; amx_bf16={cpu['amx_bf16']} "
          f"avx512_bf16={cpu['avx512_bf16']} avx2={cpu['avx2']}); torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads", flush=True)

    def build(dtype: torch.dtype):
        size = TINY_VAR if args.tiny else {"depth": args.depth}
        return build_var(dtype=dtype, device=torch.device("cpu"), keep_state_dicts=True, **size)

    rows, checks = [], []
    for dt_name in args.dtype:
        dtype = getattr(torch, dt_name)
        pipe = build(dtype)
        var, taken, fast = build_official(models, pipe)
        autocast = dtype != torch.float32
        meta.setdefault("official_keys_from_itself", {k: summarize_taken(v) for k, v in taken.items()})
        meta.setdefault("official_fast_paths", fast)
        how = ("official: fp32 weights under torch.autocast('cpu', bfloat16), as its demo; ssgen: bf16 weights"
               if autocast else "both fp32")
        print(f"\n== {pipe.config.name} {dt_name}: {how}; official keys taken from itself: "
              f"VAR {meta['official_keys_from_itself']['var']}; VAE {meta['official_keys_from_itself']['vae']}; "
              f"official fast paths in use: {fast}", flush=True)
        if args.check and dtype == torch.float32:
            checks.append(report_check(check_agreement(pipe, var, models)))
        matmul = matmul_timer(dtype)
        for b in args.batch:
            classes = [(207 + i) % 1000 for i in range(b)]
            runs = {"ssgen": lambda r, p=pipe, c=classes: ssgen_call(p, c, r),
                    "official": lambda r, v=var, c=classes, a=autocast: official_call(v, c, r, a)}
            times = interleave(runs, args.repeat)
            ms, mo = statistics.median(times["ssgen"]), statistics.median(times["official"])
            flops = transformer_flops(pipe, classes)
            tt, mm_times = transformer_seconds(pipe, classes, min(3, args.repeat), matmul)
            mt = statistics.median(tt)
            achieved, rate = flops / mt / 1e9, gflops(2 * math.prod(MATMUL), mm_times)
            bs, bo = min(times["ssgen"]), min(times["official"])  # on a shared machine the best runs say more
            print(f"{dt_name:8s} B={b:<3d} ssgen    median {ms:.3f} s/call ({ms / b:.3f} s/image), best {bs:.3f}\n"
                  f"{'':13s}official median {mo:.3f} s/call ({mo / b:.3f} s/image), best {bo:.3f}\n"
                  f"{'':13s}ratio ssgen/official {ms / mo:.3f} (<1 = ssgen faster); of the best runs {bs / bo:.3f}\n"
                  f"{'':13s}transformer: {flops / b / 1e12:.3f} TFLOP per image, achieved {achieved:.1f} GFLOP/s "
                  f"= {100 * achieved / rate:.0f}% of this CPU's large-matmul rate {rate:.1f} GFLOP/s\n"
                  f"{'':13s}  (transformer = ssgen's logits(k) calls, CFG rows included: {mt:.3f} s per call = "
                  f"{100 * mt / ms:.0f}% of ssgen's median call; matmul {MATMUL[0]}x{MATMUL[1]} @ "
                  f"{MATMUL[1]}x{MATMUL[2]} {dt_name}, timed between the transformer runs)", flush=True)
            rows.append({"model": pipe.config.name, "dtype": dt_name, "batch": b, "official_mode": how,
                         "ssgen_times_s": times["ssgen"], "official_times_s": times["official"],
                         "ssgen_median_s": ms, "official_median_s": mo, "ratio_ssgen_over_official": ms / mo,
                         "ratio_best_runs": bs / bo,
                         "transformer_flops_per_call": flops, "transformer_times_s": tt,
                         "transformer_gflops": achieved, "matmul_gflops": rate, "matmul_times_s": mm_times})
        del pipe, var
    if args.check and "float32" not in args.dtype:
        pipe = build(torch.float32)
        var, _, _ = build_official(models, pipe)
        checks.append(report_check(check_agreement(pipe, var, models)))
    with open(args.json, "w") as f:
        json.dump({"meta": meta, "rows": rows, "check": checks}, f, indent=1)
    print(f"wrote {args.json}")


def report_check(c: dict) -> dict:
    print(f"check (float32, B=1, class {c['class']}, seed {c['seed']}, ssgen rng=batch): tokens equal at "
          f"{c['tokens_equal']}/{c['scales']} scales, image max abs diff {c['image_max_abs_diff']:.2e} -> "
          f"{'agree' if c['agree'] else 'DIFFER'}", flush=True)
    return c


if __name__ == "__main__":
    main()
