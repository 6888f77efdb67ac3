"""Shared fixtures: the goldens (reference outputs of the official code) and tiny models.

Goldens are read where they lie (`$SSGEN_GOLDENS`, else ../shared/goldens next to the repo); they
are never copied into the repo. Without them the conformance tests skip with a message, unless
SSGEN_REQUIRE_GOLDENS=1 (CI), where a missing golden is a failure.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent

torch.set_num_threads(min(2, torch.get_num_threads()))  # the goldens were made with 2 threads


def goldens_dir() -> Path:
    return Path(os.environ.get("SSGEN_GOLDENS", ROOT.parent / "shared" / "goldens")).resolve()


def need_goldens(*parts: str) -> Path:
    p = goldens_dir().joinpath(*parts)
    if not p.exists():
        msg = f"goldens not found at {p} (set SSGEN_GOLDENS to the shared/goldens folder)"
        if os.environ.get("SSGEN_REQUIRE_GOLDENS") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return p


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


@pytest.fixture(scope="session")
def var_golden():
    d = need_goldens("var", "tiny256")
    return d, json.loads((d / "runs.json").read_text()), load_tensors(d / "runs.safetensors")


def write_var_golden_yaml(tmp: Path, d: Path, ssg: dict | None = None) -> Path:
    """A YAML config whose weights point at the golden files where they lie."""
    import yaml

    model = {k: v for k, v in json.loads((d / "model.json").read_text()).items() if k != "family"}
    cfg = {"name": "var-tiny-golden", "family": "var", "description": "tiny VAR of the goldens",
           "weights": {"transformer": {"path": str(d / "transformer.pth")}, "vae": {"path": str(d / "vae.pth")}},
           "model": model, "defaults": {"cfg": 4.0, "top_k": 900, "top_p": 0.95, "more_smooth": False}}
    if ssg:
        cfg["ssg"] = ssg
    p = tmp / "var-tiny-golden.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


@pytest.fixture(scope="session")
def var_golden_pipe(var_golden, tmp_path_factory):
    import ssgen

    d = var_golden[0]
    yml = write_var_golden_yaml(tmp_path_factory.mktemp("golden-cfg"), d)
    return ssgen.load(str(yml), device="cpu", dtype="float32")


@pytest.fixture(scope="session")
def tiny_var(tmp_path_factory) -> Path:
    """A tiny random-weight VAR (made with ssgen's own modules, saved in the official formats) + YAML."""
    from ssgen.backends.var.tiny import make_tiny_var

    return make_tiny_var(tmp_path_factory.mktemp("tiny-var"))
