"""The local Hub cache, behind `ssgen models`: is a file cached, which repos are, remove them.

No function here touches the network. The cache layout is huggingface_hub's:
`models--{org}--{name}/{blobs,refs,snapshots/{commit}/...}`, where snapshot entries link to blobs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import os
import shutil
from pathlib import Path
from typing import Any

import huggingface_hub
from huggingface_hub import errors as hf_errors

from ..errors import WeightsError
from ..textfile import read_text
from .env import DEFAULT_REVISION, hub_cache_dir, is_commit
from .verify import forget_verified, prune_verified


def cached_file(repo: str, filename: str, revision: str | None = None) -> Path | None:
    """The cached copy of a file at that revision (a commit or a ref seen before), None if there is none.

    A disk lookup only. Raises huggingface_hub's HFValidationError for a malformed repo id or file name.
    """
    found = huggingface_hub.try_to_load_from_cache(
        repo, filename, cache_dir=str(hub_cache_dir()), revision=revision or DEFAULT_REVISION
    )
    return Path(found) if isinstance(found, str) and os.path.isfile(found) else None


def is_cached(repo: str, filename: str, revision: str | None = None) -> bool:
    """Whether the file of that revision is in the local cache (no network; never raises)."""
    try:
        return cached_file(repo, filename, revision) is not None
    except Exception:
        return False


@dataclasses.dataclass(frozen=True)
class CachedRepo:
    """A model repository in the local Hub cache, for `ssgen models list`."""

    repo: str
    revisions: tuple[str, ...]  # cached commit hashes
    refs: tuple[str, ...]  # branches/tags known to point at a cached commit (e.g. "main")
    size_on_disk: int  # bytes
    path: Path


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
            path=Path(repo.repo_path),
        ))
    return sorted(repos, key=lambda r: r.repo)


def _removal(repo: str, revision: str | None) -> Any | None:
    """huggingface_hub's plan to delete the cached revisions of a repo (all when revision is None), None if none."""
    info = _scan_cache()
    if info is None:
        return None
    for cached in info.repos:
        if cached.repo_id != repo or cached.repo_type != "model":
            continue
        hashes = [rev.commit_hash for rev in cached.revisions
                  if revision is None or rev.commit_hash == revision or revision in rev.refs]
        if not hashes:
            return None
        # delete_revisions matches commit hashes in every repo: scope it to this one.
        return dataclasses.replace(info, repos=frozenset({cached})).delete_revisions(*hashes)
    return None


def remove_cached(repo: str, revision: str | None = None) -> int:
    """Delete the cached revisions of a repo (all when revision is None); returns the bytes freed.

    `revision` is a commit hash or a ref name such as "main". Returns 0 when nothing matched.
    """
    strategy = _removal(repo, revision)
    if strategy is None:
        return 0
    freed = strategy.expected_freed_size
    strategy.execute()
    prune_verified()
    return freed


def cached_size(repo: str, filename: str | None = None, revision: str | None = None) -> int:
    """The bytes `remove_cached_file` (with a filename) or `remove_cached` (without) would free; 0 when nothing
    is cached. No network; never raises for a malformed repo id (nothing of it can be cached)."""
    if filename is None:
        strategy = _removal(repo, revision)
        return strategy.expected_freed_size if strategy is not None else 0
    try:
        path = cached_file(repo, filename, revision)
    except Exception:  # huggingface_hub's HFValidationError: a malformed repo id or file name
        return 0
    return path.stat().st_size if path is not None else 0


def _repo_cache_folder(repo: str) -> Path:
    """The cache folder of a model repo: models--{namespace}--{name}."""
    return hub_cache_dir() / ("models--" + repo.replace("/", "--"))


def _cached_commit(repo_folder: Path, revision: str) -> str | None:
    """The cached commit a revision (commit hash or ref name) points to."""
    if is_commit(revision):
        return revision
    ref = repo_folder / "refs" / revision
    return _read_ref(ref) if ref.is_file() else None


def _read_ref(ref: Path) -> str:
    """The commit a ref file of the cache names (refs/main holds one 40-hex line)."""
    return read_text(ref, "Hub cache ref", f"delete {ref} (the next download writes it again)", WeightsError).strip()


@dataclasses.dataclass(frozen=True)
class CachedEntry:
    """One cached file of a Hub snapshot: what `ssgen models remove` weighs, keeps or deletes."""

    repo: str
    commit: str
    name: str  # its path in the repo, e.g. "vae_ch160v4096z32.pth" or "text_encoder/config.json"
    path: Path  # the snapshot entry (a link to a blob, or a copy where links are not supported)


def cached_entries(repo: str, revision: str | None, names: list[str] | None = None,
                   patterns: list[str] | None = None) -> list[CachedEntry]:
    """The cached files of a repo at the snapshot `revision` (a commit, or a ref such as "main"; None = "main")
    points to: the given `names`, else those matching `patterns` (huggingface_hub's allow_patterns; None = all).
    No network; empty when nothing of it is cached."""
    snapshots = _repo_cache_folder(repo) / "snapshots"
    commit = _cached_commit(snapshots.parent, revision or DEFAULT_REVISION)
    snapshot = snapshots / commit if commit else None
    if snapshot is None or not snapshot.is_dir():
        return []
    if names is not None:
        found = [snapshot / name for name in names]
    else:  # a pattern ending in "/" means the folder's files, as for snapshot_download
        globs = [p + "*" if p.endswith("/") else p for p in patterns] if patterns is not None else ["*"]
        found = [p for p in sorted(snapshot.rglob("*"))
                 if any(fnmatch.fnmatch(p.relative_to(snapshot).as_posix(), g) for g in globs)]
    return [CachedEntry(repo, commit, p.relative_to(snapshot).as_posix(), p) for p in found
            if p.is_symlink() or p.is_file()]


def removal_size(entries: list[CachedEntry]) -> int:
    """The bytes removing these entries frees: the blobs that no other snapshot entry links to, each counted once."""
    gone = {e.path for e in entries}
    blobs = {e.path.resolve() for e in entries}
    for folder in {_repo_cache_folder(e.repo) for e in entries}:
        for entry in (folder / "snapshots").rglob("*"):
            if entry.is_symlink() and entry not in gone:
                blobs.discard(entry.resolve())  # still linked: stays
    return sum(b.stat().st_size for b in blobs if b.is_file())


def remove_entries(entries: list[CachedEntry]) -> int:
    """Delete cached files (and their blobs unless another snapshot links to them); returns the bytes freed."""
    return sum(remove_cached_file(e.repo, e.name, e.commit) for e in entries)


def _blob_in_use(repo_folder: Path, blob: Path) -> bool:
    """Whether any snapshot still links to this blob."""
    for entry in (repo_folder / "snapshots").rglob("*"):
        if entry.is_symlink() and entry.resolve() == blob:
            return True
    return False


def _prune_snapshot(repo_folder: Path, snapshot: Path, commit: str) -> int:
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
        if _read_ref(ref) == commit:
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
            forget_verified(blob)
            blob.unlink()
    else:  # a copy (no symlink support)
        freed = pointer.stat().st_size
        forget_verified(pointer.resolve())
        pointer.unlink()
    return freed + _prune_snapshot(repo_folder, snapshot, commit)
