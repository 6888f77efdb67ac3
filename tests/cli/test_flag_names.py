"""An error names an option as its user wrote it: the flag (`--top-k`) for a value typed on the command line,
the field (`top_k`) for a Python keyword, a job file's field or a config's `defaults:`, with where it was
written. One mechanism: the checks raise `OptionError(field, ...)`, the CLI's `friendly` says the flag."""

from __future__ import annotations

import json

import pytest
import yaml
from helpers import ssgen_here

from ssgen.config import load_config
from ssgen.errors import ConfigError
from ssgen.request import resolve

MAX_SEED = 2**64 - 1
OFFLINE = {"HF_HUB_OFFLINE": "1"}  # every case fails before any weights; never the network if one did not


def one_error(r) -> str:
    assert r.exit_code == 2 and "Traceback" not in r.stderr, (r.stdout, r.stderr)
    line = r.stderr.strip()
    assert line.startswith("error: ") and "\n" not in line, line
    return line


@pytest.mark.parametrize("model,flags,options,flag", [
    ("var-d16", ["-c", "1", "--top-k", "-1"], {"top_k": -1}, "--top-k"),
    ("var-d16", ["-c", "1", "--cfg", "1,2"], {"cfg": [1.0, 2.0]}, "--cfg"),
    ("var-d16", ["-c", "1", "--top-p", "2"], {"top_p": 2.0}, "--top-p"),
    ("hart-0.7b-1024px", ["-p", "x", "--negative-prompt", "blur"], {"negative_prompt": "blur"}, "--negative-prompt"),
    ("infinity-2b", ["-p", "x", "--pn", "2M"], {"pn": "2M"}, "--pn"),
    ("infinity-2b", ["-p", "x", "--tau", "0"], {"tau": 0.0}, "--tau"),
])
def test_cli_names_the_flag_the_api_the_field(model, flags, options, flag):
    line = one_error(ssgen_here("generate", "-m", model, *flags, env=OFFLINE))
    field = flag[2:].replace("-", "_")
    assert line.startswith(f"error: {flag} "), line
    assert "_" not in line.split(";")[0], line  # no field name (the model's list of options may follow)
    cond = {"classes": [1]} if model.startswith("var") else {"prompts": ["x"]}
    with pytest.raises(ConfigError) as e:
        resolve(load_config(model), **cond, options=options)
    assert str(e.value).startswith(f"{field} ") and "--" not in str(e.value), str(e.value)


def test_a_config_default_keeps_its_field_and_file(tmp_path):
    """A bad value of the config's `defaults:` is not the user's flag, even from the CLI."""
    data = yaml.safe_load(load_config("var-d16").source.read_text())
    data["defaults"]["top_k"] = 2.0
    cfg = tmp_path / "t.yaml"
    cfg.write_text(yaml.safe_dump(data))
    line = one_error(ssgen_here("generate", "-m", str(cfg), "-c", "1", env=OFFLINE))
    assert f"{cfg}: defaults: top_k must be a whole number" in line and "--top-k" not in line, line


def test_batch_a_job_field_and_a_flag(tmp_path):
    """In a batch, a job file's value is the job's (its line, its field); a flag's value is the flag's."""
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(json.dumps({"class": 1}) + "\n" + json.dumps({"class": 2, "top_k": 2.5}) + "\n")
    out = str(tmp_path / "out")
    line = one_error(ssgen_here("batch", "-m", "var-d16", "--jobs", str(jobs), "--out", out, "--top-k", "3",
                                env=OFFLINE))
    assert "jobs.jsonl:2: top_k must be a whole number" in line and "--top-k" not in line, line
    jobs.write_text(json.dumps({"class": 1}) + "\n")
    line = one_error(ssgen_here("batch", "-m", "var-d16", "--jobs", str(jobs), "--out", out, "--top-p", "3",
                                env=OFFLINE))
    assert line.startswith("error: --top-p must be") and "jobs.jsonl" not in line, line
    line = one_error(ssgen_here("batch", "-m", "var-d16", "--classes", "1", "--out", out, "-b", "0", env=OFFLINE))
    assert line.startswith("error: --batch-size must be at least 1"), line


def test_seed_overflow_names_the_seed_typed(tmp_path):
    """`--seed MAX -n 2`: the error is about --seed MAX and the images it needs, not a seed MAX + 1 never typed."""
    want = (f"error: --seed {MAX_SEED} with 2 images needs seeds up to {MAX_SEED + 1}, past 2**64-1; "
            f"pick a seed <= {MAX_SEED - 1}")
    assert one_error(ssgen_here("generate", "-m", "var-d16", "-c", "1", "-n", "2", "--seed", str(MAX_SEED),
                                env=OFFLINE)) == want
    assert one_error(ssgen_here("batch", "-m", "var-d16", "--classes", "1-2", "--out", str(tmp_path / "o"),
                                "--seed", str(MAX_SEED), env=OFFLINE)) == want
    assert not (tmp_path / "o").exists()
