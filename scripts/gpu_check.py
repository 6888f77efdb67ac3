"""One short check of what only a GPU runs, then its timings: one JSON and a table.

1. Correctness: the pytest tests marked `gpu` (tests/gpu: every dtype gives finite images with float32 logits, the
   CUDA generators, rng="batch" on CUDA, no host-device sync in the loop, `--compile` / `--cuda-graphs` tokens
   against eager). This script runs `pytest -m gpu tests/gpu` in a fresh process and records each test's outcome;
   without --compile it leaves out the Infinity and HART compile cases (each compiles every scale: about a minute).
2. Timings, with random real-size weights: VAR-d16 at B = 1 and 16 with and without SSG (bf16 and fp16); VAR-d30
   at B = 1 and 64 (the speed-up per image of a large batch); Infinity-2B at 1M (1024 px), SSG off and on, peak
   memory (published anchor: 0.8 s per 1M image on an H100 after warm-up); with --compile both also compiled / as
   CUDA graphs; with --official PATH the official VAR sampler side by side on the same weights (bf16 autocast
   against ssgen's bf16); `ssgen eval`'s work for 50,000 images (Inception features, FID, precision/recall;
   target under 2 minutes). --quick leaves out the VAR-d30 and Infinity-2B timings.

Prints one line per test and timing, then a table, and writes one JSON (default gpu-check.json): `device`, `torch`,
and one entry per test and timing: {"ok", "detail" (or "error" and "trace"), "s"}. The default run is sized for a
few minutes on an H100; --compile adds minutes (every scale compiles once per batch size).

`--device cpu --tiny` runs the whole script on a CPU with tiny models in place of the real-size ones (the gpu tests
skip there): a check of the script itself, in about a minute.

    python scripts/gpu_check.py [--json out.json] [--official /path/to/VAR] [--quick] [--compile]
    python scripts/gpu_check.py --device cpu --tiny --quick
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET
from pathlib import Path

import torch
from common import (
    TINY_VAR,
    build_infinity,
    build_official,
    build_var,
    cpu_name,
    import_official,
    interleave,
    official_call,
    ssgen_call,
    time_generate,
    time_interleaved,
)

import ssgen
from ssgen.compile import compile_family
from ssgen.config import load_config

ROOT = Path(__file__).resolve().parents[1]
GPU_TESTS = "tests/gpu"
COMPILE_ALL_FAMILIES = ["tests/gpu/test_gpu_compile.py::test_compiled_tokens_equal_eager[infinity]",
                        "tests/gpu/test_gpu_compile.py::test_compiled_tokens_equal_eager[hart]"]  # with --compile
SSG_ON = dict(beta=0.5, scales=(1, -1))  # the widest range: the worst case for SSG's overhead


# ------------------------------------------------------------------------------------------------
# correctness: the gpu tests
# ------------------------------------------------------------------------------------------------


def run_gpu_tests(compile_all: bool) -> dict:
    """`pytest -m gpu tests/gpu` in a fresh process (its report printed as it runs) -> one entry per test, and
    one for the run."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "gpu-tests.xml"
        cmd = [sys.executable, "-m", "pytest", "-m", "gpu", GPU_TESTS, "-q", "-p", "no:cacheprovider",
               f"--junitxml={report}"]
        if not compile_all:
            cmd += [f"--deselect={test}" for test in COMPILE_ALL_FAMILIES]
        t0 = time.perf_counter()
        rc = subprocess.run(cmd, cwd=ROOT).returncode
        seconds = round(time.perf_counter() - t0, 3)
        results = read_junit(report) if report.exists() else {}
    passed = sum(1 for r in results.values() if r.get("detail") == "passed")
    skipped = sum(1 for r in results.values() if r.get("detail", "").startswith("skipped"))
    results[f"pytest -m gpu {GPU_TESTS}"] = {"ok": rc == 0, "s": seconds,
                                              "detail": f"exit {rc}: {len(results)} tests, {passed} passed, "
                                                        f"{skipped} skipped"}
    return results


def read_junit(path: Path) -> dict:
    """pytest's JUnit XML report -> {"module::test": {"ok", "detail" (passed / skipped: why) or "error" and
    "trace", "s"}}."""
    results = {}
    for case in ET.parse(path).iter("testcase"):
        name = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
        entry = {"ok": True, "detail": "passed", "s": round(float(case.get("time", 0)), 3)}
        failed = case.find("failure") if case.find("failure") is not None else case.find("error")
        skipped = case.find("skipped")
        if failed is not None:
            entry = {"ok": False, "error": failed.get("message", ""), "trace": failed.text or "", "s": entry["s"]}
        elif skipped is not None:
            entry["detail"] = f"skipped: {skipped.get('message', '')}"
        results[name] = entry
    return results


# ------------------------------------------------------------------------------------------------
# timings
# ------------------------------------------------------------------------------------------------


