"""End-to-end tests of ssgen.weights through a loopback Hub server (ssgen/testing/hubserver.py).

HF_HOME and HF_ENDPOINT point at temporary folders / the local server for every test; the real
~/.cache is never touched and nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
from pathlib import Path

import huggingface_hub
import pytest
from huggingface_hub import errors as hf_errors
from rich.console import Console

from ssgen import weights
from ssgen.config import ModelConfig, WeightSpec
from ssgen.errors import ConfigError, WeightsError
from ssgen.testing.hubserver import HubServer, closed_port_endpoint
from ssgen.weights import verify

pytestmark = pytest.mark.skipif(
    huggingface_hub.constants.HF_HUB_OFFLINE,
    reason="HF_HUB_OFFLINE was set when huggingface_hub was imported: it then blocks every request",
)

COMMIT = "6d0ee65a1b2c3d4e5f60718293a4b5c6d7e8f901"
REPO = "FoundationVision/var"
GATED = "FoundationVision/gated"
WEIGHTS = bytes(range(256)) * 64 + b"var_d30"  # 16 KiB + a tail, served as an LFS file
WEIGHTS_SHA = hashlib.sha256(WEIGHTS).hexdigest()
TOKEN = "hf_test_token"
ENV_TO_CLEAR = (
    "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_ASSETS_CACHE", "HUGGINGFACE_ASSETS_CACHE", "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_PROGRESS_BARS",
)
REPOS = {
    REPO: {
        "var_d30.pth": WEIGHTS,
        "vae_ch160v4096z32.pth": b"vae" * 100,
        "README.md": b"# VAR\n",
    },
    GATED: {"model.safetensors": b"gated weights"},
    "google/flan-t5-xl": {
        "config.json": b"{}",
        "README.md": b"# T5\n",
        "text_encoder/config.json": b'{"d_model": 8}',
        "text_encoder/model.safetensors": b"encoder",
        "text_encoder/pytorch_model.bin": b"pickle",
        "decoder/model.safetensors": b"decoder",
    },
}


@pytest.fixture
def hf_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private HF_HOME; every other Hub variable cleared."""
    for name in ENV_TO_CLEAR:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "hf"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_ETAG_TIMEOUT", "3")
    return home


@pytest.fixture
def server(hf_home: Path, monkeypatch: pytest.MonkeyPatch):
    """The loopback Hub, with HF_ENDPOINT pointing at it."""
    with HubServer(REPOS, commit=COMMIT, gated={GATED}, tokens={TOKEN}) as hub_server:
        monkeypatch.setenv("HF_ENDPOINT", hub_server.endpoint)
        yield hub_server


def weights_gets(server: HubServer) -> int:
    """How many times var_d30.pth was downloaded."""
    return server.count("GET", "/resolve/6d0ee65a1b2c3d4e5f60718293a4b5c6d7e8f901/var_d30.pth")


# ------------------------------------------------------------------------------ the test server


def test_server_errors_map_to_huggingface_hub_exceptions(server: HubServer, hf_home: Path) -> None:
    """Each error of the loopback server is recognised by huggingface_hub as on the real Hub."""
    kwargs = {"endpoint": server.endpoint, "cache_dir": str(hf_home / "raw")}
    cases = [
        (("org/missing", "x.pth"), {}, hf_errors.RepositoryNotFoundError, 401),
        (("org/missing", "x.pth"), {"token": "hf_other"}, hf_errors.RepositoryNotFoundError, 404),
        ((REPO, "missing.pth"), {}, hf_errors.RemoteEntryNotFoundError, 404),
        ((REPO, "var_d30.pth"), {"revision": "v9"}, hf_errors.RevisionNotFoundError, 404),
        ((GATED, "model.safetensors"), {}, hf_errors.GatedRepoError, 401),
        ((GATED, "model.safetensors"), {"token": "hf_other"}, hf_errors.GatedRepoError, 403),
    ]
    for args, extra, error_type, status in cases:
        with pytest.raises(error_type) as info:
            huggingface_hub.hf_hub_download(*args, **extra, **kwargs)
        assert info.value.response.status_code == status, (args, extra)
    path = huggingface_hub.hf_hub_download(GATED, "model.safetensors", token=TOKEN, **kwargs)
    assert Path(path).read_bytes() == b"gated weights"


