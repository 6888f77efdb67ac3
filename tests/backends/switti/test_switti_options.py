"""Switti's options and config sections, checked without torch or weights (ssgen.request.resolve)."""

from __future__ import annotations

import pytest

from ssgen.backends.switti import options as O
from ssgen.config import parse_config
from ssgen.errors import ConfigError, OptionError
from ssgen.request import resolve


def config(model=None, defaults=None):
    return parse_config({"name": "sw", "family": "switti",
                         "weights": {r: {"path": r} for r in ("transformer", "vae", "text_encoder", "text_encoder_2")},
                         "model": model if model is not None else {"reso": 512}, "defaults": defaults or {}})


def parsed(model=None, defaults=None, **options):
    return resolve(config(model, defaults), prompts=["a cat"], options=options).parsed


def test_upstream_call_defaults_apply_when_nothing_is_given():
    o = parsed()
    assert o.settings == {"cfg": 6.0, "top_k": 400, "top_p": 0.95, "more_smooth": False, "smooth_start": 0,
                          "cfg_start": 0, "cfg_stop": 10, "last_scale_temp": None, "negative_prompt": ""}
    assert o.scales == 10 and o.cfg == [6.0 * (k / 9) for k in range(10)]
    assert [o.mode(k) for k in range(10)] == ["cfg"] * 10 and o.notes == []


def test_the_schedule_per_scale():
    o = parsed(cfg_start=2, cfg_stop=5, more_smooth=True, smooth_start=3, last_scale_temp=0.5)
    assert [o.mode(k) for k in range(10)] == ["cond"] * 2 + ["cfg"] * 3 + ["off"] * 5
    assert [o.smooth(k) for k in range(10)] == [False] * 3 + [True] * 2 + [False] * 5  # never once CFG is off
    assert o.cfg[4] == 6.0 * (4 / 9)


def test_1024_default_cfg_stop_turns_cfg_off_with_a_note():
    """Upstream's default turn_off_cfg_start_si 10 drops CFG on the 1024 px models' last 4 scales."""
    o = parsed(model={"reso": 1024}, last_scale_temp=0.1)
    assert o.scales == 14 and o.mode(10) == "off" and o.mode(9) == "cfg"
    assert o.notes == ["CFG is off from scale 10 of 14 (cfg_stop 10): the last 4 scale(s) run without guidance, "
                       "their logits / 0.1"]
    assert parsed(model={"reso": 1024}, cfg_stop=14).notes == []


def test_notes_for_settings_without_effect():
    assert "last_scale_temp 0.5 has no effect" in parsed(last_scale_temp=0.5).notes[0]
    assert any("more_smooth has no effect" in n for n in parsed(more_smooth=True, smooth_start=6, cfg_stop=4).notes)


def test_cfg_list_gives_every_weight():
    assert parsed(cfg=[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]).cfg == [float(k) for k in range(10)]
    with pytest.raises(OptionError, match="list has 3 values but sw runs 10 scales"):
        parsed(cfg=[1.0, 2.0, 3.0])


@pytest.mark.parametrize("opts, needle", [
    (dict(cfg_start=5, cfg_stop=3), "cfg_start (5) must not be after cfg_stop (3)"),
    (dict(cfg_stop=11), "cfg_stop must be a whole number in 0..10"),
    (dict(smooth_start=10), "smooth_start must be a whole number in 0..9"),
    (dict(smooth_start=2.0), "write 2, not 2.0"),
    (dict(last_scale_temp=0), "last_scale_temp must be > 0"),
    (dict(last_scale_temp="0.1"), "last_scale_temp must be a number"),
    (dict(negative_prompt=["a", "b"]), "negative_prompt must be text"),
    (dict(more_smooth=1), "more_smooth must be true or false"),
    (dict(top_k=-1), "top_k must be at least 0"),
    (dict(tau=0.5), "tau is not an option of Switti"),
])
def test_bad_options(opts, needle):
    with pytest.raises(OptionError) as e:
        parsed(**opts)
    assert needle in str(e.value)


def test_condition_is_text():
    with pytest.raises(ConfigError, match="text-to-image"):
        resolve(config(), classes=[3])


def test_without_reso_the_weights_decide():
    """An empty `model:` (config.json carries the architecture): options are checked against the most scales any
    Switti has, and resolved again once the model is loaded (scales None)."""
    o = parsed(model={}, cfg_stop=11, smooth_start=12)
    assert o.scales is None and O.num_scales({}, {}) is None
    with pytest.raises(OptionError, match="cfg_stop must be a whole number in 0..14"):
        parsed(model={}, cfg_stop=15)


def test_model_section_kinds_and_values():
    with pytest.raises(ConfigError, match="model.reso must be 256, 512 or 1024"):
        parsed(model={"reso": 768})
    with pytest.raises(ConfigError, match="use_ar must be true or false"):
        config(model={"use_ar": "yes"})
    with pytest.raises(ConfigError, match="unknown model: field 'width'"):
        config(model={"width": 1920})
    with pytest.raises(ConfigError, match="defaults:.*cfg_stop"):
        parsed(defaults={"cfg_stop": -1})


def test_registered_configs_parse():
    from ssgen.config import load_config

    for name, reso, K in (("switti", 512, 10), ("switti-ar", 512, 10), ("switti-1024", 1024, 14),
                          ("switti-1024-ar", 1024, 14)):
        c = load_config(name)
        assert c.family == "switti" and c.model["reso"] == reso
        assert set(c.weights) == {"transformer", "vae", "text_encoder", "text_encoder_2"}
        o = resolve(c, prompts=["a cat"]).parsed
        assert o.scales == K and o.cfg_stop <= K
