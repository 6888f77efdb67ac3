"""One short GPU check of the paths the CPU tests cannot reach (run it when a GPU is available).

Checks, on cuda:0: the tiny VAR in float32 / bfloat16 / float16 gives finite images; the CUDA
generators make per-image RNG batch-independent and repeatable; rng="batch" on CUDA matches
itself; SSG runs in every dtype; and times a real-size random-weight VAR-d16 (bf16) with and
without SSG. Prints one line per check and writes JSON (default gpu-check.json).

    python scripts/gpu_check.py [--json out.json] [--depth 16]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import traceback

import torch

import ssgen
from ssgen.backends.var.tiny import make_tiny_var


def check(name: str, results: dict, fn) -> None:
    t0 = time.perf_counter()
    try:
        detail = fn()
        results[name] = {"ok": True, "detail": detail, "s": round(time.perf_counter() - t0, 3)}
        print(f"ok    {name}: {detail}", flush=True)
    except Exception as e:  # report and go on: one run should say everything
        results[name] = {"ok": False, "error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()}
        print(f"FAIL  {name}: {type(e).__name__}: {e}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", default="gpu-check.json")
    ap.add_argument("--depth", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device")
        return 1
    res: dict = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    tiny = make_tiny_var(tempfile.mkdtemp())

    for dt in ("float32", "bfloat16", "float16"):
        def run(dt=dt):
            p = ssgen.load(str(tiny), device="cuda", dtype=dt)
            r = p.generate(classes=[1, 2, 3], seed=0, ssg=ssgen.SSG(beta=0.5, scales=(1, -1)), keep_logits=True)
            assert torch.isfinite(r.pixels).all() and r.logits[-1].dtype == torch.float32
            return f"{tuple(r.pixels.shape)} finite, logits fp32"
        check(f"tiny VAR {dt} + SSG", res, run)

    def per_image():
        p = ssgen.load(str(tiny), device="cuda", dtype="float32")
        both = p.generate(classes=[22, 980], seed=3, ssg=False)
        solo = p.generate(classes=[980], seeds=[4], ssg=False)
        again = p.generate(classes=[22, 980], seed=3, ssg=False)
        same = all(torch.equal(a[1], b[0]) for a, b in zip(both.tokens, solo.tokens))
        assert all(torch.equal(a, b) for a, b in zip(both.tokens, again.tokens)), "not repeatable"
        assert same, "per-image tokens depend on the batch"
        return f"tokens batch-independent; pixel diff {(both.pixels[1] - solo.pixels[0]).abs().max().item():.2e}"
    check("per-image CUDA generators", res, per_image)

    def batch_mode():
        p = ssgen.load(str(tiny), device="cuda", dtype="float32")
        a = p.generate(classes=[1, 2], seed=7, rng="batch", ssg=False)
        b = p.generate(classes=[1, 2], seed=7, rng="batch", ssg=False)
        assert all(torch.equal(x, y) for x, y in zip(a.tokens, b.tokens))
        return "repeatable"
    check("batch RNG on CUDA", res, batch_mode)

    def hart_batch_mode():
        from ssgen.backends.hart.tiny import make_tiny_hart

        p = ssgen.load(str(make_tiny_hart(tempfile.mkdtemp())), device="cuda", dtype="float32")
        a = p.generate(prompts=["a red fox", "a cat"], seed=7, rng="batch", ssg=False)
        b = p.generate(prompts=["a red fox", "a cat"], seed=7, rng="batch", ssg=False)
        assert torch.equal(a.pixels, b.pixels) and torch.isfinite(a.pixels).all()
        return "residual diffusion (x_T from the CPU generator, steps on CUDA) repeatable"
    check("HART batch RNG on CUDA", res, hart_batch_mode)

    def bench():
        sys.path.insert(0, "scripts")
        from bench import build_var, time_generate

        out = {}
        for dt in (torch.bfloat16, torch.float16):
            pipe = build_var(args.depth, dt, torch.device("cuda"))
            for b in (1, 16):
                off = time_generate(pipe, b, False, args.repeat)
                on = time_generate(pipe, b, ssgen.SSG(beta=0.5, scales=(1, -1)), args.repeat)
                out[f"{dt}-B{b}"] = {"off_s": statistics.median(off), "on_s": statistics.median(on),
                                     "ratio": statistics.median(on) / statistics.median(off),
                                     "images_per_s": b / statistics.median(off)}
            del pipe
            torch.cuda.empty_cache()
        return out
    check(f"VAR-d{args.depth} speed", res, bench)

    with open(args.json, "w") as f:
        json.dump(res, f, indent=1)
    print(f"wrote {args.json}")
    return 0 if all(v.get("ok", True) for v in res.values() if isinstance(v, dict)) else 1


if __name__ == "__main__":
    sys.exit(main())
