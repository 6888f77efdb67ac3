"""Peak anonymous memory of loading a model in bf16 from fp32 files: loading must fit in the memory a user has.

Writes a random-weight checkpoint of a real family layout, made with the family's own modules (VAR: a
`torch.save` .pth; Infinity: the 8B layout, safetensors shards with their index.json), then loads it with
`ssgen.load(..., dtype=bfloat16)` in a fresh process (this script with --load) that samples RssAnon from a thread
every millisecond (common.RssSampler). File-backed pages of the memory-mapped checkpoint are not counted: the kernel
can drop them. Target: peak RssAnon <= base + 1.15 x the loaded model's own bytes (transformer, VAE and text
encoder, in the dtypes they run in), where base is what the process holds before loading: torch, ssgen, the
family's modules and, for the text-to-image families, transformers' model classes and torch._dynamo (which
transformers' loading imports: ~100 MB, whatever the model's size). What the process holds with only torch (and
this script's helpers) imported is reported too, as `bare`.

    .venv/bin/python scripts/load_memory.py var        # ~300 MB fp32 VAR-like .pth
    .venv/bin/python scripts/load_memory.py infinity   # ~290 MB fp32 Infinity-like safetensors shards
    .venv/bin/python scripts/load_memory.py all --json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import RssSampler, read_status

TARGET = 1.15


def import_family_code(family: str) -> None:
    """Import what loading `family` imports before its first weight is read, so that `base` holds it: the
    family's modules and, for the text-to-image families, the text encoder's library (whose loading imports
    torch._dynamo and the model classes)."""
    from ssgen.backends import family as family_spec

    family_spec(family).load()
    if family != "var":
        import torch._dynamo  # noqa: F401
        from transformers import AutoModel, AutoTokenizer, Qwen2Model, T5EncoderModel  # noqa: F401


def model_bytes(family) -> int:
    """The loaded model's own bytes: every parameter and buffer of its transformer, VAE and text encoder, and the
    oneDNN-prepacked weights that replace the plain ones on the CPU."""
    import torch

    mods = [getattr(family, n) for n in ("var", "vae", "model", "tokenizer")
            if isinstance(getattr(family, n, None), torch.nn.Module)]
    text = getattr(family, "text", None)
    mods += [getattr(text, n) for n in ("encoder", "model") if isinstance(getattr(text, n, None), torch.nn.Module)]
    tensors = [t for m in mods for t in (*m.parameters(), *m.buffers())]
    tensors += [x.packed for m in mods for x in m.modules() if "packed" in x.__dict__]
    return sum(t.numel() * t.element_size() for t in tensors)


def measure_here(yml: Path, dtype: str) -> dict:
    """In this process: RssAnon with torch imported (bare), with ssgen and the family's code imported (base), its
    peak while `ssgen.load` runs, the seconds loading took and the loaded model's own bytes."""
    bare = read_status()["RssAnon"]
    import ssgen
    from ssgen.config import load_config

    import_family_code(load_config(yml).family)
    base = read_status()["RssAnon"]
    with RssSampler(interval=0.001) as mem:
        t0 = time.perf_counter()
        pipe = ssgen.load(str(yml), device="cpu", dtype=dtype)
        seconds = time.perf_counter() - t0
        time.sleep(0.01)  # a last sample or more after loading
    mem.sample()
    return {"bare": bare, "base": base, "peak": mem.peak["RssAnon"], "model": model_bytes(pipe.family),
            "seconds": seconds}


