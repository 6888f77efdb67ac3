"""`ssgen eval`: ADM's FID, sFID, Inception Score, precision and recall of a set of images against a reference.

The numbers are those of OpenAI's ADM evaluator (openai/guided-diffusion `evaluations/evaluator.py`), which
published ImageNet tables use: the features come from the 2015 TF Inception graph (`ssgen.inception`, the
torch-fidelity port and its weights file) and the arithmetic on them is ADM's (`ssgen.metrics`):
- FID on `pool_3` features (N, 2048), sFID on `mixed_6/conv[..., :7]` features (N, 2023): the sample statistics
  first, the reference second. A reference .npz that carries `mu`/`sigma`/`mu_s`/`sigma_s` gives its statistics
  from those keys, as ADM's `read_statistics` does; otherwise they are computed from its images. (ADM would read
  such keys from a sample npz too; here a sample set's statistics always come from its images, which is what a
  bootstrap resamples.) From fewer samples than feature dimensions (a quick look; published numbers use 50,000)
  the same quantity comes through the samples' Gram matrix (`metrics.frechet_distance_few`), without the
  2048-dim sqrtm that costs 10-60 s on 2 cores.
- IS: `softmax(pool @ W)` with the graph's classifier weight W (2048, 1008), splits of 5000, of the samples.
- precision and recall: k = 3 manifolds of the pool features, the reference first.

What can be evaluated (`open_source`):
- a batch folder written by `ssgen batch` (it has `run.json`): images 000000.png ... in index order, as many as
  run.json's `count`; a missing one is an error that names the first;
- any folder of PNG/JPEG images, sorted by name;
- a folder's images are read by `ssgen.images` (as `pack-npz` reads them): each header is checked against
  `METRIC_LIMIT` before anything is decoded, 16-bit and float images are scaled to 8 bits, transparent pixels are
  composited on white (a note counts the images with an alpha channel), EXIF orientation is not applied;
- an .npz with `arr_0` (N, H, W, 3) uint8, what `ssgen pack-npz` writes and ADM reads, streamed from the zip
  member batch by batch (np.load cannot memory-map inside a zip);
- as the reference only: an .npz of statistics alone (`mu`, `sigma`, `mu_s`, `sigma_s`, no `arr_0`), which gives
  FID and sFID but not precision and recall (they need the reference's features).

Memory: images are decoded and fed `batch_size` at a time (one batch decoding ahead while the network runs); only
the features are held, (N, 2048) + (N, 2023) float32: about 800 MB for 50,000 images.

The feature cache (`cache_dir`): Inception is the cost (about 0.5 s per image on a 2-core CPU), so the features of
every image set are stored once, in `CACHE/features/<images sha256>-<weights sha256[:16]>-v<FEATURES_VERSION>.npz`,
and any later evaluation of the same images with the same weights reads them: one run against two references, or
many sweep cells against one reference, runs each image through the network once. The key is the content:
- an .npz: the sha256 of the file;
- a folder: the sha256 of the sequence of its image files' sha256, in evaluation order (so a copied folder, or a
  batch folder and a plain folder of the same files, share their features; a changed image changes the key).
Hashing a large set is not free either (50,000 PNGs are ~6 GB), so the sha256 of a file or folder is remembered in
`CACHE/hashes/` under its path, sizes and modification times (nanoseconds): while nothing changed, the next
evaluation only `stat`s the files. This is the trust that `ssgen.weights` gives verified weights. Features from
another device or batch size differ only by float rounding and share the cache.

The Inception weights (`inception_weights`): `--inception FILE`, else torch-fidelity's file
`weights-inception-2015-12-05-6726825d.pth` at `weights_path()` (`$HF_HOME/assets/ssgen/inception/`, the
Hugging Face cache's folder for files of downstream libraries, next to ssgen's sha256 record), else the same file
in torch's hub cache (where torch-fidelity and pytorch-fid put it), else downloaded from `WEIGHTS_URL` (not
offline). Its sha256 is pinned (`WEIGHTS_SHA256`) and checked once per file version.

Bootstrap (`bootstrap=N`): the sample set's cached features are resampled with replacement N times (numpy's PCG64
seeded with `seed`; the same N index draws for every metric), and FID, sFID and IS are recomputed on each resample
against the fixed reference (its statistics are not resampled). The interval is the 2.5-97.5 percentile range of the
N values moved so that their median sits on the value (`value - (median - q2.5)`, `value + (q97.5 - median)`):
resampling with replacement leaves out about a third of the samples and repeats others, which inflates the
covariances' noise and shifts every resampled FID upward by about the estimator's own bias; the spread is what the
resamples measure, the shift is theirs. Precision and recall get no interval: in a resample, a repeated sample is
its own nearest neighbour at distance 0, which shrinks the k-NN radii of the sample manifold (recall's resamples are
biased, not spread), and every resample would cost a full k-NN pass. Cost: from 2048 samples on (50,000 for
published numbers), each resample recomputes the statistics and one 2048 x 2048 (and one 2023 x 2023) scipy sqrtm,
as ADM's FID does: 10 to 60 s per FID on a 2-core CPU (less with more cores), so `--bootstrap 100` of FID and sFID
takes up to hours there; IS alone (`--metrics is`) costs a softmax per resample. Below 2048 samples FID goes through
the samples' Gram matrix (`_fid`) and a resample takes a fraction of a second.

    >>> r = evaluate("runs/d16-ssg", "VIRTUAL_imagenet256_labeled.npz", bootstrap=100)
    >>> r.metrics["fid"], r.intervals["fid"]          # value, (low, high)
    >>> r.to_dict()                                    # everything `ssgen eval --json` prints
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import time
import warnings
import zipfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from .atomic import atomic_file
from .batch import run_count, run_images
from .checks import as_int
from .errors import ConfigError, SSGenError, WeightsError, first_line
from .textfile import read_text

METRICS = ("fid", "sfid", "is", "precision", "recall")
TITLES = {"fid": "FID", "sfid": "sFID", "is": "IS", "precision": "precision", "recall": "recall", "clip": "CLIP score"}
BOOTSTRAPPED = ("fid", "sfid", "is")  # see the module docstring: precision and recall get no interval
POOL, SPATIAL = 2048, 2023  # feature widths: pool_3, mixed_6/conv[..., :7] flattened
STATS = {"fid": ("mu", "sigma", POOL), "sfid": ("mu_s", "sigma_s", SPATIAL)}  # ADM's reference npz keys
K = 3  # precision/recall's neighbourhood (ADM's nhood_sizes)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")

# torch-fidelity's release of the 2015-12-05 TF Inception (the same bytes as pytorch-fid's
# pt_inception-2015-12-05-6726825d.pth). torch.hub names files NAME-<first hex digits of the sha256>.ext, which is
# where "6726825d" comes from; torch-fidelity itself loads it without checking (`load_state_dict_from_url` without
# `check_hash`). The full digest is the one several independent projects pin for this file (95,628,359 bytes).
WEIGHTS_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
PYTORCH_FID_NAME = "pt_inception-2015-12-05-6726825d.pth"

# part of the cache key: bump when the features of the same weights and images change. 2: images are read by
# ssgen.images (16-bit and float images scaled, not clipped to white; transparent pixels composited on white)
FEATURES_VERSION = 2
BATCH_CPU, BATCH_GPU = 32, 64  # default images per forward pass (see `default_batch_size`)
BOOTSTRAP_SEED = 0
DECODE_THREADS = min(8, os.cpu_count() or 1)


# ----------------------------------------------------------------------------------------------
# The result
# ----------------------------------------------------------------------------------------------


@dataclass
class EvalResult:
    """What one evaluation gives: the metrics, their bootstrap intervals and everything needed to trust or redo
    them (the image sets and their sha256, the extractor and its weights, library versions, time)."""

    metrics: dict[str, float]  # name -> value, in METRICS order
    intervals: dict[str, tuple[float, float]]  # name -> (low, high) 95%; empty without bootstrap
    samples: dict[str, Any]  # path, kind, count, size, sha256, features ("cache" or "computed")
    ref: dict[str, Any]  # the same, plus statistics ("precomputed" or "computed")
    extractor: dict[str, Any]  # name, weights, weights_sha256, official, device, batch_size
    versions: dict[str, str]
    seconds: dict[str, float]  # hashing, features, metrics, bootstrap, total
    skipped: dict[str, str] = field(default_factory=dict)  # metric -> why it was not computed
    bootstrap: dict[str, Any] | None = None  # n, seed, method, quantiles
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (what `ssgen eval --json` prints)."""
        return {"metrics": dict(self.metrics), "intervals": {k: list(v) for k, v in self.intervals.items()},
                "skipped": dict(self.skipped), "samples": dict(self.samples), "ref": dict(self.ref),
                "extractor": dict(self.extractor), "bootstrap": self.bootstrap, "versions": dict(self.versions),
                "seconds": dict(self.seconds), "notes": list(self.notes)}


