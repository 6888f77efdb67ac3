"""End-to-end tests of ssgen.hub through a loopback Hub server (tests/hubserver.py).

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

from ssgen import hub
from ssgen.errors import WeightsError

try:
    from hubserver import HubServer, closed_port_endpoint
except ImportError:  # tests/ imported as a package
    from tests.hubserver import HubServer, closed_port_endpoint

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
    path = hub.resolve_file(REPO, "var_d30.pth", COMMIT, WEIGHTS_SHA)
    assert path.read_bytes() == WEIGHTS
    assert path == hf_home / "hub" / "models--FoundationVision--var" / "snapshots" / COMMIT / "var_d30.pth"
    assert path.resolve().name == WEIGHTS_SHA  # LFS blob named by its sha256
    assert weights_gets(server) == 1
    assert all("ssgen/" in headers["user-agent"] for headers in server.headers)
    assert hub.is_cached(REPO, "var_d30.pth", COMMIT)
    assert not hub.is_cached(REPO, "vae_ch160v4096z32.pth", COMMIT)


def test_second_call_downloads_nothing(server: HubServer) -> None:
    """A cached pinned file needs no request at all; a cached `main` one HEAD and no GET."""
    hub.resolve_file(REPO, "var_d30.pth", COMMIT, WEIGHTS_SHA)
    server.clear()
    assert hub.resolve_file(REPO, "var_d30.pth", COMMIT, WEIGHTS_SHA).read_bytes() == WEIGHTS
    assert server.requests == []
    path = hub.resolve_file(REPO, "var_d30.pth")  # revision None = main: the blob is reused
    assert path.read_bytes() == WEIGHTS
    assert server.count("GET") == 0
    server.clear()
    assert hub.resolve_file(REPO, "var_d30.pth") == path  # main now known: one HEAD to check for updates
    assert server.requests == [("HEAD", server.resolve_path(REPO, "var_d30.pth", "main"))]


def test_offline_returns_cached_file_without_requests(server: HubServer,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """offline=True, and HF_HUB_OFFLINE=1 set at call time, serve the cache and make no request."""
    online = hub.resolve_file(REPO, "var_d30.pth")  # also records refs/main
    server.clear()
    assert hub.resolve_file(REPO, "var_d30.pth", COMMIT, WEIGHTS_SHA, offline=True) == online
    assert hub.resolve_file(REPO, "var_d30.pth", offline=True) == online
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub.resolve_file(REPO, "var_d30.pth", COMMIT) == online
    assert hub.resolve_file(REPO, "var_d30.pth") == online
    assert server.requests == []


def test_offline_without_cache_fails_clearly(server: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing cached and offline: a WeightsError that says so, and no request."""
    with pytest.raises(WeightsError, match="offline") as info:
        hub.resolve_file(REPO, "var_d30.pth", COMMIT, offline=True)
    assert "HF_HUB_OFFLINE" in str(info.value) and "\n" not in str(info.value)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsError, match="offline"):
        hub.resolve_file(REPO, "var_d30.pth")
    with pytest.raises(WeightsError, match="offline"):
        hub.resolve_folder("google/flan-t5-xl", COMMIT, subfolder="text_encoder")
    assert server.requests == []


def test_unknown_repo(server: HubServer) -> None:
    """A missing repository names the repo and the config field to fix."""
    with pytest.raises(WeightsError, match=r"repository FoundationVision/nope not found .*`repo:`"):
        hub.resolve_file("FoundationVision/nope", "var_d30.pth", COMMIT)


def test_unknown_file(server: HubServer) -> None:
    """A missing file names the file, the short revision and the config field to fix."""
    expected = r"var_d99\.pth not found in FoundationVision/var@6d0ee65 \(HTTP 404\)"
    with pytest.raises(WeightsError, match=expected):
        hub.resolve_file(REPO, "var_d99.pth", COMMIT)


