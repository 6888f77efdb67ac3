"""Weight resolution: Hub files and folders through the standard Hugging Face cache, local paths,
and cache management for `ssgen models`.

Everything goes through `huggingface_hub` and its shared cache (`HF_HOME` / `HF_HUB_CACHE`), so
weights downloaded by ssgen are reused by other tools and vice versa. `huggingface_hub` reads its
environment variables once, at import time; this module reads the ones that matter
(`HF_HOME`, `HF_HUB_CACHE`, `HF_ASSETS_CACHE`, `HF_ENDPOINT`, `HF_HUB_OFFLINE`,
`HF_HUB_ETAG_TIMEOUT`, `HF_HUB_DISABLE_PROGRESS_BARS`) at call time and passes them explicitly.
`HF_TOKEN` is read at call time by `huggingface_hub` itself.

Every failure a user can fix is raised as a `WeightsError` with a one-line message and a hint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib
import json
import os
import pathlib
import re
import shutil
import threading
from collections.abc import Iterator
from typing import Any

import huggingface_hub
from huggingface_hub import HfApi, get_hf_file_metadata, hf_hub_download, hf_hub_url, snapshot_download
from huggingface_hub import errors as hf_errors
from rich.console import Console
from rich.filesize import decimal as _filesize
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeRemainingColumn
from rich.table import Column
from rich.text import Text

from ssgen.errors import WeightsError

__all__ = [
    "CachedRepo",
    "cached_repos",
    "is_cached",
    "remove_cached",
    "resolve_file",
    "resolve_folder",
    "remove_cached_file",
    "resolve_local",
    "verify_sha256",
]

DEFAULT_ENDPOINT = "https://huggingface.co"
DEFAULT_REVISION = "main"
LICENCE_URL = "https://huggingface.co/{repo}"
LOGIN_HINT = "set HF_TOKEN (or run `hf auth login`)"
OFFLINE_HINT = "use --offline with cached weights"
_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_TRUE = {"1", "true", "yes", "on"}
_HASH_CHUNK = 8 * 1024 * 1024


# --------------------------------------------------------------------------------------------
# Settings read from the environment at call time
# --------------------------------------------------------------------------------------------


def _env_path(*names: str) -> str | None:
    """The first of these environment variables that is set, with ~ and $VARS expanded."""
    for name in names:
        value = os.environ.get(name)
        if value:
            return os.path.expandvars(os.path.expanduser(value))
    return None


def hf_home() -> pathlib.Path:
    """`HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`."""
    home = _env_path("HF_HOME")
    if home is None:
        xdg = _env_path("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        home = os.path.join(xdg, "huggingface")
    return pathlib.Path(home)


def hub_cache_dir() -> pathlib.Path:
    """The Hub cache folder: `HF_HUB_CACHE`, else `$HF_HOME/hub`."""
    path = _env_path("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE")
    return pathlib.Path(path) if path else hf_home() / "hub"


def assets_cache_dir() -> pathlib.Path:
    """The folder for files derived by downstream libraries: `HF_ASSETS_CACHE`, else `$HF_HOME/assets`."""
    path = _env_path("HF_ASSETS_CACHE", "HUGGINGFACE_ASSETS_CACHE")
    return pathlib.Path(path) if path else hf_home() / "assets"


def hub_endpoint() -> str:
    """`HF_ENDPOINT` (a mirror or a test server), else https://huggingface.co."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def offline_from_env() -> bool:
    """Whether `HF_HUB_OFFLINE` (or the older `TRANSFORMERS_OFFLINE`) is set to a true value."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().lower() in _TRUE


def _etag_timeout() -> float:
    """Seconds to wait for the Hub's answer to a metadata request (`HF_HUB_ETAG_TIMEOUT`, default 10)."""
    try:
        return float(os.environ.get("HF_HUB_ETAG_TIMEOUT") or 10)
    except ValueError:
        return 10.0


def _ssgen_version() -> str:
    """ssgen's version, for the Hub's `library_name/library_version` user agent."""
    try:
        from ssgen import __version__  # type: ignore[attr-defined]

        return str(__version__)
    except ImportError:
        pass
    try:
        from importlib.metadata import version

        return version("ssgen")
    except Exception:
        return "0+unknown"


