"""Step 4: a tiny random-weight checkpoint and its YAML config (`python -m ssgen.tiny toy DIR`)."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml


def make_tiny_toy(out_dir: str | Path, seed: int = 0) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    sd = {"class_emb": torch.randn(11, 8, generator=g), "codebook": torch.randn(16, 8, generator=g),
          "pos": torch.randn(21, 16, generator=g)}
    torch.save(sd, out / "toy.pth")
    cfg = {"name": "toy-tiny", "family": "toy", "description": "a test-only family",
           "weights": {"transformer": {"path": "toy.pth"}},
           "model": {"patch_nums": [1, 2, 4], "vocab_size": 16, "num_classes": 10},
           "defaults": {"cfg": 2.0, "temperature": 1.0},
           "ssg": {"enabled": True, "beta": 0.5, "scales": [1, -1]}}
    path = out / "toy-tiny.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path
