"""Where finished images go (`runner.Sink`): a grid (+ `--each` files), a comparison grid, an edit grid, a
batch folder; and `ScaleSaver`, the `--save-scales` watcher. Each sink writes atomically (ssgen.atomic) and
never replaces a file it was not allowed to (`Outputs`, planned before the model loaded)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .output import Outputs, grid, save_png, summary
from .runner import Work


def image_path(folder: Path, index: int) -> Path:
    """Image `index` of a batch folder."""
    return folder / f"{index:06d}.png"


def grid_cols(n_images: int, per_cond: int) -> int:
    """Columns of a generate grid: one row per condition when each has several images, else a near square."""
    if per_cond > 1:
        return per_cond
    return n_images if n_images <= 8 else math.ceil(math.sqrt(n_images))


def cond_label(c: Any, key: str) -> str:
    """A grid row's label: "class 207", "null class" or the prompt (shortened)."""
    if key == "classes":
        return "null class" if c is None else f"class {c}"
    return c if len(c) <= 24 else c[:23] + "…"


def _text(settings: list[dict]) -> str:
    return " | ".join(summary(s) for s in settings)


class GridSink:
    """`generate`: the images of the run in one grid (`outputs.grid`, None past the grid limit), and with
    `each` every image as its own PNG right after its call."""

    def __init__(self, outputs: Outputs, total: int, per_cond: int, each: bool):
        self.outputs, self.total, self.per_cond, self.each = outputs, total, per_cond, each
        self.images: list = []  # PIL images, kept for the grid only
        self.settings: list[dict] = []
        self.files: list[Path] = []

    def add(self, work: Work, result: Any) -> None:
        if self.each:
            for i, im, s in zip(work.indices, result.images, result.settings):
                self.files.append(save_png(im, self.outputs.each_path(i), s, text=summary(s),
                                           overwrite=self.outputs.overwrite))
        if self.outputs.grid is not None:
            self.images.extend(result.images)
        self.settings.extend(result.settings)

    def finish(self) -> list[Path]:
        written = []
        if self.outputs.grid is not None:
            cols = grid_cols(self.total, self.per_cond)
            meta = {"grid": {"rows": math.ceil(self.total / cols), "cols": cols}, "images": self.settings}
            written.append(save_png(grid(self.images, cols=cols), self.outputs.grid, meta, text=_text(self.settings),
                                    overwrite=self.outputs.overwrite))
        self.outputs.release()
        return written + self.files

    def abort(self) -> None:
        self.outputs.release()


class CompareSink:
    """`compare`: a row per image, a column per setting (`labels`), rows labelled with condition and seed."""

    def __init__(self, outputs: Outputs, labels: list[str], key: str):
        self.outputs, self.labels, self.key = outputs, labels, key
        self.cells: dict[tuple[int, int], tuple[Any, dict]] = {}  # (image, column) -> (PIL image, settings)
        self.rows: dict[int, str] = {}

    def add(self, work: Work, result: Any) -> None:
        r = work.request
        for j, i in enumerate(work.indices):
            self.cells[i, work.column] = (result.images[j], result.settings[j])
            self.rows[i] = f"{cond_label(r.conditions[j], self.key)}, seed {r.seeds[j]}"

    def finish(self) -> list[Path]:
        n = len(self.rows)
        order = [(i, c) for i in sorted(self.rows) for c in range(len(self.labels))]
        meta = [self.cells[k][1] for k in order]
        img = grid([self.cells[k][0] for k in order], cols=len(self.labels), col_labels=self.labels,
                   row_labels=[self.rows[i] for i in sorted(self.rows)])
        save_png(img, self.outputs.grid, {"grid": {"rows": n, "cols": len(self.labels), "columns": self.labels},
                                          "images": meta}, text=_text(meta), overwrite=self.outputs.overwrite)
        self.outputs.release()
        self.settings = meta
        return [self.outputs.grid]

    def abort(self) -> None:
        self.outputs.release()


class EditSink:
    """`edit`: the input (fitted to the model's size), its reconstruction, then the edits, in one grid."""

    def __init__(self, outputs: Outputs):
        self.outputs = outputs
        self.leading: list = []  # [fitted input, reconstruction]
        self.images: list = []
        self.settings: list[dict] = []

    def add(self, work: Work, result: Any) -> None:
        from .pipeline import to_pil

        if not self.leading:
            H, W = result.pixels.shape[-2:]
            self.leading = [work.request.edit.fitted((H, W))[0], to_pil(result.reconstruction[:1])[0]]
        self.images.extend(result.images)
        self.settings.extend(result.settings)

    def finish(self) -> list[Path]:
        cells = self.leading + self.images
        cols = grid_cols(len(cells), 1)
        meta = {"grid": {"rows": math.ceil(len(cells) / cols), "cols": cols, "leading": ["input", "reconstruction"]},
                "images": self.settings}
        save_png(grid(cells, cols=cols), self.outputs.grid, meta, text=_text(self.settings),
                 overwrite=self.outputs.overwrite)
        self.outputs.release()
        return [self.outputs.grid]

    def abort(self) -> None:
        self.outputs.release()


class FolderSink:
    """`batch`: every image as `{index:06d}.png` in the run folder, with its global index instead of its
    position in the call (which depends on the batch size and the process count)."""

    def __init__(self, folder: Path):
        self.folder = folder

    def add(self, work: Work, result: Any) -> None:
        for i, im, st in zip(work.indices, result.images, result.settings):
            st = dict(st, index=i)
            st.pop("batch_index", None)  # the position in this process's call: not a property of the image
            save_png(im, image_path(self.folder, i), st, text=summary(st))

    def finish(self) -> list[Path]:
        return []

    def abort(self) -> None:
        pass


class ScaleSaver:
    """`--save-scales` (a runner watcher): decode the running latent after every scale and write
    DIR/{tag}{i:03d}-k{k:02d}.png, plus a strip DIR/{tag}{i:03d}-scales.png per image after its call.
    `tags`: the file prefix of each column."""

    def __init__(self, folder: Path, tags: list[str], model: str, overwrite: bool = False):
        self.folder, self.tags, self.model, self.overwrite = folder, tags, model, overwrite
        self.frames: list[list] = []  # per scale: the call's PIL images

    def begin(self, work: Work) -> None:
        self.frames = []

    def scale(self, work: Work, k: int, backend: Any) -> None:
        from .pipeline import to_pil

        ims = to_pil(backend.preview())
        self.frames.append(ims)
        tag = self.tags[work.column]
        for i, im in zip(work.indices, ims):
            save_png(im, self.folder / f"{tag}{i:03d}-k{k:02d}.png",
                     {"model": self.model, "run": work.label, "scale": k, "image": i}, overwrite=self.overwrite)

    def end(self, work: Work, result: Any) -> None:
        if result is None:
            return
        tag = self.tags[work.column]
        for j, i in enumerate(work.indices):
            row = [f[j] for f in self.frames]
            save_png(grid(row, cols=len(row), col_labels=[f"k={k}" for k in range(len(row))]),
                     self.folder / f"{tag}{i:03d}-scales.png", {"model": self.model, "run": work.label, "image": i},
                     overwrite=self.overwrite)