def _hub_kwargs(token: str | bool | None) -> dict[str, Any]:
    """Keyword arguments shared by every `huggingface_hub` download call."""
    return {
        "cache_dir": str(hub_cache_dir()),
        "endpoint": hub_endpoint(),
        "etag_timeout": _etag_timeout(),
        "token": token,
        "library_name": "ssgen",
        "library_version": _ssgen_version(),
    }


def _short(revision: str) -> str:
    """A commit hash shortened to 7 characters; branch names unchanged."""
    return revision[:7] if _COMMIT_RE.match(revision) else revision


# --------------------------------------------------------------------------------------------
# Error mapping
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Target:
    """What was being resolved, for error messages."""

    repo: str
    revision: str
    filename: str | None
    endpoint: str
    offline: bool

    def describe(self) -> str:
        """`file in repo@rev` or `repo@rev`."""
        where = f"{self.repo}@{_short(self.revision)}"
        return f"{self.filename} in {where}" if self.filename else where


def _network_error_types() -> tuple[type[BaseException], ...]:
    """Transport-level errors of the HTTP client huggingface_hub uses (httpx2 in 2.x, httpx before)."""
    types: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for name in ("httpx2", "httpx"):
        try:
            types.append(importlib.import_module(name).TransportError)
        except (ImportError, AttributeError):
            continue
    return tuple(types)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and its causes/contexts, outermost first."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _first_line(exc: BaseException, limit: int = 160) -> str:
    """The first non-empty line of an exception's message, shortened."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _status(exc: BaseException) -> int | None:
    """The HTTP status code carried by a huggingface_hub HTTP error, if any."""
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def _offline_error(target: _Target) -> WeightsError:
    """Weights not in the cache while offline."""
    return WeightsError(
        f"weights for {target.describe()} are not in the local cache and offline mode is on"
        " (--offline / HF_HUB_OFFLINE=1); run once online or `ssgen models download <model>`"
    )


def _unreachable_error(target: _Target, exc: BaseException) -> WeightsError:
    """The Hub could not be reached at all."""
    return WeightsError(
        f"cannot reach the Hub at {target.endpoint}: {_first_line(exc)}; check the network,"
        f" set HF_ENDPOINT, or {OFFLINE_HINT}"
    )


def _gated_error(target: _Target, status: int | None) -> WeightsError:
    """A gated repository and no token, or a token without access."""
    url = LICENCE_URL.format(repo=target.repo)
    if status == 403:
        return WeightsError(
            f"{target.repo} is gated and your token has no access: accept its licence at {url}"
            f" with the same account, or {LOGIN_HINT} for an account that has"
        )
    return WeightsError(f"{target.repo} is gated: accept its licence at {url} and {LOGIN_HINT}")


def _http_error(exc: hf_errors.HfHubHTTPError, target: _Target) -> WeightsError:
    """Map a huggingface_hub HTTP error to a WeightsError."""
    status = _status(exc)
    code = f"HTTP {status}" if status else "HTTP error"
    if isinstance(exc, hf_errors.GatedRepoError):
        return _gated_error(target, status)
    if isinstance(exc, hf_errors.RepositoryNotFoundError):
        return WeightsError(
            f"repository {target.repo} not found on {target.endpoint} ({code}); check the config's"
            f" `repo:` (if the repository is private, {LOGIN_HINT})"
        )
    if isinstance(exc, hf_errors.RevisionNotFoundError):
        return WeightsError(
            f"revision {target.revision} not found in {target.repo} ({code}); check the config's"
            " `revision:` (a branch name or a full 40-hex commit hash)"
        )
    if isinstance(exc, hf_errors.RemoteEntryNotFoundError):
        return WeightsError(
            f"{target.filename or 'a file'} not found in {target.repo}@{_short(target.revision)}"
            f" ({code}); check the config's `file:`"
        )
    if status == 401:
        return WeightsError(
            f"{target.endpoint} rejected the credentials sent for {target.repo} (401): {LOGIN_HINT}"
            " with a valid token"
        )
    if status == 403:
        return WeightsError(
            f"access to {target.repo} is forbidden (403): accept its licence at"
            f" {LICENCE_URL.format(repo=target.repo)} and {LOGIN_HINT} with a token that can read it"
        )
    return WeightsError(
        f"the Hub at {target.endpoint} answered {code} for {target.describe()}: {_first_line(exc)};"
        f" retry later, or {OFFLINE_HINT}"
    )


def _not_a_hub_error(target: _Target) -> WeightsError:
    """The endpoint answered, but not like a Hugging Face Hub."""
    return WeightsError(
        f"{target.endpoint} did not answer like a Hugging Face Hub (no X-Repo-Commit / ETag headers);"
        " check HF_ENDPOINT and the proxy settings"
    )


def _weights_error(exc: BaseException, target: _Target) -> WeightsError | None:
    """The WeightsError for a failure of a huggingface_hub call, or None if it is not a user problem."""
    network = _network_error_types()
    if isinstance(exc, hf_errors.OfflineModeIsEnabled):
        return _offline_error(target)
    if isinstance(exc, hf_errors.HfHubHTTPError):
        return _http_error(exc, target)
    if isinstance(exc, hf_errors.LocalEntryNotFoundError):
        if target.offline:
            return _offline_error(target)
        for cause in list(_chain(exc))[1:]:
            if isinstance(cause, hf_errors.OfflineModeIsEnabled):
                return _offline_error(target)
            if isinstance(cause, hf_errors.FileMetadataError):
                return _not_a_hub_error(target)
            if isinstance(cause, hf_errors.HfHubHTTPError):
                return _http_error(cause, target)
            if isinstance(cause, network):
                return _unreachable_error(target, cause)
        return _unreachable_error(target, exc)
    if isinstance(exc, hf_errors.FileMetadataError):
        return _not_a_hub_error(target)
    if isinstance(exc, hf_errors.HFValidationError):
        return WeightsError(
            f"invalid Hub reference {target.describe()}: {_first_line(exc)}; check the config's `repo:`"
        )
    if isinstance(exc, network):
        return _unreachable_error(target, exc)
    if isinstance(exc, OSError):
        if "Consistency check failed" in str(exc):
            return WeightsError(
                f"the download of {target.describe()} was incomplete (network problem); retry"
            )
        return WeightsError(
            f"cannot write {target.describe()} to the cache {hub_cache_dir()}: {_first_line(exc)};"
            " free disk space or point HF_HOME / HF_HUB_CACHE to a writable folder"
        )
    return None


@contextlib.contextmanager
def _hub_errors(target: _Target) -> Iterator[None]:
    """Turn huggingface_hub failures inside the block into WeightsErrors."""
    try:
        yield
    except WeightsError:
        raise
    except Exception as exc:
        error = _weights_error(exc, target)
        if error is None:
            raise
        raise error from exc


# --------------------------------------------------------------------------------------------
# Progress bars: a rich-backed class that huggingface_hub drives through `tqdm_class=`
# --------------------------------------------------------------------------------------------


class _AmountColumn(ProgressColumn):
    """`12.3/45.6 MB 8.1 MB/s` for byte bars, `3/7` for counters."""

    def render(self, task: Task) -> Text:
        """Render the amount done (and the speed for byte bars)."""
        if not task.fields.get("bytes"):
            total = "?" if task.total is None else str(int(task.total))
            return Text(f"{int(task.completed)}/{total}", style="progress.download", no_wrap=True)
        done = _filesize(int(task.completed))
        total = "?" if task.total is None else _filesize(int(task.total))
        speed = f" {_filesize(int(task.speed))}/s" if task.speed else ""
        return Text(f"{done}/{total}{speed}", style="progress.download", no_wrap=True)


class _LazyProgress:
    """A rich Progress that starts drawing only when its first bar is added."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("[progress.description]{task.description}",
                       table_column=Column(no_wrap=True, overflow="ellipsis", max_width=48)),
            BarColumn(),
            _AmountColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        self._started = False
        self._lock = threading.Lock()

    def add_task(self, description: str, total: float | None, completed: float, is_bytes: bool) -> Any:
        """Add a bar (starting the display if needed); returns its task id."""
        with self._lock:
            if not self._started:
                self._progress.start()
                self._started = True
            return self._progress.add_task(description, total=total, completed=completed, bytes=is_bytes)

    def update(self, task_id: Any, **fields: Any) -> None:
        """Update a bar."""
        self._progress.update(task_id, **fields)

    def stop(self) -> None:
        """Stop drawing (leaves the final state on screen)."""
        with self._lock:
            if self._started:
                self._progress.stop()
                self._started = False


