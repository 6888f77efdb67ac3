"""What the Switti tests share, without a text encoder: the transformer and VAE folders (the goldens', or a
tiny random one written by ssgen.backends.switti.tiny) loaded through the family's loaders, and a stand-in
for the two CLIPs that hands the loop given encodings (the goldens') or per-prompt random ones. The test
files import it (`from switti_helpers import ...`) and build their fixtures with it."""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from types import SimpleNamespace

import torch
from conftest import load_tensors, need_goldens

from ssgen.config import ModelConfig
from ssgen.pipeline import Pipeline

T = 77  # text tokens


class GivenText:
    """Stands in for text.TextEncoders: `encode(prompts, negative_prompt)` -> [cond; uncond] rows.

    With `given` set (a dict of context / pooled / attn_bias), those are returned as they are (the goldens'
    encodings). Otherwise every text gets its own random features, drawn from a generator seeded with the
    text (so an image's condition does not depend on its batch), with 2 + (number of words) valid tokens."""

    def __init__(self):
        self.given: dict | None = None
        self.seen: list = []

    @staticmethod
    def one(text: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(zlib.crc32(text.encode()))
        n = min(T, 2 + len(text.split()))
        bias = torch.full((T,), float("-inf"))
        bias[:n] = 0.0
        return torch.randn(T, 2048, generator=g), torch.randn(1280, generator=g), bias

    def encode(self, prompts: list[str], negative_prompt: str = ""):
        self.seen.append((list(prompts), negative_prompt))
        if self.given is not None:
            return SimpleNamespace(**self.given, notes=[])
        rows = [self.one(p) for p in prompts] + [self.one(negative_prompt)] * len(prompts)
        ctx, pooled, bias = (torch.stack(t) for t in zip(*rows))
        return SimpleNamespace(context=ctx, pooled=pooled, attn_bias=bias, notes=[])


def stub_pipe(transformer: Path, vae: Path, dtype: torch.dtype = torch.float32, **model) -> Pipeline:
    """A Pipeline over a transformer folder and a VAE folder, with `GivenText` as its text encoders."""
    from ssgen.backends.switti.family import SwittiFamily, load_transformer, load_vae

    config = ModelConfig(name="switti-test", family="switti", model=dict(model))
    dev = torch.device("cpu")
    m, scfg, note = load_transformer(transformer, config, dev, dtype)
    vae_model, v_file, _ = load_vae(vae, scfg, dev, dtype)
    fam = SwittiFamily(config, scfg, m, vae_model, GivenText(), dev, dtype, vae_path=v_file,
                       notes=[note] if note else [])
    return Pipeline(config, fam, dev, dtype)


def golden(name: str = "tiny"):
    """(folder, runs, tensors) of goldens/switti/<name> (skips, or fails under SSGEN_REQUIRE_GOLDENS=1)."""
    d = need_goldens("switti", name)
    return d, json.loads((d / "runs.json").read_text())["runs"], load_tensors(d / "runs.safetensors")


def write_tiny(out: Path, **cfg) -> Path:
    """A tiny random Switti's transformer and VAE folders (`switti/`, `vae/`) in `out`, no text encoders.
    `cfg`: SwittiConfig fields (default depth 2, reso 256)."""
    from ssgen.backends.switti.model import SwittiConfig
    from ssgen.backends.switti.tiny import write_transformer, write_vae

    cfg = {"depth": 2, "reso": 256, **cfg}
    write_transformer(out / "switti", SwittiConfig(**cfg), seed=0)
    write_vae(out / "vae", cfg["reso"], seed=1)
    return out