def save_shards(sd: dict, folder: Path, n: int = 2) -> Path:
    """Save a state dict as `n` safetensors shards + model.safetensors.index.json (the layout of Infinity-8B's
    folder); returns the index."""
    from safetensors.torch import save_file

    folder.mkdir()
    keys, weight_map = list(sd), {}
    for i in range(n):
        name = f"model-{i + 1:05d}-of-{n:05d}.safetensors"
        part = keys[i * len(keys) // n:(i + 1) * len(keys) // n]
        save_file({k: sd[k].contiguous() for k in part}, str(folder / name))
        weight_map.update(dict.fromkeys(part, name))
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return folder / "model.safetensors.index.json"


def edit(yml: Path, role: str, path: Path, **model) -> Path:
    """Point the config's `role` at `path` and update fields of its model section."""
    import yaml

    cfg = yaml.safe_load(yml.read_text())
    cfg["weights"][role] = {"path": str(path.relative_to(yml.parent))}
    cfg["model"].update(model)
    yml.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return yml


def make_var(out: Path, depth: int = 4) -> Path:
    """VAR-d16's blocks, `depth` of them (4: ~80 M parameters, ~330 MB in fp32): the transformer as safetensors
    shards, the VQVAE as a torch .pth (both memory-mapped formats). The transformer's tensors are drawn directly
    in the shapes of ssgen's VAR module (with the buffers the official files carry): fast, and as big as real."""
    import torch

    from ssgen.backends.var.model import VAR, VARConfig
    from ssgen.backends.var.tiny import make_tiny_var, var_training_buffers
    from ssgen.checkpoint import empty_model

    pns = (1, 2, 3, 4, 5, 6, 8, 10, 13, 16)
    yml = make_tiny_var(out, depth=1, width=64, heads=1, patch_nums=pns, name="var-mem")  # the VQVAE and config
    (out / "transformer.pth").unlink()
    cfg = VARConfig(depth=depth, width=1024, heads=16, patch_nums=pns)
    with empty_model():
        shapes = {k: v.shape for k, v in VAR(cfg).state_dict().items()}
    g = torch.Generator().manual_seed(0)
    sd = {k: torch.randn(shape, generator=g).mul_(0.02) for k, shape in shapes.items()}
    sd = var_training_buffers(sd, pns, depth, cfg.width)
    return edit(yml, "transformer", save_shards(sd, out / "transformer"), depth=depth, width=1024, heads=16)


def make_infinity(out: Path) -> Path:
    """8 blocks of width 768 (~290 MB in fp32), in the 8B layout: safetensors shards + index.json."""
    import torch

    from ssgen.backends.infinity.tiny import make_tiny_infinity

    yml = make_tiny_infinity(out, depth=8, embed_dim=768, num_heads=6, block_chunks=4, name="infinity-mem")
    sd = torch.load(out / "transformer.pth", weights_only=True)
    (out / "transformer.pth").unlink()
    return edit(yml, "transformer", save_shards(sd, out / "infinity_8b_weights"))


def measure(yml: Path, family: str, dtype: str = "bfloat16") -> dict:
    """Load `yml` (a model of `family`) in a fresh process (`measure_here`) and compare its peak with the target."""
    cmd = [sys.executable, __file__, family, "--dtype", dtype, "--load", str(yml)]
    r = subprocess.run(cmd, capture_output=True, text=True, check=True)
    m = json.loads(r.stdout.strip().splitlines()[-1])
    m["extra"] = m["peak"] - m["base"]
    m["ratio"] = m["extra"] / m["model"]
    m["ok"] = m["ratio"] <= TARGET
    return m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("family", choices=["var", "infinity", "all"])
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--load", metavar="YAML", type=Path,
                    help="measure loading this model config in this process and print the figures as JSON "
                         "(what the measurement runs in a fresh process)")
    args = ap.parse_args()
    if args.load:
        print(json.dumps(measure_here(args.load, args.dtype)))
        return
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for fam in (["var", "infinity"] if args.family == "all" else [args.family]):
            yml = (make_var if fam == "var" else make_infinity)(Path(tmp) / fam)
            results[fam] = measure(yml, fam, args.dtype)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    mb = 2 ** 20
    print(f"{'family':10} {'bare torch':>10} {'base':>8} {'model':>8} {'peak':>8} {'peak-base':>9} {'ratio':>6} "
          " load s")
    for fam, m in results.items():
        print(f"{fam:10} {m['bare'] / mb:9.0f}M {m['base'] / mb:7.0f}M {m['model'] / mb:7.0f}M {m['peak'] / mb:7.0f}M "
              f"{m['extra'] / mb:8.0f}M {m['ratio']:6.2f}  {m['seconds']:.2f}  {'ok' if m['ok'] else 'OVER'}")
    sys.exit(0 if all(m["ok"] for m in results.values()) else 1)


if __name__ == "__main__":
    main()