# ----------------------------------------------------------------------------------------------
# Image sets
# ----------------------------------------------------------------------------------------------


@dataclass
class Source:
    """A set of images (or a reference's statistics), opened and checked without decoding any image."""

    path: Path
    role: str  # "samples" or "reference": for messages
    kind: str  # "batch folder", "folder", "npz" or "statistics"
    count: int = 0  # images (0: statistics only)
    size: tuple[int, int] | None = None  # (H, W), known after `identify` for folders
    files: list[Path] = field(default_factory=list)  # a folder's images, in evaluation order
    stats: dict[str, np.ndarray] = field(default_factory=dict)  # a reference npz's mu, sigma, mu_s, sigma_s
    sha256: str | None = None  # the content key (`identify`)
    notes: list[str] = field(default_factory=list)  # how some images are read (`identify`): alpha on white

    def describe(self) -> dict[str, Any]:
        return {"path": str(self.path), "kind": self.kind, "count": self.count,
                "size": list(self.size) if self.size else None, "sha256": self.sha256}

    def can_give(self, metric: str) -> bool:
        """Whether this reference can give `metric`: images give every one; statistics only FID and sFID (and
        IS, which needs the samples alone)."""
        if metric == "is" or self.count:
            return True
        return metric in STATS and all(k in self.stats for k in STATS[metric][:2])


def _npy_header(f) -> tuple[tuple, bool, np.dtype]:
    """(shape, fortran_order, dtype) of an .npy stream, leaving it at the first data byte (format 1.0 or 2.0, what
    numpy writes for any plain array; 3.0 only differs for structured dtypes with unicode field names)."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(f)
    raise ValueError(f"arr_0.npy is in .npy format {version[0]}.{version[1]}, which holds no plain image array")


def _open_npz(p: Path, role: str) -> Source:
    """An .npz: `arr_0` checked from its header (uint8, (N, H, W, 3), C order), and a reference's statistics."""
    try:
        with zipfile.ZipFile(p) as zf:
            names = [n[:-4] for n in zf.namelist() if n.endswith(".npy")]
            header = None
            if "arr_0" in names:
                with zf.open("arr_0.npy") as f:
                    header = _npy_header(f)
    except (zipfile.BadZipFile, ValueError, OSError) as e:
        raise SSGenError(f"{p} is not a readable .npz ({first_line(e)})") from None
    src = Source(p, role, "npz")
    if header is not None:
        shape, fortran, dtype = header
        if dtype != np.uint8 or len(shape) != 4 or shape[3] != 3 or fortran:
            raise SSGenError(f"{p}: arr_0 is {dtype} {tuple(shape)}{' (Fortran order)' if fortran else ''}; "
                             "expected uint8 (N, H, W, 3) images, as `ssgen pack-npz` writes and ADM reads")
        src.count, src.size = int(shape[0]), (int(shape[1]), int(shape[2]))
    if role == "reference":
        with np.load(p) as z:
            for metric, (mu, sigma, dim) in STATS.items():
                if mu in names and sigma in names:
                    m, s = z[mu], z[sigma]
                    if m.shape != (dim,) or s.shape != (dim, dim):
                        raise SSGenError(f"{p}: {mu} {m.shape} and {sigma} {s.shape} are not {metric} statistics "
                                         f"of ADM's reference format (({dim},) and ({dim}, {dim}))")
                    src.stats[mu], src.stats[sigma] = m, s
        if header is None:
            if not src.stats:
                raise SSGenError(f"{p} has no arr_0 images and no mu/sigma statistics (it holds "
                                 f"{', '.join(names) or 'nothing'}); a reference is ADM's npz or a set of images")
            src.kind = "statistics"
    elif header is None:
        raise SSGenError(f"{p} has no arr_0 (it holds {', '.join(names) or 'nothing'}); samples are an npz with "
                         "arr_0 (N, H, W, 3) uint8, as `ssgen pack-npz` writes")
    return src


