"""The package's import graph: no cycle, and no module imports a layer above its own.

Imports are read from the source (every `import` statement, those inside functions included), so a cycle
hidden behind a function-level import fails here even though Python would import it. The layers, low to
high, are documented in docs/architecture.md (Layers)."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "ssgen"

# module name prefix -> layer (the longest matching prefix wins); low layers never import high ones
LAYERS = {
    "ssgen.version": 0, "ssgen.errors": 0, "ssgen.checks": 0, "ssgen.settings": 0, "ssgen.atomic": 0,
    "ssgen.hardware": 0, "ssgen.quiet": 0, "ssgen.textfile": 0, "ssgen.images": 0, "ssgen.terminal": 0,
    "ssgen.testing": 0,
    "ssgen.backends.checks": 1, "ssgen.backends.spec": 1,
    "ssgen.backends.var.options": 1, "ssgen.backends.infinity.options": 1, "ssgen.backends.hart.options": 1,
    "ssgen.backends.switti.options": 1,
    "ssgen.backends.var.spec": 1, "ssgen.backends.infinity.spec": 1, "ssgen.backends.hart.spec": 1,
    "ssgen.backends.switti.spec": 1,
    "ssgen.backends": 2,  # the registry (backends/__init__.py): specs only
    "ssgen.config": 3, "ssgen.request": 3, "ssgen.edit_input": 3, "ssgen.output": 3,
    "ssgen.guidance": 4, "ssgen.sampling": 4, "ssgen.loop": 4, "ssgen.checkpoint": 4, "ssgen.weights": 4,
    "ssgen.inception": 4,
    "ssgen.metrics": 4,
    "ssgen.clip_score": 4,
    "ssgen.backends.common": 5, "ssgen.backends.onednn": 5, "ssgen.backends.kinds": 5,
    "ssgen.backends.var": 5, "ssgen.backends.infinity": 5, "ssgen.backends.hart": 5, "ssgen.backends.switti": 5,
    "ssgen.edit": 6, "ssgen.compile": 6, "ssgen.pipeline": 6, "ssgen.tiny": 6,
    "ssgen.sinks": 7, "ssgen.runner": 7, "ssgen.batch": 7, "ssgen.sweep": 7,
    "ssgen.eval": 7,
    "ssgen.cli": 8, "ssgen.__main__": 8, "ssgen": 9,  # ssgen/__init__.py: the public API over everything
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> set[str]:
    """Every ssgen module `path` imports, at any depth of its code (relative imports resolved)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "ssgen")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] != "ssgen":
                continue
            for a in node.names:  # `from . import x` may name a submodule
                sub = f"{mod}.{a.name}"
                out.add(sub if (PKG.parent / Path(*sub.split("."))).with_suffix(".py").exists()
                        or (PKG.parent / Path(*sub.split(".")) / "__init__.py").exists() else mod)
    out.discard(name)
    return out


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports(p) for p in PKG.rglob("*.py")}


def layer(mod: str) -> int:
    best = max((p for p in LAYERS if mod == p or mod.startswith(p + ".")), key=len, default=None)
    assert best is not None, f"{mod} has no layer: add it to LAYERS (and to docs/architecture.md)"
    return LAYERS[best]


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in g:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_the_reader_sees_function_level_imports_and_cycles():
    """The checks below can fail: a function-level import is an edge, and two modules importing each other
    are a cycle."""
    g = {"a": {"b"}, "b": {"a"}, "c": {"a"}}
    assert cycles(g) == [["a", "b"]]
    assert "ssgen.pipeline" in imports(PKG / "cli" / "generate.py") or "ssgen.runner" in imports(
        PKG / "cli" / "generate.py")


def test_no_import_cycle():
    assert cycles(graph()) == []


def test_no_module_imports_a_higher_layer():
    bad = [f"{m} (layer {layer(m)}) imports {d} (layer {layer(d)})"
           for m, deps in sorted(graph().items()) for d in sorted(deps) if layer(d) > layer(m)]
    assert bad == []
