"""ssgen.eval without the network: what SAMPLES and REF may be, how their images are read (order, batches,
streaming), their content keys and the stat memo, the checks made before any heavy work, and where the Inception
weights come from (found, downloaded from a loopback server, or a one-line error offline)."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from pathlib import Path

import numpy as np
import pytest
from eval_helpers import noise_images, write_folder, write_npz
from PIL import Image

import ssgen.eval as E
from ssgen.errors import SSGenError


def read_all(src: E.Source, batch_size: int) -> np.ndarray:
    E.identify(src, None)
    return np.concatenate(list(E.image_batches(src, batch_size)))


def batch_folder(d: Path, images: np.ndarray, count: int | None = None) -> Path:
    """What `ssgen batch` leaves: NNNNNN.png by index and run.json (its fields; `count` is what eval reads)."""
    write_folder(d, images, [f"{i:06d}.png" for i in range(len(images))])
    (d / "run.json").write_text(json.dumps({"model": "var-tiny", "family": "var", "revision": None, "options": {},
                                            "ssg": None, "count": len(images) if count is None else count,
                                            "jobs_sha256": "0" * 64}))
    (d / "manifest.jsonl").write_text("")
    return d


def test_batch_folder_reads_run_json_count_in_index_order(tmp_path):
    imgs = noise_images(3, n=5, h=8, w=8)
    d = batch_folder(tmp_path / "run", imgs, count=4)  # a 5th image past the run's count is not the run's
    (d / ".000009.png.123.tmp").write_bytes(b"partial")  # what a killed writer leaves
    src = E.open_source(d, "samples")
    assert (src.kind, src.count) == ("batch folder", 4)
    assert np.array_equal(read_all(src, 3), imgs[:4])


def test_batch_folder_with_a_missing_image_names_it(tmp_path):
    d = batch_folder(tmp_path / "run", noise_images(3, n=5, h=8, w=8))
    (d / "000002.png").unlink()
    (d / "000004.png").unlink()
    with pytest.raises(SSGenError, match=r"missing 2 of 5 images \(first: 000002.png\)"):
        E.open_source(d, "samples")


def test_folder_sorted_by_name_png_and_jpeg(tmp_path):
    imgs = noise_images(4, n=3, h=8, w=8)
    d = write_folder(tmp_path / "f", imgs[[2, 0]], ["c.png", "a.PNG"])
    Image.fromarray(imgs[1]).save(d / "b.jpg", quality=100)
    (d / "notes.txt").write_text("not an image")
    (d / ".hidden.png").write_bytes(b"")
    src = E.open_source(d, "samples")
    assert [f.name for f in src.files] == ["a.PNG", "b.jpg", "c.png"]
    got = read_all(src, 2)
    assert np.array_equal(got[0], imgs[0]) and np.array_equal(got[2], imgs[2])
    assert np.array_equal(got[1], np.asarray(Image.open(d / "b.jpg").convert("RGB")))  # JPEG: as PIL decodes it


@pytest.mark.parametrize("batch_size", [1, 4, 7])
def test_npz_streams_the_same_images_as_the_folder(tmp_path, batch_size):
    imgs = noise_images(5, n=7, h=8, w=12)
    folder = E.open_source(write_folder(tmp_path / "f", imgs), "samples")
    npz = E.open_source(write_npz(tmp_path / "x.npz", arr_0=imgs, arr_1=np.arange(7)), "samples")
    assert (npz.kind, npz.count, npz.size) == ("npz", 7, (8, 12))
    batches = list(E.image_batches(npz, batch_size))
    assert [len(b) for b in batches] == [min(batch_size, 7 - i) for i in range(0, 7, batch_size)]
    assert np.array_equal(np.concatenate(batches), imgs)
    assert np.array_equal(read_all(folder, batch_size), imgs)


def test_pack_npz_output_is_read(tmp_path):
    """What `ssgen pack-npz` writes (a zip64 member, streamed) reads back as the folder's images."""
    from ssgen.batch import pack_npz

    imgs = noise_images(6, n=3, h=8, w=8)
    d = batch_folder(tmp_path / "run", imgs)
    for i in range(3):  # pack_npz reads only pixels; ssgen's metadata is not needed
        Image.fromarray(imgs[i]).save(d / f"{i:06d}.png")
    path, _ = pack_npz(d)
    assert np.array_equal(read_all(E.open_source(path, "samples"), 2), imgs)


