"""Benchmark: seconds per image of a real-size VAR with random weights, with and without SSG.

The compute of random weights equals that of the released ones, so this measures what a user gets
(without downloading gigabytes). Prints medians and ratios and writes JSON; never a test.

    python scripts/bench.py                          # VAR-d16, 256 px, B=1, fp32 and bf16, SSG off/on
    python scripts/bench.py --depth 16 --dtype bf16 --repeat 5 --batch 1 4 16 --json out.json
    python scripts/bench.py --profile --dtype float32 --batch 1 16   # where one image's time goes, per scale
    python scripts/bench.py --per-image --dtype float32 --batch 1 8 16  # per-image time, batch sizes interleaved
    python scripts/bench.py --profile-ops --dtype float32 --batch 1 16  # per op (torch.profiler), per image
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict

import torch
from common import TINY_VAR, build_var, cpu_name, interleave, matmul_rate, print_profile, profile, time_interleaved

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


def per_image_rows(pipe, dt_name: str, batches: list[int], repeat: int) -> list[dict]:
    """--per-image: seconds per image at each batch size, the batch sizes interleaved call by call (one warm-up
    each, SSG off, rng per-image), and each one's ratio to the first (the smallest) batch size."""
    runs = {b: (lambda r, b=b: pipe.generate(classes=[(207 + i) % 1000 for i in range(b)], seed=r, ssg=False))
            for b in batches}
    times = interleave(runs, repeat)
    base = statistics.median(times[batches[0]]) / batches[0]
    rows = []
    for b in batches:
        per = [t / b for t in times[b]]
        m = statistics.median(per)
        each = ", ".join(f"{x:.2f}" for x in per)
        print(f"{pipe.config.name} {dt_name} B={b:<3d}: per image median {m:.3f} s ({each}), "
              f"{m / base:.3f}x B={batches[0]}", flush=True)
        rows.append({"model": pipe.config.name, "dtype": dt_name, "batch": b, "per_image_s": per,
                     "median_per_image_s": m, "ratio_to_first": m / base})
    return rows


def op_profile_rows(pipe, dt_name: str, batches: list[int]) -> list[dict]:
    """--profile-ops: one warm call per batch size under torch.profiler; each op's self CPU time per image (ms),
    the largest first, with its ratio to the first batch size. Profiled calls alternate with the batch sizes."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    per_op: dict[int, dict[str, float]] = {}
    for b in batches:  # warm-up
        pipe.generate(classes=[(207 + i) % 1000 for i in range(b)], seed=0, ssg=False)
    for b in batches:
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            pipe.generate(classes=[(207 + i) % 1000 for i in range(b)], seed=1, ssg=False)
        ops: dict[str, float] = defaultdict(float)
        for e in prof.key_averages():
            ops[e.key] += e.self_cpu_time_total / 1e3 / b  # ms per image
        per_op[b] = dict(ops)
    names = sorted(per_op[batches[-1]], key=lambda k: -per_op[batches[-1]][k])[:25]
    head = f"{'op':42s}" + "".join(f"{'B=' + str(b) + ' ms/img':>16s}" for b in batches) + "   ratio"
    print(f"{pipe.config.name} {dt_name}: self CPU time per image, by op (torch.profiler)\n{head}")
    for n in names:
        vals = [per_op[b].get(n, 0.0) for b in batches]
        ratio = vals[-1] / vals[0] if vals[0] else float("inf")
        print(f"{n[:42]:42s}" + "".join(f"{v:16.1f}" for v in vals) + f"   {ratio:.2f}")
    totals = [sum(per_op[b].values()) for b in batches]
    print(f"{'total':42s}" + "".join(f"{v:16.1f}" for v in totals) + f"   {totals[-1] / totals[0]:.2f}", flush=True)
    return [{"model": pipe.config.name, "dtype": dt_name, "batch": b, "ops_ms_per_image": per_op[b]} for b in batches]


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
    ap.add_argument("--per-image", action="store_true",
                    help="seconds per image at each --batch size, interleaved (SSG off); ratios to the first")
    ap.add_argument("--profile-ops", action="store_true", help="self CPU time per image by op at each --batch size")
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
        if args.per_image:
            rows += per_image_rows(pipe, dt_name, args.batch, args.repeat)
            del pipe
            continue
        if args.profile_ops:
            rows += op_profile_rows(pipe, dt_name, args.batch)
            del pipe
            continue
        for b in args.batch:
            if args.profile:
                rows += profile_rows(pipe, dt_name, b, settings, args.repeat, rate)
            else:
                rows.append(timing_row(pipe, dt_name, b, settings, args.repeat))
        del pipe
    if len(args.dtype) > 1 and not (args.profile or args.per_image or args.profile_ops):
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
