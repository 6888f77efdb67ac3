"""Download and hashing progress bars: a rich-drawn stand-in for tqdm that huggingface_hub drives
through its `tqdm_class=` argument, so downloads look like the rest of ssgen's output.

`progress_bars(enabled, console)` gives the class to hand over: one that draws on a terminal, or the
silent base class when `enabled` is False, `HF_HUB_DISABLE_PROGRESS_BARS` is set or stderr is not a
terminal. huggingface_hub always gets one of these, so it never draws bars of its own.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.filesize import decimal as filesize
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeRemainingColumn
from rich.table import Column
from rich.text import Text

from ..terminal import safe
from .env import progress_disabled


class _AmountColumn(ProgressColumn):
    """`12.3/45.6 MB 8.1 MB/s` for byte bars, `3/7` for counters."""

    def render(self, task: Task) -> Text:
        """Render the amount done (and the speed for byte bars)."""
        if not task.fields.get("bytes"):
            total = "?" if task.total is None else str(int(task.total))
            return Text(f"{int(task.completed)}/{total}", style="progress.download", no_wrap=True)
        done = filesize(int(task.completed))
        total = "?" if task.total is None else filesize(int(task.total))
        speed = f" {filesize(int(task.speed))}/s" if task.speed else ""
        return Text(f"{done}/{total}{speed}", style="progress.download", no_wrap=True)


class _LazyProgress:
    """A rich Progress that starts drawing only when its first bar is added (a cached file draws nothing)."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("[progress.description]{task.description}",
                       table_column=Column(no_wrap=True, overflow="ellipsis", max_width=48)),
            BarColumn(),
            _AmountColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        self._started = False
        self._lock = threading.Lock()

    def add_task(self, description: str, total: float | None, completed: float, is_bytes: bool) -> Any:
        """Add a bar (starting the display if needed); returns its task id."""
        with self._lock:
            if not self._started:
                self._progress.start()
                self._started = True
            return self._progress.add_task(description, total=total, completed=completed, bytes=is_bytes)

    def update(self, task_id: Any, **fields: Any) -> None:
        """Update a bar."""
        self._progress.update(task_id, **fields)

    def stop(self) -> None:
        """Stop drawing (leaves the final state on screen)."""
        with self._lock:
            if self._started:
                self._progress.stop()
                self._started = False


def _short_desc(desc: str) -> str:
    """huggingface_hub labels some bars with the (truncated) URL; keep the file name only. The label is a file
    name from a config or the Hub: escaped (`ssgen.terminal.safe`), as the bar parses markup."""
    if desc.startswith(("http://", "https://", "(…)")) and "/" in desc:
        desc = desc.rsplit("/", 1)[-1]
    return safe(desc)


class RichTqdm:
    """A tqdm stand-in for huggingface_hub's `tqdm_class=` argument, drawn with rich.

    huggingface_hub only uses the constructor keywords (desc, total, initial, unit, ...), `update`,
    `close`, the context-manager protocol, the `n` and `total` attributes, `refresh`,
    `set_description(_str)`, `set_postfix_str`, `format_dict` and the class methods
    `get_lock`/`set_lock`. This base class draws nothing; `progress_bars` makes a subclass bound
    to a display.
    """

    display: _LazyProgress | None = None
    _lock = threading.RLock()
    # snapshot_download keeps two byte bars that advance together over plain HTTP; show one.
    _HIDDEN_PREFIXES = ("Reconstruct",)

    def __init__(self, iterable: Any = None, desc: str | None = None, total: float | None = None,
                 initial: float = 0, unit: str = "it", **_ignored: Any) -> None:
        self.iterable = iterable
        self.n = initial or 0
        self._total = total
        self.desc = desc or ""
        self.disable = self.display is None
        self._task: Any = None
        if self.display is not None and not self.desc.startswith(self._HIDDEN_PREFIXES):
            self._task = self.display.add_task(_short_desc(self.desc), total, self.n, unit == "B")

    @property
    def total(self) -> float | None:
        """The expected amount (bytes or items), None if unknown."""
        return self._total

    @total.setter
    def total(self, value: float | None) -> None:
        self._total = value
        self._show(total=value)

    def _show(self, **fields: Any) -> None:
        """Push fields to the rich task, if this bar is drawn."""
        if self._task is not None and self.display is not None:
            self.display.update(self._task, **fields)

    def update(self, n: float | None = 1) -> None:
        """Advance by n (snapshot_download's worker threads share its bars)."""
        with self._lock:
            self.n += n or 0
            self._show(completed=self.n)

    def refresh(self, *args: Any, **kwargs: Any) -> None:
        """Nothing to do: rich redraws on its own."""

    def close(self) -> None:
        """Nothing to do: the display is stopped by `progress_bars`."""

    def __enter__(self) -> RichTqdm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        """Change the label."""
        self.desc = desc or ""
        self._show(description=_short_desc(self.desc))

    set_description_str = set_description

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        """Ignored: the rich bar shows its own speed."""

    @property
    def format_dict(self) -> dict[str, Any]:
        """The few fields huggingface_hub reads from tqdm's format_dict."""
        return {"n": self.n, "total": self._total, "rate": None, "elapsed": 0}

    @classmethod
    def get_lock(cls) -> threading.RLock:
        """tqdm's class-level lock (shared with worker threads by huggingface_hub)."""
        return cls._lock

    @classmethod
    def set_lock(cls, lock: Any) -> None:
        """Ignored: rich is thread-safe."""


@contextlib.contextmanager
def progress_bars(enabled: bool, console: Console | None) -> Iterator[type[RichTqdm]]:
    """A tqdm-compatible class for huggingface_hub and hashing: draws on a terminal, silent otherwise."""
    console = console or Console(stderr=True)
    if not enabled or progress_disabled() or not console.is_terminal:
        yield RichTqdm
        return
    display = _LazyProgress(console)
    try:
        yield type("_BoundRichTqdm", (RichTqdm,), {"display": display, "_lock": threading.RLock()})
    finally:
        display.stop()