def test_content_keys_and_the_stat_memo(tmp_path, monkeypatch):
    imgs = noise_images(7, n=3, h=8, w=8)
    a = write_folder(tmp_path / "a", imgs)
    cache = tmp_path / "cache"
    src = E.open_source(a, "samples")
    E.identify(src, cache)
    digests = [hashlib.sha256((a / f"img{i:02d}.png").read_bytes()).digest() for i in range(3)]
    assert src.sha256 == hashlib.sha256(b"".join(digests)).hexdigest() and src.size == (8, 8)

    copy = write_folder(tmp_path / "copy", imgs)  # the same files elsewhere: the same key
    c = E.open_source(copy, "samples")
    E.identify(c, cache)
    assert c.sha256 == src.sha256

    def no_reading(p):
        raise AssertionError(f"{p} was read although nothing changed")

    monkeypatch.setattr(E, "_scan_image", no_reading)
    again = E.open_source(a, "samples")
    E.identify(again, cache)  # stats unchanged: the memo answers
    assert (again.sha256, again.size) == (src.sha256, (8, 8))
    monkeypatch.undo()

    Image.fromarray(255 - imgs[1]).save(a / "img01.png")
    changed = E.open_source(a, "samples")
    E.identify(changed, cache)
    assert changed.sha256 != src.sha256

    npz = write_npz(tmp_path / "x.npz", arr_0=imgs)
    n = E.open_source(npz, "samples")
    E.identify(n, cache)
    assert n.sha256 == hashlib.sha256(npz.read_bytes()).hexdigest()


def test_folder_images_are_read_as_a_viewer_shows_them(tmp_path):
    """16-bit gray is scaled by 1/257 (not clipped to white), transparent pixels are on white, and the samples say
    how many images have an alpha channel, from their headers (the stat memo keeps it)."""
    imgs = noise_images(5, n=3, h=8, w=8)
    d = write_folder(tmp_path / "f", imgs)
    Image.fromarray(np.full((8, 8), 30000, np.uint16)).save(d / "img00.png")
    rgba = np.dstack([imgs[1], np.full((8, 8), 255, np.uint8)])
    rgba[:, :4, 3] = 0
    Image.fromarray(rgba, "RGBA").save(d / "img01.png")
    cache = tmp_path / "cache"
    for _ in range(2):  # the second time from the stat memo
        src = E.open_source(d, "samples")
        E.identify(src, cache)
        assert src.notes == ["1 of the 3 samples images have an alpha channel (first: img01.png): transparent "
                             "pixels are read composited on white"]
    got = np.concatenate(list(E.image_batches(src, 2)))
    assert (got[0] == 117).all()  # round(30000 / 257)
    assert (got[1, :, :4] == 255).all() and np.array_equal(got[1, :, 4:], imgs[1][:, 4:])
    assert np.array_equal(got[2], imgs[2])


def test_too_large_images_are_refused_from_their_headers(tmp_path):
    from helpers import png_header

    d = write_folder(tmp_path / "f", noise_images(0, n=2, h=8, w=8))
    png_header(d / "img01.png", 12000, 12000)  # holds no pixels: reading its header is all that may happen
    with pytest.raises(SSGenError, match=r"img01.png is too large: 12000x12000 .*at most 4096 px a side"):
        E.identify(E.open_source(d, "samples"), None)
    png_header(d / "img01.png", 60000, 1)
    with pytest.raises(SSGenError, match=r"img01.png is too large: 60000x1"):
        E.identify(E.open_source(d, "samples"), None)


def test_reference_statistics(tmp_path):
    stats = {"mu": np.zeros(2048), "sigma": np.eye(2048), "mu_s": np.zeros(2023), "sigma_s": np.eye(2023)}
    r = E.open_source(write_npz(tmp_path / "ref.npz", **stats), "reference")
    assert (r.kind, r.count) == ("statistics", 0)
    assert [m for m in E.METRICS if r.can_give(m)] == ["fid", "sfid", "is"]
    s = E.open_source(write_folder(tmp_path / "s", noise_images(0, n=4, h=8, w=8)), "samples")
    todo, skipped = E._plan(None, s, r)
    assert todo == ["fid", "sfid", "is"] and list(skipped) == ["precision", "recall"]
    with pytest.raises(SSGenError, match="cannot compute precision: .* statistics only .* can give fid, sfid, is"):
        E._plan(("fid", "precision"), s, r)
    only_fid = E.open_source(write_npz(tmp_path / "fid.npz", mu=stats["mu"], sigma=stats["sigma"]), "reference")
    assert [m for m in E.METRICS if only_fid.can_give(m)] == ["fid", "is"]
    with pytest.raises(SSGenError, match=r"mu \(2047,\) and sigma .* not fid statistics"):
        E.open_source(write_npz(tmp_path / "bad.npz", mu=np.zeros(2047), sigma=np.eye(2047)), "reference")
    with_images = E.open_source(write_npz(tmp_path / "both.npz", arr_0=noise_images(0, n=4, h=8, w=8), **stats),
                                "reference")
    assert (with_images.kind, with_images.count, sorted(with_images.stats)) == ("npz", 4, sorted(stats))


