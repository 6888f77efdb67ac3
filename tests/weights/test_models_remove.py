"""`ssgen models remove` never deletes a cached file another known model still uses, unless --force, which first
names the models it breaks. Known models: the registered configs and the user's own YAML configs that resolved
Hub weights (recorded in ssgen's state folder). Through the CLI, with the tiny VAR served by a loopback Hub and
a private HF_HOME."""

from __future__ import annotations

import pytest
import yaml
from helpers import ssgen_here

from ssgen import weights
from ssgen.config import read_config, registry
from ssgen.testing.hubserver import HubServer

REGISTERED = read_config(registry()["var-d16"]).weights["vae"]  # FoundationVision/var at the configs' pinned commit
COMMIT = REGISTERED.revision
SHARED, OTHER = "ssgen-test/var-tiny", "ssgen-test/var-tiny-b"


@pytest.fixture
def hub(tmp_path, tiny_var, monkeypatch):
    """The loopback Hub: FoundationVision/var (fake bytes) and the tiny VAR's files, the VAE in one repo shared by
    two configs whose transformers are in two repos; HF_HOME and HF_ENDPOINT set for the test."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # what a fresh process would read with these variables
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "hf" / "token"))
    for name, value in {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "0", "HF_HUB_ETAG_TIMEOUT": "5",
                        "HF_TOKEN": ""}.items():
        monkeypatch.setenv(name, value)
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_ASSETS_CACHE", "HUGGINGFACE_ASSETS_CACHE"):
        monkeypatch.delenv(name, raising=False)
    d = tiny_var.parent
    repos = {"FoundationVision/var": {"var_d16.pth": b"d16" * 1000, "var_d30.pth": b"d30" * 1000,
                                      REGISTERED.file: b"vae" * 1000},
             SHARED: {"transformer.pth": d / "transformer.pth", "vae.pth": d / "vae.pth"},
             OTHER: {"transformer.pth": d / "transformer.pth"}}
    with HubServer(repos, commit=COMMIT) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        yield server


def user_config(tmp_path, tiny_var, name: str, transformer_repo: str) -> str:
    """A YAML config of the tiny VAR with Hub weights: its transformer from `transformer_repo`, the shared VAE."""
    cfg = yaml.safe_load(tiny_var.read_text())
    cfg["name"] = name
    cfg["weights"] = {"transformer": {"repo": transformer_repo, "file": "transformer.pth", "revision": COMMIT},
                      "vae": {"repo": SHARED, "file": "vae.pth", "revision": COMMIT}}
    p = tmp_path / f"{name}.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return str(p)


def two_models(tmp_path, tiny_var) -> tuple[str, str]:
    """Two user configs sharing the VAE, both downloaded (`ssgen models download` records each)."""
    a, b = user_config(tmp_path, tiny_var, "a", SHARED), user_config(tmp_path, tiny_var, "b", OTHER)
    for model in (a, b):
        assert ssgen_here("models", "download", model).exit_code == 0
    return a, b


def test_removing_a_registered_model_keeps_what_another_uses(hub):
    """var-d16 and var-d30 share the VAE: removing var-d16 keeps it, and says for which model (var-d20 and the
    others, not downloaded, lose nothing and are not named); removing var-d30 next removes it."""
    for name in ("var_d16.pth", "var_d30.pth", REGISTERED.file):
        weights.resolve_file("FoundationVision/var", name, COMMIT, progress=False)
    r = ssgen_here("models", "remove", "var-d16", "--yes")
    assert r.exit_code == 0, r.output
    assert f"keeping FoundationVision/var/{REGISTERED.file}: var-d30 uses it too" in r.stdout
    assert "var-d20" not in r.stdout and "removed 3.0 kB" in r.stdout
    assert not weights.is_cached("FoundationVision/var", "var_d16.pth", COMMIT)
    assert weights.is_cached("FoundationVision/var", REGISTERED.file, COMMIT)
    assert weights.is_cached("FoundationVision/var", "var_d30.pth", COMMIT)
    r = ssgen_here("models", "remove", "var-d30", "--yes")
    assert r.exit_code == 0 and "keeping" not in r.stdout and "removed 6.0 kB" in r.stdout, r.output
    assert not weights.is_cached("FoundationVision/var", REGISTERED.file, COMMIT)


def test_removing_one_of_two_user_models_leaves_the_other_loadable(hub, tiny_var, tmp_path):
    a, b = two_models(tmp_path, tiny_var)
    r = ssgen_here("models", "remove", a, "--yes")
    assert r.exit_code == 0, r.output
    assert f"keeping {SHARED}/vae.pth: {b} uses it too" in r.stdout
    assert ssgen_here("models", "path", b).exit_code == 0
    assert "its transformer weights are not in the cache" in ssgen_here("models", "path", a).stderr
    # a config that is gone or no longer reads holds nothing: the VAE goes with the last model that uses it
    r = ssgen_here("models", "remove", a, "--yes")
    assert r.exit_code == 0 and "nothing removed: every cached file of a is used by another model" in r.stdout
    with open(b, "w") as f:
        f.write("name: [unclosed\n")
    r = ssgen_here("models", "remove", a, "--yes")
    assert r.exit_code == 0 and "keeping" not in r.stdout and "removed" in r.stdout, r.output
    assert not weights.is_cached(SHARED, "vae.pth", COMMIT)


def test_force_names_the_models_it_breaks_and_still_asks(hub, tiny_var, tmp_path):
    a, b = two_models(tmp_path, tiny_var)
    r = ssgen_here("models", "remove", a, "--force", input="n\n")
    assert r.exit_code == 1, r.output
    assert f"--force: removing {SHARED}/vae.pth breaks {b}" in r.stdout and "remove " in r.stdout
    assert weights.is_cached(SHARED, "vae.pth", COMMIT) and weights.is_cached(SHARED, "transformer.pth", COMMIT)
    r = ssgen_here("models", "remove", a, "--force", "--yes")
    assert r.exit_code == 0 and f"breaks {b}" in r.stdout, r.output
    assert not weights.is_cached(SHARED, "vae.pth", COMMIT)
    assert "its vae weights are not in the cache" in ssgen_here("models", "path", b).stderr
