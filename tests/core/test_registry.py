"""The family registry is the only list of families: no module outside a family's own folder names a family,
and what a spec declares is what the rest of ssgen reads (config fields, job fields, flags, tiny makers)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from ssgen.backends import BUILTIN, families, family
from ssgen.errors import ConfigError

PKG = Path(__file__).resolve().parents[2] / "ssgen"
# (file, family named): why it may name it
ALLOWED = {
    ("backends/__init__.py", "var"): "the registry", ("backends/__init__.py", "infinity"): "the registry",
    ("backends/__init__.py", "hart"): "the registry", ("backends/__init__.py", "switti"): "the registry",
    ("backends/hart/tokenizer.py", "var"): "HART's tokenizer is VAR's VQVAE",
    ("backends/hart/spec.py", "var"): "HART's tokenizer file is also accepted as VAR's VQVAE kind",
    ("backends/switti/spec.py", "var"): "Switti's VAE file is also accepted as VAR's VQVAE kind",
}


def test_no_module_outside_a_family_names_it():
    named = set()
    for p in PKG.rglob("*.py"):
        rel = p.relative_to(PKG).as_posix()
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Constant) and node.value in BUILTIN and not rel.startswith(
                    f"backends/{node.value}/"):
                named.add((rel, node.value))
    assert named - set(ALLOWED) == set()


def test_every_spec_is_complete():
    for name, spec in families().items():
        assert spec.name == name and spec.condition in ("class", "text")
        opts = spec.options
        assert callable(opts.parse) and callable(opts.num_scales) and opts.OPTIONS and opts.MODEL_FIELDS
        assert set(spec.job_fields) <= set(opts.OPTIONS), name  # a job may override only what the family takes
        assert {f.name for f in spec.flags} <= set(opts.OPTIONS), name
        assert callable(spec.make_tiny())
        assert all(k.family == name for k in spec.kinds)


def test_unknown_family_is_one_line():
    with pytest.raises(ConfigError, match="unknown model family 'nope'; known: var, infinity, hart"):
        family("nope")