def test_server_metadata_headers(server: HubServer) -> None:
    """HEAD gives the commit, sha256 ETag and size that hf_hub_download relies on; no xet headers."""
    url = huggingface_hub.hf_hub_url(REPO, "var_d30.pth", revision="main", endpoint=server.endpoint)
    meta = huggingface_hub.get_hf_file_metadata(url, endpoint=server.endpoint)
    assert (meta.commit_hash, meta.etag, meta.size) == (COMMIT, WEIGHTS_SHA, len(WEIGHTS))
    assert meta.xet_file_data is None


# ------------------------------------------------------------------------------ resolve_file


def test_download_pinned_revision_with_sha256(server: HubServer, hf_home: Path) -> None:
    """A pinned file lands in the standard cache under HF_HOME, verified, with ssgen's user agent."""
    path = weights.resolve_file(REPO, "var_d30.pth", COMMIT, WEIGHTS_SHA)
    assert path.read_bytes() == WEIGHTS
    assert path == hf_home / "hub" / "models--FoundationVision--var" / "snapshots" / COMMIT / "var_d30.pth"
    assert path.resolve().name == WEIGHTS_SHA  # LFS blob named by its sha256
    assert weights_gets(server) == 1
    assert all("ssgen/" in headers["user-agent"] for headers in server.headers)
    assert weights.is_cached(REPO, "var_d30.pth", COMMIT)
    assert not weights.is_cached(REPO, "vae_ch160v4096z32.pth", COMMIT)


def test_second_call_downloads_nothing(server: HubServer) -> None:
    """A cached pinned file needs no request at all; a cached `main` one HEAD and no GET."""
    weights.resolve_file(REPO, "var_d30.pth", COMMIT, WEIGHTS_SHA)
    server.clear()
    assert weights.resolve_file(REPO, "var_d30.pth", COMMIT, WEIGHTS_SHA).read_bytes() == WEIGHTS
    assert server.requests == []
    path = weights.resolve_file(REPO, "var_d30.pth")  # revision None = main: the blob is reused
    assert path.read_bytes() == WEIGHTS
    assert server.count("GET") == 0
    server.clear()
    assert weights.resolve_file(REPO, "var_d30.pth") == path  # main now known: one HEAD to check for updates
    assert server.requests == [("HEAD", server.resolve_path(REPO, "var_d30.pth", "main"))]