def timed(name: str, results: dict, fn) -> None:
    """Run one timing; record and print its figures, or its error, and go on: one run should report everything."""
    t0 = time.perf_counter()
    try:
        detail = fn()
        results[name] = {"ok": True, "detail": detail, "s": round(time.perf_counter() - t0, 3)}
        print(f"ok    {name}: {detail}", flush=True)
    except Exception as e:  # report and go on
        results[name] = {"ok": False, "error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()}
        print(f"FAIL  {name}: {type(e).__name__}: {e}", flush=True)


def var_size(depth: int, tiny: bool) -> dict:
    """build_var's size arguments: VAR-d{depth}, or the tiny VAR at 64 px (its batches of 64 take seconds on a
    CPU)."""
    return {**TINY_VAR, "patch_nums": (1, 2, 3, 4)} if tiny else {"depth": depth}


def infinity_config(tiny: bool):
    """Infinity-2B's registered config, or a tiny Infinity's (written into a temporary folder)."""
    if not tiny:
        return load_config("infinity-2b")
    from ssgen.backends.infinity.tiny import make_tiny_infinity

    return load_config(make_tiny_infinity(tempfile.mkdtemp()))


def release(device: torch.device) -> None:
    """Forget compiled graphs and cached GPU memory between models."""
    torch._dynamo.reset()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def var_speed(depth: int, tiny: bool, device: torch.device, repeat: int) -> dict:
    """VAR-d{depth} at B = 1 and 16 in bf16 and fp16: seconds per call without and with SSG."""
    out = {}
    for dtype in (torch.bfloat16, torch.float16):
        pipe = build_var(dtype=dtype, device=device, **var_size(depth, tiny))
        for b in (1, 16):
            off = statistics.median(time_generate(pipe, b, False, repeat))
            on = statistics.median(time_generate(pipe, b, ssgen.SSG(**SSG_ON), repeat))
            out[f"{dtype}-B{b}"] = {"off_s": off, "on_s": on, "ratio": on / off, "images_per_s": b / off}
        del pipe
        release(device)
    return out


def var_d30(tiny: bool, device: torch.device, repeat: int, modes=(None,)) -> dict:
    """VAR-d30 in bf16 at B = 1 and 64 for each compile mode: seconds per image and the large batch's speed-up."""
    out = {}
    for mode in modes:
        pipe = build_var(dtype=torch.bfloat16, device=device, **var_size(30, tiny))
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
        release(device)
    return out


def infinity_1m(tiny: bool, device: torch.device, repeat: int, modes=(None,)) -> dict:
    """Infinity-2B in bf16 at pn 1M for each compile mode: seconds per image, SSG off and on, peak GPU memory."""
    out = {}
    config = infinity_config(tiny)
    for mode in modes:
        pipe = build_infinity(config, torch.bfloat16, device, 32)
        compile_family(pipe.family, mode)
        t = time_interleaved(pipe, {"prompts": ["a red fox"], "pn": "1M"},
                             {"off": False, "on": ssgen.SSG(**SSG_ON)}, repeat, warmup=1)
        off, on = statistics.median(t["off"]), statistics.median(t["on"])
        peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None
        out[mode or "eager"] = {"s_per_image": off, "s_per_image_ssg": on, "ssg_ratio": on / off, "peak_gib": peak}
        print(f"      infinity-2b 1M {mode or 'eager'}: {off:.3f} s/image, SSG {on / off:.3f}x", flush=True)
        del pipe
        release(device)
    return out


def official_side_by_side(path: str, tiny: bool, device: torch.device, repeat: int) -> dict:
    """The official VAR sampler (fp32 weights under bf16 autocast, as its demo) against ssgen in bf16, the same
    weights, interleaved: d16 at B = 1 and 16, d30 at B = 1 and 64."""
    models = import_official(path)
    out = {}
    for depth, b in ((16, 1), (16, 16), (30, 1), (30, 64)):
        pipe = build_var(dtype=torch.bfloat16, device=device, keep_state_dicts=True, **var_size(depth, tiny))
        var, _, fast = build_official(models, pipe)  # fp32 weights, as the demo (autocast does the rest)
        var = var.float().to(device)
        var.vae_proxy[0].to(device), var.vae_quant_proxy[0].to(device)
        var.rng = torch.Generator(device=device)  # built on its dist.get_device(), the CPU here
        classes = [(207 + i) % 1000 for i in range(b)]
        t = interleave({"ssgen": lambda r, p=pipe, c=classes: ssgen_call(p, c, r),
                        "official": lambda r, v=var, c=classes: official_call(v, c, r, autocast=True)}, repeat)
        a, o = statistics.median(t["ssgen"]), statistics.median(t["official"])
        out[f"d{depth}-B{b}"] = {"ssgen_s": a, "official_s": o, "ratio": a / o, "official_fast_paths": fast}
        print(f"      d{depth} B={b}: ssgen {a:.3f} s, official {o:.3f} s, ratio {a / o:.2f}", flush=True)
        del pipe, var
        release(device)
    return out


# ------------------------------------------------------------------------------------------------


def eval_50k(tiny: bool, device: torch.device) -> dict:
    """`ssgen eval`'s work for 50,000 images at 256 px on this device: Inception features (random weights in
    the real file's format, bf16-free: float32 as ADM), then FID/sFID statistics and precision/recall on the
    features. Images are made on the device (decoding PNGs is the CPU's part of a real run, measured apart by
    scripts/bench_eval.py). Target: under 2 minutes on an H100."""
    from ssgen import metrics
    from ssgen.inception import load_inception, make_tiny_inception

    n, batch = (512, 64) if tiny else (50_000, 500)
    with tempfile.TemporaryDirectory() as d:
        net = load_inception(make_tiny_inception(Path(d) / "weights-tiny.pth"), device)
    g = torch.Generator(device=device).manual_seed(0)
    pools, spatial = [], []
    sync_ = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    t0 = time.perf_counter()
    with torch.inference_mode():
        for a in range(0, n, batch):
            x = torch.randint(0, 256, (min(batch, n - a), 256, 256, 3), generator=g, device=device,
                              dtype=torch.uint8)
            f = net(x)
            pools.append(f["pool"].cpu())
            spatial.append(f["spatial"].cpu())
    sync_()
    t_feat = time.perf_counter() - t0
    pool, sp = torch.cat(pools).numpy(), torch.cat(spatial).numpy()
    t1 = time.perf_counter()
    mu, sigma = metrics.feature_stats(pool)
    half = len(pool) // 2
    if half < pool.shape[1]:
        fid = metrics.frechet_distance_few(pool[:half], mu, sigma)
    else:
        fid = metrics.frechet_distance(*metrics.feature_stats(pool[:half]), mu, sigma)
    t_fid = time.perf_counter() - t1
    t2 = time.perf_counter()
    metrics.precision_recall(pool[:half], pool[half:])
    t_pr = time.perf_counter() - t2
    del sp
    return {"images": n, "batch": batch, "features_s": round(t_feat, 2), "images_per_s": round(n / t_feat, 1),
            "fid_s": round(t_fid, 2), "precision_recall_s": round(t_pr, 2), "fid": round(fid, 4),
            "total_s": round(t_feat + t_fid + t_pr, 2)}


def print_table(results: dict) -> None:
    """Every test and timing: ok / FAIL / skip, seconds, and its figures or error in short."""
    print(f"\n{'':5s} {'s':>8s}  check")
    for name, r in results.items():
        if not isinstance(r, dict):
            continue
        skipped = str(r.get("detail", "")).startswith("skipped")
        status = "FAIL" if not r["ok"] else "skip" if skipped else "ok"
        what = r.get("error") or r.get("detail")
        what = what if isinstance(what, str) else json.dumps(what)
        print(f"{status:5s} {r.get('s', 0):8.1f}  {name}: {what[:100]}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default="gpu-check.json")
    ap.add_argument("--depth", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--official", default=None, help="the official VAR source folder (scripts/bench_official.py)")
    ap.add_argument("--quick", action="store_true", help="skip the VAR-d30 and Infinity-2B timings")
    ap.add_argument("--compile", action="store_true", help="also time --compile / --cuda-graphs on VAR-d30 and "
                    "Infinity-2B, and check the tiny Infinity and HART compiled (each scale compiles once per batch "
                    "size: minutes)")
    ap.add_argument("--device", default="cuda", help="cuda (default), or cpu with --tiny to check this script")
    ap.add_argument("--tiny", action="store_true", help="tiny models in place of the real-size ones in the timings")
    args = ap.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device (--device cpu --tiny runs this script on a CPU with tiny models)")
        return 1
    res: dict = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
                 "torch": torch.__version__}
    res.update(run_gpu_tests(args.compile))

    tiny, repeat = args.tiny, args.repeat
    timed(f"VAR-d{args.depth} speed", res, lambda: var_speed(args.depth, tiny, device, repeat))
    if not args.quick:
        extra = ("default", "cuda-graphs") if args.compile else ()
        timed("VAR-d30 B=1 / B=64 (bf16)", res, lambda: var_d30(tiny, device, repeat, (None, *extra)))
        timed("Infinity-2B 1M, SSG off / on (bf16)", res,
              lambda: infinity_1m(tiny, device, max(2, repeat // 2), (None, *extra[:1])))
    timed("ssgen eval: 50,000 images at 256 px (features, FID, precision/recall)", res,
          lambda: eval_50k(tiny, device))
    if args.official:
        timed("official VAR sampler side by side (d16 and d30, bf16 autocast vs ssgen bf16)", res,
              lambda: official_side_by_side(args.official, tiny, device, repeat))

    print_table(res)
    with open(args.json, "w") as f:
        json.dump(res, f, indent=1)
    print(f"wrote {args.json}")
    return 0 if all(v["ok"] for v in res.values() if isinstance(v, dict)) else 1


if __name__ == "__main__":
    sys.exit(main())
