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
    """List the registered models and whether their weights are cached."""
    from rich.table import Table

    from ..config import read_config, registry
    from ..weights import is_local

    rows = []
    for name, path in registry().items():
        c = read_config(path)
        rows.append({"name": name, "family": c.family, "description": c.description,
                     "cached": all(is_local(c, role) for role in c.weights),
                     "ssg": c.ssg.to_dict() if c.ssg else None})
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    t = Table("model", "family", "cached", "description")
    for r in rows:
        t.add_row(safe(r["name"]), safe(r["family"]), "yes" if r["cached"] else "-", safe(r["description"]))
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
                  yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation.")):
    """Remove a model's downloaded files from the Hugging Face cache."""
    from ..config import load_config
    from ..weights import cached_size, hub_cache_dir, remove_cached, remove_cached_file

    config = load_config(name)
    # one entry per cached thing: HART's llm/ and tokenizer/ are two folders of one repo revision
    hub = list(dict.fromkeys((s.repo, s.file, s.revision) for s in config.weights.values() if s.repo))
    if not hub:
        out.print(f"{safe(config.name)} uses only local files; nothing to remove", soft_wrap=True)
        return
    size = sum(cached_size(repo, file, revision) for repo, file, revision in hub)
    if size == 0:
        out.print(f"nothing of {safe(config.name)} is in the cache {safe(hub_cache_dir())}; nothing to remove",
                  soft_wrap=True)
        return
    if not yes and not typer.confirm(f"remove {_size(size)} of cached weights of {safe(config.name, markup=False)}?"):
        raise typer.Exit(1)
    freed = sum(remove_cached_file(repo, file, revision) if file else remove_cached(repo, revision)
                for repo, file, revision in hub)
    out.print(f"removed {_size(freed)}", soft_wrap=True)


def _size(n: int) -> str:
    """Bytes for people: 16.4 kB, 1.6 GB."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"
