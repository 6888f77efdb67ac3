"""Text files a user gives (a model config, a job file, a prompts file) that are binary, in another encoding
or a folder end in one `error:` line naming the file and what was expected, exit 2, never a traceback. Every
check runs the CLI in this process and fails before any weights load."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import one_line_error, ssgen_here

PKG = Path(__file__).resolve().parents[2] / "ssgen"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"


def test_a_folder_given_as_model_lists_its_configs(tiny_var, tmp_path):
    folder = tiny_var.parent
    r = ssgen_here("generate", "-m", str(folder), "-c", "1", "-o", str(tmp_path / "x.png"))
    one_line_error(r, f"{folder} is a folder; pass one of its configs: {tiny_var}")
    r = ssgen_here("models", "path", str(tmp_path))
    line = one_line_error(r, f"{tmp_path} is a folder with no YAML config in it")
    assert "unknown model" not in line


def test_a_checkpoint_given_as_model_config(tiny_var, tmp_path):
    """`-m transformer.pth` (a torch zip) and a file of random bytes: binary, not a model config."""
    r = ssgen_here("generate", "-m", str(tiny_var.parent / "transformer.pth"), "-c", "1", "-o", str(tmp_path / "x.png"))
    one_line_error(r, "transformer.pth is a zip archive, such as a PyTorch checkpoint, not a model config",
                   "pass a registered model name")
    raw = tmp_path / "model.pth"
    raw.write_bytes(bytes(range(256)) * 4)
    one_line_error(ssgen_here("models", "path", str(raw)), f"{raw} is binary data, not a model config")


def test_a_yaml_config_that_is_not_utf8(tiny_var, tmp_path):
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(tiny_var.read_bytes().replace(b"description: ", b"description: caf\xe9 ", 1))
    offset = latin1.read_bytes().index(b"\xe9")
    line = latin1.read_bytes()[:offset].count(b"\n") + 1
    r = ssgen_here("generate", "-m", str(latin1), "-c", "1", "-o", str(tmp_path / "x.png"))
    one_line_error(r, f"model config {latin1} is not UTF-8 text (byte 0xe9 on line {line}, at offset {offset})",
                   "save it as UTF-8")


@pytest.mark.parametrize("name, content, needle", [
    ("image.png", PNG, "image.png is a PNG image, not a job file"),
    ("jobs.csv", b"class,seed\n1,0\n# caf\xe9\n",
     "job file {path} is not UTF-8 text (byte 0xe9 on line 3, at offset 20)"),
    ("jobs.yaml", "- class: 1\n".encode("utf-16"), "job file {path} is UTF-16 text; save it as UTF-8"),
])
def test_job_files_that_are_not_utf8_text(tiny_var, tmp_path, name, content, needle):
    jobs = tmp_path / name
    jobs.write_bytes(content)
    r = ssgen_here("batch", "-m", str(tiny_var), "--jobs", str(jobs), "--out", str(tmp_path / "out"))
    one_line_error(r, needle.format(path=jobs))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("content, needle", [
    (b"a red fox\nun caf\xe9\n", "prompts file {path} is not UTF-8 text (byte 0xe9 on line 2, at offset 16)"),
    (bytes(range(256)), "{path} is binary data, not a prompts file"),
])
def test_prompts_files_that_are_not_utf8_text(tiny_inf, tmp_path, content, needle):
    prompts = tmp_path / "prompts.txt"
    prompts.write_bytes(content)
    r = ssgen_here("batch", "-m", str(tiny_inf), "--prompts-file", str(prompts), "--out", str(tmp_path / "out"))
    one_line_error(r, needle.format(path=prompts))


def test_a_utf8_csv_with_a_byte_order_mark_reads(tiny_var, tmp_path):
    """Spreadsheet programs write UTF-8 CSV with a byte-order mark: it is no part of the first column's name."""
    from ssgen.batch import read_jobs
    from ssgen.config import read_config

    jobs = tmp_path / "jobs.csv"
    jobs.write_bytes("\ufeffclass,seed\n7,3\n".encode())
    assert [(j.cls, j.seed) for j in read_jobs(jobs, config=read_config(tiny_var))] == [(7, 3)]


def test_every_text_file_goes_through_read_text():
    """ssgen reads text files through ssgen.textfile.read_text only (never Path.read_text or json.load of an open
    file), so that none of them can end in a UnicodeDecodeError's traceback."""
    found = [f"{p.relative_to(PKG)}:{n}: {line.strip()}" for p in PKG.rglob("*.py") if p.name != "textfile.py"
             for n, line in enumerate(p.read_text().splitlines(), 1) if re.search(r"\.read_text\(|json\.load\(", line)]
    assert found == []
