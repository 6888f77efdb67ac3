"""Benchmark: what SSG itself costs per image on every family's grids, up to Infinity's 1M (64x64) and
its widest aspect (111x37), and the memory of its prior operators. Prints medians and writes JSON.

The whole-image overhead ratio at 256 px is measured directly by bench.py / bench_infinity.py /
bench_hart.py (SSG on vs off, interleaved). A 1M Infinity image takes minutes on a CPU, so here the
ratio at 1M is bounded instead: SSG's measured seconds per image over a lower bound of the image's
time, the transformer's FLOPs (2 x parameters x tokens, CFG's two rows, attention left out) at this
run's large-matmul rate. The real image is slower, so the real ratio is smaller than the bound.

    python scripts/bench_ssg.py                      # all grids, B = 1 and 16, float32
    python scripts/bench_ssg.py --batch 1 --json bench-ssg.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from common import HART_SCHEDULES, P256, RssSampler, cpu_name, matmul_rate, read_status

from ssgen.backends.infinity.options import PN_SCALES, SCHEDULES
from ssgen.guidance import prior_operator, ssg

VAR_GRIDS = [(p, p) for p in P256]
HART_GRIDS = [(p, p) for p in HART_SCHEDULES[1024]]
# (name, grids, logit channels per position, transformer parameters for the FLOP bound)
CASES = [
    ("var-d16 256px", VAR_GRIDS, 4096, 310e6),
    ("var-d30 256px", VAR_GRIDS, 4096, 2.0e9),
    ("infinity-2b 0.06M", SCHEDULES[1.0][:PN_SCALES["0.06M"]], 64, 2.0e9),
    ("infinity-2b 1M", SCHEDULES[1.0][:PN_SCALES["1M"]], 64, 2.0e9),
    ("infinity-2b 1M 3:1", SCHEDULES[3.0][:PN_SCALES["1M"]], 64, 2.0e9),
    ("hart 1024px", HART_GRIDS, 4096, 732e6),
]


def build_operators(grid) -> tuple[list, float, int]:
    """SSG's prior operators of every scale pair, built afresh -> (operators, seconds, the build's peak RssAnon
    above what the process held before: its transient memory, sampled every millisecond)."""
    prior_operator.cache_clear()
    before = read_status().get("RssAnon", 0)
    with RssSampler(interval=0.001) as mem:
        t0 = time.perf_counter()
        ops = [prior_operator(grid[k - 1], grid[k]) for k in range(1, len(grid))]
        seconds = time.perf_counter() - t0
    mem.sample()
    return ops, seconds, max(0, mem.peak.get("RssAnon", 0) - before)


def ssg_seconds(grid, C: int, B: int, repeat: int) -> float:
    """Median seconds of the SSG updates of one call (every scale k >= 1, beta 0.5)."""
    ls = [torch.randn(B, h * w, C) for h, w in grid]
    ts = []
    for _ in range(repeat + 1):
        t0 = time.perf_counter()
        for k in range(1, len(grid)):
            ssg(ls[k], ls[k - 1], 0.5, grid[k], grid[k - 1])
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts[1:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", default="bench-ssg.json")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rate = matmul_rate(torch.float32, torch.device("cpu"))
    print(f"{cpu_name()}, torch {torch.__version__}: large float32 matmul {rate:.0f} GFLOP/s")
    rows = []
    for name, grid, C, params in CASES:
        ops, build_s, transient = build_operators(grid)
        op_bytes = sum(m.numel() * m.element_size() for m in ops)
        tokens = sum(h * w for h, w in grid)
        bound_s = 2 * params * tokens * 2 / (rate * 1e9)  # per image: 2 FLOP per parameter per token, x2 rows
        for B in args.batch:
            s = ssg_seconds(grid, C, B, args.repeat)
            ratio = 1 + (s / B) / bound_s
            print(f"{name:20s} B={B:<3d} last grid {grid[-1][0]}x{grid[-1][1]}: SSG {1e3 * s / B:8.2f} ms/image; "
                  f"image >= {bound_s:7.2f} s -> overhead <= {ratio:.4f}x; operators {op_bytes / 2**20:.1f} MiB "
                  f"(built once in {build_s:.2f} s, peak +{transient / 2**20:.0f} MiB)", flush=True)
            rows.append({"case": name, "batch": B, "grid": grid, "channels": C, "ssg_s_per_image": s / B,
                         "image_lower_bound_s": bound_s, "overhead_ratio_bound": ratio,
                         "operator_bytes": op_bytes, "operator_build_s": build_s, "build_peak_extra_bytes": transient})
    meta = {"cpu": cpu_name(), "torch": torch.__version__, "matmul_gflops": rate, "repeat": args.repeat}
    with open(args.json, "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
