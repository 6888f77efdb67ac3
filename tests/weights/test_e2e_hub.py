"""End to end through the loopback Hub: `ssgen generate` downloads a tiny VAR (official format) from a
Hub-compatible server on 127.0.0.1, verifies it, and works offline afterwards.

The CLI runs in this process (Typer's runner) with the Hub variables set for each run: ssgen reads them
at call time. Two tests keep a fresh process: the offline switch with HF_HUB_OFFLINE=0 read at import,
and the one-line offline error (huggingface_hub logs to the stderr it found at import)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest
import yaml
from helpers import ssgen, ssgen_here

from ssgen.testing.hubserver import HubServer

COMMIT = "0123456789abcdef0123456789abcdef01234567"
REPO = "ssgen-test/var-tiny"


def sha(p) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def fresh_process_hub(monkeypatch, tmp_path) -> None:
    """What huggingface_hub reads at import, as a process started with HF_HOME=tmp_path/hf and HF_HUB_OFFLINE=0
    would have it: online, and no stored login token (the runs here are in this process)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "hf" / "token"))


@pytest.fixture()
def hub_env(tmp_path, tiny_var, monkeypatch):
    fresh_process_hub(monkeypatch, tmp_path)
    files = {"transformer.pth": tiny_var.parent / "transformer.pth", "vae.pth": tiny_var.parent / "vae.pth"}
    with HubServer({REPO: files, "ssgen-test/gated": files}, commit=COMMIT, gated={"ssgen-test/gated"},
                   tokens={"hf_good"}) as hub:
        env = {"HF_ENDPOINT": hub.endpoint, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "0",
               "HF_HUB_ETAG_TIMEOUT": "5", "HF_TOKEN": ""}
        yield hub, env, files


def hub_yaml(tmp_path, tiny_var, files, repo=REPO, shas=None) -> str:
    cfg = yaml.safe_load(tiny_var.read_text())
    shas = shas or {r: sha(p) for r, p in files.items()}
    cfg["weights"] = {
        "transformer": {"repo": repo, "file": "transformer.pth", "revision": COMMIT, "sha256": shas["transformer.pth"]},
        "vae": {"repo": repo, "file": "vae.pth", "revision": COMMIT, "sha256": shas["vae.pth"]},
    }
    p = tmp_path / "hub-tiny.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return str(p)


def test_generate_through_hub_then_offline(hub_env, tmp_path, tiny_var):
    hub, env, files = hub_env
    model = hub_yaml(tmp_path, tiny_var, files)
    out = tmp_path / "grid.png"
    r = ssgen_here("generate", "--model", model, "--class", "22", "--class", "980", "-o", str(out), env=env)
    assert r.returncode == 0, r.stderr
    assert hub.count("GET", "/resolve/") == 2  # both files downloaded once
    meta = json.loads(ssgen_here("info", str(out), "--json").stdout)
    assert meta["images"][0]["revision"] == COMMIT

    hub.clear()
    r = ssgen_here("generate", "--model", model, "--class", "22", "-o", str(tmp_path / "again.png"), env=env)
    assert r.returncode == 0, r.stderr
    assert hub.count("GET", "/resolve/") == 0  # cached at a pinned commit: no download

    hub.clear()
    r = ssgen_here("generate", "--model", model, "--class", "22", "-o", str(tmp_path / "off.png"), "--offline",
                   env=env)
    assert r.returncode == 0, r.stderr
    assert len(hub.requests) == 0

    r = ssgen_here("models", "path", model, env=env)
    assert r.returncode == 0 and "transformer.pth" in r.stdout
    r = ssgen_here("models", "remove", model, "--yes", env=env)
    assert r.returncode == 0, r.stderr
    r = ssgen_here("models", "path", model, env=env)
    assert r.returncode == 2 and "not downloaded" in r.stderr and "ssgen models download" in r.stderr