def test_offline_returns_cached_file_without_requests(server: HubServer,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """offline=True, and HF_HUB_OFFLINE=1 set at call time, serve the cache and make no request."""
    online = weights.resolve_file(REPO, "var_d30.pth")  # also records refs/main
    server.clear()
    assert weights.resolve_file(REPO, "var_d30.pth", COMMIT, WEIGHTS_SHA, offline=True) == online
    assert weights.resolve_file(REPO, "var_d30.pth", offline=True) == online
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert weights.resolve_file(REPO, "var_d30.pth", COMMIT) == online
    assert weights.resolve_file(REPO, "var_d30.pth") == online
    assert server.requests == []


def test_offline_without_cache_fails_clearly(server: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing cached and offline: a WeightsError that says so, and no request."""
    with pytest.raises(WeightsError, match="offline") as info:
        weights.resolve_file(REPO, "var_d30.pth", COMMIT, offline=True)
    assert "HF_HUB_OFFLINE" in str(info.value) and "\n" not in str(info.value)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsError, match="offline"):
        weights.resolve_file(REPO, "var_d30.pth")
    with pytest.raises(WeightsError, match="offline"):
        weights.resolve_folder("google/flan-t5-xl", COMMIT, subfolder="text_encoder")
    assert server.requests == []


def test_unknown_repo(server: HubServer) -> None:
    """A missing repository names the repo and the config field to fix."""
    with pytest.raises(WeightsError, match=r"repository FoundationVision/nope not found .*`repo:`"):
        weights.resolve_file("FoundationVision/nope", "var_d30.pth", COMMIT)


def test_unknown_file(server: HubServer) -> None:
    """A missing file names the file, the short revision and the config field to fix."""
    expected = r"var_d99\.pth not found in FoundationVision/var@6d0ee65 \(HTTP 404\)"
    with pytest.raises(WeightsError, match=expected):
        weights.resolve_file(REPO, "var_d99.pth", COMMIT)


def test_unknown_revision(server: HubServer) -> None:
    """A missing revision points at the config's `revision:`."""
    with pytest.raises(WeightsError, match=r"revision v9 not found .*`revision:`"):
        weights.resolve_file(REPO, "var_d30.pth", "v9")


def test_gated_repo_without_token(server: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """No token, or a token without access: the message names HF_TOKEN and the licence page."""
    with pytest.raises(WeightsError) as info:
        weights.resolve_file(GATED, "model.safetensors", COMMIT)
    message = str(info.value)
    assert "gated" in message and "HF_TOKEN" in message
    assert f"https://huggingface.co/{GATED}" in message
    monkeypatch.setenv("HF_TOKEN", "hf_someone_else")
    with pytest.raises(WeightsError, match="HF_TOKEN") as info:
        weights.resolve_file(GATED, "model.safetensors", COMMIT)
    assert "no access" in str(info.value)


def test_gated_repo_with_token(server: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """HF_TOKEN set at call time is sent and unlocks the gated repo."""
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    path = weights.resolve_file(GATED, "model.safetensors", COMMIT)
    assert path.read_bytes() == b"gated weights"
    assert any(h.get("authorization") == f"Bearer {TOKEN}" for h in server.headers)


def test_sha256_mismatch_is_never_accepted(server: HubServer) -> None:
    """A wrong hash fails, deletes the copy, and fails again (after a new download) next time."""
    wrong = hashlib.sha256(b"something else").hexdigest()
    for attempt in (1, 2):
        with pytest.raises(WeightsError, match=f"sha256 mismatch .*expected {wrong}, got {WEIGHTS_SHA}"):
            weights.resolve_file(REPO, "var_d30.pth", COMMIT, wrong)
        assert weights_gets(server) == attempt
        assert not weights.is_cached(REPO, "var_d30.pth", COMMIT)
    # the right hash still works afterwards
    assert weights.resolve_file(REPO, "var_d30.pth", COMMIT, WEIGHTS_SHA).read_bytes() == WEIGHTS


def test_sha256_is_checked_once_per_blob(server: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """A verified blob is not re-hashed; a blob modified afterwards is re-hashed and rejected."""
    calls = []
    real_sha256_file = verify.sha256_file
    monkeypatch.setattr(verify, "sha256_file", lambda *a, **k: calls.append(a[0]) or real_sha256_file(*a, **k))
    path = weights.resolve_file(REPO, "var_d30.pth", COMMIT, WEIGHTS_SHA)
    weights.resolve_file(REPO, "var_d30.pth", COMMIT, WEIGHTS_SHA)
    assert len(calls) == 1
    blob = path.resolve()
    blob.chmod(0o644)
    blob.write_bytes(b"\0" * len(WEIGHTS))  # corrupted in place, same size
    os.utime(blob, ns=(time.time_ns(), time.time_ns() + 10**9))
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        weights.resolve_file(REPO, "var_d30.pth", COMMIT, WEIGHTS_SHA)
    assert len(calls) == 2


def test_malformed_sha256_in_config(server: HubServer) -> None:
    """A sha256 that is not 64 hex digits is reported before any download."""
    with pytest.raises(WeightsError, match="`sha256:`"):
        weights.resolve_file(REPO, "var_d30.pth", COMMIT, "7c3ec27a")
    assert server.requests == []


def test_invalid_repo_id(server: HubServer) -> None:
    """A malformed repo id is a WeightsError pointing at the config, with no request."""
    with pytest.raises(WeightsError, match="`repo:`"):
        weights.resolve_file("a/b/c", "var_d30.pth", COMMIT)
    assert server.requests == []


def test_unreachable_hub_fails_fast(hf_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A closed port gives a clear error within seconds, for files and folders."""
    endpoint = closed_port_endpoint()
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    start = time.monotonic()
    with pytest.raises(WeightsError, match=f"cannot reach the Hub at {endpoint}.*--offline"):
        weights.resolve_file(REPO, "var_d30.pth", COMMIT)
    with pytest.raises(WeightsError, match=f"cannot reach the Hub at {endpoint}"):
        weights.resolve_folder("google/flan-t5-xl", COMMIT, subfolder="text_encoder")
    with pytest.raises(WeightsError, match=f"cannot reach the Hub at {endpoint}"):
        weights.resolve_folder("google/flan-t5-xl", subfolder="text_encoder")
    assert time.monotonic() - start < 5


def test_unreachable_hub_falls_back_to_cache(server: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """With `main` cached, a dead network still resolves to the cached file."""
    cached = weights.resolve_file(REPO, "var_d30.pth")
    monkeypatch.setenv("HF_ENDPOINT", closed_port_endpoint())
    start = time.monotonic()
    assert weights.resolve_file(REPO, "var_d30.pth") == cached
    assert time.monotonic() - start < 5


def test_progress_bar_on_a_terminal(server: HubServer) -> None:
    """On a terminal a rich progress bar shows the file; elsewhere nothing is printed."""
    terminal = io.StringIO()
    weights.resolve_file(REPO, "var_d30.pth", COMMIT, WEIGHTS_SHA,
                     console=Console(file=terminal, force_terminal=True, width=120))
    assert "var_d30.pth" in terminal.getvalue() and "sha256 var_d30.pth" in terminal.getvalue()
    terminal = io.StringIO()
    weights.resolve_folder("google/flan-t5-xl", COMMIT, subfolder="text_encoder",
                       console=Console(file=terminal, force_terminal=True, width=120))
    assert "Fetching 3 files" in terminal.getvalue()
    plain = io.StringIO()
    weights.resolve_file(REPO, "vae_ch160v4096z32.pth", COMMIT, console=Console(file=plain, force_terminal=False))
    weights.resolve_file(REPO, "README.md", COMMIT, progress=False,
                     console=Console(file=plain, force_terminal=True))
    assert plain.getvalue() == ""


# ------------------------------------------------------------------------------ resolve_folder


def test_resolve_folder_fetches_only_matching_files(server: HubServer) -> None:
    """subfolder + allow_patterns (relative to it) download just those files."""
    folder = weights.resolve_folder("google/flan-t5-xl", COMMIT, subfolder="text_encoder",
                                allow_patterns=["*.json", "*.safetensors"])
    assert folder.name == "text_encoder" and folder.parent.name == COMMIT
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    fetched = sorted(p for m, p in server.requests if m == "GET" and "/resolve/" in p)
    assert [p.rsplit("/", 2)[-2:] for p in fetched] == [["text_encoder", "config.json"],
                                                        ["text_encoder", "model.safetensors"]]


def test_resolve_folder_whole_subfolder_then_offline(server: HubServer) -> None:
    """subfolder alone means subfolder/*; afterwards it resolves offline with no request."""
    folder = weights.resolve_folder("google/flan-t5-xl", subfolder="text_encoder")
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["config.json", "model.safetensors", "pytorch_model.bin"]
    assert server.count("GET", "decoder") == 0 and server.count("GET", "README") == 0
    server.clear()
    assert weights.resolve_folder("google/flan-t5-xl", subfolder="text_encoder", offline=True) == folder
    assert weights.resolve_folder("google/flan-t5-xl", COMMIT, subfolder="text_encoder", offline=True) == folder
    assert server.requests == []


def test_resolve_folder_errors(server: HubServer) -> None:
    """Missing repo, missing subfolder, gated repo: one-line WeightsErrors."""
    with pytest.raises(WeightsError, match="not found"):
        weights.resolve_folder("google/nope", COMMIT)
    with pytest.raises(WeightsError, match="`subfolder:`"):
        weights.resolve_folder("google/flan-t5-xl", COMMIT, subfolder="tokenizer")
    with pytest.raises(WeightsError, match="HF_TOKEN"):
        weights.resolve_folder(GATED, COMMIT)


# ------------------------------------------------------------------------------ local paths


def test_resolve_local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Relative to the YAML's folder, absolute, and ~; a missing path is named in the error."""
    configs = tmp_path / "configs"
    (configs / "weights").mkdir(parents=True)
    local = configs / "weights" / "tiny.pth"
    local.write_bytes(b"w")
    assert weights.resolve_local("weights/tiny.pth", configs) == local
    assert weights.resolve_local("weights", configs) == configs / "weights"
    assert weights.resolve_local(str(local), tmp_path / "elsewhere") == local
    monkeypatch.setenv("HOME", str(configs))
    assert weights.resolve_local("~/weights/tiny.pth", tmp_path / "elsewhere") == local
    with pytest.raises(WeightsError, match=r"'weights/missing\.pth' not found .*`path:`"):
        weights.resolve_local("weights/missing.pth", configs)


def test_verify_sha256_of_local_file(tmp_path: Path, hf_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Local weights are hashed once; a mismatch is reported and the user's file is left alone."""
    local = tmp_path / "tiny.pth"
    local.write_bytes(WEIGHTS)
    calls = []
    real_sha256_file = verify.sha256_file
    monkeypatch.setattr(verify, "sha256_file", lambda *a, **k: calls.append(a[0]) or real_sha256_file(*a, **k))
    weights.verify_sha256(local, WEIGHTS_SHA.upper())
    weights.verify_sha256(local, WEIGHTS_SHA)
    assert len(calls) == 1
    wrong = hashlib.sha256(b"other").hexdigest()
    expected = f"sha256 mismatch for {local}: expected {wrong}, got {WEIGHTS_SHA}"
    with pytest.raises(WeightsError, match=expected):
        weights.verify_sha256(local, wrong)
    assert local.read_bytes() == WEIGHTS


# ------------------------------------------------------------------------------ cache management


def test_cache_listing_and_removal(server: HubServer, hf_home: Path) -> None:
    """cached_repos lists what was downloaded; remove_cached frees its bytes."""
    assert weights.cached_repos() == []  # no cache folder yet
    weights.resolve_file(REPO, "var_d30.pth")
    weights.resolve_file(REPO, "README.md", COMMIT)
    weights.resolve_folder("google/flan-t5-xl", COMMIT, allow_patterns=["config.json"])
    repos = {r.repo: r for r in weights.cached_repos()}
    assert sorted(repos) == ["FoundationVision/var", "google/flan-t5-xl"]
    var = repos[REPO]
    assert var.revisions == (COMMIT,) and var.refs == ("main",)
    assert var.size_on_disk >= len(WEIGHTS)
    assert weights.remove_cached(REPO, "v-unknown") == 0
    freed = weights.remove_cached(REPO, "main")
    assert freed >= len(WEIGHTS)
    assert not weights.is_cached(REPO, "var_d30.pth", COMMIT)
    assert [r.repo for r in weights.cached_repos()] == ["google/flan-t5-xl"]
    assert weights.remove_cached(REPO) == 0
    assert weights.remove_cached("google/flan-t5-xl") > 0
    assert weights.cached_repos() == []


def test_remove_one_cached_file(server: HubServer) -> None:
    """remove_cached_file frees one file's blob and keeps the rest; the last one takes the repo along."""
    weights.resolve_file(REPO, "var_d30.pth", COMMIT)
    weights.resolve_file(REPO, "README.md")
    assert weights.remove_cached_file(REPO, "var_d30.pth", COMMIT) == len(WEIGHTS)
    assert not weights.is_cached(REPO, "var_d30.pth", COMMIT)
    assert weights.is_cached(REPO, "README.md", COMMIT)
    assert weights.remove_cached_file(REPO, "var_d30.pth", COMMIT) == 0
    assert [r.repo for r in weights.cached_repos()] == [REPO]
    assert weights.remove_cached_file(REPO, "README.md") == len(REPOS[REPO]["README.md"])  # via refs/main
    assert weights.cached_repos() == []
    server.clear()
    assert weights.resolve_file(REPO, "var_d30.pth", COMMIT, WEIGHTS_SHA).read_bytes() == WEIGHTS
    assert weights_gets(server) == 1


# ------------------------------------------------------------------------------ resolve_weight, is_local


def make_config(tmp_path: Path, **weights: WeightSpec) -> ModelConfig:
    """A config with only weights (resolve_weight reads nothing else); local paths relative to tmp_path."""
    return ModelConfig(name="test", family="var", weights=weights, source=tmp_path / "test.yaml")


def test_resolve_weight_roles_and_offline(server: HubServer, tmp_path: Path) -> None:
    """A Hub file, a Hub folder and a local path resolve; afterwards offline=True (the argument alone)
    resolves the Hub roles with no request and changes no global state; is_local never sends one."""
    (tmp_path / "local.pth").write_bytes(WEIGHTS)
    config = make_config(
        tmp_path,
        transformer=WeightSpec("transformer", repo=REPO, file="var_d30.pth", revision=COMMIT, sha256=WEIGHTS_SHA),
        text_encoder=WeightSpec("text_encoder", repo="google/flan-t5-xl", folder="text_encoder", revision=COMMIT,
                                allow=["*.json"]),
        vae=WeightSpec("vae", path="local.pth", sha256=WEIGHTS_SHA),
        other=WeightSpec("other", repo=REPO, file="vae_ch160v4096z32.pth", revision=COMMIT),
    )
    assert not weights.is_local(config, "transformer") and not weights.is_local(config, "text_encoder")
    assert weights.is_local(config, "vae") and not weights.is_local(config, "missing")
    assert server.requests == []
    file = weights.resolve_weight(config, "transformer")
    folder = weights.resolve_weight(config, "text_encoder")
    assert file.read_bytes() == WEIGHTS
    assert folder.name == "text_encoder" and [p.name for p in folder.iterdir()] == ["config.json"]
    assert weights.resolve_weight(config, "vae") == tmp_path / "local.pth"
    server.clear()
    assert weights.resolve_weight(config, "transformer", offline=True) == file
    assert weights.resolve_weight(config, "text_encoder", offline=True) == folder
    assert weights.is_local(config, "transformer") and weights.is_local(config, "text_encoder")
    assert not weights.is_local(config, "other")
    with pytest.raises(ConfigError, match=r"no weights\.missing entry"):
        weights.resolve_weight(config, "missing")
    assert server.requests == []
    assert "HF_HUB_OFFLINE" not in os.environ and huggingface_hub.constants.HF_HUB_OFFLINE is False


def test_resolve_weight_offline_without_cache(server: HubServer, tmp_path: Path) -> None:
    """Offline and not cached: the one-line offline WeightsError, for files and folders, with no request."""
    config = make_config(
        tmp_path,
        transformer=WeightSpec("transformer", repo=REPO, file="var_d30.pth", revision=COMMIT),
        text_encoder=WeightSpec("text_encoder", repo="google/flan-t5-xl", folder="", revision=COMMIT),
    )
    for role in ("transformer", "text_encoder"):
        with pytest.raises(WeightsError, match="not in the local cache and offline mode is on") as info:
            weights.resolve_weight(config, role, offline=True)
        assert "\n" not in str(info.value)
    assert server.requests == []


def test_resolve_weight_progress_false_draws_nothing(server: HubServer, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """On a terminal, progress=True draws the download, folder and sha256 bars; progress=False none of them."""
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich treats the captured stderr as a terminal
    (tmp_path / "local.pth").write_bytes(WEIGHTS)
    spec = {"file": WeightSpec("file", repo=REPO, file="var_d30.pth", revision=COMMIT, sha256=WEIGHTS_SHA),
            "folder": WeightSpec("folder", repo="google/flan-t5-xl", folder="text_encoder", revision=COMMIT),
            "local": WeightSpec("local", path="local.pth", sha256=WEIGHTS_SHA)}
    quiet, drawn = make_config(tmp_path, **spec), make_config(tmp_path / "b", **spec)
    for role in spec:
        weights.resolve_weight(quiet, role, progress=False)  # first time: downloads and hashes
    assert capsys.readouterr().err == ""
    weights.remove_cached(REPO)
    weights.remove_cached("google/flan-t5-xl")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "local.pth").write_bytes(WEIGHTS)
    for role in spec:
        weights.resolve_weight(drawn, role, progress=True)
    err = capsys.readouterr().err
    assert "sha256 var_d30.pth" in err and "Fetching 3 files" in err and "sha256 local.pth" in err


def test_cached_size_is_what_removal_frees(server: HubServer) -> None:
    """cached_size: 0 for what is not cached (a malformed repo id included), else the bytes removal frees."""
    assert weights.cached_size(REPO, "var_d30.pth", COMMIT) == 0 and weights.cached_size(REPO) == 0
    assert weights.cached_size("not a repo id!", "x.pth") == 0
    weights.resolve_file(REPO, "var_d30.pth", COMMIT)
    weights.resolve_folder("google/flan-t5-xl", COMMIT, allow_patterns=["config.json"])
    assert weights.cached_size(REPO, "var_d30.pth", COMMIT) == len(WEIGHTS)
    assert weights.cached_size(REPO, "README.md", COMMIT) == 0
    size = weights.cached_size("google/flan-t5-xl", revision=COMMIT)
    assert size > 0 and weights.remove_cached("google/flan-t5-xl", COMMIT) == size
    assert weights.remove_cached_file(REPO, "var_d30.pth", COMMIT) == len(WEIGHTS)
    assert weights.cached_size(REPO) == 0


def test_sha256_pinned_for_a_folder(server: HubServer, tmp_path: Path) -> None:
    """A sha256 checks one file: pinned for a Hub folder it is a ConfigError before any request."""
    config = make_config(tmp_path, text_encoder=WeightSpec("text_encoder", repo="google/flan-t5-xl", folder="",
                                                           revision=COMMIT, sha256=WEIGHTS_SHA))
    with pytest.raises(ConfigError, match="a sha256 checks one file"):
        weights.resolve_weight(config, "text_encoder")
    assert server.requests == []


def test_models_path_and_remove_of_a_partly_cached_model(server: HubServer, tiny_var: Path, tmp_path: Path) -> None:
    """`models path` names the roles that are not downloaded and how to get them (no word of offline mode);
    `models remove` asks with the size it will free, and removes it."""
    import yaml
    from typer.testing import CliRunner

    from ssgen.cli import app

    cfg = yaml.safe_load(tiny_var.read_text())
    cfg["weights"] = {"transformer": {"repo": REPO, "file": "var_d30.pth", "revision": COMMIT},
                      "vae": {"repo": REPO, "file": "vae_ch160v4096z32.pth", "revision": COMMIT}}
    model = tmp_path / "m.yaml"
    model.write_text(yaml.safe_dump(cfg))
    weights.resolve_file(REPO, "var_d30.pth", COMMIT)
    server.clear()
    r = CliRunner().invoke(app, ["models", "path", str(model)])
    assert r.exit_code == 2 and "its vae weights are not in the cache" in r.output
    assert f"ssgen models download {model}" in r.output and "offline" not in r.output
    r = CliRunner().invoke(app, ["models", "remove", str(model)], input="n\n")
    assert r.exit_code == 1 and f"remove {len(WEIGHTS) / 1e3:.1f} kB of cached weights of var-tiny?" in r.output
    assert weights.is_cached(REPO, "var_d30.pth", COMMIT)
    r = CliRunner().invoke(app, ["models", "remove", str(model)], input="y\n")
    assert r.exit_code == 0 and f"removed {len(WEIGHTS) / 1e3:.1f} kB" in r.output
    assert not weights.is_cached(REPO, "var_d30.pth", COMMIT)
    assert server.requests == []


def test_damaged_download_names_the_blob_to_delete(server: HubServer) -> None:
    """A damaged Hub download is repaired by deleting its blob (the link alone would bring it back):
    the error names the blob, and after deleting it the next resolve downloads the file again."""
    from ssgen.checkpoint import read_state_dict

    path = weights.resolve_file(REPO, "var_d30.pth", COMMIT)  # WEIGHTS: bytes, not a torch file
    blob = path.resolve()
    with pytest.raises(WeightsError, match="not a PyTorch checkpoint") as info:
        read_state_dict(path)
    assert f"delete its cached copy {blob} and run again" in str(info.value)
    blob.unlink()
    server.clear()
    assert weights.resolve_file(REPO, "var_d30.pth", COMMIT).read_bytes() == WEIGHTS
    assert weights_gets(server) == 1
