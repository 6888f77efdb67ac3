"""`ssgen models list | download | path | remove`: the registered models and their weights in the cache."""

from __future__ import annotations

import json

import typer

from ..terminal import safe
from .app import app, friendly, out

models_app = typer.Typer(no_args_is_help=True, help="List, download, locate and remove model weights.")
app.add_typer(models_app, name="models")

NameArg = typer.Argument(..., help="Model name or YAML config.")


@models_app.command("list")
@friendly
def models_list(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")):
    """List the registered models, their licences and whether their weights are cached. A non-commercial licence
    (its id has an "NC" part, as CC-BY-NC-SA-4.0) is marked "(non-commercial)"."""
    from rich.table import Table

    from ..config import license_label, non_commercial, read_config, registry
    from ..weights import is_local

    rows = []
    for name, path in registry().items():
        c = read_config(path)
        rows.append({"name": name, "family": c.family, "description": c.description, "license": c.license,
                     "non_commercial": non_commercial(c.license),
                     "cached": all(is_local(c, role) for role in c.weights),
                     "ssg": c.ssg.to_dict() if c.ssg else None})
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    t = Table("model", "family", "license", "cached", "description")
    for r in rows:
        t.add_row(safe(r["name"]), safe(r["family"]), safe(license_label(r["license"])), "yes" if r["cached"] else "-",
                  safe(r["description"]))
    out.print(t)


@models_app.command("download")
@friendly
def models_download(name: str = NameArg):
    """Download (and verify) every weight file of a model into the Hugging Face cache."""
    from ..config import load_config
    from ..weights import resolve_weight

    config = load_config(name)
    for role in config.weights:
        print(f"{safe(role, markup=False)}: {safe(resolve_weight(config, role), markup=False)}")


@models_app.command("path")
@friendly
def models_path(name: str = NameArg):
    """Print the local paths of a model's weights (no network; fails if they are not downloaded)."""
    from ..config import load_config
    from ..errors import WeightsError
    from ..weights import NotCachedError, hub_cache_dir, resolve_weight

    config = load_config(name)
    paths, missing = {}, []
    for role in config.weights:
        try:
            paths[role] = resolve_weight(config, role, offline=True)
        except NotCachedError:
            missing.append(role)
    if missing:
        which = "" if len(missing) == len(config.weights) else " " + " and ".join(missing)
        raise WeightsError(f"{config.name} is not downloaded: its{which} weights are not in the cache "
                           f"{hub_cache_dir()}; get them with `ssgen models download {name}`")
    for role, path in paths.items():
        print(f"{safe(role, markup=False)}: {safe(path, markup=False)}")


@models_app.command("remove")
@friendly
def models_remove(name: str = NameArg,
                  yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
                  force: bool = typer.Option(False, "--force", help="Remove the files other models use too (it names "
                                             "the models this breaks).")):
    """Remove a model's downloaded files from the Hugging Face cache, keeping those another known model uses."""
    from ..config import load_config
    from ..weights import cached_weight_files, hub_cache_dir, removal_size, remove_entries

    config = load_config(name)
    if not any(spec.repo and spec.path is None for spec in config.weights.values()):
        _say(f"{config.name} uses only local files; nothing to remove")
        return
    # one entry per cached file: HART's llm/ and tokenizer/ are two folders of one snapshot
    ours = list(dict.fromkeys(e for spec in config.weights.values() for e in cached_weight_files(spec)))
    if not ours:
        _say(f"nothing of {config.name} is in the cache {hub_cache_dir()}; nothing to remove")
        return
    users = _other_users(config, ours)
    for files, count, models in _by_users(ours, users):
        it = "it" if count == 1 else "them"
        if force:
            _say(f"--force: removing {files} breaks {', '.join(models)} (`ssgen models download` gets {it} back)")
        else:
            _say(f"keeping {files}: {', '.join(models)} {'uses' if len(models) == 1 else 'use'} {it} too")
    gone = ours if force else [e for e in ours if e not in users]
    if not gone:
        _say(f"nothing removed: every cached file of {config.name} is used by another model (--force removes them)")
        return
    size = removal_size(gone)
    if not yes and not typer.confirm(f"remove {_size(size)} of cached weights of {safe(config.name, markup=False)}?"):
        raise typer.Exit(1)
    _say(f"removed {_size(remove_entries(gone))}")


def _other_users(config, entries: list) -> dict:
    """Which other known models use each of these cached files: cached entry -> their names.

    Known models are the registered ones and the user's own YAML configs that resolved Hub weights (a YAML gone
    or unreadable since is ignored); the config being removed is not another model, whatever its name. A model
    holds a shared file when it is downloaded (each of its Hub entries has cached files) or has cached files of
    its own: a model none of whose files are cached loses nothing."""
    from ..config import read_config, registry
    from ..errors import SSGenError
    from ..weights import cached_weight_files, seen_configs

    mine = config.source.resolve() if config.source is not None else None
    registered = {path.resolve(): name for name, path in registry().items()}
    users: dict = {}
    for path, label in [*registered.items(), *((p, str(p)) for p in seen_configs() if p not in registered)]:
        if path == mine:
            continue
        try:
            other = read_config(path)
        except SSGenError:
            continue
        cached = [set(cached_weight_files(spec)) for spec in other.weights.values() if spec.repo and not spec.path]
        theirs = set().union(*cached)
        if all(cached) or theirs - set(entries):
            for entry in theirs.intersection(entries):
                users.setdefault(entry, []).append(label)
    return users


def _by_users(entries: list, users: dict) -> list[tuple[str, int, list[str]]]:
    """The shared files grouped by the models that use them: ("repo/file" or "N files of repo (a, b, ...)", N,
    the models)."""
    groups: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for e in entries:
        if e in users:
            groups.setdefault((e.repo, tuple(users[e])), []).append(e.name)
    out = []
    for (repo, models), names in groups.items():
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        files = f"{repo}/{names[0]}" if len(names) == 1 else f"{len(names)} files of {repo} ({shown})"
        out.append((files, len(names), list(models)))
    return out


def _say(text: str) -> None:
    """One line of results: names and paths are never read as markup, and their control characters are shown."""
    out.print(safe(text, markup=False), soft_wrap=True, markup=False, highlight=False)


def _size(n: int) -> str:
    """Bytes for people: 16.4 kB, 1.6 GB."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"
