"""SSG on the command line (run in this process by Typer's runner): flags, `ssgen compare`, --save-scales,
bad values."""

from __future__ import annotations

import json

import pytest
from helpers import ssgen_here
from PIL import Image


def test_compare_three_labelled_columns(tiny_var, tmp_path):
    out = tmp_path / "cmp.png"
    r = ssgen_here("compare", "--model", str(tiny_var), "--class", "22", "--class", "980", "--ssg-beta", "0.5",
                   "--ssg-beta", "1.0", "-o", str(out))
    assert r.returncode == 0, r.stderr
    meta = json.loads(ssgen_here("info", str(out), "--json").stdout)
    assert meta["grid"]["cols"] == 3 and meta["grid"]["rows"] == 2
    assert meta["grid"]["columns"][0] == "no SSG"
    assert "beta=0.5" in meta["grid"]["columns"][1] and "beta=1" in meta["grid"]["columns"][2]
    cells = meta["images"]
    assert [c["ssg"] for c in cells[:3]][0] is None
    assert [c["ssg"]["beta"] for c in cells[1:3]] == [0.5, 1.0]
    assert [c["class"] for c in cells] == [22, 22, 22, 980, 980, 980]
    assert len({c["seed"] for c in cells[:3]}) == 1  # a row shares its seed
    w, h = Image.open(out).size
    assert w > 3 * 64 and h > 2 * 64


def test_compare_per_scale_list_stays_one_column(tiny_var, tmp_path):
    out = tmp_path / "cmp.png"
    r = ssgen_here("compare", "-m", str(tiny_var), "-c", "1", "--ssg-beta", "0,0,0.5,1", "-o", str(out), "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert len(summary["columns"]) == 2
    assert summary["images"][1]["ssg"]["beta"] == [0.0, 0.0, 0.5, 1.0]


def test_generate_ssg_flags_recorded(tiny_var, tmp_path):
    out = tmp_path / "g.png"
    r = ssgen_here("generate", "-m", str(tiny_var), "-c", "5", "--ssg-beta", "linear:1.0:0.2", "--ssg-scales", "1-3",
                   "--ssg-prior", "dse", "--dse-interp", "bicubic", "--dse-no-rescale", "-o", str(out))
    assert r.returncode == 0, r.stderr
    s = json.loads(ssgen_here("info", str(out), "--json").stdout)["images"][0]["ssg"]
    assert s == {"beta": "linear:1.0:0.2", "scales": [1, 3], "prior": "dse", "interp": "bicubic", "rescale": False}
    r = ssgen_here("generate", "-m", str(tiny_var), "-c", "5", "--no-ssg", "-o", str(out), "--overwrite")
    assert r.returncode == 0, r.stderr
    assert json.loads(ssgen_here("info", str(out), "--json").stdout)["images"][0]["ssg"] is None


def test_save_scales(tiny_var, tmp_path):
    d = tmp_path / "scales"
    r = ssgen_here("compare", "-m", str(tiny_var), "-c", "3", "-c", "4", "--ssg-beta", "1",
                   "-o", str(tmp_path / "c.png"), "--save-scales", str(d))
    assert r.returncode == 0, r.stderr
    for col in ("col0-", "col1-"):  # plain and guided
        for i in range(2):
            for k in range(4):
                assert (d / f"{col}{i:03d}-k{k:02d}.png").is_file()
            assert (d / f"{col}{i:03d}-scales.png").is_file()
    first, last = Image.open(d / "col1-000-k00.png"), Image.open(d / "col1-000-k03.png")
    assert first.size == last.size == (64, 64)
    assert first.tobytes() != last.tobytes()
    # the last partial image is the final image (same batch, so the same arithmetic)
    r = ssgen_here("generate", "-m", str(tiny_var), "-c", "3", "-c", "4", "--ssg-beta", "1",
                   "-o", str(tmp_path / "g.png"), "--each")
    assert Image.open(tmp_path / "g-000.png").tobytes() == last.tobytes()


@pytest.mark.parametrize("args, needle", [
    (["--ssg-prior", "gauss"], "unknown SSG prior 'gauss'; use one of: dse, bilinear, bicubic, nearest, area"),
    (["--dse-interp", "lanczos"], "unknown DSE interpolation 'lanczos'; use one of: bilinear, bicubic"),
    (["--ssg-scales", "2-9"], "outside this model's scales 0-3"),
    (["--ssg-scales", "3-1"], "start > end"),
    (["--ssg-scales", "x"], "malformed SSG scale range"),
    (["--ssg-beta", "0.1,0.2"], "2 values but this model has 4 scales"),
    (["--ssg-beta", "nan"], "finite"),
    (["--ssg-beta", "lots"], "malformed SSG beta 'lots'"),
])
@pytest.mark.parametrize("cmd", ["generate", "compare"])
def test_bad_ssg_values(tiny_var, tmp_path, cmd, args, needle):
    r = ssgen_here(cmd, "-m", str(tiny_var), "-c", "1", *args, "-o", str(tmp_path / "x.png"))
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.png").exists()


def test_range_including_scale_0_is_allowed(tiny_var, tmp_path):
    r = ssgen_here("generate", "-m", str(tiny_var), "-c", "1", "--ssg-scales", "0-3", "-o", str(tmp_path / "x.png"))
    assert r.returncode == 0, r.stderr
