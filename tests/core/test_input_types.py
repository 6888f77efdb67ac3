"""A value of the wrong type is refused naming its field, never coerced, whatever the entry point: the Python API
(`ssgen.request.resolve`, what `Pipeline.generate` calls), a batch job file, a YAML config's `defaults:`, `model:`
and `ssg:` sections. True is not class 1 or cfg 1, 2.0 is not a class or a seed, "3" is not a number; a CSV
cell is text by nature and is parsed strictly. No weights are needed: everything here is judged before loading."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from ssgen.batch import jobs_from_flags, parse_cell, read_jobs, validate_jobs
from ssgen.config import load_config, parse_config
from ssgen.errors import ConfigError
from ssgen.request import resolve
from ssgen.settings import SSG, ssg_from_config

MAX_SEED = 2**64 - 1
VAR = load_config("var-d16")  # a registered config: resolve needs no weights

# (field, bad value): each is refused by every entry point that takes the field
BAD = [
    ("class", True), ("class", 1.7), ("class", 2.0), ("class", "3"),
    ("seed", True), ("seed", 1.7), ("seed", 2.0), ("seed", "3"),
    ("top_k", True), ("top_k", 2.0), ("top_k", "5"),
    ("cfg", True), ("cfg", "1.5"), ("cfg", [1, "2"] + [3] * 8),
    ("top_p", True), ("top_p", "0.5"),
    ("more_smooth", 1), ("more_smooth", "yes"),
]
OPTIONS = {"top_k", "cfg", "top_p", "more_smooth"}  # what a config's `defaults:` may give


def api(field, value, tmp_path):
    if field == "class":
        return resolve(VAR, classes=[value])
    if field == "seed":
        return resolve(VAR, classes=[1], seed=value)
    return resolve(VAR, classes=[1], options={field: value})


def job_file(field, value, tmp_path):
    jobs = tmp_path / "jobs.jsonl"
    rec = {"class": 1, field: value}
    jobs.write_text(json.dumps({"class": 2}) + "\n" + json.dumps(rec) + "\n")
    validate_jobs(read_jobs(jobs, 0, VAR), VAR)


def config_defaults(field, value, tmp_path):
    data = yaml.safe_load(VAR.source.read_text())
    data["defaults"][field] = value
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(data))
    return resolve(parse_config(yaml.safe_load(path.read_text()), path), classes=[1])


ENTRIES = {"api": (api, ""), "job file": (job_file, "jobs.jsonl:2: "), "config defaults": (config_defaults,
                                                                                           "t.yaml: defaults: ")}
CASES = [(entry, field, value) for entry in ENTRIES for field, value in BAD
         if entry != "config defaults" or field in OPTIONS]


@pytest.mark.parametrize("entry,field,value", CASES, ids=[f"{e}-{f}={v!r}" for e, f, v in CASES])
def test_wrong_types_are_refused_naming_the_field(tmp_path, entry, field, value):
    call, where = ENTRIES[entry]
    with pytest.raises(ConfigError) as e:
        call(field, value, tmp_path)
    msg = str(e.value)
    assert f"{where}{field} " in msg, msg  # the field, where it was written, as the user wrote it
    assert "--" not in msg, msg  # no command-line flag: the user wrote a keyword or a field


GOOD = [("class", 3), ("class", np.int64(3)), ("seed", 0), ("seed", MAX_SEED), ("top_k", 0), ("cfg", 2),
        ("cfg", 2.5), ("cfg", [1] * 10), ("top_p", 1), ("more_smooth", False)]


@pytest.mark.parametrize("entry", list(ENTRIES))
def test_good_values_still_pass(tmp_path, entry):
    call, _ = ENTRIES[entry]
    for field, value in GOOD:
        if entry == "config defaults" and field not in OPTIONS:
            continue
        if entry == "job file" and isinstance(value, np.generic):
            continue  # JSON has no numpy
        call(field, value, tmp_path)


def test_good_values_are_what_was_given():
    r = resolve(VAR, classes=np.array([3, 7]), seed=5, options={"top_k": 2, "cfg": 2})
    assert r.classes == (3, 7) and r.seeds == (5, 6) and r.parsed.top_k == 2 and r.parsed.t[-1] == 2.0
    assert resolve(VAR, classes=4).classes == (4,)  # one class, not a list: one image


@pytest.mark.parametrize("model,options,field", [
    ("infinity-2b", {"h_div_w": True}, "h_div_w"), ("infinity-2b", {"h_div_w": "1.5"}, "h_div_w"),
    ("infinity-2b", {"tau": "0.5"}, "tau"), ("infinity-2b", {"pn": 1}, "pn"), ("infinity-2b", {"size": 1024}, "size"),
    ("infinity-2b", {"negative_prompt": 5}, "negative_prompt"), ("infinity-2b", {"offload": "yes"}, "offload"),
    ("hart-0.7b-1024px", {"top_k": 2.0}, "top_k"), ("hart-0.7b-1024px", {"top_k": [600, True]}, "top_k"),
    ("hart-0.7b-1024px", {"residual": 0}, "residual"),
])
def test_family_options_of_the_wrong_type(model, options, field):
    with pytest.raises(ConfigError, match=rf"^{field} "):
        resolve(load_config(model), prompts=["a fox"], options=options)


def test_a_prompt_is_text():
    with pytest.raises(ConfigError, match="prompt 0 must be text, got 5"):
        resolve(load_config("infinity-2b"), prompts=[5])


@pytest.mark.parametrize("model,field,value,says", [
    ("depth", "depth", 2.0, "write 2, not 2.0"),
    ("shared_aln", "shared_aln", "false", "true or false"),
    ("patch_nums", "patch_nums", "1,2,3", "list of whole numbers"),
    ("norm_eps", "norm_eps", "1e-6", "write it with a dot"),  # YAML 1.1 reads 1e-6 as text
    ("num_classes", "num_classes", True, "whole number"),
])
def test_model_section_kinds(tmp_path, model, field, value, says):
    data = yaml.safe_load(VAR.source.read_text())
    data["model"][field] = value
    with pytest.raises(ConfigError) as e:
        parse_config(data, tmp_path / "t.yaml")
    assert f"t.yaml: model: {field} " in str(e.value) and says in str(e.value), str(e.value)


@pytest.mark.parametrize("edit,says", [
    ({"family": [1]}, "family must be one of"),  # was a TypeError traceback (a list is unhashable)
    ({"name": 5}, "t.yaml: name must be text, got 5"),
    ({"description": ["a"]}, "t.yaml: description must be text"),
    ({"license": 5}, "t.yaml: license must be text, got 5"),  # was an unknown top-level field
    ({"weights": {"transformer": {"path": 3}}}, "t.yaml: weights.transformer: path must be text, got 3"),
    ({"weights": {"transformer": {"repo": 3, "file": "x"}}}, "weights.transformer: repo must be text"),
    ({"weights": {"transformer": {"repo": "a/b", "file": "x", "revision": 123}}}, "revision must be text (quote it)"),
    ({"weights": {"transformer": {"repo": "a/b", "folder": "", "allow": "*.bin"}}}, "allow must be a list of file"),
])
def test_config_fields_of_the_wrong_type(tmp_path, edit, says):
    """A config's names, weight references and paths are text: a number or a list is refused naming the field,
    never turned into a name or a path (`path: 3` used to look for a file called 3)."""
    data = yaml.safe_load(VAR.source.read_text())
    data.update(edit)
    with pytest.raises(ConfigError) as e:
        parse_config(data, tmp_path / "t.yaml")
    assert says in str(e.value), str(e.value)


def test_model_section_good_kinds_pass():
    """YAML as the released configs write it: a float written with a dot, an int where a float is due (Infinity's
    `mlp_ratio: 4`), null for "the default"."""
    parse_config(yaml.safe_load("{name: x, family: var, model: {depth: 16, norm_eps: 1.0e-6, patch_nums: [1, 2], "
                                "shared_aln: false, width: null}}"))
    parse_config(yaml.safe_load("{name: y, family: infinity, model: {mlp_ratio: 4, norm_eps: 1.0e-6, "
                                "drop_rate: anything, decoder_ch_mult: [1, 2]}}"))


@pytest.mark.parametrize("section,says", [
    ({"rescale": "no"}, "SSG rescale must be true or false"), ({"enabled": "no"}, "SSG enabled must be true or false"),
    ({"scales": [True, 9]}, "SSG scales start must be a whole number"), ({"scales": [2.0, 9]}, "write 2, not 2.0"),
    ({"beta": ["0.5"] * 10}, "SSG beta list value must be a number"), ({"beta": True}, "SSG beta"),
])
def test_ssg_section_types(section, says):
    """A config's or a job's `ssg:` section, and ssgen.SSG(...) from Python (the same checks)."""
    with pytest.raises(ConfigError, match=says):
        ssg_from_config(section)
    if "enabled" not in section:
        with pytest.raises(ConfigError, match=says):
            SSG(**section)


# ----------------------------------------------------------------------------------------------
# CSV: cells are text, parsed strictly
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell,value", [
    ("017", 17), ("-3", -3), ("0.5", 0.5), ("1e3", 1000.0), ("true", True), ("False", False),
    ("1,2,3", [1, 2, 3]), ("0.5, 1", [0.5, 1]), ("{beta: 0.2}", {"beta": 0.2}), ("[1, 2]", [1, 2]),
    ("1:30", "1:30"), ("0x10", "0x10"), ("yes", "yes"), ("1_000", "1_000"), ("null", "null"),
])
def test_csv_cells_parse_strictly(cell, value):
    got = parse_cell(cell)
    assert got == value and type(got) is type(value), got


def test_csv_jobs(tmp_path):
    f = tmp_path / "j.csv"
    f.write_text('class,seed,cfg\n3,017,"1,2,3,4,5,6,7,8,9,10"\n4,,2\n')
    a, b = read_jobs(f, 100, VAR)
    assert (a.cls, a.seed, a.overrides) == (3, 17, {"cfg": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]})
    assert (b.cls, b.seed, b.overrides) == (4, 101, {"cfg": 2})
    validate_jobs([a, b], VAR)
    inf = load_config("infinity-2b")
    f.write_text("prompt,negative_prompt,pn\n a fox ,42,0.25M\n")
    (j,) = read_jobs(f, 0, inf)
    assert j.prompt == " a fox " and j.overrides == {"negative_prompt": "42", "pn": "0.25M"}  # text stays text


@pytest.mark.parametrize("row,says", [
    ("3,1:30", "seed must be a whole number"),  # YAML would read 90
    ("3.0,1", "class must be a whole number >= 0, got 3.0 (write 3, not 3.0)"),
    ("true,1", "class must be a whole number"),
    ("0x10,1", "class must be a whole number"),
])
def test_csv_cells_of_the_wrong_type(tmp_path, row, says):
    f = tmp_path / "j.csv"
    f.write_text("class,seed\n" + row + "\n")
    with pytest.raises(ConfigError, match=rf"j\.csv:2: {says}".replace("(", r"\(").replace(")", r"\)")):
        read_jobs(f, 0, VAR)


# ----------------------------------------------------------------------------------------------
# seed + i past 2**64-1 names the seed the user gave
# ----------------------------------------------------------------------------------------------

OVERFLOW = (f"seed {MAX_SEED} with 2 images needs seeds up to {MAX_SEED + 1}, past 2**64-1; "
            f"pick a seed <= {MAX_SEED - 1}")


def test_seed_overflow_api():
    with pytest.raises(ConfigError) as e:
        resolve(VAR, classes=[1, 2], seed=MAX_SEED)
    assert str(e.value) == OVERFLOW
    assert resolve(VAR, classes=[1], seed=MAX_SEED).seeds == (MAX_SEED,)


def test_seed_overflow_batch(tmp_path):
    with pytest.raises(ConfigError) as e:
        jobs_from_flags("0-1", 1, None, 1, MAX_SEED)
    assert str(e.value) == OVERFLOW
    f = tmp_path / "j.jsonl"
    f.write_text('{"class": 1}\n{"class": 2}\n')
    with pytest.raises(ConfigError) as e:
        read_jobs(f, MAX_SEED, VAR)
    assert str(e.value) == OVERFLOW
    f.write_text('{"class": 1}\n{"class": 2, "seed": 7}\n')  # only seed + 0 is derived: it fits
    assert [j.seed for j in read_jobs(f, MAX_SEED, VAR)] == [MAX_SEED, 7]
