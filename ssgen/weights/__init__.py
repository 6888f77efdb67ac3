"""Weights: from a config's `weights:` entries to local paths, through the standard Hugging Face cache.

    from ssgen.weights import resolve_weight
    path = resolve_weight(config, "transformer", offline=None, progress=True)

One job per module: `resolve` (Hub file, Hub folder, local path), `verify` (sha256, remembered per
file), `cache` (what is cached, remove it: `ssgen models`), `seen` (the user's own configs that use Hub weights, so
that removing one model keeps what another needs), `errors` (huggingface_hub failures ->
one-line WeightsErrors), `progress` (rich bars for downloads and hashing), `env` (HF_* settings read
at call time). Offline is the `offline` argument alone (None = `HF_HUB_OFFLINE` at call time).
"""

from .cache import (
    CachedEntry,
    CachedRepo,
    cached_repos,
    cached_size,
    is_cached,
    removal_size,
    remove_cached,
    remove_cached_file,
    remove_entries,
)
from .env import hub_cache_dir
from .errors import NotCachedError
from .resolve import cached_weight_files, is_local, resolve_file, resolve_folder, resolve_local, resolve_weight
from .seen import seen_configs
from .verify import verify_sha256

__all__ = [
    "CachedEntry", "CachedRepo", "NotCachedError", "cached_repos", "cached_size", "cached_weight_files",
    "hub_cache_dir", "is_cached", "is_local", "removal_size", "remove_cached", "remove_cached_file", "remove_entries",
    "seen_configs",
    "resolve_file", "resolve_folder", "resolve_local", "resolve_weight", "verify_sha256",
]