def _open_folder(d: Path, role: str) -> Source:
    """A folder: a batch folder (run.json: images 0..count-1 by index) or any folder of PNG/JPEG (by name)."""
    count = run_count(d, ": it gives no image count")
    if count is not None:
        return Source(d, role, "batch folder", count=count, files=run_images(d, count))
    try:
        with os.scandir(d) as it:
            names = sorted(e.name for e in it if not e.name.startswith(".") and e.is_file()
                           and e.name.lower().endswith(IMAGE_SUFFIXES))
    except OSError as e:
        raise SSGenError(f"cannot read the folder {d}: {e.strerror or first_line(e)}") from None
    if not names:
        raise SSGenError(f"{d} holds no images (PNG or JPEG)")
    return Source(d, role, "folder", count=len(names), files=[d / n for n in names])


def open_source(path: str | Path, role: str) -> Source:
    """Open SAMPLES or REF (a folder, a batch folder or an .npz) and check what can be checked without decoding."""
    p = Path(path).expanduser()
    if p.is_dir():
        src = _open_folder(p, role)
    elif p.is_file() and p.suffix.lower() == ".npz":
        src = _open_npz(p, role)
    elif p.exists():
        raise SSGenError(f"{p} is neither a folder of images nor an .npz")
    else:
        raise SSGenError(f"{p} does not exist")
    if src.kind != "statistics" and src.count < 2:
        raise SSGenError(f"{p} holds {src.count} image(s); the metrics need at least 2 ({role})")
    return src


# ----------------------------------------------------------------------------------------------
# Content keys (sha256), remembered by file stats
# ----------------------------------------------------------------------------------------------