OFFLINE_SCRIPT = """
import os, sys
import huggingface_hub
import ssgen
from ssgen.cli import main
from ssgen.config import load_config
from ssgen.weights import resolve_weight

model, out = sys.argv[1:]
config = load_config(model)
paths = [str(resolve_weight(config, role, offline=True)) for role in config.weights]
ssgen.load(model, device="cpu", offline=True).generate(classes=[22], seed=0)
sys.argv = ["ssgen", "generate", "--model", model, "--class", "22", "-o", out, "--device", "cpu", "--offline"]
try:
    main()
except SystemExit as e:
    assert not e.code, e.code
print(*paths, os.environ["HF_HUB_OFFLINE"], huggingface_hub.constants.HF_HUB_OFFLINE)
"""


def test_offline_argument_alone_sends_no_request(hub_env, tmp_path, tiny_var, monkeypatch):
    """With cached weights, `resolve_weight(..., offline=True)`, `ssgen.load(..., offline=True)` and
    `ssgen generate --offline`, in a fresh process with HF_HUB_OFFLINE=0 and HF_ENDPOINT at the loopback
    Hub from the start (so any request of huggingface_hub's, even its own, would reach it), send zero
    requests and leave HF_HUB_OFFLINE and huggingface_hub's offline switch alone: the argument is the one switch."""
    from ssgen.config import load_config
    from ssgen.weights import resolve_weight

    hub, env, files = hub_env
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    model = hub_yaml(tmp_path, tiny_var, files)
    config = load_config(model)
    online = [str(resolve_weight(config, role, progress=False)) for role in config.weights]
    assert hub.count("GET", "/resolve/") == 2

    hub.clear()
    out = tmp_path / "off.png"
    r = subprocess.run([sys.executable, "-c", OFFLINE_SCRIPT, model, str(out)], capture_output=True, text=True,
                       env=dict(os.environ), timeout=300)
    assert r.returncode == 0, r.stderr
    assert hub.requests == []
    assert r.stdout.split()[-4:] == [*online, "0", "False"]
    assert out.is_file()


def test_offline_without_cache_is_one_line_error(hub_env, tmp_path, tiny_var):
    """Nothing cached: `ssgen generate --offline` exits 2 with the one-line offline error, sending nothing."""
    hub, env, files = hub_env
    model = hub_yaml(tmp_path, tiny_var, files)
    r = ssgen("generate", "--model", model, "--class", "1", "-o", str(tmp_path / "x.png"), "--offline", env=env)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "not in the local cache and offline mode is on" in lines[0], r.stderr
    assert hub.requests == []
    assert not (tmp_path / "x.png").exists()

def test_sha256_mismatch(hub_env, tmp_path, tiny_var):
    hub, env, files = hub_env
    model = hub_yaml(tmp_path, tiny_var, files, shas={"transformer.pth": "0" * 64, "vae.pth": sha(files["vae.pth"])})
    r = ssgen_here("generate", "--model", model, "--class", "1", "-o", str(tmp_path / "x.png"), env=env)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "sha256" in r.stderr
    assert not (tmp_path / "x.png").exists()
    # not silently accepted the second time
    r = ssgen_here("generate", "--model", model, "--class", "1", "-o", str(tmp_path / "x.png"), env=env)
    assert r.returncode == 2 and "sha256" in r.stderr


def test_gated_repo_needs_token(hub_env, tmp_path, tiny_var):
    hub, env, files = hub_env
    model = hub_yaml(tmp_path, tiny_var, files, repo="ssgen-test/gated")
    r = ssgen_here("generate", "--model", model, "--class", "1", "-o", str(tmp_path / "x.png"), env=env)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "HF_TOKEN" in r.stderr
    r = ssgen_here("generate", "--model", model, "--class", "1", "-o", str(tmp_path / "x.png"),
                   env=dict(env, HF_TOKEN="hf_good"))
    assert r.returncode == 0, r.stderr


