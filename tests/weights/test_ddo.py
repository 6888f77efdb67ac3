"""NVIDIA's DDO finetunes of VAR (configs/var-d16-ddo.yaml, var-d30-ddo.yaml): VAR's architecture and file format,
served from nvidia/DirectDiscriminativeOptimization, with VAR's pinned VAE. Through the loopback Hub: the tiny
VAR's checkpoint (a bare VAR state dict, as NVlabs/DDO's VAR_sample.py loads var_d*-ddo.pth) under the DDO
repo and file names that the released configs give."""

from __future__ import annotations

import hashlib
import json

import pytest
import yaml
from helpers import ssgen_here

from ssgen.config import load_config, non_commercial
from ssgen.testing.hubserver import HubServer

DDO = {"var-d16-ddo": "var-d16", "var-d30-ddo": "var-d30"}


@pytest.mark.parametrize("ddo,base", DDO.items())
def test_ddo_configs_are_vars_architecture_and_vae_with_the_ddo_transformer(ddo, base):
    c, v = load_config(ddo), load_config(base)
    assert (c.family, c.model) == (v.family, v.model)  # the same architecture as the VAR it finetunes
    assert c.weights["vae"] == v.weights["vae"]  # VAR's VAE, pinned (revision and sha256) as VAR's configs pin it
    t = c.weights["transformer"]
    assert t.repo == "nvidia/DirectDiscriminativeOptimization"
    assert t.file == v.weights["transformer"].file.replace(".pth", "-ddo.pth")  # var_d16.pth -> var_d16-ddo.pth
    assert (t.revision, t.sha256) == (None, None)  # the Hub was unreadable: follows main until pinned
    assert non_commercial(c.license) and not non_commercial(v.license)


def sha(p) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_ddo_weights_download_from_the_ddo_repo_and_load(tmp_path, tiny_var, monkeypatch):
    """The released var-d16-ddo config's weight references, with the tiny model's `model:` section and hashes:
    generate downloads var_d16-ddo.pth from main of the DDO repo and the VAE from FoundationVision/var at its
    pinned commit, loads both as VAR files, and the PNG records the config's licence."""
    from huggingface_hub import constants

    real = load_config("var-d16-ddo")
    vae_commit = real.weights["vae"].revision
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # what a fresh process would read with these variables
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "hf" / "token"))
    d = tiny_var.parent
    repos = {"nvidia/DirectDiscriminativeOptimization": {"var_d16-ddo.pth": d / "transformer.pth"},
             "FoundationVision/var": {"vae_ch160v4096z32.pth": d / "vae.pth"}}
    cfg = yaml.safe_load(real.source.read_text())
    cfg["model"] = yaml.safe_load(tiny_var.read_text())["model"]
    cfg["weights"]["vae"]["sha256"] = sha(d / "vae.pth")  # the tiny VAE, not the real one the config pins
    model = tmp_path / "ddo-tiny.yaml"
    model.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "ddo.png"
    with HubServer(repos, commit=vae_commit) as hub:
        env = {"HF_ENDPOINT": hub.endpoint, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "0",
               "HF_HUB_ETAG_TIMEOUT": "5", "HF_TOKEN": ""}
        r = ssgen_here("generate", "-m", str(model), "-c", "1", "-o", str(out), "--device", "cpu", env=env)
        assert r.exit_code == 0, r.output
        got = {p for m, p in hub.requests if m == "GET" and "/resolve/" in p}
    assert got == {hub.resolve_path("nvidia/DirectDiscriminativeOptimization", "var_d16-ddo.pth", "main"),
                   hub.resolve_path("FoundationVision/var", "vae_ch160v4096z32.pth", vae_commit)}
    image = json.loads(ssgen_here("info", str(out), "--json").stdout)["images"][0]
    assert image["license"] == real.license
    assert {k: image[k] for k in real.defaults} == real.defaults  # DDO's sampling settings (cfg 1.4, no top-k/p)
