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
import math
import os
import platform
import statistics
import time
from collections import defaultdict
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

import ssgen
import ssgen.loop
import ssgen.pipeline
from ssgen.backends.var.family import VarModel
from ssgen.backends.var.model import VAR, VARConfig
from ssgen.backends.var.vae import VQVAE, VQVAEConfig
from ssgen.config import ModelConfig
from ssgen.pipeline import Pipeline, resolve_dtype

P256 = (1, 2, 3, 4, 5, 6, 8, 10, 13, 16)


def build_var(depth: int, dtype: torch.dtype, device: torch.device, vae_ch: int = 160, width: int | None = None,
              heads: int | None = None, keep_state_dicts: bool = False) -> Pipeline:
    """A real-size VAR-d{depth} + VQVAE (ch 160) with random weights, as a Pipeline. On the CPU the transformer's
    linears get prepacked (their plain weights released) as `ssgen.load` does; `keep_state_dicts` keeps a copy
    of both state dicts first, as `pipe.state_dicts` {"var", "vae"} (bench_official.py loads them upstream)."""
    vcfg = VARConfig(depth=depth, width=width, heads=heads, patch_nums=P256)
    torch.manual_seed(0)
    var = VAR(vcfg).init_random(std=0.02, seed=0)
    vae = VQVAE(VQVAEConfig(ch=vae_ch, patch_nums=P256))
    var = var.to(device=device, dtype=dtype).eval()
    vae = vae.to(device=device, dtype=dtype).eval()
    cfg = ModelConfig(name=f"var-d{depth}-w{vcfg.width}-random", family="var",
                      defaults={"cfg": 4.0, "top_k": 900, "top_p": 0.95, "more_smooth": False})
    sds = None
    if keep_state_dicts:
        sds = {"var": {k: v.clone() for k, v in var.state_dict().items()}, "vae": vae.state_dict()}
    pipe = Pipeline(cfg, VarModel(cfg, vcfg, var, vae, device, dtype), device, dtype)
    pipe.state_dicts = sds
    return pipe


def time_generate(pipe: Pipeline, batch: int, ssg, repeat: int, warmup: int = 1) -> list[float]:
    classes = [(207 + i) % 1000 for i in range(batch)]
    return time_interleaved(pipe, {"classes": classes}, {"x": ssg}, repeat, warmup)["x"]


def interleave(runs: dict, repeat: int, warmup: int = 1) -> dict:
    """{label: fn(seed)} -> {label: [seconds per call]}, the labels alternating run by run so that a busy
    machine slows them alike (a ratio of two sequential blocks measures the machine's load, not the
    difference). CUDA is synchronized around every timed call. Shared by every bench script."""
    for _ in range(warmup):
        for fn in runs.values():
            fn(0)
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    times: dict = {k: [] for k in runs}
    for r in range(repeat):
        for label, fn in runs.items():
            sync()
            t0 = time.perf_counter()
            fn(r)
            sync()
            times[label].append(time.perf_counter() - t0)
    return times


def time_interleaved(pipe: Pipeline, kwargs: dict, settings: dict, repeat: int, warmup: int = 1) -> dict:
    """Seconds per `pipe.generate(**kwargs, seed=r, ssg=...)` call for each SSG setting ({label: ssg}),
    interleaved (`interleave`)."""
    runs = {label: (lambda r, ssg=ssg: pipe.generate(**kwargs, seed=r, ssg=ssg)) for label, ssg in settings.items()}
    return interleave(runs, repeat, warmup)


def cpu_sdpa_flops(q_shape, k_shape, v_shape, *args, out_shape=None, **kwargs) -> int:
    """softmax(q k^T) v: q (B, H, l, d), k (B, H, n, d), v (B, H, n, dv) -> 2*B*H*l*n*(d + dv) FLOPs."""
    B, H, L, d = q_shape
    return 2 * B * H * L * k_shape[-2] * (d + v_shape[-1])


# PyTorch's FLOP counter has no formula for the CPU's fused SDPA kernel (where fp32 ssgen and the
# official code land); ssgen's bf16 CPU path is two matmuls, which it counts itself.
CPU_SDPA = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: cpu_sdpa_flops}


def packed_linear_flops(x_shape, w_shape, *args, out_shape=None, **kwargs) -> int:
    """x (..., K) @ a oneDNN-packed weight -> (..., N): 2 * rows * K * N FLOPs (Infinity's CPU linears)."""
    n = 1
    for d in x_shape:
        n *= d
    return 2 * n * out_shape[-1]


