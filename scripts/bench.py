"""Benchmark: seconds per image of a real-size VAR with random weights, with and without SSG.

The compute of random weights equals that of the released ones, so this measures what a user gets
(without downloading gigabytes). Prints medians and ratios and writes JSON; never a test.

    python scripts/bench.py                          # VAR-d16, 256 px, B=1, fp32 and bf16, SSG off/on
    python scripts/bench.py --depth 16 --dtype bf16 --repeat 5 --batch 1 4 16 --json out.json
    python scripts/bench.py --profile --dtype float32 --batch 1 16   # where one image's time goes, per scale
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch
from common import TINY_VAR, build_var, cpu_name, matmul_rate, print_profile, profile, time_interleaved

import ssgen
from ssgen.pipeline import resolve_dtype


def profile_rows(pipe, dt_name: str, batch: int, settings: dict, repeat: int, rate: float) -> list[dict]:
    """--profile: the per-scale breakdown of one call at this batch size, printed, for each SSG setting."""
    classes = [(207 + i) % 1000 for i in range(batch)]
    rows = []
    for label, ssg in settings.items():
        prof = profile(pipe, {"classes": classes}, ssg, repeat=repeat)
        print(f"{pipe.config.name} {dt_name} B={batch} SSG {label}: per-scale profile (ms per call, medians)")
        print_profile(prof, batch, rate)
        rows.append({"model": pipe.config.name, "dtype": dt_name, "batch": batch, "ssg": label, "profile": prof,
                     "matmul_gflops": rate})
    return rows


def timing_row(pipe, dt_name: str, batch: int, settings: dict, repeat: int) -> dict:
    """Seconds per call at this batch size, the SSG settings interleaved, printed; the SSG overhead ratio."""
    res = time_interleaved(pipe, {"classes": [(207 + i) % 1000 for i in range(batch)]}, settings, repeat)
    for label, t in res.items():
        m = statistics.median(t)
        print(f"{pipe.config.name} {dt_name:8s} B={batch:<3d} SSG {label:3s}: median {m:.3f} s "
              f"({m / batch:.3f} s/image, {batch / m:.2f} images/s)", flush=True)
    off = statistics.median(res["off"])
    row = {"model": pipe.config.name, "dtype": dt_name, "batch": batch, "median_s": off, "times_s": res["off"],
           "images_per_s": batch / off}
    if "on" in res:
        row.update(median_ssg_s=statistics.median(res["on"]), times_ssg_s=res["on"],
                   ssg_overhead_ratio=statistics.median(res["on"]) / off)
        print(f"  SSG overhead ratio: {row['ssg_overhead_ratio']:.3f}")
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--depth", type=int, default=16)
    ap.add_argument("--tiny", action="store_true", help="the goldens' tiny VAR (depth 2, width 128, VAE ch 32)")
    ap.add_argument("--dtype", nargs="+", default=["float32", "bfloat16"])
    ap.add_argument("--batch", type=int, nargs="+", default=[1])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-ssg-compare", action="store_true", help="time only without SSG")
    ap.add_argument("--profile", action="store_true", help="per-scale breakdown of one call (SSG on and off)")
    ap.add_argument("--json", default="bench-var.json")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    settings = {"off": False}
    if not args.no_ssg_compare:
        settings["on"] = ssgen.SSG(beta=0.5, scales=(1, -1))  # the widest range: the worst case for overhead
    rows = []
    for dt_name in args.dtype:
        dtype = resolve_dtype(dt_name, device)
        size = TINY_VAR if args.tiny else {"depth": args.depth}
        pipe = build_var(dtype=dtype, device=device, **size)
        rate = matmul_rate(dtype, device)
        print(f"{cpu_name()}, torch {torch.__version__}: large {dt_name} matmul {rate:.0f} GFLOP/s", flush=True)
        for b in args.batch:
            if args.profile:
                rows += profile_rows(pipe, dt_name, b, settings, args.repeat, rate)
            else:
                rows.append(timing_row(pipe, dt_name, b, settings, args.repeat))
        del pipe
    if len(args.dtype) > 1 and not args.profile:
        for b in args.batch:
            r = [x for x in rows if x["batch"] == b]
            print(f"B={b}: {r[0]['dtype']} / {r[-1]['dtype']} speed ratio {r[0]['median_s'] / r[-1]['median_s']:.2f}x")
    meta = {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": str(device),
            "cpu": cpu_name(), "repeat": args.repeat}
    with open(args.json, "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
