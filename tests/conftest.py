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

TINY_MODELS = {"tiny_var", "tiny_inf", "tiny_hart", "tiny_switti"}  # the fixtures below
GOLDENS = {"var_golden", "hart_golden", "inf_golden"}  # here, in test_hart.py and in test_infinity.py


@pytest.fixture(scope="module")
def one_thread():
    """One thread for a whole module (`pytestmark = pytest.mark.usefixtures("one_thread")`): on a busy 2-core
    machine two threads wait for each other at every layer (measured, a 3-image Inception batch: 0.9 s on one
    thread, 2.5 to 6 s on two)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def _one_thread_for_tiny_models(request):
    """A test on the tiny random-weight models runs on one thread: they gain little from a second on idle cores,
    and two threads on a busy 2-core machine (other test runs) wait for each other at every small op. Measured,
    65 tiny-VAR images: 1.3 s (idle) to 11 s (busy) on two threads, 1.7 to 2.1 s on one. A test that touches
    the goldens keeps the 2 threads they were made with."""
    names = set(request.fixturenames)
    if not names & TINY_MODELS or names & GOLDENS:
        yield
        return
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


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


# The tiny random-weight models (made with ssgen's own modules, saved in the official formats), built once
# per session and shared by every test file. Read-only: a test that damages or edits one copies it first.


@pytest.fixture(scope="session")
def tiny_var(tmp_path_factory) -> Path:
    """A tiny VAR: transformer.pth, vae.pth and var-tiny.yaml; returns the YAML."""
    from ssgen.backends.var.tiny import make_tiny_var

    return make_tiny_var(tmp_path_factory.mktemp("tiny-var"))


@pytest.fixture(scope="session")
def tiny_inf(tmp_path_factory) -> Path:
    """A tiny Infinity (2B layout): transformer.pth, vae.pth, text_encoder/ (T5) and infinity-tiny.yaml."""
    from ssgen.backends.infinity.tiny import make_tiny_infinity

    return make_tiny_infinity(tmp_path_factory.mktemp("tiny-inf"))


@pytest.fixture(scope="session")
def tiny_hart(tmp_path_factory) -> Path:
    """A tiny HART: hart/llm/, hart/tokenizer/, text_encoder/ (Qwen2) and hart-tiny.yaml."""
    from ssgen.backends.hart.tiny import make_tiny_hart

    return make_tiny_hart(tmp_path_factory.mktemp("tiny-hart"))


@pytest.fixture(scope="session")
def tiny_switti(tmp_path_factory) -> Path:
    """A tiny Switti: switti/, vae/, text_encoder/, text_encoder_2/ (CLIPs) and switti-tiny.yaml."""
    from ssgen.backends.switti.tiny import make_tiny_switti

    return make_tiny_switti(tmp_path_factory.mktemp("tiny-switti"))


@pytest.fixture
def forwards(monkeypatch):
    """Counts the images that go through the Inception network (ssgen.eval's tests: the cache, early errors)."""
    from ssgen.inception import InceptionV3

    seen = []
    real = InceptionV3.forward

    def spy(self, images):
        seen.append(len(images))
        return real(self, images)

    monkeypatch.setattr(InceptionV3, "forward", spy)
    return seen
