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
import statistics

import torch
from bench import cpu_name, matmul_rate, print_profile, profile, time_interleaved  # scripts/bench.py

import ssgen
from ssgen.backends.hart.family import HartModel
from ssgen.backends.hart.model import HART, HARTConfig
from ssgen.backends.hart.options import upstream_top_k
from ssgen.backends.hart.text import EncodedPrompts
from ssgen.backends.hart.tokenizer import HybridTokenizer
from ssgen.backends.var.vae import VQVAEConfig
from ssgen.config import ModelConfig
from ssgen.pipeline import Pipeline, resolve_dtype

SCHEDULES = {256: (1, 2, 3, 4, 5, 6, 8, 10, 13, 16), 512: (1, 2, 3, 4, 6, 9, 13, 18, 24, 32),
             1024: (1, 2, 3, 4, 5, 7, 9, 12, 16, 21, 27, 36, 48, 64)}


class RandomText:
    """Stands in for the Qwen2 text encoder: random features, `n_valid` real tokens, HART's mask/positions."""

    def __init__(self, dim: int, device: torch.device, n_valid: int = 24):
        self.dim, self.device, self.n_valid = dim, device, n_valid

    def encode(self, prompts, max_length=300, system_prompt=True) -> EncodedPrompts:
        B = len(prompts)
        g = torch.Generator().manual_seed(0)
        mask = torch.zeros(B, max_length, dtype=torch.bool)
        mask[:, : self.n_valid] = True
        pos = mask.long().cumsum(1) - 1
        ids = torch.zeros(B, max_length, dtype=torch.long)
        feats = torch.randn(B, max_length, self.dim, generator=g)
        return EncodedPrompts(ids, mask, pos, feats.to(self.device))


def build_hart(res: int, dtype: torch.dtype, device: torch.device, depth: int, width: int, heads: int) -> Pipeline:
    pns = SCHEDULES[res]
    hcfg = HARTConfig(depth=depth, embed_dim=width, num_heads=heads, context_dim=1536, patch_nums=pns,
                      diff_width=1024, diff_depth=6)
    model = HART(hcfg).init_random(seed=0)
    n_params = sum(p.numel() for p in model.parameters())
    tok = HybridTokenizer(VQVAEConfig(ch=160, patch_nums=pns))
    model = model.to(device=device, dtype=dtype).eval()
    tok = tok.to(device=device, dtype=dtype).eval()
    K = len(pns)
    cfg = ModelConfig(name=f"hart-d{depth}-random-{res}px", family="hart",
                      defaults={"cfg": 4.5, "more_smooth": True, "top_k": [upstream_top_k(k) for k in range(K)]})
    fam = HartModel(cfg, hcfg, model, tok, RandomText(1536, device), device, dtype)
    pipe = Pipeline(cfg, fam, device, dtype)
    pipe.n_params = n_params
    return pipe


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--res", type=int, default=256, choices=sorted(SCHEDULES))
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
    load = None
    try:
        import os

        load = os.getloadavg()
    except (AttributeError, OSError):
        pass
    for dt_name in args.dtype:
        dtype = resolve_dtype(dt_name, device)
        pipe = build_hart(args.res, dtype, device, args.depth, args.width, args.heads)
        print(f"HART d{args.depth} w{args.width}: {pipe.n_params / 1e6:.0f}M parameters (transformer + residual MLP), "
              f"{args.res} px, {pipe.n_scales} scales", flush=True)
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
