"""huggingface_hub failures -> one-line `WeightsError`s that say what to fix.

`hub_errors(target)` wraps every huggingface_hub call: errors a user can fix (offline without a
cached copy, unreachable Hub, unknown repo/revision/file, gated repo, full disk, ...) become
`WeightsError`s; anything else keeps its traceback (a bug).
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from dataclasses import dataclass

from huggingface_hub import errors as hf_errors

from ..errors import WeightsError, first_line
from .env import hub_cache_dir, is_commit

LICENCE_URL = "https://huggingface.co/{repo}"
LOGIN_HINT = "set HF_TOKEN (or run `hf auth login`)"
OFFLINE_HINT = "use --offline with cached weights"


def _short(revision: str) -> str:
    """A commit hash shortened to 7 characters; branch names unchanged."""
    return revision[:7] if is_commit(revision) else revision


@dataclass(frozen=True)
class Target:
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


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The causes/contexts of an exception, innermost last (the exception itself excluded)."""
    seen = {id(exc)}
    current = exc.__cause__ or exc.__context__
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


class NotCachedError(WeightsError):
    """Weights that are not in the local cache, asked for offline (`ssgen models path` words its own hint)."""


def offline_error(target: Target) -> WeightsError:
    """Weights not in the cache while offline."""
    return NotCachedError(
        f"weights for {target.describe()} are not in the local cache and offline mode is on"
        " (--offline / HF_HUB_OFFLINE=1); run once online or `ssgen models download <model>`"
    )


def _unreachable_error(target: Target, exc: BaseException) -> WeightsError:
    """The Hub could not be reached at all."""
    return WeightsError(
        f"cannot reach the Hub at {target.endpoint}: {first_line(exc)}; check the network,"
        f" set HF_ENDPOINT, or {OFFLINE_HINT}"
    )


def _gated_error(target: Target, status: int | None) -> WeightsError:
    """A gated repository and no token, or a token without access."""
    url = LICENCE_URL.format(repo=target.repo)
    if status == 403:
        return WeightsError(
            f"{target.repo} is gated and your token has no access: accept its licence at {url}"
            f" with the same account, or {LOGIN_HINT} for an account that has"
        )
    return WeightsError(f"{target.repo} is gated: accept its licence at {url} and {LOGIN_HINT}")


def _http_error(exc: hf_errors.HfHubHTTPError, target: Target) -> WeightsError:
    """Map a huggingface_hub HTTP error to a WeightsError."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
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
        f"the Hub at {target.endpoint} answered {code} for {target.describe()}: {first_line(exc)};"
        f" retry later, or {OFFLINE_HINT}"
    )


def _not_a_hub_error(target: Target) -> WeightsError:
    """The endpoint answered, but not like a Hugging Face Hub."""
    return WeightsError(
        f"{target.endpoint} did not answer like a Hugging Face Hub (no X-Repo-Commit / ETag headers);"
        " check HF_ENDPOINT and the proxy settings"
    )


def _weights_error(exc: BaseException, target: Target) -> WeightsError | None:
    """The WeightsError for a failure of a huggingface_hub call, or None if it is not a user problem."""
    network = _network_error_types()
    if isinstance(exc, hf_errors.OfflineModeIsEnabled):
        return offline_error(target)
    if isinstance(exc, hf_errors.HfHubHTTPError):
        return _http_error(exc, target)
    if isinstance(exc, hf_errors.LocalEntryNotFoundError):
        # not cached, and the download failed (or was not tried): the first telling cause says why
        if target.offline:
            return offline_error(target)
        for cause in _causes(exc):
            if isinstance(cause, hf_errors.OfflineModeIsEnabled):
                return offline_error(target)
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
            f"invalid Hub reference {target.describe()}: {first_line(exc)}; check the config's `repo:`"
        )
    if isinstance(exc, network):
        return _unreachable_error(target, exc)
    if isinstance(exc, OSError):
        if "Consistency check failed" in str(exc):
            return WeightsError(f"the download of {target.describe()} was incomplete (network problem); retry")
        return WeightsError(
            f"cannot write {target.describe()} to the cache {hub_cache_dir()}: {first_line(exc)};"
            " free disk space or point HF_HOME / HF_HUB_CACHE to a writable folder"
        )
    return None


@contextlib.contextmanager
def hub_errors(target: Target) -> Iterator[None]:
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
