"""sha256 checks of weight files, remembered per file so multi-GB blobs are hashed once.

The record (`$HF_ASSETS_CACHE/ssgen/sha256-verified.json`, i.e. `$HF_HOME/assets/...`) maps a file's
resolved path to the sha256 it passed with, its size and mtime: a file changed since no longer
matches its entry and is hashed again. Writing the record is best effort (a read-only cache only
costs a re-hash next time).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from rich.console import Console

from ..atomic import write_atomic
from ..errors import SSGenError, WeightsError, first_line
from ..textfile import read_text
from .env import assets_cache_dir
from .progress import RichTqdm, progress_bars

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_HASH_CHUNK = 8 * 1024 * 1024


def _record_path() -> Path:
    """The JSON file remembering which files passed their sha256 check."""
    return assets_cache_dir() / "ssgen" / "sha256-verified.json"


def _read_record() -> dict[str, dict[str, Any]]:
    """Verified files: path -> {sha256, size, mtime_ns}; empty when missing or unreadable."""
    try:
        files = json.loads(read_text(_record_path(), "sha256 record", "")).get("files", {})
        return files if isinstance(files, dict) else {}
    except (SSGenError, ValueError, AttributeError):
        return {}


def _write_record(files: dict[str, dict[str, Any]]) -> None:
    """Atomically rewrite the record, dropping files that no longer exist. Best effort."""
    record = _record_path()
    files = {path: entry for path, entry in files.items() if os.path.exists(path)}
    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(record, json.dumps({"version": 1, "files": files}, indent=1, sort_keys=True).encode())
    except (OSError, SSGenError):
        pass


def _stat_key(blob: Path) -> dict[str, int]:
    """Size and modification time: a file that changed no longer matches its record."""
    st = blob.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _is_verified(blob: Path, expected: str) -> bool:
    """Whether this exact file (same size and mtime) already passed a check against `expected`."""
    entry = _read_record().get(str(blob))
    return bool(entry) and entry.get("sha256") == expected and all(
        entry.get(key) == value for key, value in _stat_key(blob).items()
    )


def _remember_verified(blob: Path, sha256: str) -> None:
    """Record that this file has the given sha256."""
    files = _read_record()
    files[str(blob)] = {"sha256": sha256, **_stat_key(blob)}
    _write_record(files)


def forget_verified(blob: Path) -> None:
    """Drop a file from the record (it is about to be deleted or failed its check)."""
    files = _read_record()
    if files.pop(str(blob), None) is not None:
        _write_record(files)


def prune_verified() -> None:
    """Drop the records of files that were deleted."""
    files = _read_record()
    if any(not os.path.exists(path) for path in files):
        _write_record(files)


def sha256_file(path: Path, bar_class: type[RichTqdm] = RichTqdm, label: str = "") -> str:
    """The sha256 hex digest of a file, read in chunks (with a progress bar when `bar_class` draws one)."""
    digest = hashlib.sha256()
    desc = f"sha256 {label or path.name}"
    with open(path, "rb") as f, bar_class(desc=desc, total=path.stat().st_size, unit="B") as bar:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def normalize_sha256(sha256: str, what: str) -> str:
    """Lower-case hex; a malformed value is a config error."""
    value = sha256.strip().lower()
    if not _SHA256_RE.match(value):
        raise WeightsError(
            f"invalid sha256 {sha256!r} for {what}: expected 64 hex digits; fix the config's `sha256:`"
        )
    return value


def check_sha256(path: Path, expected: str, bar_class: type[RichTqdm], label: str) -> str | None:
    """None if the file has the expected sha256 (hashing it only once per version), else its actual sha256."""
    blob = path.resolve()
    if _is_verified(blob, expected):
        return None
    actual = sha256_file(blob, bar_class, label=label)
    if actual != expected:
        forget_verified(blob)
        return actual
    _remember_verified(blob, actual)
    return None


def verify_sha256(path: str | Path, sha256: str, *, progress: bool = True, console: Console | None = None) -> None:
    """Check a local weights file against the config's sha256 (hashed once per file version).

    Unlike a Hub download, a mismatching local file is left alone. Raises WeightsError on mismatch.
    """
    path = Path(path)
    expected = normalize_sha256(sha256, str(path))
    if path.is_dir():
        raise WeightsError(f"a sha256 is pinned for {path}, which is a folder: a sha256 checks one file; remove the"
                           " config's `sha256:` or point `path:` at the file")
    try:
        with progress_bars(progress, console) as bar_class:
            actual = check_sha256(path, expected, bar_class, path.name)
    except OSError as e:
        fix = "check the file's permissions" if isinstance(e, PermissionError) else "check the file"
        raise WeightsError(f"cannot read {path} to check its sha256: {first_line(e)}; {fix}") from None
    if actual is not None:
        raise WeightsError(
            f"sha256 mismatch for {path}: expected {expected}, got {actual}; the file is corrupted or the"
            " config pins the wrong hash — replace the file or fix the config's `sha256:`"
        )
