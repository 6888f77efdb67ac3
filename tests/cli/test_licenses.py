"""A model's licence (a config's `license:`): listed by `ssgen models list`, recorded in every PNG it makes and shown
by `ssgen info`; a non-commercial one (an id with an "NC" part, as DDO's CC-BY-NC-SA-4.0) is marked as such."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from helpers import ssgen_here

from ssgen.config import non_commercial


@pytest.mark.parametrize("license,nc", [
    ("CC-BY-NC-SA-4.0", True), ("cc-by-nc-4.0", True), ("CC-BY-NC-SA-4.0 AND MIT", True), ("CC-BY-NC-ND-4.0", True),
    ("MIT", False), ("Apache-2.0", False), ("MIT AND Apache-2.0", False), ("CC-BY-SA-4.0", False),
    ("NCSA", False),  # the University of Illinois/NCSA licence: permissive, though it starts with NC
    (None, False),
])
def test_non_commercial_rule(license, nc):
    assert non_commercial(license) is nc


def test_models_list_shows_each_licence_and_marks_the_non_commercial_ones():
    from ssgen.config import load_config, registry

    r = ssgen_here("models", "list", "--json")
    assert r.exit_code == 0, r.output
    rows = {m["name"]: m for m in json.loads(r.stdout)}
    for name in registry():
        lic = load_config(name).license
        assert lic and rows[name]["license"] == lic  # every released config says its licence
        assert rows[name]["non_commercial"] is non_commercial(lic)
    assert {n for n, m in rows.items() if m["non_commercial"]} == {"var-d16-ddo", "var-d30-ddo"}
    r = ssgen_here("models", "list", env={"COLUMNS": "250"})
    assert r.exit_code == 0, r.output
    row = {line.split("│")[1].strip(): line for line in r.stdout.splitlines() if line.count("│") > 3}
    assert f"{rows['var-d30-ddo']['license']} (non-commercial)" in row["var-d30-ddo"]
    assert re.search(r"│ MIT +│", row["var-d30"]) and "non-commercial" not in row["var-d30"]


def test_a_png_records_its_models_licence_and_info_says_non_commercial(tiny_var, tmp_path):
    cfg = yaml.safe_load(tiny_var.read_text())
    cfg["license"] = "CC-BY-NC-4.0"
    cfg["weights"] = {role: {"path": str(tiny_var.parent / spec["path"])} for role, spec in cfg["weights"].items()}
    model = tmp_path / "nc.yaml"
    model.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "nc.png"
    r = ssgen_here("generate", "-m", str(model), "-c", "1", "-c", "2", "-o", str(out), "--device", "cpu")
    assert r.exit_code == 0, r.output
    images = json.loads(ssgen_here("info", str(out), "--json").stdout)["images"]
    assert [s["license"] for s in images] == ["CC-BY-NC-4.0"] * 2
    r = ssgen_here("info", str(out))
    assert r.exit_code == 0, r.output
    assert r.stdout.count("license: CC-BY-NC-4.0 (non-commercial)\n") == 2  # one line per image


def test_info_of_a_permissive_or_unknown_licence_adds_no_line(tiny_var, tmp_path):
    from PIL import Image

    from ssgen.output import save_png

    for name, settings in (("mit", {"model": "m", "license": "MIT"}), ("none", {"model": "m"})):
        path = save_png(Image.new("RGB", (4, 4)), tmp_path / f"{name}.png", {"images": [settings]})
        r = ssgen_here("info", str(path), env={"COLUMNS": "200"})
        assert r.exit_code == 0 and "non-commercial" not in r.stdout and "license:" not in r.stdout, r.output
    assert re.search(r"license +MIT", ssgen_here("info", str(tmp_path / "mit.png")).stdout)


def test_an_image_of_a_model_without_licence_records_none(tiny_var, tmp_path):
    out = tmp_path / "plain.png"
    assert ssgen_here("generate", "-m", str(tiny_var), "-c", "1", "-o", str(out), "--device", "cpu").exit_code == 0
    assert "license" not in json.loads(ssgen_here("info", str(out), "--json").stdout)["images"][0]
