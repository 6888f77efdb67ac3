"""What the `ssgen eval` tests share: the tiny Inception file and small image sets.

The files are made once per session in pytest's base temporary folder (whichever test module asks first), so the
test modules share them, and the feature cache beside them: an image set goes through the network once per session.
Images: 64x64 noise, deterministic (numpy's PCG64 with a fixed seed), written as PNG folders and as ADM's npz."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

N = 6  # images per set: enough for precision/recall (k = 3) and cheap (about 0.25 s per image on one thread)


def noise_images(seed: int, n: int = N, h: int = 64, w: int = 64) -> np.ndarray:
    """(n, h, w, 3) uint8 noise."""
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def write_folder(d: Path, images: np.ndarray, names: list[str] | None = None) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for i, a in enumerate(images):
        Image.fromarray(a).save(d / (names[i] if names else f"img{i:02d}.png"))
    return d


def write_npz(p: Path, **arrays: np.ndarray) -> Path:
    np.savez(p, **arrays)
    return p


def shared(tmp_path_factory) -> dict[str, Path]:
    """The session's shared files, made on first use: weights, sets A and B (folders), A.npz, the cache folder."""
    base = tmp_path_factory.getbasetemp() / "eval-shared"
    done = base / "ready"
    paths = {"weights": base / "inception" / "weights-tiny.pth", "a": base / "A", "a_npz": base / "A.npz",
             "b": base / "B", "cache": base / "cache"}
    if not done.exists():
        from ssgen.inception import make_tiny_inception

        make_tiny_inception(paths["weights"])
        a = noise_images(0)
        write_folder(paths["a"], a)
        write_npz(paths["a_npz"], arr_0=a)
        write_folder(paths["b"], noise_images(1))
        done.write_text("1")
    return paths


def cached_features(cache: Path, sha256: str) -> dict[str, np.ndarray]:
    """The features the cache holds for an image set (its documented file layout)."""
    (path,) = sorted((cache / "features").glob(f"{sha256}-*.npz"))
    with np.load(path) as z:
        return {"pool": z["pool"], "spatial": z["spatial"]}