def test_small_sets_skip_or_refuse_precision_and_recall(tmp_path):
    s = E.open_source(write_folder(tmp_path / "s", noise_images(0, n=3, h=8, w=8)), "samples")
    todo, skipped = E._plan(None, s, s)
    assert todo == ["fid", "sfid", "is"] and "more than 3 images" in skipped["recall"]
    with pytest.raises(SSGenError, match="cannot compute recall"):
        E._plan(("recall",), s, s)


@pytest.mark.parametrize("case, needle", [
    ("no_arr_0", "has no arr_0 (it holds images)"),
    ("float", "arr_0 is float32 (3, 8, 8, 3); expected uint8 (N, H, W, 3)"),
    ("nchw", "arr_0 is uint8 (3, 3, 8, 8)"),
    ("not_zip", "is not a readable .npz"),
    ("one_image", "holds 1 image(s); the metrics need at least 2"),
    ("empty", "holds no images (PNG or JPEG)"),
    ("missing", "does not exist"),
    ("text", "is neither a folder of images nor an .npz"),
])
def test_bad_sources(tmp_path, case, needle):
    imgs = noise_images(0, n=3, h=8, w=8)
    paths = {
        "no_arr_0": lambda: write_npz(tmp_path / "x.npz", images=imgs),
        "float": lambda: write_npz(tmp_path / "x.npz", arr_0=imgs.astype(np.float32)),
        "nchw": lambda: write_npz(tmp_path / "x.npz", arr_0=imgs.transpose(0, 3, 1, 2).copy()),
        "not_zip": lambda: (tmp_path / "x.npz").write_bytes(b"PK not really") and tmp_path / "x.npz",
        "one_image": lambda: write_folder(tmp_path / "one", imgs[:1]),
        "empty": lambda: (tmp_path / "empty").mkdir() or tmp_path / "empty",
        "missing": lambda: tmp_path / "nope",
        "text": lambda: (tmp_path / "x.txt").write_text("hi") and tmp_path / "x.txt",
    }
    with pytest.raises(SSGenError, match=None) as e:
        E.open_source(paths[case](), "samples")
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_truncated_npz_is_an_error_while_reading(tmp_path):
    imgs = noise_images(0, n=4, h=8, w=8)
    p = tmp_path / "x.npz"
    import zipfile

    with zipfile.ZipFile(p, "w") as zf, zf.open("arr_0.npy", "w") as f:  # a header for 4 images, data for 2
        np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False, "shape": imgs.shape})
        f.write(imgs[:2].tobytes())
    src = E.open_source(p, "samples")
    with pytest.raises(SSGenError, match="truncated: arr_0 ends before image 2"):
        read_all(src, 3)


def test_mixed_sizes_and_damaged_images_before_any_feature(tmp_path):
    d = write_folder(tmp_path / "mixed", noise_images(0, n=2, h=8, w=8))
    Image.fromarray(noise_images(1, n=1, h=8, w=6)[0]).save(d / "img02.png")
    with pytest.raises(SSGenError, match=r"mixed sizes: img00.png is 8x8, img02.png is 6x8"):
        E.identify(E.open_source(d, "samples"), None)
    bad = write_folder(tmp_path / "bad", noise_images(0, n=2, h=8, w=8))
    (bad / "img01.png").write_bytes(b"\x89PNG not an image")
    with pytest.raises(SSGenError, match="img01.png is not an image PIL can read"):
        E.identify(E.open_source(bad, "samples"), None)