class _RichTqdm:
    """A tqdm stand-in for huggingface_hub's `tqdm_class=` argument, drawn with rich.

    huggingface_hub only uses the constructor keywords (desc, total, initial, unit, ...), `update`,
    `close`, the context-manager protocol, the `n` and `total` attributes, `refresh`,
    `set_description(_str)`, `set_postfix_str`, `format_dict` and the class methods
    `get_lock`/`set_lock`. This base class draws nothing; `_progress_bars` makes a subclass bound
    to a display.
    """

    display: _LazyProgress | None = None
    _lock = threading.RLock()
    # snapshot_download keeps two byte bars that advance together over plain HTTP; show one.
    _HIDDEN_PREFIXES = ("Reconstruct",)

    def __init__(self, iterable: Any = None, desc: str | None = None, total: float | None = None,
                 initial: float = 0, unit: str = "it", **_ignored: Any) -> None:
        self.iterable = iterable
        self.n = initial or 0
        self._total = total
        self.desc = desc or ""
        self.disable = self.display is None
        self._task: Any = None
        if self.display is not None and not self.desc.startswith(self._HIDDEN_PREFIXES):
            self._task = self.display.add_task(_short_desc(self.desc), total, self.n, unit == "B")

    @property
    def total(self) -> float | None:
        """The expected amount (bytes or items), None if unknown."""
        return self._total

    @total.setter
    def total(self, value: float | None) -> None:
        self._total = value
        self._show(total=value)

    def _show(self, **fields: Any) -> None:
        """Push fields to the rich task, if this bar is drawn."""
        if self._task is not None and self.display is not None:
            self.display.update(self._task, **fields)

    def update(self, n: float | None = 1) -> None:
        """Advance by n (snapshot_download's worker threads share its bars)."""
        with self._lock:
            self.n += n or 0
            self._show(completed=self.n)

    def refresh(self, *args: Any, **kwargs: Any) -> None:
        """Nothing to do: rich redraws on its own."""

    def close(self) -> None:
        """Nothing to do: the display is stopped by `_progress_bars`."""

    def __enter__(self) -> _RichTqdm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        """Change the label."""
        self.desc = desc or ""
        self._show(description=_short_desc(self.desc))

    set_description_str = set_description

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        """Ignored: the rich bar shows its own speed."""

    @property
    def format_dict(self) -> dict[str, Any]:
        """The few fields huggingface_hub reads from tqdm's format_dict."""
        return {"n": self.n, "total": self._total, "rate": None, "elapsed": 0}

    @classmethod
    def get_lock(cls) -> threading.RLock:
        """tqdm's class-level lock (shared with worker threads by huggingface_hub)."""
        return cls._lock

    @classmethod
    def set_lock(cls, lock: Any) -> None:
        """Ignored: rich is thread-safe."""


