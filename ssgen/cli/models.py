"""`ssgen models list | download | path | remove`: the registered models and their weights in the cache."""

from __future__ import annotations

import json

import typer

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
        t.add_row(r["name"], r["family"], "yes" if r["cached"] else "-", r["description"])
    out.print(t)


@models_app.command("download")
@friendly
def models_download(name: str = NameArg):
    """Download (and verify) every weight file of a model into the Hugging Face cache."""
    from ..config import load_config
    from ..weights import resolve_weight

    config = load_config(name)
    for role in config.weights:
        print(f"{role}: {resolve_weight(config, role)}")


@models_app.command("path")
@friendly
def models_path(name: str = NameArg):
    """Print the local paths of a model's weights (offline; fails if not downloaded)."""
    from ..config import load_config
    from ..weights import resolve_weight

    config = load_config(name)
    for role in config.weights:
        print(f"{role}: {resolve_weight(config, role, offline=True)}")


@models_app.command("remove")
@friendly
def models_remove(name: str = NameArg,
                  yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation.")):
    """Remove a model's downloaded files from the Hugging Face cache."""
    from ..config import load_config
    from ..weights import remove_cached, remove_cached_file

    config = load_config(name)
    hub_specs = [s for s in config.weights.values() if s.repo]
    if not hub_specs:
        out.print(f"{config.name} uses only local files; nothing to remove")
        return
    if not yes and not typer.confirm(f"remove the cached weights of {config.name}?"):
        raise typer.Exit(1)
    freed = sum(remove_cached_file(s.repo, s.file, s.revision) if s.file else remove_cached(s.repo, s.revision)
                for s in hub_specs)
    out.print(f"removed {freed / 1e6:.1f} MB")
