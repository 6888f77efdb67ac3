"""Model configs: YAML files -> dataclasses, the registry of released models, validation.

A config names a model family, where each weight file comes from (a pinned Hub file or a local path),
the architecture (`model:`), sampling defaults and the model's SSG default. The released models'
configs live in the top-level `configs/` (shipped inside the wheel); any other YAML file can be passed by path.
See the README (Weights and the Hub) and docs/architecture.md (Weights).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .backends import families
from .checks import as_kind, as_str
from .errors import ConfigError, OptionError, first_line
from .settings import SSG, ssg_from_config
from .textfile import read_text


def config_dir() -> Path:
    """Where the released models' configs are: the top-level `configs/` of a checkout (the source of
    truth), else `ssgen/configs/` inside an installed wheel (copied there by setup.py at build time)."""
    root = Path(__file__).resolve().parents[1]
    if (root / "pyproject.toml").is_file() and (root / "configs").is_dir():
        return root / "configs"
    return Path(__file__).parent / "configs"

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass
class WeightSpec:
    """Where one role's weights come from: a Hub file/folder (repo + file or folder) or a local path."""

    role: str
    repo: str | None = None
    file: str | None = None  # a file in the repo
    folder: str | None = None  # a folder in the repo ("" = the whole repo), for multi-file parts
    revision: str | None = None  # a 40-hex commit (pinned) or a branch/tag
    sha256: str | None = None
    path: str | None = None  # a local file or folder, relative to the YAML's folder
    allow: list[str] | None = None  # file patterns to fetch for a folder


@dataclass
class ModelConfig:
    name: str
    family: str
    description: str = ""
    license: str | None = None  # an SPDX-like id of the weights' terms ("MIT", "CC-BY-NC-SA-4.0"); None: unknown
    weights: dict[str, WeightSpec] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    ssg: SSG | None = None
    source: Path | None = None  # the YAML file

    @property
    def base_dir(self) -> Path:
        return self.source.parent if self.source is not None else Path.cwd()

    def revision(self) -> str | None:
        """The pinned revision of the main weights (for metadata)."""
        for spec in self.weights.values():
            if spec.revision:
                return spec.revision
        return None


def _weight(role: str, d: Any, where: str) -> WeightSpec:
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: weights.{role} must be a mapping with repo/file or path")
    check_fields(d, ("repo", "file", "folder", "revision", "sha256", "path", "allow"), where, f"weights.{role}")
    try:  # text, never a number or a list read as one (`path: 3`, `repo: [a]`); a commit hash must be quoted
        for key in ("repo", "file", "folder", "revision", "path"):
            if d.get(key) is not None:
                as_str(d[key], key, "text (quote it)" if key == "revision" else "text")
        if d.get("allow") is not None and not (isinstance(d["allow"], list)
                                               and all(isinstance(a, str) for a in d["allow"])):
            raise OptionError("allow", f"must be a list of file patterns, got {d['allow']!r}")
    except OptionError as e:
        raise e.at(f"{where}: weights.{role}") from None
    spec = WeightSpec(role=role, **d)
    if spec.path is None:
        if not spec.repo or (spec.file is None and spec.folder is None):
            raise ConfigError(f"{where}: weights.{role} needs `path:` or `repo:` with `file:` or `folder:`")
    if spec.sha256 is not None:
        spec.sha256 = str(spec.sha256).lower()
        if not _HEX64.match(spec.sha256):
            raise ConfigError(f"{where}: weights.{role}.sha256 must be 64 hex digits or null")
    return spec


def check_fields(section: dict, known: tuple[str, ...], where: str, what: str) -> None:
    """A field a section does not know (a typo such as `dpeth`) is an error naming it, and what it may mean."""
    for key in section:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"did you mean {close[0]}?" if close else "known: " + ", ".join(known)
            raise ConfigError(f"{where}: unknown {what} field {key!r}; {hint}")


def check_model_kinds(model: dict, fields: Any, where: str) -> None:
    """Each `model:` value of the kind its family declares (`MODEL_FIELDS` as a mapping field -> kind, see
    `ssgen.checks.KINDS`): `depth: 2.0` or `shared_aln: "false"` is an error naming the field, not a model
    built from a coerced value. null means "not given" (the model's default)."""
    kinds = fields if isinstance(fields, dict) else {}
    for key, value in model.items():
        if value is not None:
            try:
                as_kind(value, kinds.get(key), key)
            except OptionError as e:
                raise e.at(f"{where}: model") from None


