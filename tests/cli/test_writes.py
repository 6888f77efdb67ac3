"""Every write is safe: atomic with ordinary permissions, never over an existing file unless asked, in
bounded memory however many images, and every refusal is one `error:` line (exit 2) given before any
model loads, leaving no file behind. On the tiny random-weight VAR."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest
import yaml
from helpers import ssgen, ssgen_here
from PIL import Image

from ssgen.output import GRID_LIMIT


def one_line_error(r, needle: str) -> str:
    """Exit code 2, a single `error: ...` line on stderr that contains `needle`, no traceback."""
    code = r.returncode if hasattr(r, "returncode") else r.exit_code
    assert code == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.stderr
    assert needle in r.stderr, r.stderr
    return lines[0]


def no_tmp(*folders):
    for d in folders:
        assert not [p.name for p in d.glob(".*.tmp")], list(d.iterdir())


def mode(p) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


@pytest.fixture
def unloadable(tiny_var, tmp_path):
    """The tiny VAR's config with weights that do not exist: any check that comes after loading would fail
    with a weights error instead of the message a test expects."""
    cfg = yaml.safe_load(tiny_var.read_text())
    cfg["weights"] = {role: {"path": str(tmp_path / f"absent-{role}.pth")} for role in cfg["weights"]}
    p = tmp_path / "unloadable.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


# ----------------------------------------------------------------------------------------------
# permissions
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o002, 0o022])
def test_every_write_has_the_permissions_of_a_plain_write(tiny_var, tmp_path, monkeypatch, umask):
    """PNGs (grid, --each, --save-scales, batch images), run.json, manifest.jsonl, the .npz and the sha256
    record all end up 0666 & ~umask, as `open(path, "w")` makes them (mkstemp made PNGs 0600)."""
    from ssgen.weights import verify

    old = os.umask(umask)
    try:
        r = ssgen_here("generate", "-m", str(tiny_var), "-c", "1", "-c", "2", "-o", str(tmp_path / "g" / "g.png"),
                       "--each", "--save-scales", str(tmp_path / "scales"))
        assert r.exit_code == 0, r.stderr
        r = ssgen_here("batch", "-m", str(tiny_var), "--classes", "3", "--per-class", "2", "--out",
                       str(tmp_path / "run"))
        assert r.exit_code == 0, r.stderr
        r = ssgen_here("pack-npz", str(tmp_path / "run"))
        assert r.exit_code == 0, r.stderr
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
        monkeypatch.delenv("HF_ASSETS_CACHE", raising=False)
        verify._remember_verified(tmp_path / "run.npz", "0" * 64)
        record = verify._record_path()
        with open(tmp_path / "plain.txt", "w"):
            pass
    finally:
        os.umask(old)
    expected = 0o666 & ~umask
    assert mode(tmp_path / "plain.txt") == expected
    files = [*(tmp_path / "g").iterdir(), *(tmp_path / "scales").iterdir(), *(tmp_path / "run").iterdir(),
             tmp_path / "run.npz", record]
    assert len(files) == 3 + 2 * 5 + 4 + 2  # grid + 2 --each; 2 x (4 scales + strip); 2 images + 2 records; npz, sha
    assert {p.name: oct(mode(p)) for p in files} == {p.name: oct(expected) for p in files}
    assert tmp_path.joinpath("hf").is_dir() and record.is_file()
    no_tmp(tmp_path / "g", tmp_path / "scales", tmp_path / "run", tmp_path, record.parent)


def test_replacing_a_file_keeps_its_mode(tmp_path):
    """--overwrite (and batch's regenerated images) replace a file as writing into it would: its mode stays."""
    from ssgen.atomic import write_atomic
    from ssgen.errors import SSGenError

    p = tmp_path / "f.json"
    p.write_text("old")
    p.chmod(0o640)
    write_atomic(p, b"new")
    assert p.read_text() == "new" and mode(p) == 0o640
    with pytest.raises(SSGenError, match="already exists"):
        write_atomic(p, b"newer", overwrite=False)
    assert p.read_text() == "new"
    no_tmp(tmp_path)


# ----------------------------------------------------------------------------------------------
# pack-npz
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def run_dir(tiny_var, tmp_path_factory):
    out = tmp_path_factory.mktemp("packed") / "run"
    r = ssgen_here("batch", "-m", str(tiny_var), "--classes", "3-4", "--out", str(out))
    assert r.exit_code == 0, r.stderr
    return out


def test_pack_npz_targets(run_dir, tmp_path):
    # a missing folder is created, as -o of generate does; a name without .npz gets it, as numpy.savez does
    r = ssgen("pack-npz", str(run_dir), "-o", str(tmp_path / "new" / "deeper" / "fid"))
    assert r.returncode == 0, r.stderr
    target = tmp_path / "new" / "deeper" / "fid.npz"
    assert str(target) in r.stdout and np.load(target)["arr_0"].shape == (2, 64, 64, 3)
    before = target.read_bytes()
    # an existing file: refused, unchanged, until --overwrite
    one_line_error(ssgen_here("pack-npz", str(run_dir), "-o", str(target)), "--overwrite")
    assert target.read_bytes() == before
    r = ssgen_here("pack-npz", str(run_dir), "-o", str(target), "--overwrite")
    assert r.exit_code == 0 and target.read_bytes() == before  # same images, same bytes
    # an existing folder: a hint with a file name in it
    one_line_error(ssgen_here("pack-npz", str(run_dir), "-o", str(tmp_path / "new")), f"{tmp_path / 'new'}/run.npz")
    # a place that cannot be written (a path under a file: read-only folders do not stop root)
    (tmp_path / "afile").write_text("x")
    line = one_line_error(ssgen("pack-npz", str(run_dir), "-o", str(tmp_path / "afile" / "x.npz")), "afile")
    assert "not a folder" in line and "-o" in line
    no_tmp(tmp_path, tmp_path / "new" / "deeper", run_dir.parent)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "new"]


