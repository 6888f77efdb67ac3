"""What every family shares: the registry, the Family contract, progress passed down to every weights
role, and bad model sections answered with the same error type."""

from __future__ import annotations

import pytest

import ssgen
import ssgen.weights
from ssgen.backends import families
from ssgen.backends.common import Call
from ssgen.errors import ConfigError

TINY = {"var": "tiny_var", "infinity": "tiny_inf", "hart": "tiny_hart", "switti": "tiny_switti"}  # conftest.py


@pytest.fixture
def tiny_model(request, family):
    """The tiny model of the family under test (only that one is built)."""
    return request.getfixturevalue(TINY[family])


def test_registry_names_every_family():
    assert set(families()) == set(TINY)
    assert all(callable(spec.load()) for spec in families().values())


@pytest.mark.parametrize("family", list(TINY))
def test_progress_false_reaches_every_role(tiny_model, family, monkeypatch):
    """load(progress=False) (batch ranks > 0) must draw no bars for any role, text encoders included."""
    seen = []
    real = ssgen.weights.resolve_weight

    def spy(config, role, **kw):
        seen.append((role, kw.get("progress", True)))
        return real(config, role, **kw)

    monkeypatch.setattr(ssgen.weights, "resolve_weight", spy)
    pipe = ssgen.load(str(tiny_model), device="cpu", dtype="float32", progress=False)
    roles = {role for role, _ in seen}
    assert roles == set(pipe.config.weights), roles
    assert all(p is False for _, p in seen), seen


@pytest.mark.parametrize("family", list(TINY))
def test_start_returns_a_call_with_notes_apart(tiny_model, family):
    pipe = ssgen.load(str(tiny_model), device="cpu", dtype="float32")
    cond = ([1], None) if family == "var" else (None, ["a red fox"])
    call = pipe.family.start(pipe.resolve(*cond))
    assert isinstance(call, Call) and isinstance(call.notes, list)
    assert "notes" not in call.settings
    assert len(call.backend.grid) == pipe.num_scales()


def test_bad_model_section_is_a_config_error_in_every_family():
    from ssgen.backends.hart.model import HARTConfig
    from ssgen.backends.infinity.model import InfinityConfig
    from ssgen.backends.var.model import VARConfig

    with pytest.raises(ConfigError, match="divisible"):
        VARConfig(depth=2, width=100, heads=3)
    with pytest.raises(ConfigError, match="divisible"):
        InfinityConfig.from_dict({"depth": 2, "embed_dim": 100, "num_heads": 3})
    with pytest.raises(ConfigError):
        HARTConfig.from_files({"attn_type": "bogus"}, {})
