"""Text from files and arguments never drives the terminal: control characters are shown as escapes and rich markup
stays literal (`ssgen.terminal.safe`), in `ssgen info`, in a config's name wherever it shows (load line, progress
bar, models list), in errors and notes, and in the paths ssgen reports."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from helpers import ssgen_here
from PIL import Image
from rich.console import Console

from ssgen.output import save_png
from ssgen.terminal import safe

RAW = ("\x1b", "\x07", "\x9b", "\r")  # ESC, BEL, C1 CSI, carriage return: none may reach the terminal as is
EVIL = "[/dim][link=http://x]evil"  # a `[/dim]` closing nothing was a traceback; `[link=...]` a live link
CSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # rich's own styles and cursor moves (a forced terminal)


def raw_controls(text: str) -> list[str]:
    return [c for c in RAW if c in text]


def test_safe_shows_control_characters_and_escapes_markup():
    assert safe("a\x1b]0;PWNED\x07b\x1b[2J\x9b\r\n\t\x7f") == "a\\x1b]0;PWNED\\x07b\\x1b[2J\\x9b\\r\\n\\t\\x7f"
    assert safe("café 漢字 😀 ok") == "café 漢字 😀 ok"  # ordinary unicode is kept
    assert safe(EVIL, markup=False) == EVIL
    console = Console(emoji=False, color_system=None, width=200)
    with console.capture() as cap:
        console.print(f"[bold]{safe(EVIL + ' :smile: x[/]')}[/]", highlight=False)
    assert cap.get() == EVIL + " :smile: x[/]\n"


def test_info_of_a_crafted_png_prints_no_control_characters(tmp_path):
    p = tmp_path / "crafted.png"
    save_png(Image.new("RGB", (8, 8)), p, {"model": "x\x1b]0;PWNED\x07", "prompt": "\x1b[2J" + EVIL, "seed": "\x9b2J",
                                           "rng": "per-image", "\x1b]8;;http://x\x1b\\key": "\rhidden",
                                           "grid_note": {"a": "\x1b[2J"}})
    r = ssgen_here("info", str(p))
    assert r.exit_code == 0, r.output
    assert raw_controls(r.output) == [], r.output
    for shown in ("x\\x1b]0;PWNED\\x07", "\\x1b[2J" + EVIL, "\\x1b]8;;http://x\\x1b\\key", "\\rhidden",
                  "seed \\x9b2J"):  # nothing lost: every value is there, escaped (the last one: the reproduce line)
        assert shown in r.stdout, (shown, r.stdout)
    r = ssgen_here("info", str(p), "--json")
    assert r.exit_code == 0 and raw_controls(r.output) == []
    assert json.loads(r.stdout)["model"] == "x\x1b]0;PWNED\x07"  # the JSON keeps the exact value


@pytest.fixture
def evil_model(tiny_var, tmp_path):
    cfg = yaml.safe_load(tiny_var.read_text())
    cfg["name"] = cfg["description"] = EVIL
    cfg["weights"] = {role: {"path": str(tiny_var.parent / spec["path"])} for role, spec in cfg["weights"].items()}
    p = tmp_path / "configs" / "[bold]evil.yaml"
    p.parent.mkdir()
    p.write_text(yaml.safe_dump(cfg))
    return p


def test_a_config_name_with_markup_loads_generates_and_lists_literally(evil_model, tmp_path, monkeypatch):
    import ssgen.config
    from ssgen.cli.app import err

    monkeypatch.setattr(err, "_force_terminal", True)  # as on a terminal: the load line and progress bars show
    out = tmp_path / "g.png"
    r = ssgen_here("generate", "-m", str(evil_model), "-c", "1", "-o", str(out), "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert f"loading {EVIL} (" in CSI.sub("", r.stderr)
    assert "\x1b]8;" not in r.stderr  # no hyperlink was planted
    r = ssgen_here("info", str(out))
    assert r.exit_code == 0 and re.search(r"\bmodel +" + re.escape(EVIL), r.stdout), r.output
    monkeypatch.setattr(ssgen.config, "config_dir", lambda: evil_model.parent)
    r = ssgen_here("models", "list")
    assert r.exit_code == 0, r.output
    assert "[bold]evil" in r.stdout and EVIL in r.stdout
    r = ssgen_here("models", "path", str(evil_model))
    assert r.exit_code == 0, r.output


def test_errors_notes_and_paths_show_control_characters_as_escapes(tiny_var, tmp_path, capsys):
    from ssgen.cli.plan import note

    r = ssgen_here("generate", "-m", str(tiny_var), "-c", "1", "-o", str(tmp_path / "x\x1b[2J.jpg"))
    assert r.exit_code == 2 and raw_controls(r.stderr) == [] and "x\\x1b[2J.jpg must end in .png" in r.stderr
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(json.dumps({"class": 1, "\x1b]0;PWNED\x07": 1}) + "\n")
    r = ssgen_here("batch", "-m", str(tiny_var), "--jobs", str(jobs), "--out", str(tmp_path / "run"))
    assert r.exit_code == 2 and raw_controls(r.stderr) == [] and "\\x1b]0;PWNED\\x07" in r.stderr, r.stderr
    note(f"prompt {EVIL}\x1b[2J was shortened")
    shown = capsys.readouterr().err
    assert raw_controls(shown) == [] and f"prompt {EVIL}\\x1b[2J was shortened" in shown
    out = tmp_path / "a\x1b[2J\rb.png"
    r = ssgen_here("generate", "-m", str(tiny_var), "-c", "1", "-o", str(out), "--device", "cpu")
    assert r.exit_code == 0 and out.exists(), r.output
    assert raw_controls(r.stdout) == [] and "a\\x1b[2J\\rb.png (1 image(s)" in r.stdout
