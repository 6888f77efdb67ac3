"""Benchmark: seconds per image of a real-size VAR with random weights, with and without SSG.

The compute of random weights equals that of the released ones, so this measures what a user gets
(without downloading gigabytes). Prints medians and ratios and writes JSON; never a test.

    python scripts/bench.py                          # VAR-d16, 256 px, B=1, fp32 and bf16, SSG off/on
    python scripts/bench.py --depth 16 --dtype bf16 --repeat 5 --batch 1 4 16 --json out.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

import ssgen
from ssgen.backends.var.family import VarModel
from ssgen.backends.var.model import VAR, VARConfig
from ssgen.backends.var.vae import VQVAE, VQVAEConfig
from ssgen.config import ModelConfig
from ssgen.pipeline import Pipeline, resolve_dtype

P256 = (1, 2, 3, 4, 5, 6, 8, 10, 13, 16)


def build_var(depth: int, dtype: torch.dtype, device: torch.device, vae_ch: int = 160, width: int | None = None,
              heads: int | None = None) -> Pipeline:
    """A real-size VAR-d{depth} + VQVAE (ch 160) with random weights, as a Pipeline."""
    vcfg = VARConfig(depth=depth, width=width, heads=heads, patch_nums=P256)
    torch.manual_seed(0)
    var = VAR(vcfg).init_random(std=0.02, seed=0)
    vae = VQVAE(VQVAEConfig(ch=vae_ch, patch_nums=P256))
    var = var.to(device=device, dtype=dtype).eval()
    vae = vae.to(device=device, dtype=dtype).eval()
    cfg = ModelConfig(name=f"var-d{depth}-w{vcfg.width}-random", family="var",
                      defaults={"cfg": 4.0, "top_k": 900, "top_p": 0.95, "more_smooth": False})
    return Pipeline(cfg, VarModel(cfg, vcfg, var, vae, device, dtype), device, dtype)


def time_generate(pipe: Pipeline, batch: int, ssg, repeat: int, warmup: int = 1) -> list[float]:
    classes = [(207 + i) % 1000 for i in range(batch)]
    return time_interleaved(pipe, {"classes": classes}, {"x": ssg}, repeat, warmup)["x"]


def time_interleaved(pipe: Pipeline, kwargs: dict, settings: dict, repeat: int, warmup: int = 1) -> dict:
    """Seconds per `pipe.generate(**kwargs, ssg=...)` call for each SSG setting ({label: ssg}), the
    settings alternating run by run so that a busy machine slows them alike (a ratio of two
    sequential blocks measures the machine's load, not SSG). Shared by every bench script."""
    for _ in range(warmup):
        for ssg in settings.values():
            pipe.generate(**kwargs, seed=0, ssg=ssg)
    times: dict = {k: [] for k in settings}
    for r in range(repeat):
        for label, ssg in settings.items():
            if pipe.device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            pipe.generate(**kwargs, seed=r, ssg=ssg)
            if pipe.device.type == "cuda":
                torch.cuda.synchronize()
            times[label].append(time.perf_counter() - t0)
    return times


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
    ap.add_argument("--json", default="bench-var.json")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    ssg_on = ssgen.SSG(beta=0.5, scales=(1, -1))  # the widest range: the worst case for overhead
    rows = []
    for dt_name in args.dtype:
        dtype = resolve_dtype(dt_name, device)
        if args.tiny:
            pipe = build_var(2, dtype, device, vae_ch=32, width=128, heads=2)
        else:
            pipe = build_var(args.depth, dtype, device)
        for b in args.batch:
            settings = {"off": False} if args.no_ssg_compare else {"off": False, "on": ssg_on}
            res = time_interleaved(pipe, {"classes": [(207 + i) % 1000 for i in range(b)]}, settings, args.repeat)
            for label, t in res.items():
                print(f"{pipe.config.name} {dt_name:8s} B={b:<3d} SSG {label:3s}: median {statistics.median(t):.3f} s "
                      f"({statistics.median(t) / b:.3f} s/image, {b / statistics.median(t):.2f} images/s)", flush=True)
            row = {"model": pipe.config.name, "dtype": dt_name, "batch": b,
                   "median_s": statistics.median(res["off"]), "times_s": res["off"],
                   "images_per_s": b / statistics.median(res["off"])}
            if "on" in res:
                row.update(median_ssg_s=statistics.median(res["on"]), times_ssg_s=res["on"],
                           ssg_overhead_ratio=statistics.median(res["on"]) / statistics.median(res["off"]))
                print(f"  SSG overhead ratio: {row['ssg_overhead_ratio']:.3f}")
            rows.append(row)
        del pipe
    if len(args.dtype) > 1:
        for b in args.batch:
            r = [x for x in rows if x["batch"] == b]
            print(f"B={b}: {r[0]['dtype']} / {r[-1]['dtype']} speed ratio {r[0]['median_s'] / r[-1]['median_s']:.2f}x")
    meta = {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": str(device),
            "machine": platform.processor() or platform.machine(), "repeat": args.repeat}
    with open(args.json, "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