def flop_formulas() -> dict:
    """Formulas FlopCounterMode lacks: the CPU's fused SDPA and Infinity's oneDNN-packed linears (a custom op,
    registered when ssgen.backends.infinity.model is imported)."""
    import ssgen.backends.infinity.model  # noqa: F401  (registers torch.ops.ssgen.onednn_linear)

    return {**CPU_SDPA, torch.ops.ssgen.onednn_linear: packed_linear_flops,
            torch.ops.mkldnn._linear_pointwise: packed_linear_flops}


def cpu_info() -> dict:
    """Model name, cores and the flags that decide the bf16 speed (AMX, AVX512-BF16) from /proc/cpuinfo."""
    name, flags = None, set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, val = line.partition(":")
            if key.strip() == "model name" and name is None:
                name = val.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(val.split())
    except OSError:
        pass
    info = {"model_name": name or platform.processor() or platform.machine(), "cores": os.cpu_count()}
    info.update({f: f in flags for f in CPU_FLAGS})
    return info


CPU_FLAGS = ("amx_bf16", "avx512_bf16", "avx512f", "avx2")


def cpu_name() -> str:
    """'MODEL (flags; N threads)': the CPU every figure is measured on."""
    info = cpu_info()
    feats = [f for f in CPU_FLAGS if info[f]]
    return f"{info['model_name']} ({', '.join(feats) or 'no avx2'}; {torch.get_num_threads()} threads)"


MATMUL = (4096, 1024, 4096)  # (M, K, N) of the reference matmul


def matmul_timer(dtype: torch.dtype, device: torch.device = torch.device("cpu")):
    """A function that times one MATMUL-sized product in `dtype` on `device` -> seconds (into a preallocated
    output, so the allocator's page faults are not counted). Warmed up once."""
    M, K, N = MATMUL
    g = torch.Generator().manual_seed(0)
    a = torch.randn(M, K, generator=g).to(device=device, dtype=dtype)
    b = torch.randn(K, N, generator=g).to(device=device, dtype=dtype)
    out = torch.empty(M, N, dtype=dtype, device=device)

    def timed() -> float:
        with torch.inference_mode():
            _sync(device)
            t0 = time.perf_counter()
            torch.matmul(a, b, out=out)
            _sync(device)
            return time.perf_counter() - t0

    timed()
    return timed


def matmul_rate(dtype: torch.dtype, device: torch.device, repeat: int = 10) -> float:
    """GFLOP/s of the reference product in `dtype`: this machine's practical peak, timed now (median)."""
    timed = matmul_timer(dtype, device)
    return 2 * math.prod(MATMUL) / statistics.median(timed() for _ in range(repeat)) / 1e9


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class _Timed:
    """Wraps one call's loop Backend and adds the seconds of each part to rows[k][part]:
    transformer (logits), cfg (guide), ssg, advance (token embedding, running latent, next input),
    sampling (the rest of the scale: filtering, softmax, the draw) and, at k = -1, vae (decode)."""

    def __init__(self, backend, rows: dict, device: torch.device):
        self._b, self._rows, self._dev = backend, rows, device
        self.grid = backend.grid
        self._t0 = 0.0
        self.k = 0

    def __getattr__(self, name):
        return getattr(self._b, name)

    def _time(self, k: int, part: str, fn, *args, **kwargs):
        _sync(self._dev)
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        _sync(self._dev)
        self._rows[k][part] += time.perf_counter() - t0
        return out

    def logits(self, k):
        self.k = k
        _sync(self._dev)
        self._t0 = time.perf_counter()
        return self._time(k, "transformer", self._b.logits, k)

    def guide(self, k, raw):
        return self._time(k, "cfg", self._b.guide, k, raw)

    def advance(self, k, tokens, soft):
        out = self._time(k, "advance", self._b.advance, k, tokens, soft)
        self._rows[k]["total"] += time.perf_counter() - self._t0
        return out

    def decode(self, rng):
        return self._time(-1, "vae", self._b.decode, rng)