def _sha256_bytes(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _memo_read(memo: Path | None) -> dict[str, Any] | None:
    if memo is None:
        return None
    try:
        return json.loads(read_text(memo, "feature cache record", ""))
    except (SSGenError, ValueError):
        return None


def _memo_write(memo: Path | None, record: dict[str, Any]) -> None:
    """Remember a hash (best effort: a read-only cache only costs hashing again)."""
    if memo is None:
        return
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(memo) as f:
            f.write(json.dumps(record, sort_keys=True).encode())
    except (OSError, SSGenError):
        pass


def _stat_memo(cache: Path | None, what: Any) -> Path | None:
    """The memo file of a stat listing (paths, sizes, mtimes): its name is the listing's sha256."""
    if cache is None:
        return None
    key = hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()
    return cache / "hashes" / f"{key}.json"


def _file_stat(p: Path) -> list:
    st = p.stat()
    return [str(p.resolve()), st.st_size, st.st_mtime_ns, st.st_ino]


def file_sha256(p: Path, cache: Path | None = None, bar: Any = None) -> str:
    """The sha256 of a file, remembered in `cache` under its path, size, mtime and inode."""
    memo = _stat_memo(cache, ["file", _file_stat(p)])
    known = _memo_read(memo)
    if known and isinstance(known.get("sha256"), str):
        return known["sha256"]
    h = hashlib.sha256()
    with open(p, "rb") as f:
        while chunk := f.read(8 << 20):
            h.update(chunk)
            if bar is not None:
                bar.advance(len(chunk))
    _memo_write(memo, {"path": str(p), "sha256": h.hexdigest()})
    return h.hexdigest()


def _scan_image(p: Path) -> tuple[bytes, tuple[int, int], bool]:
    """(sha256 digest of the file, (H, W) from its header, whether it has an alpha channel) in one read; an image
    over METRIC_LIMIT is refused here, before anything is decoded (`ssgen.images`)."""
    from .images import METRIC_LIMIT, has_alpha, open_lazily

    try:
        data = p.read_bytes()
    except OSError as e:
        raise SSGenError(f"cannot read {p}: {e.strerror or first_line(e)}") from None
    with open_lazily(io.BytesIO(data), p, METRIC_LIMIT, "image") as im:
        w, h = im.size
        alpha = has_alpha(im)
    return _sha256_bytes(data), (h, w), alpha


def identify(src: Source, cache: Path | None, progress: Any = None) -> None:
    """Fill `src.sha256` (and a folder's image size), checking that a folder's images share one size.

    npz: the file's sha256. Folder: the sha256 of its files' sha256 in order, every image's header read on the way
    (a file PIL cannot open, or another size, is an error here, before any feature is computed). Both are
    remembered by the files' stats (see the module docstring)."""
    if src.kind in ("npz", "statistics"):
        with progress.bar(f"sha256 {src.path.name}", src.path.stat().st_size) if progress else _nobar() as bar:
            src.sha256 = file_sha256(src.path, cache, bar)
        return
    try:
        listing = [[f.name, st.st_size, st.st_mtime_ns] for f, st in ((f, f.stat()) for f in src.files)]
    except OSError as e:
        raise SSGenError(f"cannot read the images of {src.path}: {e.strerror or first_line(e)}") from None
    memo = _stat_memo(cache, ["folder", str(src.path.resolve()), listing])
    known = _memo_read(memo)
    if (known and isinstance(known.get("sha256"), str) and len(known.get("size") or ()) == 2
            and isinstance(known.get("alpha"), list)):
        src.sha256, src.size = known["sha256"], tuple(known["size"])
        src.notes = _alpha_notes(src, known["alpha"])
        return
    h = hashlib.sha256()
    first = None
    alpha = []  # [count, first name] of the images with an alpha channel
    with ThreadPoolExecutor(DECODE_THREADS) as pool, \
            (progress.bar(f"sha256 {src.path.name}", src.count) if progress else _nobar()) as bar:
        for f, (digest, size, has_alpha) in zip(src.files, pool.map(_scan_image, src.files)):
            if has_alpha:
                alpha = [alpha[0] + 1, alpha[1]] if alpha else [1, f.name]
            if first is None:
                first = (f, size)
            elif size != first[1]:
                raise SSGenError(f"{src.path} holds images of mixed sizes: {first[0].name} is "
                                 f"{first[1][1]}x{first[1][0]}, {f.name} is {size[1]}x{size[0]}; resize them to one "
                                 "size first")
            h.update(digest)
            bar.advance(1)
    src.sha256, src.size = h.hexdigest(), first[1]
    src.notes = _alpha_notes(src, alpha)
    _memo_write(memo, {"path": str(src.path), "sha256": src.sha256, "size": list(src.size), "alpha": alpha})


def _alpha_notes(src: Source, alpha: list) -> list[str]:
    """The note that some images have an alpha channel (read from their headers): their transparent pixels are
    composited on white (`ssgen.images.rgb`), where other evaluators would drop the alpha channel."""
    if not alpha:
        return []
    n, name = alpha
    return [f"{n} of the {src.count} {src.role} images have an alpha channel (first: {name}): transparent pixels "
            "are read composited on white"]


# ----------------------------------------------------------------------------------------------
# Reading images batch by batch
# ----------------------------------------------------------------------------------------------


def _decode(p: Path, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8, as `ssgen pack-npz` converts an image (`ssgen.images.rgb`, without EXIF orientation)."""
    from .images import METRIC_LIMIT, rgb

    a = np.asarray(rgb(p, "image", METRIC_LIMIT, upright=False, hint="").image, dtype=np.uint8)
    if a.shape[:2] != size:
        raise SSGenError(f"{p} is {a.shape[1]}x{a.shape[0]}, not {size[1]}x{size[0]} like the rest")
    return a


def _npz_batches(p: Path, count: int, size: tuple[int, int], batch_size: int) -> Iterator[np.ndarray]:
    """arr_0 in batches (b, H, W, 3) uint8, read from the zip member in chunks (never the whole array)."""
    per_image = size[0] * size[1] * 3
    with zipfile.ZipFile(p) as zf, zf.open("arr_0.npy") as f:
        _npy_header(f)
        for start in range(0, count, batch_size):
            b = min(batch_size, count - start)
            data = bytearray(b * per_image)  # writable: torch.from_numpy takes it without a warning
            view, got = memoryview(data), 0
            while got < len(data):
                n = f.readinto(view[got:])
                if not n:
                    raise SSGenError(f"{p} is truncated: arr_0 ends before image {start + got // per_image}")
                got += n
            yield np.frombuffer(data, np.uint8).reshape(b, size[0], size[1], 3)


def _folder_batches(files: list[Path], size: tuple[int, int], batch_size: int) -> Iterator[np.ndarray]:
    """The images in batches (b, H, W, 3) uint8, each batch decoded by a pool of threads (PIL releases the GIL)."""
    with ThreadPoolExecutor(DECODE_THREADS) as pool:
        for start in range(0, len(files), batch_size):
            chunk = files[start : start + batch_size]
            yield np.stack(list(pool.map(lambda f: _decode(f, size), chunk)))


def _ahead(batches: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    """The same batches, the next one read and decoded in a background thread while the caller works on this one.
    At most two batches are held at once."""
    try:
        with ThreadPoolExecutor(1) as ex:
            nxt = ex.submit(next, batches, None)
            while True:
                batch = nxt.result()
                if batch is None:
                    return
                nxt = ex.submit(next, batches, None)
                yield batch
    finally:
        batches.close()  # its files, when the caller stops early (an error); the worker is done by now


def image_batches(src: Source, batch_size: int) -> Iterator[np.ndarray]:
    """The images of `src` in evaluation order, (b, H, W, 3) uint8 batches."""
    if src.kind == "npz":
        return _ahead(_npz_batches(src.path, src.count, src.size, batch_size))
    return _ahead(_folder_batches(src.files, src.size, batch_size))


# ----------------------------------------------------------------------------------------------
# Inception weights and the network
# ----------------------------------------------------------------------------------------------


def weights_path() -> Path:
    """Where ssgen keeps torch-fidelity's Inception weights: `$HF_ASSETS_CACHE` (default `$HF_HOME/assets`, i.e.
    `~/.cache/huggingface/assets`) `/ssgen/inception/weights-inception-2015-12-05-6726825d.pth`."""
    from .inception import WEIGHTS_NAME
    from .weights.env import assets_cache_dir

    return assets_cache_dir() / "ssgen" / "inception" / WEIGHTS_NAME


def cache_dir(cache: str | Path | None | bool = None) -> Path | None:
    """The feature cache: `cache` if given, None when False (no cache), else `$HF_HOME/assets/ssgen/eval`."""
    if cache is False:
        return None
    if cache is None or cache is True:
        from .weights.env import assets_cache_dir

        return assets_cache_dir() / "ssgen" / "eval"
    return Path(cache).expanduser()


def _torch_hub_copies() -> list[Path]:
    """The copies torch-fidelity and pytorch-fid download into torch's hub cache (the same bytes)."""
    from .inception import WEIGHTS_NAME

    home = os.environ.get("TORCH_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME") or
                                                        os.path.expanduser("~/.cache"), "torch")
    folder = Path(home).expanduser() / "hub" / "checkpoints"
    return [folder / WEIGHTS_NAME, folder / PYTORCH_FID_NAME]


