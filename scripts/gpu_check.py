"""One short GPU check of the paths the CPU tests cannot reach (run it when a GPU is available).

Checks, on cuda:0: the tiny VAR in float32 / bfloat16 / float16 gives finite images; the CUDA
generators make per-image RNG batch-independent and repeatable; rng="batch" on CUDA matches itself;
SSG runs in every dtype; `--compile` and `--cuda-graphs` give the eager tokens on the tiny VAR (all
three tiny families with --compile); no host-device sync inside the loop
(torch.cuda.set_sync_debug_mode("error")). Then it times, with random real-size weights (bf16):
VAR-d16 at B = 1 and 16 with and without SSG; VAR-d30 at B = 1 and 64 (the batch speed-up per image
is the issue's >= 4x); Infinity-2B at 1M (1024 px), SSG off and on, peak memory (both also compiled /
as CUDA graphs with --compile; published anchor: 0.8 s per 1M image on an H100 after warm-up); and,
with --official PATH, the official VAR sampler side by side on the same weights.
Prints one line per check and writes one JSON (default gpu-check.json). The compiled timings are
opt-in (`--compile`: every scale compiles once per batch size, minutes); --quick skips the d30 /
Infinity timings. A lent GPU session has 15 minutes in all: run the default first, --compile if time
is left.

    python scripts/gpu_check.py [--json out.json] [--official /path/to/VAR] [--quick] [--compile]
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
    ap.add_argument("--official", default=None, help="the official VAR source folder (scripts/bench_official.py)")
    ap.add_argument("--quick", action="store_true", help="skip the VAR-d30 and Infinity-2B timings")
    ap.add_argument("--compile", action="store_true", help="also time --compile / --cuda-graphs on VAR-d30 and "
                    "Infinity-2B (each scale compiles once per batch size: minutes)")
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

    def compiled_tokens():
        from ssgen.backends.hart.tiny import make_tiny_hart
        from ssgen.backends.infinity.tiny import make_tiny_infinity

        out = {}
        cases = [("var", make_tiny_var, {"classes": [1, 2]}),
                 ("infinity", make_tiny_infinity, {"prompts": ["a red fox", "a cat"]}),
                 ("hart", make_tiny_hart, {"prompts": ["a red fox", "a cat"]})]
        for name, make, kw in cases if args.compile else cases[:1]:  # each compile costs ~a minute
            path = str(make(tempfile.mkdtemp()))
            eager = ssgen.load(path, device="cuda", dtype="float32").generate(**kw, seed=3, ssg=False)
            for mode in (True, "cuda-graphs"):
                p = ssgen.load(path, device="cuda", dtype="float32", compile=mode)
                p.generate(**kw, seed=3, ssg=False)  # compiles every scale
                r = p.generate(**kw, seed=3, ssg=False)
                same = sum(torch.equal(a, b) for a, b in zip(r.tokens, eager.tokens))
                out[f"{name}-{mode}"] = f"{same}/{len(r.tokens)} scales equal"
        return out
    check("compile / cuda-graphs tokens vs eager (tiny, fp32)", res, compiled_tokens)

    def no_sync():
        p = ssgen.load(str(tiny), device="cuda", dtype="float32")
        import ssgen.loop as loop

        orig = loop.run

        def strict(backend, *a, **kw):  # the final decode may sync (to PIL); the per-scale loop may not
            dec = backend.decode
            torch.cuda.set_sync_debug_mode("error")
            try:
                backend.decode = lambda rng: (torch.cuda.set_sync_debug_mode(0), dec(rng))[1]
                return orig(backend, *a, **kw)
            finally:
                torch.cuda.set_sync_debug_mode(0)
        import ssgen.pipeline as pl
        pl.run_loop = strict
        try:
            p.generate(classes=[1, 2], seed=0, ssg=ssgen.SSG(beta=0.5, scales=(1, -1)))
        finally:
            pl.run_loop = orig
        return "no synchronizing call between the first logits and the decode"
    check("no host-device sync in the loop", res, no_sync)

    if not args.quick:
        extra = ("default", "cuda-graphs") if args.compile else ()
        check("VAR-d30 B=1 / B=64 (bf16)", res, lambda: var_d30(args.repeat, (None, *extra)))
        check("Infinity-2B 1M, SSG off / on (bf16)", res,
              lambda: infinity_1m(max(2, args.repeat // 2), (None, *extra[:1])))
    if args.official:
        check("official VAR sampler side by side (d16 and d30, bf16 autocast vs ssgen bf16)", res,
              lambda: official_side_by_side(args.official, args.repeat))

    with open(args.json, "w") as f:
        json.dump(res, f, indent=1)
    print(f"wrote {args.json}")
    return 0 if all(v.get("ok", True) for v in res.values() if isinstance(v, dict)) else 1


def var_d30(repeat: int, modes=(None,)) -> dict:
    sys.path.insert(0, "scripts")
    from bench import build_var, time_generate

    from ssgen.compile import compile_family

    out = {}
    for mode in modes:
        pipe = build_var(30, torch.bfloat16, torch.device("cuda"))
        compile_family(pipe.family, mode)
        per = {}
        for b in (1, 64):
            t = statistics.median(time_generate(pipe, b, False, repeat, warmup=2))
            per[b] = t / b
            out[f"{mode or 'eager'}-B{b}"] = {"s_per_call": t, "s_per_image": t / b, "images_per_s": b / t}
        out[f"{mode or 'eager'}-batch64-speedup-per-image"] = per[1] / per[64]
        print(f"      d30 {mode or 'eager'}: B=1 {per[1]:.3f} s/image, B=64 {per[64]:.4f} s/image "
              f"({per[1] / per[64]:.1f}x)", flush=True)
        del pipe
        torch._dynamo.reset()
        torch.cuda.empty_cache()
    return out


def infinity_1m(repeat: int, modes=(None,)) -> dict:
    sys.path.insert(0, "scripts")
    from bench import time_interleaved
    from bench_infinity import build

    from ssgen.compile import compile_family

    out = {}
    for mode in modes:
        pipe = build("infinity-2b", torch.bfloat16, torch.device("cuda"), 32)
        compile_family(pipe.family, mode)
        t = time_interleaved(pipe, {"prompts": ["a red fox"], "pn": "1M"},
                             {"off": False, "on": ssgen.SSG(beta=0.5, scales=(1, -1))}, repeat, warmup=1)
        off, on = statistics.median(t["off"]), statistics.median(t["on"])
        out[mode or "eager"] = {"s_per_image": off, "s_per_image_ssg": on, "ssg_ratio": on / off,
                                "peak_gib": torch.cuda.max_memory_allocated() / 2**30}
        print(f"      infinity-2b 1M {mode or 'eager'}: {off:.3f} s/image, SSG {on / off:.3f}x", flush=True)
        del pipe
        torch._dynamo.reset()
        torch.cuda.empty_cache()
    return out


def official_side_by_side(path: str, repeat: int) -> dict:
    sys.path.insert(0, "scripts")
    from bench import build_var, interleave
    from bench_official import build_official, import_official, official_call, ssgen_call

    models = import_official(path)
    out = {}
    for depth, b in ((16, 1), (16, 16), (30, 1), (30, 64)):
        pipe = build_var(depth, torch.bfloat16, torch.device("cuda"), keep_state_dicts=True)
        var, _, fast = build_official(models, pipe)  # fp32 weights, as the demo (autocast does the rest)
        var = var.float().cuda()
        var.vae_proxy[0].cuda(), var.vae_quant_proxy[0].cuda()
        var.rng = torch.Generator(device="cuda")  # built on its dist.get_device(), the CPU here
        classes = [(207 + i) % 1000 for i in range(b)]
        t = interleave({"ssgen": lambda r, p=pipe, c=classes: ssgen_call(p, c, r),
                        "official": lambda r, v=var, c=classes: official_call(v, c, r, autocast=True)}, repeat)
        a, o = statistics.median(t["ssgen"]), statistics.median(t["official"])
        out[f"d{depth}-B{b}"] = {"ssgen_s": a, "official_s": o, "ratio": a / o, "official_fast_paths": fast}
        print(f"      d{depth} B={b}: ssgen {a:.3f} s, official {o:.3f} s, ratio {a / o:.2f}", flush=True)
        del pipe, var
        torch.cuda.empty_cache()
    return out


if __name__ == "__main__":
    sys.exit(main())