def test_pack_npz_read_only_folder(run_dir, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as root: permissions do not stop writes")
        one_line_error(ssgen_here("pack-npz", str(run_dir), "-o", str(ro / "x.npz")), "permission denied")
        assert not list(ro.iterdir())
    finally:
        ro.chmod(0o700)


def test_pack_npz_damaged_inputs(run_dir, tmp_path):
    import shutil

    d = tmp_path / "run"
    shutil.copytree(run_dir, d)
    (d / "000001.png").write_bytes((d / "000001.png").read_bytes()[:100])
    one_line_error(ssgen_here("pack-npz", str(d)), "000001.png is damaged")
    (d / "run.json").write_text("{not json")
    one_line_error(ssgen_here("pack-npz", str(d)), "run.json is damaged; give the image count with --num")
    one_line_error(ssgen_here("pack-npz", str(d), "--num", "0"), "--num must be at least 1")
    one_line_error(ssgen_here("pack-npz", str(tmp_path / "nothing")), "does not exist")
    no_tmp(tmp_path)
    assert not (tmp_path / "run.npz").exists()


def test_pack_npz_reads_each_image_once_as_a_viewer_shows_it(run_dir, tmp_path, monkeypatch):
    """Image 0 is 16-bit gray (scaled by 1/257, not clipped to white), image 1 has transparent pixels (on white,
    with a note); each file is decoded once."""
    import shutil

    from PIL import ImageFile

    d = tmp_path / "run"
    shutil.copytree(run_dir, d)
    a16 = np.full((64, 64), 30000, np.uint16)
    Image.fromarray(a16).save(d / "000000.png")
    rgba = np.asarray(Image.open(run_dir / "000001.png").convert("RGBA")).copy()
    rgba[:8, :, 3] = 0
    Image.fromarray(rgba, "RGBA").save(d / "000001.png")
    decoded = []
    real = ImageFile.ImageFile.load

    def spy(self):
        if self.tile:
            decoded.append(os.path.basename(getattr(self, "filename", "")))
        return real(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    r = ssgen_here("pack-npz", str(d), "-o", str(tmp_path / "x.npz"))
    assert r.exit_code == 0, r.stderr
    assert sorted(decoded) == ["000000.png", "000001.png"], decoded
    arr = np.load(tmp_path / "x.npz")["arr_0"]
    assert (arr[0] == 117).all()  # round(30000 / 257)
    assert (arr[1, :8] == 255).all() and np.array_equal(arr[1, 8:], rgba[8:, :, :3])
    note = f"note: image {d / '000001.png'} has transparent pixels: composited on a white background"
    assert note in " ".join(r.stderr.split())  # as printed, without a narrow console's line breaks


def test_pack_npz_refuses_a_too_large_image_before_decoding_it(run_dir, tmp_path):
    import shutil

    from helpers import png_header

    d = tmp_path / "run"
    shutil.copytree(run_dir, d)
    png_header(d / "000001.png", 12000, 12000)  # claims 144 megapixels, holds none
    line = one_line_error(ssgen_here("pack-npz", str(d)), "000001.png is too large: 12000x12000")
    assert "at most 4096 px a side" in line
    png_header(d / "000001.png", 20000, 20000)  # past PIL's own decompression-bomb limit: refused by Image.open
    assert "at most 4096 px a side" in one_line_error(ssgen_here("pack-npz", str(d)), "000001.png is too large")
    no_tmp(tmp_path)
    assert not (tmp_path / "run.npz").exists()


# ----------------------------------------------------------------------------------------------
# large requests: chunks, written as they go, bounded memory, grid limit
# ----------------------------------------------------------------------------------------------


def test_chunked_equals_one_batch(tiny_var, tmp_path, monkeypatch):
    """-b only changes how many images share a forward pass: image i keeps seed + i and its pixels, and no
    generate call ever holds more than -b images (what bounds memory)."""
    from ssgen.pipeline import Pipeline

    sizes = []
    real = Pipeline.run

    def spy(self, request, **kw):
        sizes.append(request.size)
        return real(self, request, **kw)

    monkeypatch.setattr(Pipeline, "run", spy)
    common = ["-m", str(tiny_var), "-c", "5", "-c", "9", "-n", "3", "--seed", "11", "--each", "--json",
              "--device", "cpu"]
    one = json.loads(ssgen_here("generate", *common, "-b", "6", "-o", str(tmp_path / "one.png")).stdout)
    assert sizes == [6]
    sizes.clear()
    chunked = json.loads(ssgen_here("generate", *common, "-b", "4", "-o", str(tmp_path / "ch.png")).stdout)
    assert sizes == [4, 2]
    assert [s["seed"] for s in chunked["images"]] == list(range(11, 17)) == [s["seed"] for s in one["images"]]
    assert [s["class"] for s in chunked["images"]] == [5, 5, 5, 9, 9, 9]
    for i in range(6):
        a, b = Image.open(tmp_path / f"one-{i:03d}.png"), Image.open(tmp_path / f"ch-{i:03d}.png")
        assert a.tobytes() == b.tobytes(), i
    assert Image.open(tmp_path / "one.png").tobytes() == Image.open(tmp_path / "ch.png").tobytes()
    # the default is 8 at a time
    sizes.clear()
    assert ssgen_here("generate", "-m", str(tiny_var), "-c", "1", "-n", "10", "-o", str(tmp_path / "d.png"),
                      "--device", "cpu").exit_code == 0
    assert sizes == [8, 2]


def test_rng_batch_is_one_batch_unless_split(tiny_var, tmp_path):
    """--rng batch reproduces the official code's batch: by default all images are that one batch; with -b
    each chunk is its own batch, seeded with its first image's seed, and the PNGs say so."""
    base = ["generate", "-m", str(tiny_var), "-c", "2", "-n", "10", "--rng", "batch", "--json", "--device", "cpu"]
    whole = json.loads(ssgen_here(*base, "-o", str(tmp_path / "a.png")).stdout)["images"]
    assert {(s["seed"], s["batch_size"]) for s in whole} == {(0, 10)}
    split = json.loads(ssgen_here(*base, "-b", "8", "-o", str(tmp_path / "b.png")).stdout)["images"]
    assert [(s["seed"], s["batch_size"], s["batch_index"]) for s in split[7:]] == [(0, 8, 7), (8, 2, 0), (8, 2, 1)]


def test_images_are_written_as_they_go(tiny_var, tmp_path, monkeypatch):
    """A run that fails in its third chunk keeps the --each PNGs of the first two, and leaves no grid,
    no placeholder and no temporary file."""
    from ssgen.errors import SSGenError
    from ssgen.pipeline import Pipeline

    calls = []
    real = Pipeline.run

    def failing(self, *args, **kw):
        calls.append(1)
        if len(calls) == 3:
            raise SSGenError("out of memory (simulated)")
        return real(self, *args, **kw)

    monkeypatch.setattr(Pipeline, "run", failing)
    r = ssgen_here("generate", "-m", str(tiny_var), "-c", "1", "-n", "10", "-b", "4", "--each", "-o",
                   str(tmp_path / "g.png"), "--device", "cpu")
    one_line_error(r, "simulated")
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"g-{i:03d}.png" for i in range(8)]


def test_more_than_a_grid_holds(tiny_var, unloadable, tmp_path):
    """Past GRID_LIMIT images: refused before any model loads (the config's weights do not even exist),
    with the way out; with --each, one PNG per image and no grid (nor an empty placeholder)."""
    n = str(GRID_LIMIT + 1)
    line = one_line_error(ssgen("generate", "-m", str(unloadable), "-c", "1", "-n", n, "-o", str(tmp_path / "g.png")),
                          f"{GRID_LIMIT + 1} images are too many for one grid (at most {GRID_LIMIT})")
    assert "--each" in line and "ssgen batch" in line
    line = one_line_error(ssgen_here("compare", "-m", str(unloadable), "-c", "1", "-c", "2", "-n", "17",
                                     "--ssg-beta", "0.5", "-o", str(tmp_path / "c.png")), "too many")
    assert "34 images x 2 settings" in line and "ssgen batch" in line
    assert not list(tmp_path.glob("*.png"))
    r = ssgen_here("generate", "-m", str(tiny_var), "-c", "1", "-n", n, "--each", "-o", str(tmp_path / "g.png"),
                   "--device", "cpu", "-b", "33")
    assert r.exit_code == 0, r.stderr
    assert sorted(p.name for p in tmp_path.glob("g*.png")) == [f"g-{i:03d}.png" for i in range(GRID_LIMIT + 1)]
    assert "no grid" in r.stdout


# ----------------------------------------------------------------------------------------------
# nothing overwritten unless asked
# ----------------------------------------------------------------------------------------------


def test_default_names_never_collide(tiny_var, tmp_path, monkeypatch):
    """Runs started in the same second get -2, -3 ... ; a default name whose --each files exist is skipped."""
    import time

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(time, "strftime", lambda fmt, *a: "20260101-000000")
    outs = []
    for cls in ("1", "2", "3"):
        r = ssgen_here("generate", "-m", str(tiny_var), "-c", cls, "--json", "--device", "cpu")
        assert r.exit_code == 0, r.stderr
        outs.append(json.loads(r.stdout)["files"][0])
    assert outs == ["outputs/var-tiny-20260101-000000.png", "outputs/var-tiny-20260101-000000-2.png",
                    "outputs/var-tiny-20260101-000000-3.png"]
    assert [json.loads(ssgen_here("info", o, "--json").stdout)["images"][0]["class"] for o in outs] == [1, 2, 3]
    (tmp_path / "outputs" / "var-tiny-20260101-000000-4-001.png").write_text("someone else's")
    r = ssgen_here("generate", "-m", str(tiny_var), "-c", "1", "-n", "2", "--each", "--json", "--device", "cpu")
    assert json.loads(r.stdout)["files"][0] == "outputs/var-tiny-20260101-000000-5.png"


def test_reserved_names_are_exclusive(tmp_path, monkeypatch):
    """Two runs choosing a default name at the same moment: the claim is exclusive (O_EXCL), so they differ;
    releasing an unused claim leaves nothing."""
    import time

    from ssgen.output import plan_outputs

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(time, "strftime", lambda fmt, *a: "T")
    a = plan_outputs(None, "m", "", 1, grid=True, each=False, overwrite=False)
    b = plan_outputs(None, "m", "", 1, grid=True, each=False, overwrite=False)
    assert (a.grid.name, b.grid.name) == ("m-T.png", "m-T-2.png")
    a.release()
    b.release()
    assert not list((tmp_path / "outputs").iterdir())


def test_existing_files_need_overwrite(tiny_var, unloadable, tmp_path):
    """An existing -o, --each file or --save-scales file: an error naming --overwrite, before any model loads
    (the config's weights do not exist), with the file untouched; --overwrite replaces them."""
    g = tmp_path / "g.png"
    g.write_bytes(b"precious")
    line = one_line_error(ssgen("generate", "-m", str(unloadable), "-c", "1", "-o", str(g)), "--overwrite")
    assert str(g) in line and "already exists" in line
    assert g.read_bytes() == b"precious"
    one_line_error(ssgen_here("compare", "-m", str(unloadable), "-c", "1", "-o", str(g)), "--overwrite")
    (tmp_path / "e-001.png").write_bytes(b"precious")
    one_line_error(ssgen_here("generate", "-m", str(unloadable), "-c", "1", "-n", "2", "--each", "-o",
                              str(tmp_path / "e.png")), "e-001.png already exists")
    assert not (tmp_path / "e.png").exists()  # the claim on the grid's name was given back
    scales = tmp_path / "scales"
    scales.mkdir()
    (scales / "ssg-000-k02.png").write_bytes(b"precious")
    one_line_error(ssgen_here("generate", "-m", str(unloadable), "-c", "1", "-o", str(tmp_path / "s.png"),
                              "--save-scales", str(scales)), "--save-scales")
    assert not (tmp_path / "s.png").exists()
    # a failed load gives the claimed name back too
    r = ssgen_here("generate", "-m", str(unloadable), "-c", "1", "-o", str(tmp_path / "new.png"))
    assert r.exit_code == 2 and not (tmp_path / "new.png").exists()
    # --overwrite: all replaced
    r = ssgen_here("generate", "-m", str(tiny_var), "-c", "1", "-o", str(g), "--overwrite", "--save-scales",
                   str(scales), "--device", "cpu")
    assert r.exit_code == 0, r.stderr
    assert Image.open(g).size == (64, 64) and Image.open(scales / "ssg-000-k02.png").size == (64, 64)
    no_tmp(tmp_path, scales)


# ----------------------------------------------------------------------------------------------
# hints name the real flag; small things
# ----------------------------------------------------------------------------------------------


def test_hints_name_the_flag_that_chose_the_path(unloadable, tmp_path):
    (tmp_path / "afile").write_text("x")
    bad = str(tmp_path / "afile" / "sub")
    line = one_line_error(ssgen_here("generate", "-m", str(unloadable), "-c", "1", "-o", str(tmp_path / "g.png"),
                                     "--save-scales", bad), "choose another --save-scales")
    assert "choose another -o" not in line
    one_line_error(ssgen_here("batch", "-m", str(unloadable), "--classes", "1", "--out", bad), "choose another --out")
    one_line_error(ssgen_here("generate", "-m", str(unloadable), "-c", "1", "-o", bad + "/x.png"),
                   "choose another -o")
    assert not (tmp_path / "g.png").exists()


def test_check_run_folder_without_images_is_not_another_run(tmp_path):
    """A run that stopped before its first image (a bad job, a failed load) does not block its corrected retry."""
    from ssgen.batch import check_run_folder
    from ssgen.errors import SSGenError

    check_run_folder(tmp_path, {"count": 2, "options": {"cfg": "bad"}}, overwrite=False)
    check_run_folder(tmp_path, {"count": 2, "options": {"cfg": 1.5}}, overwrite=False)
    assert json.loads((tmp_path / "run.json").read_text())["options"] == {"cfg": 1.5}
    from ssgen.output import save_png

    save_png(Image.new("RGB", (4, 4)), tmp_path / "000000.png", {"index": 0})  # an image of a run (ssgen's settings)
    with pytest.raises(SSGenError, match=r"another run \(different options\)"):
        check_run_folder(tmp_path, {"count": 2, "options": {"cfg": 2.0}}, overwrite=False)
    (tmp_path / "run.json").write_text("{damaged")
    with pytest.raises(SSGenError, match="run.json is damaged"):
        check_run_folder(tmp_path, {"count": 2, "options": {"cfg": 2.0}}, overwrite=False)


def test_single_image_has_no_border_and_stderr_stays_empty(tiny_var, tmp_path):
    """One image is written as it is (no 2-px frame); a run on a non-terminal prints nothing on stderr (rich
    closed its hidden progress bar with an empty line; test_cli.test_generate_and_info checks it in a subprocess)."""
    from ssgen.output import grid

    r = ssgen_here("generate", "-m", str(tiny_var), "-c", "1", "-o", str(tmp_path / "one.png"), "--each")
    assert r.returncode == 0 and r.stderr == "", repr(r.stderr)
    assert Image.open(tmp_path / "one.png").tobytes() == Image.open(tmp_path / "one-000.png").tobytes()
    im = Image.new("RGB", (8, 8), (1, 2, 3))
    assert grid([im]).size == (8, 8)
    assert grid([im], col_labels=["a"]).size[0] == 8 + 4  # labelled: framed like any grid
    assert grid([im, im]).size == (2 * 8 + 3 * 2, 8 + 2 * 2)


def test_info_on_files_that_are_not_ssgen_pngs(tiny_var, tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    Image.new("RGB", (4, 4)).save(tmp_path / "photo.jpg")
    Image.new("RGB", (4, 4)).save(tmp_path / "plain.png")
    ok = tmp_path / "ok.png"
    assert ssgen_here("generate", "-m", str(tiny_var), "-c", "1", "-o", str(ok), "--device", "cpu").exit_code == 0
    (tmp_path / "cut.png").write_bytes(ok.read_bytes()[:200])
    cases = {"absent.png": "absent.png does not exist", "notes.txt": "is not an image",
             "photo.jpg": "is a JPEG image; ssgen keeps its settings in the PNGs it writes",
             "plain.png": "has no ssgen settings", "cut.png": "is a damaged PNG", ".": "is a folder"}
    for name, needle in cases.items():
        one_line_error(ssgen_here("info", str(tmp_path / name)), needle)
    r = ssgen("info", str(tmp_path / "notes.txt"))
    one_line_error(r, "is not an image")


@pytest.mark.parametrize("chunk, why", [
    ("{oops", "not JSON"),
    ("[1, 2]", "a JSON list, not a mapping"),
    ('"settings"', "a JSON string, not a mapping"),
    ("null", "a JSON null, not a mapping"),
    ('{"images": 5}', "`images` is not a list of mappings"),
    ('{"images": [{"seed": 1}, 3]}', "`images` is not a list of mappings"),
    ('{"grid": 3, "images": [{}]}', "`grid` is not a mapping"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"images": [{"ssg": ' + "[" * 200 + "]" * 200 + "}]}", "nested too deeply"),
])
def test_info_on_a_malformed_settings_chunk(tmp_path, chunk, why):
    """A settings chunk that is not ssgen's JSON mapping (edited, or written by another tool) is one line naming
    the file, for `ssgen info` and for a batch resume (whose image is then not complete)."""
    from PIL import PngImagePlugin

    from ssgen.batch import Job, is_complete

    info = PngImagePlugin.PngInfo()
    info.add_text("ssgen", chunk)
    p = tmp_path / "odd.png"
    Image.new("RGB", (4, 4)).save(p, pnginfo=info)
    for args in ((str(p),), (str(p), "--json")):
        one_line_error(ssgen_here("info", *args), f"{p} has a damaged ssgen settings chunk ({why})")
    assert not is_complete(p, Job(index=0, seed=1, cls=1))
