"""Peak anonymous memory of loading a model in bf16 from fp32 files (issue 11: "load in the memory a user has").

Writes a random-weight checkpoint of a real family layout, made with the family's own modules (VAR: a
`torch.save` .pth; Infinity: the 8B layout, safetensors shards with their index.json), then loads it with
`ssgen.load(..., dtype=bfloat16)` in a fresh subprocess that samples /proc/self/status (RssAnon, every
millisecond) from a thread. File-backed pages of the memory-mapped checkpoint are not counted: the kernel
can drop them. Target: peak RssAnon <= base + 1.15 x the loaded model's own bytes (transformer, VAE and text
encoder, in the dtypes they run in), where base is what the process holds before loading: torch, ssgen, the
family's modules and, for the text-to-image families, transformers' model classes and torch._dynamo (which
transformers' loading imports: ~100 MB, whatever the model's size). A bare `import torch` is reported too.

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
from pathlib import Path

TARGET = 1.15

CHILD = r"""
import json, sys, threading, time

def anon():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('RssAnon:'):
                return int(line.split()[1]) * 1024
peak = [0]
stop = threading.Event()
def sample():
    while not stop.is_set():
        peak[0] = max(peak[0], anon())
        time.sleep(0.001)

import torch
bare = anon()
import ssgen
from ssgen.backends import loader
from ssgen.config import load_config
config = load_config(sys.argv[1])
loader(config.family)  # the family's modules
if config.family != 'var':  # the text encoder's library: its loading imports torch._dynamo and the model classes
    import torch._dynamo  # noqa: F401
    from transformers import AutoModel, AutoTokenizer, Qwen2Model, T5EncoderModel  # noqa: F401
base = anon()
t = threading.Thread(target=sample, daemon=True)
t.start()
t0 = time.perf_counter()
pipe = ssgen.load(sys.argv[1], device='cpu', dtype=sys.argv[2])
seconds = time.perf_counter() - t0
time.sleep(0.01)
stop.set(); t.join()
peak[0] = max(peak[0], anon())
fam = pipe.family
mods = [getattr(fam, n) for n in ('var', 'vae', 'model', 'tokenizer')
        if isinstance(getattr(fam, n, None), torch.nn.Module)]
text = getattr(fam, 'text', None)
for n in ('encoder', 'model'):
    if isinstance(getattr(text, n, None), torch.nn.Module):
        mods.append(getattr(text, n))
def nbytes(m):
    ts = list(m.parameters()) + list(m.buffers())
    ts += [x.packed for x in m.modules() if 'packed' in x.__dict__]  # Infinity's oneDNN-prepacked weights
    return sum(t.numel() * t.element_size() for t in ts)
model = sum(nbytes(m) for m in mods)
print(json.dumps(dict(bare=bare, base=base, peak=peak[0], model=model, seconds=seconds)))
"""


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


def measure(yml: Path, dtype: str = "bfloat16") -> dict:
    r = subprocess.run([sys.executable, "-c", CHILD, str(yml), dtype], capture_output=True, text=True, check=True)
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
    args = ap.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for fam in (["var", "infinity"] if args.family == "all" else [args.family]):
            yml = (make_var if fam == "var" else make_infinity)(Path(tmp) / fam)
            results[fam] = measure(yml, args.dtype)
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