def test_unknown_revision(server: HubServer) -> None:
    """A missing revision points at the config's `revision:`."""
    with pytest.raises(WeightsError, match=r"revision v9 not found .*`revision:`"):
        hub.resolve_file(REPO, "var_d30.pth", "v9")


def test_gated_repo_without_token(server: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """No token, or a token without access: the message names HF_TOKEN and the licence page."""
    with pytest.raises(WeightsError) as info:
        hub.resolve_file(GATED, "model.safetensors", COMMIT)
    message = str(info.value)
    assert "gated" in message and "HF_TOKEN" in message
    assert f"https://huggingface.co/{GATED}" in message
    monkeypatch.setenv("HF_TOKEN", "hf_someone_else")
    with pytest.raises(WeightsError, match="HF_TOKEN") as info:
        hub.resolve_file(GATED, "model.safetensors", COMMIT)
    assert "no access" in str(info.value)


def test_gated_repo_with_token(server: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """HF_TOKEN set at call time is sent and unlocks the gated repo."""
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    path = hub.resolve_file(GATED, "model.safetensors", COMMIT)
    assert path.read_bytes() == b"gated weights"
    assert any(h.get("authorization") == f"Bearer {TOKEN}" for h in server.headers)


def test_sha256_mismatch_is_never_accepted(server: HubServer) -> None:
    """A wrong hash fails, deletes the copy, and fails again (after a new download) next time."""
    wrong = hashlib.sha256(b"something else").hexdigest()
    for attempt in (1, 2):
        with pytest.raises(WeightsError, match=f"sha256 mismatch .*expected {wrong}, got {WEIGHTS_SHA}"):
            hub.resolve_file(REPO, "var_d30.pth", COMMIT, wrong)
        assert weights_gets(server) == attempt
        assert not hub.is_cached(REPO, "var_d30.pth", COMMIT)
    # the right hash still works afterwards
    assert hub.resolve_file(REPO, "var_d30.pth", COMMIT, WEIGHTS_SHA).read_bytes() == WEIGHTS


def test_sha256_is_checked_once_per_blob(server: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """A verified blob is not re-hashed; a blob modified afterwards is re-hashed and rejected."""
    calls = []
    real_sha256_file = hub._sha256_file
    monkeypatch.setattr(hub, "_sha256_file", lambda *a, **k: calls.append(a[0]) or real_sha256_file(*a, **k))
    path = hub.resolve_file(REPO, "var_d30.pth", COMMIT, WEIGHTS_SHA)
    hub.resolve_file(REPO, "var_d30.pth", COMMIT, WEIGHTS_SHA)
    assert len(calls) == 1
    blob = path.resolve()
    blob.chmod(0o644)
    blob.write_bytes(b"\0" * len(WEIGHTS))  # corrupted in place, same size
    os.utime(blob, ns=(time.time_ns(), time.time_ns() + 10**9))
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        hub.resolve_file(REPO, "var_d30.pth", COMMIT, WEIGHTS_SHA)
    assert len(calls) == 2


def test_malformed_sha256_in_config(server: HubServer) -> None:
    """A sha256 that is not 64 hex digits is reported before any download."""
    with pytest.raises(WeightsError, match="`sha256:`"):
        hub.resolve_file(REPO, "var_d30.pth", COMMIT, "7c3ec27a")
    assert server.requests == []


def test_invalid_repo_id(server: HubServer) -> None:
    """A malformed repo id is a WeightsError pointing at the config, with no request."""
    with pytest.raises(WeightsError, match="`repo:`"):
        hub.resolve_file("a/b/c", "var_d30.pth", COMMIT)
    assert server.requests == []


def test_unreachable_hub_fails_fast(hf_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A closed port gives a clear error within seconds, for files and folders."""
    endpoint = closed_port_endpoint()
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    start = time.monotonic()
    with pytest.raises(WeightsError, match=f"cannot reach the Hub at {endpoint}.*--offline"):
        hub.resolve_file(REPO, "var_d30.pth", COMMIT)
    with pytest.raises(WeightsError, match=f"cannot reach the Hub at {endpoint}"):
        hub.resolve_folder("google/flan-t5-xl", COMMIT, subfolder="text_encoder")
    with pytest.raises(WeightsError, match=f"cannot reach the Hub at {endpoint}"):
        hub.resolve_folder("google/flan-t5-xl", subfolder="text_encoder")
    assert time.monotonic() - start < 5


def test_unreachable_hub_falls_back_to_cache(server: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """With `main` cached, a dead network still resolves to the cached file."""
    cached = hub.resolve_file(REPO, "var_d30.pth")
    monkeypatch.setenv("HF_ENDPOINT", closed_port_endpoint())
    start = time.monotonic()
    assert hub.resolve_file(REPO, "var_d30.pth") == cached
    assert time.monotonic() - start < 5


def test_progress_bar_on_a_terminal(server: HubServer) -> None:
    """On a terminal a rich progress bar shows the file; elsewhere nothing is printed."""
    terminal = io.StringIO()
    hub.resolve_file(REPO, "var_d30.pth", COMMIT, WEIGHTS_SHA,
                     console=Console(file=terminal, force_terminal=True, width=120))
    assert "var_d30.pth" in terminal.getvalue() and "sha256 var_d30.pth" in terminal.getvalue()
    terminal = io.StringIO()
    hub.resolve_folder("google/flan-t5-xl", COMMIT, subfolder="text_encoder",
                       console=Console(file=terminal, force_terminal=True, width=120))
    assert "Fetching 3 files" in terminal.getvalue()
    plain = io.StringIO()
    hub.resolve_file(REPO, "vae_ch160v4096z32.pth", COMMIT, console=Console(file=plain, force_terminal=False))
    hub.resolve_file(REPO, "README.md", COMMIT, progress=False,
                     console=Console(file=plain, force_terminal=True))
    assert plain.getvalue() == ""


# ------------------------------------------------------------------------------ resolve_folder


def test_resolve_folder_fetches_only_matching_files(server: HubServer) -> None:
    """subfolder + allow_patterns (relative to it) download just those files."""
    folder = hub.resolve_folder("google/flan-t5-xl", COMMIT, subfolder="text_encoder",
                                allow_patterns=["*.json", "*.safetensors"])
    assert folder.name == "text_encoder" and folder.parent.name == COMMIT
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    fetched = sorted(p for m, p in server.requests if m == "GET" and "/resolve/" in p)
    assert [p.rsplit("/", 2)[-2:] for p in fetched] == [["text_encoder", "config.json"],
                                                        ["text_encoder", "model.safetensors"]]


def test_resolve_folder_whole_subfolder_then_offline(server: HubServer) -> None:
    """subfolder alone means subfolder/*; afterwards it resolves offline with no request."""
    folder = hub.resolve_folder("google/flan-t5-xl", subfolder="text_encoder")
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["config.json", "model.safetensors", "pytorch_model.bin"]
    assert server.count("GET", "decoder") == 0 and server.count("GET", "README") == 0
    server.clear()
    assert hub.resolve_folder("google/flan-t5-xl", subfolder="text_encoder", offline=True) == folder
    assert hub.resolve_folder("google/flan-t5-xl", COMMIT, subfolder="text_encoder", offline=True) == folder
    assert server.requests == []


def test_resolve_folder_errors(server: HubServer) -> None:
    """Missing repo, missing subfolder, gated repo: one-line WeightsErrors."""
    with pytest.raises(WeightsError, match="not found"):
        hub.resolve_folder("google/nope", COMMIT)
    with pytest.raises(WeightsError, match="`subfolder:`"):
        hub.resolve_folder("google/flan-t5-xl", COMMIT, subfolder="tokenizer")
    with pytest.raises(WeightsError, match="HF_TOKEN"):
        hub.resolve_folder(GATED, COMMIT)


# ------------------------------------------------------------------------------ local paths


def test_resolve_local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Relative to the YAML's folder, absolute, and ~; a missing path is named in the error."""
    configs = tmp_path / "configs"
    (configs / "weights").mkdir(parents=True)
    weights = configs / "weights" / "tiny.pth"
    weights.write_bytes(b"w")
    assert hub.resolve_local("weights/tiny.pth", configs) == weights
    assert hub.resolve_local("weights", configs) == configs / "weights"
    assert hub.resolve_local(str(weights), tmp_path / "elsewhere") == weights
    monkeypatch.setenv("HOME", str(configs))
    assert hub.resolve_local("~/weights/tiny.pth", tmp_path / "elsewhere") == weights
    with pytest.raises(WeightsError, match=r"'weights/missing\.pth' not found .*`path:`"):
        hub.resolve_local("weights/missing.pth", configs)


def test_verify_sha256_of_local_file(tmp_path: Path, hf_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Local weights are hashed once; a mismatch is reported and the user's file is left alone."""
    weights = tmp_path / "tiny.pth"
    weights.write_bytes(WEIGHTS)
    calls = []
    real_sha256_file = hub._sha256_file
    monkeypatch.setattr(hub, "_sha256_file", lambda *a, **k: calls.append(a[0]) or real_sha256_file(*a, **k))
    hub.verify_sha256(weights, WEIGHTS_SHA.upper())
    hub.verify_sha256(weights, WEIGHTS_SHA)
    assert len(calls) == 1
    wrong = hashlib.sha256(b"other").hexdigest()
    expected = f"sha256 mismatch for {weights}: expected {wrong}, got {WEIGHTS_SHA}"
    with pytest.raises(WeightsError, match=expected):
        hub.verify_sha256(weights, wrong)
    assert weights.read_bytes() == WEIGHTS


# ------------------------------------------------------------------------------ cache management


def test_cache_listing_and_removal(server: HubServer, hf_home: Path) -> None:
    """cached_repos lists what was downloaded; remove_cached frees its bytes."""
    assert hub.cached_repos() == []  # no cache folder yet
    hub.resolve_file(REPO, "var_d30.pth")
    hub.resolve_file(REPO, "README.md", COMMIT)
    hub.resolve_folder("google/flan-t5-xl", COMMIT, allow_patterns=["config.json"])
    repos = {r.repo: r for r in hub.cached_repos()}
    assert sorted(repos) == ["FoundationVision/var", "google/flan-t5-xl"]
    var = repos[REPO]
    assert var.revisions == (COMMIT,) and var.refs == ("main",)
    assert var.size_on_disk >= len(WEIGHTS)
    assert hub.remove_cached(REPO, "v-unknown") == 0
    freed = hub.remove_cached(REPO, "main")
    assert freed >= len(WEIGHTS)
    assert not hub.is_cached(REPO, "var_d30.pth", COMMIT)
    assert [r.repo for r in hub.cached_repos()] == ["google/flan-t5-xl"]
    assert hub.remove_cached(REPO) == 0
    assert hub.remove_cached("google/flan-t5-xl") > 0
    assert hub.cached_repos() == []


def test_remove_one_cached_file(server: HubServer) -> None:
    """remove_cached_file frees one file's blob and keeps the rest; the last one takes the repo along."""
    hub.resolve_file(REPO, "var_d30.pth", COMMIT)
    hub.resolve_file(REPO, "README.md")
    assert hub.remove_cached_file(REPO, "var_d30.pth", COMMIT) == len(WEIGHTS)
    assert not hub.is_cached(REPO, "var_d30.pth", COMMIT)
    assert hub.is_cached(REPO, "README.md", COMMIT)
    assert hub.remove_cached_file(REPO, "var_d30.pth", COMMIT) == 0
    assert [r.repo for r in hub.cached_repos()] == [REPO]
    assert hub.remove_cached_file(REPO, "README.md") == len(REPOS[REPO]["README.md"])  # via refs/main
    assert hub.cached_repos() == []
    server.clear()
    assert hub.resolve_file(REPO, "var_d30.pth", COMMIT, WEIGHTS_SHA).read_bytes() == WEIGHTS
    assert weights_gets(server) == 1
