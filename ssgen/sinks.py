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


def edit_leading(work: Work, result: Any) -> list:
    """An edit's first two cells: the input as fitted to the model's size, and its reconstruction (the same
    for every image of a command: one input)."""
    from .pipeline import to_pil

    H, W = result.pixels.shape[-2:]
    return [work.request.edit.fitted((H, W))[0], to_pil(result.reconstruction[:1])[0]]


LEADING = ["input", "reconstruction"]  # the columns an edit's grid starts with


class CompareSink:
    """`compare`: a row per image, a column per setting (`labels`), rows labelled with condition and seed; an
    edit's rows start with the input and its reconstruction."""

    def __init__(self, outputs: Outputs, labels: list[str], key: str):
        self.outputs, self.labels, self.key = outputs, labels, key
        self.cells: dict[tuple[int, int], tuple[Any, dict]] = {}  # (image, column) -> (PIL image, settings)
        self.rows: dict[int, str] = {}
        self.leading: list = []  # an edit: [fitted input, reconstruction]

    def add(self, work: Work, result: Any) -> None:
        r = work.request
        if r.edit is not None and not self.leading:
            self.leading = edit_leading(work, result)
        for j, i in enumerate(work.indices):
            self.cells[i, work.column] = (result.images[j], result.settings[j])
            self.rows[i] = f"{cond_label(r.conditions[j], self.key)}, seed {r.seeds[j]}"

    def finish(self) -> list[Path]:
        n = len(self.rows)
        order = [(i, c) for i in sorted(self.rows) for c in range(len(self.labels))]
        meta = [self.cells[k][1] for k in order]
        lead = LEADING if self.leading else []
        cols = len(lead) + len(self.labels)
        cells = [im for i in sorted(self.rows) for im in self.leading + [self.cells[i, c][0]
                                                                          for c in range(len(self.labels))]]
        img = grid(cells, cols=cols, col_labels=lead + self.labels,
                   row_labels=[self.rows[i] for i in sorted(self.rows)])
        layout = {"rows": n, "cols": cols, "columns": self.labels, **({"leading": lead} if lead else {})}
        save_png(img, self.outputs.grid, {"grid": layout, "images": meta}, text=_text(meta),
                 overwrite=self.outputs.overwrite)
        self.outputs.release()
        self.settings = meta
        return [self.outputs.grid]

    def abort(self) -> None:
        self.outputs.release()


EDIT_ROW = 8  # edits per row of an edit grid; more of one condition continue on the next row


class EditSink:
    """`edit`: a row per condition (and per EDIT_ROW edits of it): the input (fitted to the model's size), its
    reconstruction, then the edits; columns labelled, rows labelled with condition and seeds."""

    def __init__(self, outputs: Outputs, key: str):
        self.outputs, self.key = outputs, key
        self.leading: list = []  # [fitted input, reconstruction]
        self.images: list = []  # (condition, seed, PIL image), in index order
        self.settings: list[dict] = []

    def add(self, work: Work, result: Any) -> None:
        if not self.leading:
            self.leading = edit_leading(work, result)
        r = work.request
        self.images.extend(zip(r.conditions, r.seeds, result.images))
        self.settings.extend(result.settings)

    def rows(self) -> list[list[tuple]]:
        """The images in rows: consecutive images of one condition, at most EDIT_ROW a row."""
        rows: list[list[tuple]] = []
        for item in self.images:
            if not rows or rows[-1][0][0] != item[0] or len(rows[-1]) == EDIT_ROW:
                rows.append([])
            rows[-1].append(item)
        return rows

    def finish(self) -> list[Path]:
        rows = self.rows()
        k = max(len(row) for row in rows)
        cells = [im for row in rows for im in self.leading + [im for _, _, im in row] + [None] * (k - len(row))]
        seeds = [f"seed {row[0][1]}" if len(row) == 1 else f"seeds {row[0][1]}-{row[-1][1]}" for row in rows]
        labels = [f"edit {j + 1}" for j in range(k)]
        img = grid(cells, cols=len(LEADING) + k, col_labels=LEADING + labels,
                   row_labels=[f"{cond_label(row[0][0], self.key)}, {s}" for row, s in zip(rows, seeds)])
        meta = {"grid": {"rows": len(rows), "cols": len(LEADING) + k, "leading": LEADING, "columns": labels},
                "images": self.settings}
        save_png(img, self.outputs.grid, meta, text=_text(self.settings), overwrite=self.outputs.overwrite)
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