def _short_desc(desc: str) -> str:
    """huggingface_hub labels some bars with the (truncated) URL; keep the file name only."""
    if desc.startswith(("http://", "https://", "(…)")) and "/" in desc:
        return desc.rsplit("/", 1)[-1]
    return desc


def _progress_disabled_by_env() -> bool:
    """Whether `HF_HUB_DISABLE_PROGRESS_BARS` is set to a true value."""
    return (os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS") or "").strip().lower() in _TRUE


@contextlib.contextmanager
def _progress_bars(enabled: bool, console: Console | None) -> Iterator[type[_RichTqdm]]:
    """A tqdm-compatible class to hand to huggingface_hub; draws on a terminal, silent otherwise."""
    console = console or Console(stderr=True)
    if not enabled or _progress_disabled_by_env() or not console.is_terminal:
        yield _RichTqdm
        return
    display = _LazyProgress(console)
    try:
        yield type("_BoundRichTqdm", (_RichTqdm,), {"display": display, "_lock": threading.RLock()})
    finally:
        display.stop()


# --------------------------------------------------------------------------------------------
# sha256 verification, remembered per blob so multi-GB files are hashed once
# --------------------------------------------------------------------------------------------


def _verified_record_path() -> pathlib.Path:
    """The JSON file remembering which cached blobs passed their sha256 check."""
    return assets_cache_dir() / "ssgen" / "sha256-verified.json"


def _read_verified() -> dict[str, dict[str, Any]]:
    """Verified blobs: path -> {sha256, size, mtime_ns}; empty when missing or unreadable."""
    try:
        data = json.loads(_verified_record_path().read_text())
        files = data.get("files", {})
        return files if isinstance(files, dict) else {}
    except (OSError, ValueError, AttributeError):
        return {}


def _write_verified(files: dict[str, dict[str, Any]]) -> None:
    """Atomically rewrite the record, dropping blobs that no longer exist. Best effort."""
    record = _verified_record_path()
    files = {path: entry for path, entry in files.items() if os.path.exists(path)}
    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        tmp = record.with_name(f"{record.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps({"version": 1, "files": files}, indent=1, sort_keys=True))
        os.replace(tmp, record)
    except OSError:
        pass


def _stat_key(blob: pathlib.Path) -> dict[str, int]:
    """Size and modification time: a blob that changed no longer matches its record."""
    st = blob.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _is_verified(blob: pathlib.Path, expected: str) -> bool:
    """Whether this exact blob (same size and mtime) already passed a check against `expected`."""
    entry = _read_verified().get(str(blob))
    return bool(entry) and entry.get("sha256") == expected and all(
        entry.get(key) == value for key, value in _stat_key(blob).items()
    )


def _remember_verified(blob: pathlib.Path, sha256: str) -> None:
    """Record that this blob has the given sha256."""
    files = _read_verified()
    files[str(blob)] = {"sha256": sha256, **_stat_key(blob)}
    _write_verified(files)


def _forget_verified(blob: pathlib.Path) -> None:
    """Drop a blob from the record."""
    files = _read_verified()
    if files.pop(str(blob), None) is not None:
        _write_verified(files)


def _prune_verified() -> None:
    """Drop records of blobs that were deleted."""
    files = _read_verified()
    if any(not os.path.exists(path) for path in files):
        _write_verified(files)


def _sha256_file(path: pathlib.Path, bar_class: type[_RichTqdm] = _RichTqdm, label: str = "") -> str:
    """The sha256 hex digest of a file, read in chunks (with a progress bar when one is drawn)."""
    digest = hashlib.sha256()
    desc = f"sha256 {label or path.name}"
    with open(path, "rb") as f, bar_class(desc=desc, total=path.stat().st_size, unit="B") as bar:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def _normalize_sha256(sha256: str, what: str) -> str:
    """Lower-case hex; a malformed value is a config error."""
    value = sha256.strip().lower()
    if not _SHA256_RE.match(value):
        raise WeightsError(
            f"invalid sha256 {sha256!r} for {what}: expected 64 hex digits; fix the config's `sha256:`"
        )
    return value


def _discard(path: pathlib.Path, blob: pathlib.Path) -> None:
    """Delete a bad download (snapshot entry and blob) so it is fetched again next time."""
    _forget_verified(blob)
    for item in (path, blob):
        with contextlib.suppress(FileNotFoundError):
            item.unlink()


def _check_sha256(path: pathlib.Path, expected: str, bar_class: type[_RichTqdm], label: str) -> str | None:
    """None if the file has the expected sha256 (hashing it only once per blob), else its actual sha256."""
    blob = path.resolve()
    if _is_verified(blob, expected):
        return None
    actual = _sha256_file(blob, bar_class, label=label)
    if actual != expected:
        _forget_verified(blob)
        return actual
    _remember_verified(blob, actual)
    return None


def _verify_download(path: pathlib.Path, expected: str, target: _Target, bar_class: type[_RichTqdm]) -> None:
    """Check a cached download against the expected sha256; delete it on mismatch."""
    actual = _check_sha256(path, expected, bar_class, target.filename or "")
    if actual is not None:
        _discard(path, path.resolve())
        raise WeightsError(
            f"sha256 mismatch for {target.describe()}: expected {expected}, got {actual}; the download is"
            " corrupted or the config pins the wrong hash — the bad copy was deleted, retry or fix the"
            " config's `sha256:`"
        )


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def _is_commit(revision: str) -> bool:
    """Whether a revision is a full 40-hex commit hash."""
    return bool(_COMMIT_RE.match(revision))


def _check_reachable(repo: str, filename: str, revision: str, token: str | bool | None) -> None:
    """One HEAD request without retries, so a dead network fails in seconds.

    hf_hub_download retries a failed connection with exponential backoff (about 25 s) before it
    gives up; this probe runs only when the file is not cached, where there is nothing to fall back to.
    """
    kwargs = _hub_kwargs(token)
    url = hf_hub_url(repo, filename, revision=revision, endpoint=kwargs["endpoint"])
    get_hf_file_metadata(
        url,
        token=token,
        timeout=kwargs["etag_timeout"],
        library_name=kwargs["library_name"],
        library_version=kwargs["library_version"],
        endpoint=kwargs["endpoint"],
        retry_on_errors=False,
    )


def resolve_file(repo: str, filename: str, revision: str | None = None, sha256: str | None = None, *,
                 offline: bool | None = None, token: str | bool | None = None, progress: bool = True,
                 console: Console | None = None) -> pathlib.Path:
    """The local path of `filename` from Hub repo `repo` at `revision`, downloading it if needed.

    The file lands in the standard Hugging Face cache. `revision=None` means "main"; configs pin
    40-hex commit hashes, which are served from the cache without any request once downloaded.
    `sha256`: checked after download (once per cached blob; a mismatch deletes the copy).
    `offline=None` reads `HF_HUB_OFFLINE` now; offline, only cached files are returned.
    `token`: None uses `HF_TOKEN` or the stored login. `progress`: draw a rich progress bar on a
    terminal (`console` to choose where). Raises WeightsError on any problem the user can fix.
    """
    revision = revision or DEFAULT_REVISION
    offline = offline_from_env() if offline is None else offline
    target = _Target(repo, revision, filename, hub_endpoint(), offline)
    expected = _normalize_sha256(sha256, target.describe()) if sha256 else None
    with _progress_bars(progress, console) as bar_class:
        with _hub_errors(target):
            if not offline and not is_cached(repo, filename, revision):
                _check_reachable(repo, filename, revision, token)
            path = pathlib.Path(
                hf_hub_download(repo, filename, revision=revision, local_files_only=offline,
                                tqdm_class=bar_class, **_hub_kwargs(token))
            )
        if expected:
            _verify_download(path, expected, target, bar_class)
    return path


def _folder_patterns(subfolder: str | None, allow_patterns: list[str] | None) -> list[str] | None:
    """allow_patterns relative to the repo root: with a subfolder they are taken relative to it."""
    if not subfolder:
        return allow_patterns
    subfolder = subfolder.strip("/")
    if allow_patterns is None:
        return [f"{subfolder}/*"]
    return [f"{subfolder}/{pattern.lstrip('/')}" for pattern in allow_patterns]


def _tree_is_cached(repo: str, revision: str) -> bool:
    """Whether snapshot_download already cached the file listing of this revision."""
    try:
        huggingface_hub.get_cached_repo_tree(repo, revision=revision, cache_dir=str(hub_cache_dir()))
        return True
    except Exception:
        return False


def _check_repo_reachable(repo: str, revision: str, token: str | bool | None) -> None:
    """One API request without retries (snapshot_download's file listing retries for ~25 s)."""
    kwargs = _hub_kwargs(token)
    api = HfApi(endpoint=kwargs["endpoint"], token=token, library_name=kwargs["library_name"],
                library_version=kwargs["library_version"])
    api.repo_info(repo, revision=revision, timeout=kwargs["etag_timeout"])


def resolve_folder(repo: str, revision: str | None = None, *, subfolder: str | None = None,
                   allow_patterns: list[str] | None = None, offline: bool | None = None,
                   token: str | bool | None = None, progress: bool = True,
                   console: Console | None = None) -> pathlib.Path:
    """The local folder of a Hub repo snapshot (only the files matching `allow_patterns`).

    With `subfolder`, returns that folder inside the snapshot, fetches only `subfolder/*` when
    `allow_patterns` is None, and reads `allow_patterns` relative to the subfolder otherwise.
    Other arguments as in `resolve_file`. Raises WeightsError on any problem the user can fix.
    """
    revision = revision or DEFAULT_REVISION
    offline = offline_from_env() if offline is None else offline
    target = _Target(repo, revision, None, hub_endpoint(), offline)
    patterns = _folder_patterns(subfolder, allow_patterns)
    with _progress_bars(progress, console) as bar_class, _hub_errors(target):
        if not offline and _is_commit(revision) and not _tree_is_cached(repo, revision):
            _check_repo_reachable(repo, revision, token)
        folder = pathlib.Path(
            snapshot_download(repo, revision=revision, allow_patterns=patterns, local_files_only=offline,
                              tqdm_class=bar_class, **_hub_kwargs(token))
        )
    if subfolder:
        folder = folder / subfolder.strip("/")
    if not folder.is_dir():
        what = f"{subfolder}/" if subfolder else f"files matching {patterns}"
        raise WeightsError(
            f"no {what} in {target.describe()}; check the config's `subfolder:` / file patterns"
        )
    return folder


def resolve_local(path: str, base_dir: pathlib.Path) -> pathlib.Path:
    """A config's `path:` entry: relative to the YAML's folder; absolute paths and ~ allowed."""
    candidate = pathlib.Path(os.path.expandvars(os.path.expanduser(str(path))))
    if not candidate.is_absolute():
        candidate = pathlib.Path(base_dir) / candidate
    if not candidate.exists():
        raise WeightsError(
            f"local weights {path!r} not found (looked at {candidate}); fix the config's `path:`"
            " (relative paths are relative to the config file's folder)"
        )
    return candidate.resolve()


def verify_sha256(path: str | pathlib.Path, sha256: str, *, progress: bool = True,
                  console: Console | None = None) -> None:
    """Check a local weights file against the config's sha256 (hashed once per file version).

    Unlike a Hub download, a mismatching local file is left alone. Raises WeightsError on mismatch.
    """
    path = pathlib.Path(path)
    expected = _normalize_sha256(sha256, str(path))
    with _progress_bars(progress, console) as bar_class:
        actual = _check_sha256(path, expected, bar_class, path.name)
    if actual is not None:
        raise WeightsError(
            f"sha256 mismatch for {path}: expected {expected}, got {actual}; the file is corrupted or the"
            " config pins the wrong hash — replace the file or fix the config's `sha256:`"
        )


def is_cached(repo: str, filename: str, revision: str | None = None) -> bool:
    """Whether the file of that revision is in the local cache (no network; never raises)."""
    try:
        found = huggingface_hub.try_to_load_from_cache(
            repo, filename, cache_dir=str(hub_cache_dir()), revision=revision or DEFAULT_REVISION
        )
        return isinstance(found, str) and os.path.isfile(found)
    except Exception:
        return False


@dataclasses.dataclass(frozen=True)
class CachedRepo:
    """A model repository in the local Hub cache, for `ssgen models list`."""

    repo: str
    revisions: tuple[str, ...]  # cached commit hashes
    refs: tuple[str, ...]  # branches/tags known to point at a cached commit (e.g. "main")
    size_on_disk: int  # bytes
    path: pathlib.Path


def _scan_cache() -> Any | None:
    """huggingface_hub's cache scan, or None when there is no cache folder yet."""
    cache = hub_cache_dir()
    if not cache.is_dir():
        return None
    try:
        return huggingface_hub.scan_cache_dir(str(cache))
    except hf_errors.CacheNotFound:
        return None


def cached_repos() -> list[CachedRepo]:
    """The model repositories in the local cache, sorted by id; empty when there is no cache."""
    info = _scan_cache()
    if info is None:
        return []
    repos = []
    for repo in info.repos:
        if repo.repo_type != "model":
            continue
        revisions = sorted(repo.revisions, key=lambda rev: rev.commit_hash)
        repos.append(CachedRepo(
            repo=repo.repo_id,
            revisions=tuple(rev.commit_hash for rev in revisions),
            refs=tuple(sorted(ref for rev in revisions for ref in rev.refs)),
            size_on_disk=repo.size_on_disk,
            path=pathlib.Path(repo.repo_path),
        ))
    return sorted(repos, key=lambda r: r.repo)


def remove_cached(repo: str, revision: str | None = None) -> int:
    """Delete the cached revisions of a repo (all when revision is None); returns the bytes freed.

    `revision` is a commit hash or a ref name such as "main". Returns 0 when nothing matched.
    """
    info = _scan_cache()
    if info is None:
        return 0
    for cached in info.repos:
        if cached.repo_id != repo or cached.repo_type != "model":
            continue
        hashes = [rev.commit_hash for rev in cached.revisions
                  if revision is None or rev.commit_hash == revision or revision in rev.refs]
        if not hashes:
            return 0
        # delete_revisions matches commit hashes in every repo: scope it to this one.
        strategy = dataclasses.replace(info, repos=frozenset({cached})).delete_revisions(*hashes)
        freed = strategy.expected_freed_size
        strategy.execute()
        _prune_verified()
        return freed
    return 0


def _repo_cache_folder(repo: str) -> pathlib.Path:
    """The cache folder of a model repo: models--{namespace}--{name}."""
    return hub_cache_dir() / ("models--" + repo.replace("/", "--"))


def _cached_commit(repo_folder: pathlib.Path, revision: str) -> str | None:
    """The cached commit a revision (commit hash or ref name) points to."""
    if _is_commit(revision):
        return revision
    ref = repo_folder / "refs" / revision
    return ref.read_text().strip() if ref.is_file() else None


def _blob_in_use(repo_folder: pathlib.Path, blob: pathlib.Path) -> bool:
    """Whether any snapshot still links to this blob."""
    for entry in (repo_folder / "snapshots").rglob("*"):
        if entry.is_symlink() and entry.resolve() == blob:
            return True
    return False


def _prune_snapshot(repo_folder: pathlib.Path, snapshot: pathlib.Path, commit: str) -> int:
    """Remove empty folders of a snapshot; an empty snapshot loses its refs, an empty repo its folder.

    Returns the bytes of leftover blobs deleted with the repo folder.
    """
    for folder in sorted((p for p in snapshot.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        with contextlib.suppress(OSError):
            folder.rmdir()
    with contextlib.suppress(OSError):
        snapshot.rmdir()
    if snapshot.exists():
        return 0
    refs = repo_folder / "refs"
    for ref in (p for p in refs.rglob("*") if p.is_file()) if refs.is_dir() else ():
        if ref.read_text().strip() == commit:
            ref.unlink()
    snapshots = repo_folder / "snapshots"
    if snapshots.is_dir() and any(snapshots.iterdir()):
        return 0
    leftover = sum(p.stat().st_size for p in (repo_folder / "blobs").glob("*") if p.is_file())
    shutil.rmtree(repo_folder, ignore_errors=True)
    return leftover


def remove_cached_file(repo: str, filename: str, revision: str | None = None) -> int:
    """Delete one cached file of a revision (and its blob unless another revision uses it).

    Returns the bytes freed, 0 when the file was not cached. A snapshot left empty is removed with
    its refs, and a repo left without snapshots with its folder.
    """
    repo_folder = _repo_cache_folder(repo)
    commit = _cached_commit(repo_folder, revision or DEFAULT_REVISION)
    if commit is None:
        return 0
    snapshot = repo_folder / "snapshots" / commit
    pointer = snapshot / filename
    if not (pointer.is_symlink() or pointer.is_file()):
        return 0
    freed = 0
    if pointer.is_symlink():
        blob = pointer.resolve()
        pointer.unlink()
        if blob.is_file() and not _blob_in_use(repo_folder, blob):
            freed = blob.stat().st_size
            _forget_verified(blob)
            blob.unlink()
    else:  # a copy (no symlink support)
        freed = pointer.stat().st_size
        _forget_verified(pointer.resolve())
        pointer.unlink()
    return freed + _prune_snapshot(repo_folder, snapshot, commit)