def profile(pipe: Pipeline, kwargs: dict, ssg, repeat: int = 3) -> dict:
    """Per-scale breakdown of `pipe.generate(**kwargs, ssg=ssg)`: median seconds of each part over
    `repeat` runs (after one warm-up), and the transformer's FLOPs per scale (counted once with
    FlopCounterMode in a separate run, so the counting does not slow the timed ones).
    Returns {"scales": [{k, transformer, cfg, ssg, sampling, advance, total, gflop}], "grid": [(h, w)], "vae": s}."""
    runs: list[dict] = []
    flops: dict = defaultdict(int)
    orig_run, orig_ssg = ssgen.pipeline.run_loop, ssgen.loop.ssg_update
    state: dict = {}

    def run_wrapped(backend, rng, ssg_, **kw):
        rows: dict = defaultdict(lambda: defaultdict(float))
        tb = _Timed(backend, rows, pipe.device)
        state["tb"], state["rows"], state["grid"] = tb, rows, list(backend.grid)
        if state.get("count"):
            def counted_logits(k, _f=backend.logits):
                with FlopCounterMode(display=False, custom_mapping=flop_formulas()) as fc:
                    out = _f(k)
                flops[k] += fc.get_total_flops()
                return out
            tb.logits = counted_logits
        out = orig_run(tb, rng, ssg_, **kw)
        runs.append(rows)
        return out

    def ssg_timed(*a, **kw):
        tb = state["tb"]
        return tb._time(tb.k, "ssg", orig_ssg, *a, **kw)

    ssgen.pipeline.run_loop, ssgen.loop.ssg_update = run_wrapped, ssg_timed
    try:
        state["count"] = True
        pipe.generate(**kwargs, seed=0, ssg=ssg)
        state["count"] = False
        runs.clear()
        for r in range(repeat + 1):
            pipe.generate(**kwargs, seed=r, ssg=ssg)
    finally:
        ssgen.pipeline.run_loop, ssgen.loop.ssg_update = orig_run, orig_ssg
    runs = runs[1:]  # drop the warm-up
    parts = ("transformer", "cfg", "ssg", "sampling", "advance", "total")
    scales = []
    n = len([k for k in runs[0] if k >= 0])
    for k in range(n):
        row = {"k": k}
        for p in parts:
            if p == "sampling":
                continue
            row[p] = statistics.median(rr[k][p] for rr in runs)
        row["sampling"] = max(0.0, row["total"] - row["transformer"] - row["cfg"] - row["ssg"] - row["advance"])
        row["gflop"] = flops[k] / 1e9
        scales.append(row)
    return {"scales": scales, "grid": state["grid"], "vae": statistics.median(rr[-1]["vae"] for rr in runs)}


def print_profile(prof: dict, batch: int, rate: float) -> None:
    """The profile as a table, in ms per call (batch `batch`), with the transformer's GFLOP/s per scale."""
    cols = ("transformer", "cfg", "ssg", "sampling", "advance", "total")
    print(f"  {'scale':>5s} {'grid':>7s} " + " ".join(f"{c:>11s}" for c in cols) + f" {'GFLOP/s':>8s}")
    tot = defaultdict(float)
    for r, (h, w) in zip(prof["scales"], prof["grid"]):
        for c in cols:
            tot[c] += r[c]
        gf = r["gflop"] / r["transformer"] if r["transformer"] else 0.0
        print(f"  {r['k']:>5d} {h:>3d}x{w:<3d} " + " ".join(f"{1e3 * r[c]:>11.1f}" for c in cols) + f" {gf:>8.0f}")
    all_t = tot["total"] + prof["vae"]
    fl = sum(r["gflop"] for r in prof["scales"])
    print(f"  {'sum':>11s} " + " ".join(f"{1e3 * tot[c]:>11.1f}" for c in cols)
          + f" {fl / tot['transformer'] if tot['transformer'] else 0:>8.0f}")
    shares = ", ".join(f"{c} {100 * tot[c] / all_t:.0f}%" for c in cols[:-1])
    print(f"  VAE decode {1e3 * prof['vae']:.1f} ms; one call {all_t:.3f} s = {all_t / batch:.3f} s/image; shares: "
          f"{shares}, vae {100 * prof['vae'] / all_t:.0f}%")
    print(f"  transformer {fl / batch:.1f} GFLOP per image at {fl / tot['transformer']:.0f} GFLOP/s = "
          f"{100 * fl / tot['transformer'] / rate:.0f}% of this run's large-matmul rate ({rate:.0f} GFLOP/s)")


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
    ssg_on = ssgen.SSG(beta=0.5, scales=(1, -1))  # the widest range: the worst case for overhead
    rows = []
    for dt_name in args.dtype:
        dtype = resolve_dtype(dt_name, device)
        if args.tiny:
            pipe = build_var(2, dtype, device, vae_ch=32, width=128, heads=2)
        else:
            pipe = build_var(args.depth, dtype, device)
        rate = matmul_rate(dtype, device)
        print(f"{cpu_name()}, torch {torch.__version__}: large {dt_name} matmul {rate:.0f} GFLOP/s", flush=True)
        for b in args.batch:
            if args.profile:
                classes = [(207 + i) % 1000 for i in range(b)]
                for label, ssg in ({"off": False} if args.no_ssg_compare else {"off": False, "on": ssg_on}).items():
                    prof = profile(pipe, {"classes": classes}, ssg, repeat=args.repeat)
                    print(f"{pipe.config.name} {dt_name} B={b} SSG {label}: per-scale profile (ms per call, medians)")
                    print_profile(prof, b, rate)
                    rows.append({"model": pipe.config.name, "dtype": dt_name, "batch": b, "ssg": label,
                                 "profile": prof, "matmul_gflops": rate})
                continue
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