def parse_config(data: Any, source: Path | None = None) -> ModelConfig:
    """Validate a config mapping (as read from YAML)."""
    where = str(source) if source else "model config"
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: a model config must be a YAML mapping")
    check_fields(data, ("name", "family", "description", "license", "weights", "model", "defaults", "ssg"), where,
                 "top-level")
    family = data.get("family")
    if not isinstance(family, str) or family not in families():
        raise ConfigError(f"{where}: family must be one of {', '.join(families())}, got {family!r}")
    for key in ("name", "description", "license"):
        if data.get(key) is not None:
            try:
                as_str(data[key], key)
            except OptionError as e:
                raise e.at(where) from None
    name = data.get("name") or (source.stem if source else "model")
    weights = data.get("weights") or {}
    if not isinstance(weights, dict):
        raise ConfigError(f"{where}: weights must be a mapping of role -> file")
    try:
        ssg = ssg_from_config(data.get("ssg"))
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    fam = families()[family].options
    for sec, known in (("model", fam.MODEL_FIELDS), ("defaults", fam.OPTIONS)):
        if data.get(sec) is not None and not isinstance(data[sec], dict):
            raise ConfigError(f"{where}: `{sec}:` must be a mapping")
        check_fields(data.get(sec) or {}, known, where, f"{sec}:")
    check_model_kinds(data.get("model") or {}, fam.MODEL_FIELDS, where)
    return ModelConfig(
        name=str(name), family=family, description=str(data.get("description") or ""),
        weights={role: _weight(role, d, where) for role, d in weights.items()},
        license=(data.get("license") or "").strip() or None,
        model=dict(data.get("model") or {}), defaults=dict(data.get("defaults") or {}), ssg=ssg,
        source=source,
    )


def non_commercial(license: str | None) -> bool:
    """Whether a licence id forbids commercial use: one of its parts is "NC" (CC-BY-NC-SA-4.0, cc-by-nc-4.0).
    Parts, not a substring: NCSA (the University of Illinois/NCSA licence) is permissive."""
    return isinstance(license, str) and "NC" in re.split(r"[^0-9A-Z]+", license.upper())


def license_label(license: str | None) -> str:
    """A licence as ssgen shows it: the id, "(non-commercial)" after a non-commercial one, "unknown" for none."""
    if not license:
        return "unknown"
    return f"{license} (non-commercial)" if non_commercial(license) else license


def read_config(path: str | Path) -> ModelConfig:
    p = Path(path).expanduser()
    text = read_text(p, "model config", "pass a registered model name (`ssgen models list`) or a YAML config")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"cannot read config {p}: {first_line(e)}") from None
    return parse_config(data, p.resolve())


def registry() -> dict[str, Path]:
    """Registered model names -> their YAML files, by name (var-d16 before var-d16-ddo)."""
    return {p.stem: p for p in sorted(config_dir().glob("*.yaml"), key=lambda p: p.stem)}


def load_config(name_or_path: str | Path) -> ModelConfig:
    """A registered name (`var-d30`) or a path to a YAML config."""
    s = str(name_or_path)
    reg = registry()
    if s in reg:
        return read_config(reg[s])
    if s.strip() and Path(s).expanduser().is_dir():
        raise ConfigError(_folder_hint(s))
    if s.endswith((".yaml", ".yml")) or Path(s).expanduser().is_file():
        return read_config(s)
    raise ConfigError(f"unknown model {s!r}; known models: {', '.join(reg)} (or pass a path to a YAML config)")


def _folder_hint(folder: str) -> str:
    """A folder given as a model: the YAML configs in it (`-m tiny/var` for `-m tiny/var/var-tiny.yaml`)."""
    p = Path(folder).expanduser()
    try:
        found = sorted(f.name for f in p.iterdir() if f.suffix in (".yaml", ".yml") and f.is_file())
    except OSError as e:
        return f"{folder} is a folder, not a model config, and cannot be listed ({e.strerror}); pass a YAML config"
    if not found:
        return (f"{folder} is a folder with no YAML config in it; pass a registered model name (`ssgen models list`)"
                " or a YAML config")
    shown = ", ".join(str(Path(folder) / name) for name in found[:5])
    more = f" (and {len(found) - 5} more)" if len(found) > 5 else ""
    return f"{folder} is a folder; pass one of its configs: {shown}{more}"