def _download(target: Path, progress: bool) -> None:
    """Fetch WEIGHTS_URL into `target` atomically, checking its sha256 on the way (a bad download leaves nothing)."""
    import urllib.error
    import urllib.request

    from .inception import WEIGHTS_URL
    from .weights.progress import progress_bars

    where = f"download {WEIGHTS_URL} yourself and put it at {target}, or pass --inception FILE"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(WEIGHTS_URL, timeout=30) as r, progress_bars(progress, None) as bar_class:
            total = int(r.headers.get("Content-Length") or 0) or None
            h = hashlib.sha256()
            with atomic_file(target) as f, bar_class(desc=target.name, total=total, unit="B") as bar:
                while chunk := r.read(1 << 20):
                    h.update(chunk)
                    f.write(chunk)
                    bar.update(len(chunk))
                if h.hexdigest() != WEIGHTS_SHA256:
                    raise WeightsError(f"the file downloaded from {WEIGHTS_URL} has sha256 {h.hexdigest()}, not "
                                       f"{WEIGHTS_SHA256}; nothing was kept: retry, or {where}")
    except (urllib.error.URLError, OSError) as e:
        why = getattr(e, "reason", None) or e.strerror or first_line(e)
        raise WeightsError(f"cannot download the Inception weights ({why}); {where}") from None


def inception_weights(path: str | Path | None = None, offline: bool | None = None, cache: Path | None = None,
                      progress: bool = False) -> tuple[Path, str]:
    """(the weights file, its sha256): `path` as given (hashed, remembered in `cache`), else torch-fidelity's file
    found or downloaded (see the module docstring), its pinned sha256 checked once per file version."""
    from .inception import WEIGHTS_URL
    from .weights.env import is_offline
    from .weights.progress import progress_bars
    from .weights.verify import check_sha256

    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise WeightsError(f"--inception {p}: " + ("is a folder; give the .pth file" if p.is_dir()
                                                       else "no such file"))
        try:
            return p, file_sha256(p, cache)
        except OSError as e:
            raise WeightsError(f"cannot read {p}: {e.strerror or first_line(e)}") from None
    target = weights_path()
    found = next((p for p in [target, *_torch_hub_copies()] if p.is_file()), None)
    if found is None:
        if is_offline(offline):
            raise WeightsError(f"the Inception weights are not at {target} and offline mode is on (--offline / "
                               f"HF_HUB_OFFLINE=1); download {WEIGHTS_URL} and put it there, or pass --inception FILE")
        _download(target, progress)
        found = target
    with progress_bars(progress, None) as bar_class:
        actual = check_sha256(found, WEIGHTS_SHA256, bar_class, found.name)
    if actual is not None:
        raise WeightsError(f"{found} has sha256 {actual}, not the {WEIGHTS_SHA256} of {WEIGHTS_URL}; delete it "
                           "(it is fetched again) or pass --inception FILE")
    return found, WEIGHTS_SHA256


_NETS: dict[tuple[str, str], Any] = {}  # (weights sha256, device) -> the loaded network: one kept per process


def load_network(path: Path, sha256: str, device: Any) -> Any:
    """`ssgen.inception.load_inception`, kept for the next evaluation in this process (a sweep evaluates many
    sets; loading costs about a second)."""
    from .inception import load_inception

    key = (sha256, str(device))
    if key not in _NETS:
        _NETS.clear()
        _NETS[key] = load_inception(path, device)
    return _NETS[key]


@contextmanager
def _float32_exact(device: Any) -> Iterator[None]:
    """On CUDA, float32 convolutions and matmuls without TF32 (cuDNN's default on Ampere and later rounds their
    inputs to 10 bits, which moves pool features by about 1e-3 of their scale; ADM's TF ran in float32)."""
    import torch

    if device.type != "cuda":
        yield
        return
    old = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old


def default_batch_size(device: Any) -> int:
    """Images per forward pass: 64 on GPUs (ADM's batch), 32 on the CPU. On the CPU a batch of 32 runs as fast
    per image as larger ones (measured: 0.54 s per image at 32, 0.71 at 8, 2 cores) and peaks near 1 GB; each
    image of a batch holds about 20 MB of activations at 299 x 299."""
    return BATCH_GPU if device.type == "cuda" else BATCH_CPU


def extract(net: Any, src: Source, batch_size: int, device: Any, progress: Any = None) -> tuple[np.ndarray, ...]:
    """The features of every image of `src`: pool (N, 2048) and spatial (N, 2023) float32, in order."""
    import torch

    pool = np.empty((src.count, POOL), np.float32)  # (N, 2048)
    spatial = np.empty((src.count, SPATIAL), np.float32)  # (N, 2023)
    done = 0
    with _float32_exact(device), (progress.bar(f"Inception {src.path.name}", src.count, images=True)
                                  if progress else _nobar()) as bar:
        for batch in image_batches(src, batch_size):  # (b, H, W, 3) uint8
            f = net(torch.from_numpy(batch))
            b = len(batch)
            pool[done : done + b] = f["pool"].cpu().numpy()
            spatial[done : done + b] = f["spatial"].cpu().numpy()
            done += b
            bar.advance(b)
    return pool, spatial


# ----------------------------------------------------------------------------------------------
# The feature cache
# ----------------------------------------------------------------------------------------------


def _features_file(cache: Path, src: Source, weights_sha256: str) -> Path:
    return cache / "features" / f"{src.sha256}-{weights_sha256[:16]}-v{FEATURES_VERSION}.npz"


def _read_features(path: Path, count: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Cached features, or None when absent or not what this set needs (then they are computed again)."""
    try:
        with np.load(path) as z:
            pool, spatial = z["pool"], z["spatial"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        return None
    if pool.shape != (count, POOL) or spatial.shape != (count, SPATIAL) or pool.dtype != np.float32:
        return None
    return pool, spatial


def _write_features(path: Path, pool: np.ndarray, spatial: np.ndarray, meta: dict[str, Any]) -> str | None:
    """Store features atomically; a note instead of an error when the cache cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path) as f:
            np.savez(f, pool=pool, spatial=spatial, meta=np.array(json.dumps(meta, sort_keys=True)))
    except (OSError, SSGenError) as e:
        return f"the features were not cached ({first_line(e)})"
    return None


