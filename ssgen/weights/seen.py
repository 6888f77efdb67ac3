"""The user's own model configs that use Hub weights, remembered so that `ssgen models remove` keeps their files.

Every registered model's config is known (`config.registry()`); a YAML config given by path is not, so
`resolve_weight` records the path of each one whose Hub weights it resolves, in
`$HF_ASSETS_CACHE/ssgen/configs-seen.json` (i.e. `$HF_HOME/assets/...`, beside the sha256 record). `ssgen models
remove` reads it back and ignores the YAML files that are gone or no longer read. Writing it is best effort: a
read-only cache only forgets a config (two processes recording at once may drop one entry too).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..atomic import write_atomic
from ..errors import SSGenError
from ..textfile import read_text
from .env import assets_cache_dir


def _record_path() -> Path:
    return assets_cache_dir() / "ssgen" / "configs-seen.json"


def seen_configs() -> list[Path]:
    """The YAML configs recorded as using Hub weights (absolute paths; some may be gone); empty without a record."""
    try:
        data = json.loads(read_text(_record_path(), "record of configs", ""))
    except (SSGenError, ValueError):
        return []
    paths = data.get("configs") if isinstance(data, dict) else None
    return [Path(p) for p in paths if isinstance(p, str)] if isinstance(paths, list) else []


def remember_config(source: Path) -> None:
    """Record a YAML config that uses Hub weights (nothing when it is recorded already); drops configs that are gone."""
    path = str(Path(source).resolve())
    known = [str(p) for p in seen_configs()]
    if path in known:
        return
    configs = sorted({p for p in known if os.path.exists(p)} | {path})
    record = _record_path()
    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(record, json.dumps({"version": 1, "configs": configs}, indent=1).encode())
    except (OSError, SSGenError):
        pass