def test_unreadable_folder(tmp_path, monkeypatch):
    d = write_folder(tmp_path / "locked", noise_images(0, n=2, h=8, w=8))

    def denied(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(E.os, "scandir", denied)  # root reads a chmod 000 folder anyway
    with pytest.raises(SSGenError, match=r"cannot read the folder .*locked: Permission denied"):
        E.open_source(d, "samples")


def test_fid_takes_adm_sqrtm_from_as_many_samples_as_dimensions(monkeypatch):
    """N >= D: ADM's statistics and sqrtm (published numbers: 50,000 samples); N < D: the Gram-matrix form, the same
    value up to rounding (checked here with small D, where scipy's sqrtm is cheap)."""
    from ssgen import metrics

    rng = np.random.default_rng(0)
    ref = metrics.feature_stats(rng.standard_normal((50, 8)).astype(np.float32))
    calls = []
    real = metrics._sqrtm
    monkeypatch.setattr(metrics, "_sqrtm", lambda a: calls.append(a.shape) or real(a))
    many = rng.standard_normal((40, 8)).astype(np.float32) + 0.5
    got = E._fid(many, ref, "fid")
    assert calls == [(8, 8)]
    assert got == metrics.frechet_distance(*metrics.feature_stats(many), *ref)
    few, calls[:] = many[:5], []
    got = E._fid(few, ref, "fid")
    assert calls == []  # no sqrtm
    assert got == metrics.frechet_distance_few(few, *ref)
    assert got == pytest.approx(metrics.frechet_distance(*metrics.feature_stats(few), *ref), rel=1e-6)


@pytest.mark.parametrize("text, want", [("FID, is", ("fid", "is")), (["recall", "precision"], ("precision", "recall")),
                                        (None, None)])
def test_parse_metrics(text, want):
    assert E.parse_metrics(text) == want


def test_parse_metrics_refuses_unknown_names():
    with pytest.raises(SSGenError, match="unknown metric.* kid; choose from fid,sfid,is,precision,recall"):
        E.parse_metrics("fid,kid")


# ----------------------------------------------------------------------------------------------
# the weights
# ----------------------------------------------------------------------------------------------


@pytest.fixture
def homes(tmp_path, monkeypatch):
    """An empty Hugging Face and torch home."""
    for var in ("HF_HOME", "TORCH_HOME"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    for var in ("HF_ASSETS_CACHE", "HF_HUB_OFFLINE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def test_weights_location_follows_hf_home(homes):
    assert E.weights_path() == homes / "hf_home" / "assets" / "ssgen" / "inception" / \
        "weights-inception-2015-12-05-6726825d.pth"
    assert E.cache_dir() == homes / "hf_home" / "assets" / "ssgen" / "eval"
    assert E.cache_dir(False) is None and E.cache_dir(homes / "c") == homes / "c"


def test_missing_weights_offline_names_the_path_and_the_url(homes, monkeypatch):
    from ssgen.inception import WEIGHTS_URL

    for offline, env in ((True, None), (None, "1")):
        if env:
            monkeypatch.setenv("HF_HUB_OFFLINE", env)
        with pytest.raises(SSGenError) as e:
            E.inception_weights(offline=offline)
        assert str(E.weights_path()) in str(e.value) and WEIGHTS_URL in str(e.value)


@pytest.fixture
def server(tmp_path):
    """A loopback HTTP server for files of tmp_path/www."""
    www = tmp_path / "www"
    www.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(www), **k)

        def log_message(self, *a):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield www, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_download_checks_the_sha256_and_keeps_nothing_bad(homes, server, monkeypatch):
    import ssgen.inception as I

    www, url = server
    good = www / "w.pth"
    good.write_bytes(b"pretend weights" * 1000)
    sha = hashlib.sha256(good.read_bytes()).hexdigest()
    monkeypatch.setattr(I, "WEIGHTS_URL", f"{url}/w.pth")
    monkeypatch.setattr(E, "WEIGHTS_SHA256", "0" * 64)
    with pytest.raises(SSGenError, match=f"has sha256 {sha}, not 0000"):
        E.inception_weights(offline=False)
    assert not E.weights_path().exists() and not list(E.weights_path().parent.iterdir())  # no .tmp left either

    monkeypatch.setattr(E, "WEIGHTS_SHA256", sha)
    assert E.inception_weights(offline=False) == (E.weights_path(), sha)
    assert E.weights_path().read_bytes() == good.read_bytes()
    good.unlink()  # found now: no request
    assert E.inception_weights(offline=True) == (E.weights_path(), sha)


def test_unreachable_download_names_the_path_and_the_url(homes, monkeypatch):
    import ssgen.inception as I

    monkeypatch.setattr(I, "WEIGHTS_URL", "http://127.0.0.1:9/weights-inception-2015-12-05-6726825d.pth")
    with pytest.raises(SSGenError) as e:
        E.inception_weights(offline=False)
    msg = str(e.value)
    assert "cannot download" in msg and I.WEIGHTS_URL in msg and str(E.weights_path()) in msg


def test_torch_hub_copy_is_used_and_a_wrong_one_refused(homes, monkeypatch):
    hub = homes / "torch_home" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    copy = hub / E.PYTORCH_FID_NAME
    copy.write_bytes(b"pytorch-fid's copy")
    monkeypatch.setattr(E, "WEIGHTS_SHA256", hashlib.sha256(copy.read_bytes()).hexdigest())
    assert E.inception_weights(offline=True)[0] == copy
    copy.write_bytes(b"something else")
    with pytest.raises(SSGenError, match="pt_inception-2015-12-05-6726825d.pth has sha256 .* delete it"):
        E.inception_weights(offline=True)


def test_given_weights_file(tmp_path):
    p = tmp_path / "w.pth"
    p.write_bytes(b"abc")
    assert E.inception_weights(p, cache=tmp_path / "c") == (p, hashlib.sha256(b"abc").hexdigest())
    with pytest.raises(SSGenError, match="no such file"):
        E.inception_weights(tmp_path / "nope.pth")
