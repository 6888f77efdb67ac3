"""`ssgen eval`'s throughput on this machine: Inception features per second (images decoded from PNG and
fed in batches, as `ssgen eval` does, and the network alone), the FID and precision/recall arithmetic, and the
large-matmul yardstick timed in the same run. Random weights in the real file's format (the same compute as the
real ones). Prints medians and writes JSON.

    python scripts/bench_eval.py [--images 256] [--batch 32 64] [--size 256] [--repeat 3] [--json bench-eval.json]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import cpu_name, matmul_rate
from PIL import Image

from ssgen import metrics
from ssgen.inception import load_inception, make_tiny_inception


def pngs(n: int, size: int) -> list[bytes]:
    """n noise images encoded as PNG (what a batch folder holds)."""
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buf, format="PNG")
        out.append(buf.getvalue())
    return out


def features(net, images: list[bytes], batch: int, decode: bool) -> float:
    """Seconds to run every image through the network (and decode it first when `decode`)."""
    arrays = None if decode else [np.asarray(Image.open(io.BytesIO(b)).convert("RGB")) for b in images]
    t0 = time.perf_counter()
    with torch.inference_mode():
        for a in range(0, len(images), batch):
            if decode:
                x = np.stack([np.asarray(Image.open(io.BytesIO(b)).convert("RGB")) for b in images[a:a + batch]])
            else:
                x = np.stack(arrays[a:a + batch])
            net(torch.from_numpy(x))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--batch", type=int, nargs="+", default=[32, 64])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", default="bench-eval.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        net = load_inception(make_tiny_inception(Path(d) / "weights-tiny.pth"))
    images = pngs(args.images, args.size)
    res = {"cpu": cpu_name(), "torch": torch.__version__, "threads": torch.get_num_threads(), "images": args.images,
           "size": args.size, "matmul_gflops_fp32": round(matmul_rate(torch.float32, torch.device("cpu")), 1)}
    print(f"{res['cpu']}, torch {res['torch']}, {res['threads']} threads; large fp32 matmul "
          f"{res['matmul_gflops_fp32']} GFLOP/s")
    for b in args.batch:
        features(net, images[:b], b, False)  # warm-up
        for decode in (False, True):
            t = statistics.median(features(net, images, b, decode) for _ in range(args.repeat))
            key = f"batch {b}, {'decode + network' if decode else 'network'}"
            res[key] = {"s": round(t, 3), "images_per_s": round(args.images / t, 2)}
            print(f"{key}: {args.images / t:.2f} images/s (median of {args.repeat})")
    rng = np.random.default_rng(1)
    pool = np.maximum(rng.normal(size=(4000, 2048)), 0).astype(np.float32)
    t0 = time.perf_counter()
    metrics.frechet_distance(*metrics.feature_stats(pool[:2500]), *metrics.feature_stats(pool[1500:]))
    res["fid_2048_s"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    metrics.precision_recall(pool[:2000], pool[2000:])
    res["precision_recall_2000x2000_s"] = round(time.perf_counter() - t0, 2)
    print(f"FID of 2048-dim statistics (scipy sqrtm): {res['fid_2048_s']} s; precision/recall of 2000 x 2000: "
          f"{res['precision_recall_2000x2000_s']} s")
    est = 50_000 / res[f"batch {args.batch[-1]}, decode + network"]["images_per_s"]
    res["estimate_50k_features_s"] = round(est)
    print(f"50,000 images at this rate: about {est / 60:.0f} min of features")
    Path(args.json).write_text(json.dumps(res, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