def test_missing_file_404(hub_env, tmp_path, tiny_var):
    hub, env, files = hub_env
    cfg = yaml.safe_load(open(hub_yaml(tmp_path, tiny_var, files)))
    cfg["weights"]["transformer"]["file"] = "var_d99.pth"
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(cfg))
    r = ssgen_here("generate", "--model", str(p), "--class", "1", "-o", str(tmp_path / "x.png"), env=env)
    assert r.returncode == 2 and "var_d99.pth" in r.stderr and "Traceback" not in r.stderr


def test_models_download(hub_env, tmp_path, tiny_var):
    hub, env, files = hub_env
    model = hub_yaml(tmp_path, tiny_var, files)
    r = ssgen_here("models", "download", model, env=env)
    assert r.returncode == 0, r.stderr
    assert os.path.exists(r.stdout.split("transformer: ")[1].split()[0])


def folder_files(d, prefix: str = "") -> dict:
    return {prefix + str(p.relative_to(d)): p for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny_t2i(tiny_inf, tiny_hart):
    return tiny_inf.parent, tiny_hart.parent


@pytest.mark.parametrize("family", ["infinity", "hart"])
def test_text_to_image_through_hub(family, tiny_t2i, tmp_path, monkeypatch):
    """All three parts (transformer, VAE/tokenizer, text encoder) come from the loopback Hub."""
    inf_dir, hart_dir = tiny_t2i
    if family == "infinity":
        repos = {"t/infinity": {"transformer.pth": inf_dir / "transformer.pth", "vae.pth": inf_dir / "vae.pth"},
                 "t/t5": folder_files(inf_dir / "text_encoder")}
        cfg = yaml.safe_load((inf_dir / "infinity-tiny.yaml").read_text())
        cfg["weights"] = {
            "transformer": {"repo": "t/infinity", "file": "transformer.pth", "revision": COMMIT,
                            "sha256": sha(inf_dir / "transformer.pth")},
            "vae": {"repo": "t/infinity", "file": "vae.pth", "revision": COMMIT, "sha256": sha(inf_dir / "vae.pth")},
            "text_encoder": {"repo": "t/t5", "folder": "", "revision": COMMIT},
        }
    else:
        repos = {"t/hart": folder_files(hart_dir / "hart"), "t/qwen": folder_files(hart_dir / "text_encoder")}
        cfg = yaml.safe_load((hart_dir / "hart-tiny.yaml").read_text())
        cfg["weights"] = {
            "transformer": {"repo": "t/hart", "folder": "llm", "allow": ["config.json", "ema_model.bin"],
                            "revision": COMMIT},
            "vae": {"repo": "t/hart", "folder": "tokenizer", "revision": COMMIT},
            "text_encoder": {"repo": "t/qwen", "folder": "", "revision": COMMIT},
        }
    model = tmp_path / "m.yaml"
    model.write_text(yaml.safe_dump(cfg))
    fresh_process_hub(monkeypatch, tmp_path)
    with HubServer(repos, commit=COMMIT) as hub:
        env = {"HF_ENDPOINT": hub.endpoint, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "0",
               "HF_HUB_ETAG_TIMEOUT": "5", "HF_TOKEN": ""}
        out = tmp_path / "grid.png"
        r = ssgen_here("generate", "--model", str(model), "--prompt", "a red fox", "--prompt", "a blue car",
                       "-o", str(out), env=env)
        assert r.returncode == 0, r.stderr
        for repo in repos:
            assert hub.count("GET", f"/{repo}/resolve/") >= 1, repo
        if family == "hart":
            assert hub.count("GET", "pytorch_model.bin") == 0  # only what the allow list names
        meta = json.loads(ssgen_here("info", str(out), "--json").stdout)
        assert [m["prompt"] for m in meta["images"]] == ["a red fox", "a blue car"]
        hub.clear()
        r = ssgen_here("generate", "--model", str(model), "--prompt", "a red fox", "-o", str(tmp_path / "off.png"),
                       "--offline", env=env)
        assert r.returncode == 0, r.stderr
        assert len(hub.requests) == 0
