"""The Hub settings, read from the environment at call time.

huggingface_hub reads its environment variables once, at import; ssgen reads the ones that matter
(`HF_HOME`, `HF_HUB_CACHE`, `HF_ASSETS_CACHE`, `HF_ENDPOINT`, `HF_HUB_OFFLINE`, `HF_HUB_ETAG_TIMEOUT`,
`HF_HUB_DISABLE_PROGRESS_BARS`) at every call and passes them explicitly, so a variable set after
import (a test, a notebook) is honoured. `HF_TOKEN` is read at call time by huggingface_hub itself.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

DEFAULT_ENDPOINT = "https://huggingface.co"
DEFAULT_REVISION = "main"
_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
_TRUE = {"1", "true", "yes", "on"}


def _env_path(*names: str) -> str | None:
    """The first of these environment variables that is set, with ~ and $VARS expanded."""
    for name in names:
        value = os.environ.get(name)
        if value:
            return os.path.expandvars(os.path.expanduser(value))
    return None


def _env_true(*names: str) -> bool:
    """Whether the first of these variables that is set holds a true value (1, true, yes, on)."""
    value = next((os.environ[name] for name in names if os.environ.get(name)), "")
    return value.strip().lower() in _TRUE


def hf_home() -> Path:
    """`HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`."""
    home = _env_path("HF_HOME")
    if home is None:
        xdg = _env_path("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        home = os.path.join(xdg, "huggingface")
    return Path(home)


def hub_cache_dir() -> Path:
    """The Hub cache folder: `HF_HUB_CACHE`, else `$HF_HOME/hub`."""
    path = _env_path("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE")
    return Path(path) if path else hf_home() / "hub"


def assets_cache_dir() -> Path:
    """The folder for files derived by downstream libraries: `HF_ASSETS_CACHE`, else `$HF_HOME/assets`."""
    path = _env_path("HF_ASSETS_CACHE", "HUGGINGFACE_ASSETS_CACHE")
    return Path(path) if path else hf_home() / "assets"


def hub_endpoint() -> str:
    """`HF_ENDPOINT` (a mirror or a test server), else https://huggingface.co."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def is_offline(offline: bool | None) -> bool:
    """The one offline switch: the caller's `offline`, or when None `HF_HUB_OFFLINE` (or the older
    `TRANSFORMERS_OFFLINE`) as it is set now."""
    return _env_true("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE") if offline is None else offline


def progress_disabled() -> bool:
    """Whether `HF_HUB_DISABLE_PROGRESS_BARS` is set to a true value."""
    return _env_true("HF_HUB_DISABLE_PROGRESS_BARS")


def _etag_timeout() -> float:
    """Seconds to wait for the Hub's answer to a metadata request (`HF_HUB_ETAG_TIMEOUT`, default 10)."""
    try:
        return float(os.environ.get("HF_HUB_ETAG_TIMEOUT") or 10)
    except ValueError:
        return 10.0


def hub_kwargs(token: str | bool | None) -> dict[str, Any]:
    """Keyword arguments shared by every huggingface_hub call: where, how long, who (ssgen's user agent)."""
    from ..version import __version__

    return {
        "cache_dir": str(hub_cache_dir()),
        "endpoint": hub_endpoint(),
        "etag_timeout": _etag_timeout(),
        "token": token,
        "library_name": "ssgen",
        "library_version": __version__,
    }


def is_commit(revision: str) -> bool:
    """Whether a revision is a full 40-hex commit hash (served from the cache with no request)."""
    return bool(_COMMIT_RE.match(revision))
