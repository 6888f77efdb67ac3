"""Benchmark: seconds per image of a real-size HART transformer with random weights, with and without SSG.

The transformer is built directly at the notes' size estimate for hart-0.7b-1024px (depth 20, width
1280, 20 heads, llama blocks, context_dim 1536, residual MLP 1024 x 6; about 0.7B parameters with
the head) and runs on a reduced schedule (256 px by default, 512 px with --res 512), with the real-size
hybrid tokenizer decoder (ch 160). The text encoder is excluded: random text features (B, 300, 1536)
with a realistic mask stand in for Qwen2's output. Random weights compute exactly what the released
ones do. Prints medians and the SSG overhead ratio and writes JSON; never a test.

    python scripts/bench_hart.py --threads 2                     # 256 px, B=1, fp32 and bf16, SSG off/on
    python scripts/bench_hart.py --res 512 --dtype bf16 --repeat 3 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics

import torch
from common import HART_SCHEDULES, build_hart, cpu_name, matmul_rate, print_profile, profile, time_interleaved

import ssgen
from ssgen.pipeline import resolve_dtype


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--res", type=int, default=256, choices=sorted(HART_SCHEDULES))
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--heads", type=int, default=20)
    ap.add_argument("--dtype", nargs="+", default=["float32", "bfloat16"])
    ap.add_argument("--batch", type=int, nargs="+", default=[1])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--profile", action="store_true", help="per-scale breakdown of one call (SSG off), as bench.py")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-ssg-compare", action="store_true", help="time only without SSG")
    ap.add_argument("--json", default="bench-hart.json")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    ssg_on = ssgen.SSG(beta=0.5, scales=(1, -1))  # the widest range: the worst case for overhead
    rows = []
    load = os.getloadavg() if hasattr(os, "getloadavg") else None  # the machine is shared: how busy it was
    for dt_name in args.dtype:
        dtype = resolve_dtype(dt_name, device)
        pipe = build_hart(args.res, dtype, device, args.depth, args.width, args.heads)
        print(f"HART d{args.depth} w{args.width}: {pipe.n_params / 1e6:.0f}M parameters (transformer + residual MLP), "
              f"{args.res} px, {pipe.num_scales()} scales", flush=True)
        rate = matmul_rate(dtype, device)
        print(f"{cpu_name()}, torch {torch.__version__}: large {dt_name} matmul {rate:.0f} GFLOP/s", flush=True)
        for b in args.batch:
            if args.profile:
                prof = profile(pipe, {"prompts": ["a red fox in the snow"] * b}, False, repeat=args.repeat)
                print(f"HART {args.res}px {dt_name} B={b} SSG off: per-scale profile (ms per call, medians)")
                print_profile(prof, b, rate)
                rows.append({"dtype": dt_name, "batch": b, "profile": prof, "matmul_gflops": rate})
                continue
            settings = [("off", False)] + ([] if args.no_ssg_compare else [("on", ssg_on)])
            res = time_interleaved(pipe, {"prompts": ["a red fox in the snow"] * b}, dict(settings), args.repeat,
                                   args.warmup)
            for label, t in res.items():
                m = statistics.median(t)
                print(f"HART {args.res}px {dt_name:8s} B={b:<3d} SSG {label:3s}: median {m:.3f} s "
                      f"({m / b:.3f} s/image) runs {[round(x, 3) for x in t]}", flush=True)
            row = {"model": f"hart-d{args.depth}-w{args.width}", "res": args.res, "dtype": dt_name, "batch": b,
                   "median_s": statistics.median(res["off"]), "times_s": res["off"]}
            if "on" in res:
                row.update(median_ssg_s=statistics.median(res["on"]), times_ssg_s=res["on"],
                           ssg_overhead_ratio=statistics.median(res["on"]) / statistics.median(res["off"]))
                print(f"  SSG overhead ratio: {row['ssg_overhead_ratio']:.3f}", flush=True)
            rows.append(row)
        del pipe
    if len(args.dtype) > 1 and not args.profile:
        for b in args.batch:
            r = [x for x in rows if x["batch"] == b]
            print(f"B={b}: {r[0]['dtype']} / {r[-1]['dtype']} time ratio {r[0]['median_s'] / r[-1]['median_s']:.2f}x")
    meta = {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": str(device),
            "cpu": cpu_name(), "repeat": args.repeat, "loadavg_at_start": load,
            "text_encoder": "excluded (random features)"}
    with open(args.json, "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
