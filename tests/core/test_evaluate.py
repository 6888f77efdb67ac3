"""ssgen.eval.evaluate with the tiny Inception (random weights in the real file's format): the metrics of a set
against itself, folder and npz alike, the reference's statistics, the feature cache (the network runs once per
image set), and the bootstrap.

With 6 images per set, FID and sFID go through the samples' Gram matrix (metrics.frechet_distance_few), as for any
set of fewer than 2048 images; test_eval_sources.py checks which path `_fid` takes."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest
from eval_helpers import N, cached_features, noise_images, shared, write_folder, write_npz
from PIL import Image

from ssgen.errors import SSGenError
from ssgen.eval import WEIGHTS_SHA256, evaluate
from ssgen.metrics import feature_stats

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return shared(tmp_path_factory)


def run(files, samples, ref, **kw):
    kw.setdefault("inception", files["weights"])
    kw.setdefault("cache", files["cache"])
    kw.setdefault("batch_size", 4)
    return evaluate(samples, ref, device="cpu", **kw)


def test_a_set_against_itself(files):
    r = run(files, files["a"], files["a"])
    assert list(r.metrics) == ["fid", "sfid", "is", "precision", "recall"]
    assert abs(r.metrics["fid"]) < 1e-3 and abs(r.metrics["sfid"]) < 1e-3
    assert r.metrics["precision"] == r.metrics["recall"] == 1.0
    assert r.metrics["is"] >= 1.0 and not r.skipped and r.intervals == {}
    d = r.to_dict()
    assert d["samples"]["count"] == d["ref"]["count"] == N and d["ref"]["statistics"] == "computed"
    assert d["extractor"]["weights_sha256"] == hashlib.sha256(files["weights"].read_bytes()).hexdigest()
    assert d["extractor"]["official"] is False and any("not torch-fidelity's file" in n for n in r.notes)
    assert set(d["versions"]) >= {"ssgen", "torch", "numpy", "scipy"} and d["seconds"]["total"] > 0
    assert any("through the samples' Gram matrix" in n for n in r.notes)


def test_folder_and_npz_give_the_same_features(files):
    r = run(files, files["a_npz"], files["a"], metrics="is,precision,recall")
    assert r.samples["sha256"] == hashlib.sha256(files["a_npz"].read_bytes()).hexdigest()
    folder = cached_features(files["cache"], r.ref["sha256"])
    npz = cached_features(files["cache"], r.samples["sha256"])
    for k in ("pool", "spatial"):
        assert folder[k].shape == (N, 2048 if k == "pool" else 2023)
        np.testing.assert_allclose(npz[k], folder[k], rtol=0, atol=1e-6 * np.abs(folder[k]).max())
    assert r.metrics["precision"] == r.metrics["recall"] == 1.0


def test_a_batch_folder_of_the_same_images_shares_their_features(files, tmp_path, forwards):
    """What `ssgen batch` writes (NNNNNN.png by index, run.json) is read in index order: the same files as set A,
    in A's order, are the same content, so their features come from A's cache entry."""
    run(files, files["a"], files["a"], metrics="is")  # A's features cached (by an earlier test, or now)
    forwards.clear()
    d = tmp_path / "run"
    d.mkdir()
    for i, f in enumerate(sorted(files["a"].iterdir())):
        shutil.copy(f, d / f"{i:06d}.png")
    (d / "run.json").write_text('{"count": 6, "model": "var-tiny"}')
    r = run(files, d, files["a"], metrics="fid,is,precision,recall")
    assert r.samples["kind"] == "batch folder" and r.samples["features"] == "cache" and forwards == []
    assert abs(r.metrics["fid"]) < 1e-3 and r.metrics["precision"] == r.metrics["recall"] == 1.0


def test_another_set_is_further(files):
    same = run(files, files["a"], files["a"], metrics="fid,sfid")
    other = run(files, files["b"], files["a"], metrics="fid,sfid")
    assert other.metrics["fid"] > same.metrics["fid"] + 1e-3 and other.metrics["sfid"] > same.metrics["sfid"] + 1e-3


def test_reference_statistics_are_used_as_adm_does(files, tmp_path):
    """A reference npz's mu/sigma/mu_s/sigma_s give FID and sFID; without arr_0, precision and recall are skipped
    (by default) and said so."""
    a = run(files, files["a"], files["a"], metrics="is")
    f = cached_features(files["cache"], a.samples["sha256"])
    (mu, sigma), (mu_s, sigma_s) = feature_stats(f["pool"]), feature_stats(f["spatial"])
    ref = write_npz(tmp_path / "ref.npz", mu=mu, sigma=sigma, mu_s=mu_s, sigma_s=sigma_s)
    r = run(files, files["a"], ref)
    assert list(r.metrics) == ["fid", "sfid", "is"] and list(r.skipped) == ["precision", "recall"]
    assert abs(r.metrics["fid"]) < 1e-3 and r.ref["statistics"] == "precomputed" and r.ref["features"] is None
    assert r.ref["sha256"] == hashlib.sha256(ref.read_bytes()).hexdigest() and r.ref["kind"] == "statistics"
    assert any(n.startswith("skipped precision, recall: the reference") for n in r.notes)

    shifted = write_npz(tmp_path / "shifted.npz", arr_0=np.load(files["a_npz"])["arr_0"], mu=mu + 1, sigma=sigma,
                        mu_s=mu_s, sigma_s=sigma_s)
    r = run(files, files["a"], shifted)  # images and statistics: the statistics give FID, the images P/R
    assert r.metrics["fid"] == pytest.approx(2048, rel=1e-4) and r.metrics["recall"] == 1.0


def test_the_cache_runs_each_image_through_the_network_once(files, tmp_path, forwards):
    first = run(files, files["a"], files["b"], metrics="is,precision,recall")  # both cached by earlier tests, or now
    forwards.clear()
    again = run(files, files["a"], files["b"], metrics="is,precision,recall")
    assert forwards == [] and again.metrics == first.metrics
    assert again.samples["features"] == again.ref["features"] == "cache"

    copy = tmp_path / "copy"
    shutil.copytree(files["a"], copy)  # the same images elsewhere: keyed by content
    assert run(files, copy, files["b"], metrics="is").samples["features"] == "cache" and forwards == []

    Image.fromarray(noise_images(9, n=1)[0]).save(copy / "img03.png")  # one image changed
    changed = run(files, copy, files["b"], metrics="is,precision,recall")
    assert sum(forwards) == N and changed.samples["features"] == "computed"
    assert changed.metrics["is"] != first.metrics["is"]
    forwards.clear()
    run(files, copy, files["b"], metrics="is", cache=False)
    assert sum(forwards) == N  # no cache: computed again


def test_bootstrap_intervals(files):
    """Seeded, so the same on every run; each interval holds its value; precision and recall get none."""
    r1 = run(files, files["a"], files["b"], metrics="is,precision,recall", bootstrap=50)
    r2 = run(files, files["a"], files["b"], metrics="is,precision,recall", bootstrap=50)
    assert r1.intervals == r2.intervals and list(r1.intervals) == ["is"]
    assert r1.bootstrap["n"] == 50 and r1.bootstrap["not_bootstrapped"] == ["precision", "recall"]
    assert run(files, files["a"], files["b"], metrics="is", bootstrap=50, seed=1).intervals != r1.intervals
    r3 = run(files, files["a"], files["b"], metrics="fid,sfid", bootstrap=20)
    for r in (r1, r3):
        for m, (lo, hi) in r.intervals.items():
            assert lo <= r.metrics[m] <= hi and hi > lo, (m, lo, r.metrics[m], hi)
    assert list(r3.intervals) == ["fid", "sfid"] and set(r3.bootstrap["quantiles"]) == {"fid", "sfid"}


def test_official_weights_are_recognised(files, tmp_path, monkeypatch):
    """The result says whether the weights are torch-fidelity's file (here: the tiny file posing as it)."""
    import ssgen.eval as E

    monkeypatch.setattr(E, "WEIGHTS_SHA256", hashlib.sha256(files["weights"].read_bytes()).hexdigest())
    r = run(files, files["a"], files["a"], metrics="is")
    assert r.extractor["official"] is True and not any("torch-fidelity" in n for n in r.notes)
    assert WEIGHTS_SHA256.startswith("6726825d")


def test_mixed_size_reference_is_refused_before_the_network(files, tmp_path, forwards):
    ref = write_folder(tmp_path / "mixed", noise_images(2, n=3))
    Image.fromarray(noise_images(3, n=1, h=32, w=32)[0]).save(ref / "img09.png")
    with pytest.raises(SSGenError, match="mixed sizes"):
        run(files, files["a"], ref)
    assert forwards == []