# ----------------------------------------------------------------------------------------------
# Progress (rich bars on stderr, only on a terminal)
# ----------------------------------------------------------------------------------------------


class _NoBar:
    def advance(self, n: int) -> None:
        pass

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def _nobar() -> _NoBar:
    return _NoBar()


class _Bars:
    """Rich bars on stderr for an evaluation's long steps (hashing, features with their rate, the bootstrap), one
    at a time, drawn only on a terminal."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)

    @contextmanager
    def bar(self, label: str, total: int, images: bool = False) -> Iterator[Any]:
        if not self.console.is_terminal:
            yield _NoBar()
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[rate]}"), TimeRemainingColumn()]
        with Progress(*columns, console=self.console) as progress:
            task = progress.add_task(label, total=total, rate="")
            t0, done = time.perf_counter(), [0]

            class _Bar:
                def advance(self, n: int) -> None:
                    done[0] += n
                    rate = f"{done[0] / max(time.perf_counter() - t0, 1e-9):.1f} img/s" if images else ""
                    progress.update(task, advance=n, rate=rate)

            yield _Bar()


# ----------------------------------------------------------------------------------------------
# Metrics
# ----------------------------------------------------------------------------------------------


def parse_metrics(metrics: str | Iterable[str] | None) -> tuple[str, ...] | None:
    """`"fid,sfid"` or a list -> names in METRICS order; None stays None (every metric the reference can give)."""
    if metrics is None:
        return None
    items = metrics.split(",") if isinstance(metrics, str) else list(metrics)
    names = [str(m).strip().lower() for m in items if str(m).strip()]
    unknown = [m for m in names if m not in METRICS]
    if unknown:
        raise ConfigError(f"unknown metric(s) {', '.join(unknown)}; choose from {','.join(METRICS)}")
    if not names:
        raise ConfigError(f"--metrics is empty; choose from {','.join(METRICS)}")
    return tuple(m for m in METRICS if m in names)


def _plan(asked: tuple[str, ...] | None, samples: Source, ref: Source) -> tuple[list[str], dict[str, str]]:
    """The metrics to compute and those skipped (with why). A metric asked for by name that cannot be computed
    is an error, raised here before any heavy work; by default it is skipped and said so."""
    todo, skipped = [], {}
    for m in asked or METRICS:
        why = None
        if not ref.can_give(m):  # a reference of statistics alone
            have = [x for x in METRICS if ref.can_give(x)]
            why = (f"the reference {ref.path} holds statistics only ({', '.join(ref.stats)}; no arr_0 images): it "
                   f"can give {', '.join(have)}")
        elif m in ("precision", "recall") and min(samples.count, ref.count) <= K:
            why = (f"precision and recall need more than {K} images on each side (k = {K} nearest neighbours); "
                   f"samples {samples.count}, reference {ref.count}")
        if why is None:
            todo.append(m)
        elif asked is not None:
            raise ConfigError(f"cannot compute {m}: {why}")
        else:
            skipped[m] = why
    return todo, skipped


@contextmanager
def _warnings_as_notes(notes: list[str], metric: str) -> Iterator[None]:
    """scipy's and ssgen.metrics' warnings (a singular covariance, the eps fallback) become notes of the result."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        line = f"{TITLES[metric]}: {first_line(w.message)}"
        if line not in notes:
            notes.append(line)


def _fid(x: np.ndarray, ref_stats: tuple, metric: str) -> float:
    """FID (or sFID) of sample features x (N, D) against the reference's (mu, sigma). From N >= D samples (every
    published setting: 50,000) ADM's arithmetic as it is: the sample statistics and scipy's D x D sqrtm. Below, the
    same quantity through the samples' (N, N) Gram matrix (`frechet_distance_few`: ADM's value up to float
    rounding, in a fraction of a second instead of the 10-60 s of a 2048-dim sqrtm on 2 cores)."""
    from .metrics import feature_stats, frechet_distance, frechet_distance_few

    try:
        if len(x) < x.shape[1]:
            return frechet_distance_few(x, *ref_stats)
        return frechet_distance(*feature_stats(x), *ref_stats)
    except ValueError as e:  # ADM raises too (a large imaginary part of sqrtm)
        raise SSGenError(f"{TITLES[metric]} cannot be computed: {first_line(e)}") from None


def _compute(todo: list[str], feats: dict[str, np.ndarray], ref_stats: dict[str, tuple], ref_pool: np.ndarray | None,
             weight: np.ndarray, notes: list[str]) -> dict[str, float]:
    """The metrics of sample features `feats` ({"pool", "spatial"}) against the reference, as ADM computes them."""
    from .metrics import inception_score, precision_recall

    out: dict[str, float] = {}
    for m in todo:
        with _warnings_as_notes(notes, m):
            if m in STATS:
                out[m] = _fid(feats["pool" if m == "fid" else "spatial"], ref_stats[m], m)
            elif m == "is":
                out[m] = inception_score(feats["pool"], weight)
            elif m == "precision":
                out["precision"], out["recall"] = precision_recall(ref_pool, feats["pool"], k=K)
            elif m == "recall" and "recall" not in out:
                _, out["recall"] = precision_recall(ref_pool, feats["pool"], k=K)
    return {m: out[m] for m in todo}


