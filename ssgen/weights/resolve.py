"""Resolving weights to local paths: a Hub file, a Hub folder (snapshot) or a config's local `path:`.

Hub weights land in the standard Hugging Face cache (`HF_HOME` / `HF_HUB_CACHE`), so ssgen shares
downloads with other tools. Configs pin 40-hex commits: a cached pinned file is served with no
request at all. Offline has one switch, the `offline` argument (None reads `HF_HUB_OFFLINE` at call
time): offline, huggingface_hub is asked for cached files only (`local_files_only=True`) and sends
no request; nothing here changes huggingface_hub's or the process's global state.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import huggingface_hub
from huggingface_hub import HfApi, get_hf_file_metadata, hf_hub_download, hf_hub_url, snapshot_download
from rich.console import Console

from ..errors import ConfigError, SSGenError, WeightsError
from .cache import CachedEntry, cached_entries, cached_file, is_cached
from .env import DEFAULT_REVISION, hub_cache_dir, hub_endpoint, hub_kwargs, is_commit, is_offline
from .errors import Target, hub_errors, offline_error
from .progress import progress_bars
from .seen import remember_config
from .verify import check_sha256, normalize_sha256, verify_sha256

if TYPE_CHECKING:
    from ..config import ModelConfig, WeightSpec


def _check_file_reachable(repo: str, filename: str, revision: str, token: str | bool | None) -> None:
    """One HEAD request without retries, so a dead network fails in seconds.

    hf_hub_download retries a failed connection with exponential backoff (about 25 s) before it
    gives up; this probe runs only when the file is not cached, where there is nothing to fall back to.
    """
    kwargs = hub_kwargs(token)
    url = hf_hub_url(repo, filename, revision=revision, endpoint=kwargs["endpoint"])
    get_hf_file_metadata(url, token=token, timeout=kwargs["etag_timeout"], library_name=kwargs["library_name"],
                         library_version=kwargs["library_version"], endpoint=kwargs["endpoint"],
                         retry_on_errors=False)


def _check_repo_reachable(repo: str, revision: str, token: str | bool | None) -> None:
    """One API request without retries (snapshot_download's file listing retries for ~25 s)."""
    kwargs = hub_kwargs(token)
    api = HfApi(endpoint=kwargs["endpoint"], token=token, library_name=kwargs["library_name"],
                library_version=kwargs["library_version"])
    api.repo_info(repo, revision=revision, timeout=kwargs["etag_timeout"])


def _tree_is_cached(repo: str, revision: str) -> bool:
    """Whether snapshot_download already cached the file listing of this revision."""
    try:
        huggingface_hub.get_cached_repo_tree(repo, revision=revision, cache_dir=str(hub_cache_dir()))
        return True
    except Exception:
        return False


def resolve_file(repo: str, filename: str, revision: str | None = None, sha256: str | None = None, *,
                 offline: bool | None = None, token: str | bool | None = None, progress: bool = True,
                 console: Console | None = None) -> Path:
    """The local path of `filename` from Hub repo `repo` at `revision`, downloading it if needed.

    `revision=None` means "main". A cached file of a pinned commit, and any cached file offline, is a
    disk lookup that sends no request (hf_hub_download would still build its request headers, and
    huggingface_hub 2.x fetches its agent list from the Hub while doing so). `offline=None` reads
    `HF_HUB_OFFLINE` now; offline, only cached files are returned. `sha256`: checked after download
    (once per cached blob; a mismatch deletes the copy, so a bad download is never accepted on a later
    call). `token`: None uses `HF_TOKEN` or the stored login. `progress`: draw rich bars (download,
    sha256) on a terminal (`console` to choose where); False draws none. Raises WeightsError on any
    problem the user can fix.
    """
    revision = revision or DEFAULT_REVISION
    offline = is_offline(offline)
    target = Target(repo, revision, filename, hub_endpoint(), offline)
    expected = normalize_sha256(sha256, target.describe()) if sha256 else None
    with progress_bars(progress, console) as bar_class:
        with hub_errors(target):
            path = cached_file(repo, filename, revision) if offline or is_commit(revision) else None
            if path is None and offline:
                raise offline_error(target)
            if path is None:
                if not is_cached(repo, filename, revision):  # nothing to fall back to: fail fast
                    _check_file_reachable(repo, filename, revision, token)
                path = Path(hf_hub_download(repo, filename, revision=revision, tqdm_class=bar_class,
                                            **hub_kwargs(token)))
        if expected:
            actual = check_sha256(path, expected, bar_class, filename)
            if actual is not None:
                blob = path.resolve()
                for item in (path, blob):  # fetched again next time
                    item.unlink(missing_ok=True)
                raise WeightsError(
                    f"sha256 mismatch for {target.describe()}: expected {expected}, got {actual}; the download is"
                    " corrupted or the config pins the wrong hash — the bad copy was deleted, retry or fix the"
                    " config's `sha256:`"
                )
    return path


def _folder_patterns(subfolder: str | None, allow_patterns: list[str] | None) -> list[str] | None:
    """allow_patterns relative to the repo root: with a subfolder they are taken relative to it."""
    if not subfolder:
        return allow_patterns
    subfolder = subfolder.strip("/")
    if allow_patterns is None:
        return [f"{subfolder}/*"]
    return [f"{subfolder}/{pattern.lstrip('/')}" for pattern in allow_patterns]


def resolve_folder(repo: str, revision: str | None = None, *, subfolder: str | None = None,
                   allow_patterns: list[str] | None = None, offline: bool | None = None,
                   token: str | bool | None = None, progress: bool = True,
                   console: Console | None = None) -> Path:
    """The local folder of a Hub repo snapshot (only the files matching `allow_patterns`).

    With `subfolder`, returns that folder inside the snapshot, fetches only `subfolder/*` when
    `allow_patterns` is None, and reads `allow_patterns` relative to the subfolder otherwise.
    Other arguments as in `resolve_file`. Raises WeightsError on any problem the user can fix.
    """
    revision = revision or DEFAULT_REVISION
    offline = is_offline(offline)
    target = Target(repo, revision, None, hub_endpoint(), offline)
    patterns = _folder_patterns(subfolder, allow_patterns)
    with progress_bars(progress, console) as bar_class, hub_errors(target):
        if not offline and is_commit(revision) and not _tree_is_cached(repo, revision):
            _check_repo_reachable(repo, revision, token)
        folder = Path(snapshot_download(repo, revision=revision, allow_patterns=patterns, local_files_only=offline,
                                        tqdm_class=bar_class, **hub_kwargs(token)))
    if subfolder:
        folder = folder / subfolder.strip("/")
    if not folder.is_dir():
        what = f"{subfolder}/" if subfolder else f"files matching {patterns}"
        raise WeightsError(f"no {what} in {target.describe()}; check the config's `subfolder:` / file patterns")
    return folder


def resolve_local(path: str, base_dir: Path) -> Path:
    """A config's `path:` entry: relative to the YAML's folder; absolute paths and ~ allowed."""
    candidate = Path(os.path.expandvars(os.path.expanduser(str(path))))
    if not candidate.is_absolute():
        candidate = Path(base_dir) / candidate
    if not candidate.exists():
        raise WeightsError(
            f"local weights {path!r} not found (looked at {candidate}); fix the config's `path:`"
            " (relative paths are relative to the config file's folder)"
        )
    return candidate.resolve()


def resolve_weight(config: ModelConfig, role: str, *, offline: bool | None = None, progress: bool = True) -> Path:
    """The local path of one weights role of a config: a Hub file or folder (pinned, downloaded if needed,
    sha256-verified where the config pins one) or a local path. Arguments as in `resolve_file`."""
    spec = config.weights.get(role)
    if spec is None:
        raise ConfigError(f"config {config.name} has no weights.{role} entry; add one (repo/file or path)")
    if spec.path is not None:
        path = resolve_local(spec.path, config.base_dir)
        if spec.sha256:
            verify_sha256(path, spec.sha256, progress=progress)
        return path
    if spec.file is not None:
        path = resolve_file(spec.repo, spec.file, spec.revision, spec.sha256, offline=offline, progress=progress)
    elif spec.sha256:  # checked before anything downloads
        raise ConfigError(f"config {config.name}: weights.{role} is a Hub folder ({spec.repo}) with a sha256, but a "
                          "sha256 checks one file; remove it (or use `file:` for a single file)")
    else:
        path = resolve_folder(spec.repo, spec.revision, subfolder=spec.folder or None, allow_patterns=spec.allow,
                              offline=offline, progress=progress)
    if config.source is not None and not _is_registered(config.source):
        remember_config(config.source)  # so that `ssgen models remove` of another model keeps these files
    return path


def _is_registered(source: Path) -> bool:
    """Whether a YAML file is one of the released models' configs (those `ssgen models remove` always knows)."""
    from ..config import config_dir

    return Path(source).resolve().parent == config_dir().resolve()


def cached_weight_files(spec: WeightSpec) -> list[CachedEntry]:
    """The cached files of one weights entry: its Hub file, or the files of its Hub folder (its subfolder and
    `allow` patterns) in the snapshot its revision points to; none for a local `path:`. No network."""
    if spec.path is not None or not spec.repo:
        return []
    if spec.file is not None:
        return cached_entries(spec.repo, spec.revision, names=[spec.file])
    return cached_entries(spec.repo, spec.revision, patterns=_folder_patterns(spec.folder or None, spec.allow))


def is_local(config: ModelConfig, role: str) -> bool:
    """Whether a weights role is on disk already (a cached Hub file or folder, or a local path).

    Never touches the network; a pinned sha256 is checked (once per file), so a corrupted copy is not local.
    """
    try:
        resolve_weight(config, role, offline=True, progress=False)
        return True
    except SSGenError:
        return False
