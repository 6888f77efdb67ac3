"""Benchmark: seconds per image of a real-size Infinity with random weights, with and without SSG.

The transformer and the BSQ VAE decoder are built at their released sizes (from the registered
config's `model:` section) directly in memory, no checkpoint; the T5 text encoder is left out and
random text features (Ct5 = 2048, `--text-tokens` per prompt) are fed instead. The compute of random
weights equals that of the released ones. Prints medians and the SSG overhead ratio and writes JSON;
never a test.

    python scripts/bench_infinity.py                               # Infinity-2B, pn 0.06M (256 px), fp32 + bf16
    python scripts/bench_infinity.py --dtype bfloat16 --repeat 5 --threads 2 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch
from common import build_infinity, cpu_name, matmul_rate, print_profile, profile, time_interleaved

import ssgen
from ssgen.config import load_config
from ssgen.pipeline import resolve_dtype


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="infinity-2b", help="a registered Infinity config (its model: sizes)")
    ap.add_argument("--pn", default="0.06M", help="resolution budget (0.06M = 256 px, 7 scales)")
    ap.add_argument("--dtype", nargs="+", default=["float32", "bfloat16"])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--text-tokens", type=int, default=32)
    ap.add_argument("--profile", action="store_true", help="per-scale breakdown of one call (SSG off), as bench.py")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", default="bench-infinity.json")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    ssg_on = ssgen.SSG(beta=0.5, scales=(1, -1))  # the widest range: the worst case for overhead
    rows = []
    for dt_name in args.dtype:
        dtype = resolve_dtype(dt_name, device)
        t0 = time.perf_counter()
        pipe = build_infinity(load_config(args.model), dtype, device, args.text_tokens)
        print(f"built {args.model} ({dt_name}) in {time.perf_counter() - t0:.1f} s", flush=True)
        prompts = [f"prompt {i}" for i in range(args.batch)]
        rate = matmul_rate(dtype, device)
        print(f"{cpu_name()}, torch {torch.__version__}: large {dt_name} matmul {rate:.0f} GFLOP/s", flush=True)
        if args.profile:
            prof = profile(pipe, {"prompts": prompts, "pn": args.pn}, False, repeat=args.repeat)
            print(f"{args.model} {args.pn} {dt_name} B={args.batch} SSG off: per-scale profile (ms per call, medians)")
            print_profile(prof, args.batch, rate)
            rows.append({"dtype": dt_name, "batch": args.batch, "profile": prof, "matmul_gflops": rate})
            del pipe
            continue
        res = time_interleaved(pipe, {"prompts": prompts, "pn": args.pn}, {"off": False, "on": ssg_on}, args.repeat)
        for label, t in res.items():
            med = statistics.median(t)
            print(f"{args.model} {args.pn} {dt_name:8s} B={args.batch} SSG {label:3s}: median {med:.2f} s "
                  f"({med / args.batch:.2f} s/image)  runs {[round(x, 2) for x in t]}", flush=True)
        row = {"model": args.model, "pn": args.pn, "dtype": dt_name, "batch": args.batch,
               "median_s": statistics.median(res["off"]), "times_s": res["off"],
               "median_ssg_s": statistics.median(res["on"]), "times_ssg_s": res["on"],
               "s_per_image": statistics.median(res["off"]) / args.batch}
        row["ssg_overhead_ratio"] = row["median_ssg_s"] / row["median_s"]
        print(f"  SSG overhead ratio: {row['ssg_overhead_ratio']:.3f}", flush=True)
        rows.append(row)
        del pipe
    if len(rows) > 1 and not args.profile:
        print(f"{rows[0]['dtype']} / {rows[-1]['dtype']} speed ratio {rows[0]['median_s'] / rows[-1]['median_s']:.2f}x")
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    meta = {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": str(device),
            "cpu": cpu_name(), "repeat": args.repeat,
            "text_tokens": args.text_tokens, "loadavg_at_end": load,
            "note": "text encoder excluded (random text features); VAE decode included"}
    with open(args.json, "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