def _bootstrap(n: int, seed: int, values: dict[str, float], feats: dict[str, np.ndarray],
               ref_stats: dict[str, tuple], weight: np.ndarray, progress: Any, notes: list[str]
               ) -> tuple[dict[str, tuple[float, float]], dict[str, Any]]:
    """95% intervals of FID, sFID and IS by resampling the sample features (see the module docstring)."""
    which = [m for m in values if m in BOOTSTRAPPED]
    rng = np.random.default_rng(seed)
    count = len(feats["pool"])
    draws: dict[str, list[float]] = {m: [] for m in which}
    with (progress.bar("bootstrap", n) if progress else _nobar()) as bar:
        for _ in range(n):
            idx = rng.integers(0, count, size=count)  # (N,) with replacement
            resample = {"pool": feats["pool"][idx], "spatial": feats["spatial"][idx]}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the point estimate's notes already say what the data does
                got = _compute(which, resample, ref_stats, None, weight, notes)
            for m in which:
                draws[m].append(got[m])
            bar.advance(1)
    intervals, quantiles = {}, {}
    for m in which:
        lo, med, hi = (float(q) for q in np.percentile(np.asarray(draws[m]), [2.5, 50, 97.5]))
        intervals[m] = (values[m] - (med - lo), values[m] + (hi - med))
        quantiles[m] = [lo, med, hi]
    excluded = [m for m in values if m not in BOOTSTRAPPED]
    info = {"n": n, "seed": seed, "confidence": 0.95,
            "method": "sample features resampled with replacement; the 2.5-97.5 percentile range of the resampled "
                      "values, moved so that their median sits on the value",
            "quantiles": quantiles, "not_bootstrapped": excluded}
    return intervals, info


def _versions() -> dict[str, str]:
    import PIL
    import torch

    from .version import __version__

    try:
        import scipy

        scipy_version = scipy.__version__
    except ImportError:
        scipy_version = "missing"
    return {"ssgen": __version__, "torch": torch.__version__, "numpy": np.__version__, "scipy": scipy_version,
            "pillow": PIL.__version__, "python": platform.python_version()}


# ----------------------------------------------------------------------------------------------
# evaluate
# ----------------------------------------------------------------------------------------------


def prompts_of(src: Source) -> list[str]:
    """The prompt of every image of a batch folder, in evaluation order, from its manifest.jsonl (what the CLIP
    score compares each image with)."""
    manifest = src.path / "manifest.jsonl" if src.kind == "batch folder" else None
    if manifest is None or not manifest.is_file():
        raise ConfigError(f"the CLIP score needs each image's prompt: give a batch folder of a text-to-image run "
                          f"(its manifest.jsonl names them), not {src.path} ({src.kind})")
    by_file = {}
    rebuild = "re-run the same `ssgen batch` command to rebuild it"
    try:
        for line in read_text(manifest, "batch manifest", rebuild).splitlines():
            if line.strip():
                rec = json.loads(line)
                by_file[rec.get("file")] = rec.get("prompt")
    except (ValueError, AttributeError) as e:
        raise ConfigError(f"cannot read {manifest}: {first_line(e)}; {rebuild}") from None
    prompts = [by_file.get(f.name) for f in src.files]
    missing = [f.name for f, p in zip(src.files, prompts) if not isinstance(p, str)]
    if missing:
        raise ConfigError(f"{manifest} names no prompt for {missing[0]} ({len(missing)} images): the CLIP score is "
                          "for text-to-image runs")
    return prompts


def clip_metric(src: Source, clip: str | Path | bool, device: Any, batch_size: int, offline: bool | None,
                prompts: list[str]) -> tuple[float, dict[str, Any]]:
    """The CLIP score of a batch folder's images against their prompts (ssgen.clip_score), streamed."""
    from .clip_score import DEFAULT_CLIP, clip_score, load_clip

    which = DEFAULT_CLIP["repo"] if clip is True else str(clip)
    model = load_clip(which, device=device, offline=offline)
    images = (im for batch in image_batches(src, batch_size) for im in batch)  # (H, W, 3) uint8 each
    mean, _ = clip_score(model, images, prompts, batch_size=batch_size)
    return mean, {"clip_model": which}


