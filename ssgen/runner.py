"""The one driver: a list of resolved requests -> the pipeline -> a sink, with progress.

Every command that generates goes through `drive`: `generate`, `compare`, `edit` and `batch` (and the coming
`sweep` and `eval`) differ only in the works they plan and the sink that receives each finished result:

    works = [Work(request, indices=(0, 1, ...)), ...]   # resolved (ssgen.request) before any weights load
    report = runner.drive(pipe, works, GridSink(...), watchers=[ScaleBar(console)])

A `Work` is one pipeline call: a resolved request (at most `--batch-size` images), the run's index of each
of its images (a batch shard's are not consecutive), and the column it fills (compare). A sink gets each
result as it comes (`add`), writes what waits for the end (`finish`: a grid) and releases what it claimed
when the run fails (`abort`). Watchers see every call and scale: progress bars (`ScaleBar` per call,
`ImageBar` over a whole batch run) and `--save-scales` (`sinks.ScaleSaver`). Results are dropped after
their sink has them: memory stays bounded however many images are asked for.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol, Sequence

from .request import Request
from .terminal import safe


@dataclass(frozen=True)
class Work:
    """One pipeline call: its request, the run's index of each of its images, and its column (compare)."""

    request: Request
    indices: tuple[int, ...]  # one per image of the request
    column: int = 0
    label: str = ""  # what a progress bar says about this call


class Sink(Protocol):
    def add(self, work: Work, result: Any) -> None:
        """Take one call's GenerationResult (write files now, or keep what `finish` needs)."""

    def finish(self) -> list[Path]:
        """Write what waits for the end; return every file written."""

    def abort(self) -> None:
        """The run failed: release what was claimed (placeholders)."""


class Watcher(Protocol):
    def begin(self, work: Work) -> None: ...

    def scale(self, work: Work, k: int, backend: Any) -> None: ...

    def end(self, work: Work, result: Any) -> None:
        """After the call; `result` is None when it failed."""


@dataclass
class Report:
    """What a run did: images generated, seconds in the pipeline, per-image wall times, notes (each once)."""

    images: int = 0
    seconds: float = 0.0  # sum of the calls' own seconds (GenerationResult.seconds)
    per_image: list[float] = field(default_factory=list)  # each image: its call's wall time over the call's size
    first_image_at: float | None = None  # perf_counter() when the first image was done
    settings: list[dict] = field(default_factory=list)  # every image's settings, in work order
    notes: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


def drive(pipe: Any, works: Iterable[Work], sink: Sink, *, watchers: Sequence[Watcher] = (),
        on_note: Callable[[str], None] | None = None) -> Report:
    """Run every work through `pipe.run` and hand each result to `sink`; `finish` at the end, `abort` on any
    failure (Ctrl-C included). `on_note` hears each distinct note once, when it first appears."""
    report = Report()
    current = None
    try:
        for work in works:
            current = work
            for w in watchers:
                w.begin(work)
            on_scale = None
            if watchers:
                def on_scale(k: int, backend: Any, work: Work = work) -> None:
                    for w in watchers:
                        w.scale(work, k, backend)
            t0 = time.perf_counter()
            res = pipe.run(work.request, on_scale=on_scale)
            current = None
            for w in watchers:
                w.end(work, res)
            for note in res.notes:
                if note not in report.notes:
                    report.notes.append(note)
                    if on_note is not None:
                        on_note(note)
            sink.add(work, res)
            n = work.request.size
            report.images += n
            report.seconds += res.seconds
            report.settings.extend(res.settings)
            report.per_image += [(time.perf_counter() - t0) / n] * n
            if report.first_image_at is None:
                report.first_image_at = time.perf_counter()
            del res  # pixels and tokens of finished images are not kept
        report.files = sink.finish()
    except BaseException:
        if current is not None:  # close what a call's watchers opened (a progress bar)
            for w in watchers:
                w.end(current, None)
        sink.abort()
        raise
    return report


# ------------------------------------------------------------------------------------------------
# progress
# ------------------------------------------------------------------------------------------------


class ScaleBar:
    """A transient bar over one call's scales (on a terminal only: elsewhere rich would print an empty line
    when the bar closes)."""

    def __init__(self, console: Any):
        self.console, self.prog, self.task = console, None, None

    def begin(self, work: Work) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.prog = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TextColumn("scales"), TimeElapsedColumn(), console=self.console, transient=True,
                             disable=not self.console.is_terminal)
        self.task = self.prog.add_task(safe(work.label), total=work.request.num_scales)  # a name: markup
        self.prog.start()

    def scale(self, work: Work, k: int, backend: Any) -> None:
        self.prog.update(self.task, completed=k + 1)

    def end(self, work: Work, result: Any) -> None:
        self.prog.stop()


class ImageBar:
    """One bar over a whole run's images (batch): done, rate (all processes), time left. `done`: images complete
    before this run started (a resumed run); `world`: processes sharing the work (the rate counts them all)."""

    def __init__(self, console: Any, label: str, total: int, done: int = 0, world: int = 1, enabled: bool = True):
        from rich import progress as rp

        self.world = world
        self.prog = rp.Progress(rp.TextColumn("[bold]{task.description}"), rp.BarColumn(), rp.MofNCompleteColumn(),
                                rp.TextColumn("{task.fields[rate]}"), rp.TimeElapsedColumn(), rp.TextColumn("ETA"),
                                rp.TimeRemainingColumn(), console=console, disable=not enabled)
        self.task = self.prog.add_task(safe(label), total=total, completed=done, rate="")  # a name: markup
        self.t0, self.n = None, 0

    def __enter__(self) -> ImageBar:
        self.prog.start()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.prog.stop()

    def begin(self, work: Work) -> None:
        pass

    def scale(self, work: Work, k: int, backend: Any) -> None:
        pass

    def end(self, work: Work, result: Any) -> None:
        if result is None:
            return
        self.n += work.request.size
        rate = self.n * self.world / (time.perf_counter() - self.t0)
        self.prog.update(self.task, advance=work.request.size,
                         rate=f"{rate:.2f} img/s" + (" (all ranks)" if self.world > 1 else ""))
