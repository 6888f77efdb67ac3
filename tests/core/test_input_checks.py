"""Every option the model config alone can judge is answered before any weights are resolved: a bad
value is one `error:` line naming the option, exit code 2, no download, no Hub request."""

from __future__ import annotations

import json

import pytest
import yaml
from helpers import ssgen, ssgen_here

from ssgen.config import load_config, parse_config
from ssgen.errors import ConfigError
from ssgen.request import resolve as check_call
from ssgen.testing.hubserver import closed_port_endpoint


@pytest.fixture
def no_hub(monkeypatch, tmp_path):
    """A fresh, empty cache and a Hub endpoint where nothing listens."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_ENDPOINT", closed_port_endpoint())
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)


BAD = [  # (registered model, flags, what the one-line error must name: the flag, as typed)
    ("var-d16", ["-c", "1", "--top-p", "2"], "--top-p"),
    ("var-d16", ["-c", "1", "--rng", "foo"], "rng"),
    ("var-d16", ["-c", "1", "--cfg", "nan"], "--cfg"),
    ("var-d16", ["-c", "1", "--cfg", "-1"], "--cfg"),
    ("var-d16", ["-c", "1", "--cfg", "1e300"], "--cfg"),
    ("var-d16", ["-c", "1", "--ssg-scales", "0-99"], "scale range"),
    ("var-d16", ["-c", "1", "--ssg-beta", "0.1,0.2"], "beta list"),
    ("var-d16", ["-c", "1", "--cfg", "1,2,3"], "--cfg list"),
    ("var-d16", ["-c", "1", "--tau", "0.5"], "--tau"),
    ("var-d16", ["-c", "1", "--seed", "-1"], "--seed"),
    ("var-d16", ["-c", "1000"], "--class"),
    ("infinity-2b", ["-p", "a fox", "--tau", "0"], "--tau"),
    ("infinity-2b", ["-p", "a fox", "--pn", "2M"], "--pn"),
    ("infinity-2b", ["-p", "a fox", "--more-smooth"], "--more-smooth"),
    ("infinity-2b", ["-p", "a fox", "--ssg-scales", "2-20"], "scale range"),
    ("hart-0.7b-1024px", ["-p", "a fox", "--negative-prompt", "blur"], "--negative-prompt"),
    ("hart-0.7b-1024px", ["-p", "a fox", "--cfg", "1,2"], "--cfg list"),
    ("hart-0.7b-1024px", ["-p", "a fox", "--ssg-scales", "2-14"], "scale range"),
]


@pytest.mark.parametrize("model,flags,names", BAD, ids=[" ".join([m] + f) for m, f, _ in BAD])
def test_option_errors_come_before_any_download(no_hub, model, flags, names):
    r = ssgen_here("generate", "--model", model, *flags)
    assert r.exit_code == 2, r.stdout
    line = r.stderr.strip()
    assert line.startswith("error:") and "\n" not in line and "Traceback" not in line, line
    assert names in line, line
    assert "Hub" not in line and "reach" not in line, line  # answered before any weights were resolved


def test_option_error_through_the_entry_point_before_network(tmp_path):
    env = {"HF_HOME": str(tmp_path / "hf"), "HF_ENDPOINT": closed_port_endpoint(), "HF_HUB_OFFLINE": "0"}
    r = ssgen("generate", "--model", "var-d16", "-c", "1", "--top-p", "2", env=env)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--top-p" in r.stderr, r.stderr
    assert not (tmp_path / "hf" / "hub").exists()  # nothing fetched, nothing cached


def test_good_options_reach_the_hub(no_hub):
    """The other side: valid options pass the checks and only then meet the (closed) Hub."""
    r = ssgen_here("generate", "--model", "var-d16", "-c", "1")
    assert r.exit_code == 2 and "reach the Hub" in r.stderr, r.stderr


def write(tmp_path, **sections):
    cfg = {"name": "t", "family": "var", "weights": {"transformer": {"path": "t.pth"}, "vae": {"path": "v.pth"}},
           "model": {"depth": 2}, **sections}
    p = tmp_path / "t.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


@pytest.mark.parametrize("sections,names", [
    ({"model": {"dpeth": 2}}, "'dpeth'; did you mean depth?"),
    ({"defaults": {"cgf": 4.0}}, "'cgf'; did you mean cfg?"),
    ({"weights": {"transformer": {"pth": "t.pth"}, "vae": {"path": "v.pth"}}}, "did you mean path?"),
    ({"ssg": {"bta": 0.5}}, "bta"),
])
def test_config_typos_are_errors_naming_the_field(tmp_path, sections, names):
    r = ssgen_here("generate", "--model", str(write(tmp_path, **sections)), "-c", "1")
    assert r.exit_code == 2 and names in r.stderr and r.stderr.count("\n") == 1, r.stderr


@pytest.mark.parametrize("defaults,names", [({"cfg": "four"}, "cfg"), ({"top_k": [1, 2]}, "top_k"),
                                            ({"more_smooth": "yes"}, "more_smooth"), ({"top_p": None}, "top_p")])
def test_config_values_of_the_wrong_type(tmp_path, defaults, names):
    r = ssgen_here("generate", "--model", str(write(tmp_path, defaults=defaults)), "-c", "1")
    assert r.exit_code == 2 and names in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_released_configs_pass_their_own_checks():
    from ssgen.config import registry

    for name in registry():
        cfg = load_config(name)
        cond = ([1], None) if cfg.family == "var" else (None, ["a red fox"])
        assert check_call(cfg, *cond).ssg is not None


def test_model_fields_cover_the_model_configs():
    """Every field a family's config dataclass reads may appear in a config's `model:` section."""
    from dataclasses import fields

    from ssgen.backends import families
    from ssgen.backends.infinity.model import FIXED_ARCH, InfinityConfig
    from ssgen.backends.var.model import VARConfig

    assert {f.name for f in fields(VARConfig)} <= set(families()["var"].options.MODEL_FIELDS)
    known = set(families()["infinity"].options.MODEL_FIELDS)
    assert {f.name for f in fields(InfinityConfig)} | set(FIXED_ARCH) <= known


def test_accepted_but_unusual_values_say_so():
    cfg = load_config("var-d16")
    checked = check_call(cfg, [1], options={"top_k": 5000}, ssg=__import__("ssgen").SSG(beta=-0.5))
    assert any("top_k 5000" in n for n in checked.notes)
    assert any("beta < 0" in n for n in checked.notes)


def test_seeds_beyond_torch(tmp_path):
    cfg = load_config("var-d16")
    with pytest.raises(ConfigError, match="seed"):
        check_call(cfg, [1], seeds=[2**64])
    check_call(cfg, [1], seeds=[2**64 - 1])


def test_batch_checks_every_job_before_writing(tiny_var, tmp_path):
    """A bad value in job 3 fails before run.json or any image is written, so the fixed command runs."""
    jobs = tmp_path / "jobs.jsonl"
    lines = [{"class": 1}, {"class": 2}, {"class": 3, "cfg": "strong"}]
    jobs.write_text("\n".join(json.dumps(x) for x in lines))
    out = tmp_path / "run"
    r = ssgen_here("batch", "--model", str(tiny_var), "--jobs", str(jobs), "--out", str(out), "--device", "cpu")
    assert r.exit_code == 2 and "jobs.jsonl:3" in r.stderr and "cfg" in r.stderr, r.stderr
    assert not out.exists() or not any(out.iterdir())
    lines[2]["cfg"] = 2.0
    jobs.write_text("\n".join(json.dumps(x) for x in lines))
    r = ssgen_here("batch", "--model", str(tiny_var), "--jobs", str(jobs), "--out", str(out), "--device", "cpu")
    assert r.exit_code == 0, r.stderr
    assert len(list(out.glob("*.png"))) == 3


def test_parse_config_rejects_a_non_mapping_section():
    with pytest.raises(ConfigError, match="model:"):
        parse_config({"name": "x", "family": "var", "model": [1, 2]})