def evaluate(samples: str | Path, ref: str | Path | None, metrics: str | Iterable[str] | None = None,
             inception: str | Path | None = None, device: str = "auto", batch_size: int | None = None,
             bootstrap: int = 0, cache: str | Path | None | bool = None, offline: bool | None = None,
             progress: bool = False, seed: int = BOOTSTRAP_SEED, clip: str | Path | bool = False) -> EvalResult:
    """ADM's metrics of `samples` against `ref` (what `ssgen eval` does; see the module docstring).

    samples, ref: a batch folder, a folder of PNG/JPEG images or an .npz with arr_0 (N, H, W, 3) uint8; ref may
        also be ADM's reference npz (arr_0 and/or mu, sigma, mu_s, sigma_s).
    metrics: names among fid, sfid, is, precision, recall ("fid,is" or a list); None: every one the reference can
        give (the others are listed in `result.skipped`). One asked for that cannot be computed is an error.
    inception: a weights file (else torch-fidelity's file, found or downloaded: `inception_weights`).
    device: auto (cuda, then mps, then cpu), cpu, cuda, cuda:N. batch_size: images per forward pass (None: 64 on
        GPUs, 32 on the CPU). bootstrap: resamples for 95% intervals (0: none). cache: the feature cache folder
        (None: `$HF_HOME/assets/ssgen/eval`; False: no cache). offline: no download (None: HF_HUB_OFFLINE).
    progress: rich bars on stderr (on a terminal). seed: the bootstrap's seed.
    clip: also the CLIP score of a text-to-image batch folder against its prompts (True: CLIP ViT-L/14, or a
        CLIPModel folder / Hub repo); with `ref=None` the CLIP score alone.
    Every problem with the input is an SSGenError raised before any image goes through the network (except a file
    damaged past its header, found when it is decoded).
    """
    t0 = time.perf_counter()
    seconds: dict[str, float] = {}
    asked = parse_metrics(metrics)
    if batch_size is not None:
        batch_size = as_int(batch_size, "batch_size", 1)
    if bootstrap < 0 or bootstrap == 1:
        raise ConfigError(f"--bootstrap must be 0 (none) or at least 2 resamples, got {bootstrap}")
    if ref is None and not clip:
        raise ConfigError("give a reference (--ref) for FID, sFID, IS, precision and recall, or --clip for the "
                          "CLIP score")
    s = open_source(samples, "samples")  # images (an npz of statistics alone is refused as samples)
    prompts = prompts_of(s) if clip else None
    if ref is None:
        return _clip_only(s, clip, device, batch_size, offline, prompts, t0)
    r = open_source(ref, "reference")
    todo, skipped = _plan(asked, s, r)
    notes: list[str] = []
    for why in dict.fromkeys(skipped.values()):
        notes.append(f"skipped {', '.join(m for m in skipped if skipped[m] == why)}: {why}")

    from .pipeline import resolve_device

    dev = resolve_device(device)
    bsz = batch_size or default_batch_size(dev)
    store = cache_dir(cache)
    bars = _Bars() if progress else None

    t = time.perf_counter()
    identify(s, store, bars)
    identify(r, store, bars)
    notes += s.notes + r.notes
    w_path, w_sha = inception_weights(inception, offline, store, progress)
    seconds["hashing"] = time.perf_counter() - t
    net = load_network(w_path, w_sha, dev)
    weight = net.logits_weight.detach().cpu().numpy()  # (2048, 1008)

    t = time.perf_counter()
    computed: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # sha256 -> features, within this call

    def features(src: Source) -> tuple[tuple[np.ndarray, np.ndarray], str]:
        if src.sha256 in computed:
            return computed[src.sha256], "cache"
        path = _features_file(store, src, w_sha) if store is not None else None
        got = _read_features(path, src.count) if path is not None else None
        how = "cache"
        if got is None:
            got, how = extract(net, src, bsz, dev, bars), "computed"
            if path is not None:
                meta = {"source": str(src.path), "kind": src.kind, "count": src.count, "size": list(src.size),
                        "images_sha256": src.sha256, "weights_sha256": w_sha, "features_version": FEATURES_VERSION}
                note = _write_features(path, *got, meta)
                if note:
                    notes.append(note)
        computed[src.sha256] = got
        return got, how

    (pool, spatial), s_how = features(s)
    sample_feats = {"pool": pool, "spatial": spatial}
    ref_stats: dict[str, tuple] = {}
    ref_pool, ref_spatial, r_how, r_statistics = None, None, None, None
    need_ref = any(m in ("precision", "recall") for m in todo) or any(
        m in STATS and STATS[m][0] not in r.stats for m in todo)
    if need_ref:
        (ref_pool, ref_spatial), r_how = features(r)
    seconds["features"] = time.perf_counter() - t

    t = time.perf_counter()
    from .metrics import feature_stats

    origin = {}  # metric -> where the reference's statistics came from
    for m in (x for x in todo if x in STATS):
        mu, sigma, _ = STATS[m]
        if mu in r.stats:  # ADM's read_statistics: the npz's own statistics win
            ref_stats[m], origin[m] = (r.stats[mu], r.stats[sigma]), "precomputed"
        else:
            ref_stats[m], origin[m] = feature_stats(ref_pool if m == "fid" else ref_spatial), "computed"
    if origin:
        kinds = set(origin.values())
        r_statistics = kinds.pop() if len(kinds) == 1 else ", ".join(f"{TITLES[m]} {o}" for m, o in origin.items())
    values = _compute(todo, sample_feats, ref_stats, ref_pool, weight, notes)
    seconds["metrics"] = time.perf_counter() - t

    intervals: dict[str, tuple[float, float]] = {}
    boot = None
    if bootstrap:
        t = time.perf_counter()
        intervals, boot = _bootstrap(bootstrap, seed, values, sample_feats, ref_stats, weight, bars, notes)
        seconds["bootstrap"] = time.perf_counter() - t
    if clip:
        t = time.perf_counter()
        values["clip"], clip_info = clip_metric(s, clip, dev, bsz, offline, prompts)
        seconds["clip"] = time.perf_counter() - t
        extra_clip = clip_info
    else:
        extra_clip = {}
    seconds["total"] = time.perf_counter() - t0

    if s.count < POOL and any(m in STATS for m in todo):
        notes.append(f"{s.count} samples, fewer than the features' dimensions: FID and sFID came through the "
                     "samples' Gram matrix (ADM's value up to rounding, without a 2048-dim sqrtm); they compare only "
                     "with numbers from as many samples")
    official = w_sha == WEIGHTS_SHA256
    if not official:
        notes.append(f"the Inception weights {w_path} are not torch-fidelity's file (sha256 {w_sha[:12]}...): "
                     "these numbers do not compare with published ones")
    samples_info = {**s.describe(), "features": s_how}
    ref_info = {**r.describe(), "features": r_how, "statistics": r_statistics}
    extractor = {"name": "Inception 2015-12-05 (ADM's TF graph; torch-fidelity's port, ssgen.inception)",
                 "weights": str(w_path), "weights_sha256": w_sha, "official": official, "device": str(dev),
                 "batch_size": bsz, "cache": str(store) if store is not None else None, **extra_clip}
    return EvalResult(metrics=values, intervals=intervals, samples=samples_info, ref=ref_info, extractor=extractor,
                      versions=_versions(), seconds={k: round(v, 3) for k, v in seconds.items()}, skipped=skipped,
                      bootstrap=boot, notes=notes)


def _clip_only(s: Source, clip: str | Path | bool, device: str, batch_size: int | None, offline: bool | None,
               prompts: list[str], t0: float) -> EvalResult:
    """`evaluate(samples, None, clip=...)`: the CLIP score alone (no Inception, no reference)."""
    from .pipeline import resolve_device

    dev = resolve_device(device)
    bsz = batch_size or default_batch_size(dev)
    identify(s, None)
    value, info = clip_metric(s, clip, dev, bsz, offline, prompts)
    total = round(time.perf_counter() - t0, 3)
    return EvalResult(metrics={"clip": value}, intervals={}, samples=s.describe(), ref={},
                      extractor={"device": str(dev), "batch_size": bsz, **info}, versions=_versions(),
                      seconds={"clip": total, "total": total})
