"""`safe(text)`: text that came from a file or an argument, made harmless to print on a terminal.

A PNG's settings, a config's `name:`, a prompt, a path: any of them may hold control characters (ESC starts
sequences that retitle or clear the terminal or plant an OSC-8 hyperlink; `\\r` overwrites the line; C1's
`\\x9b` is a one-byte CSI) or rich markup (`[/dim]` raises in rich's parser, `[link=...]` becomes a live
link). Everything ssgen prints that it did not write itself goes through `safe` first:
- control characters (C0, DEL and C1) become visible escapes, as Python's repr writes them (`\\x1b`, `\\n`);
  other unicode (accents, CJK, emoji) is kept as it is;
- with markup=True (the default: for rich's `print`, table cells, progress-bar labels) rich markup is
  escaped too, so the text prints literally; markup=False for the builtin `print` and for rich output
  that does not parse markup (`markup=False`, `Text(...)`), where an escape would show as a backslash.
ssgen's rich consoles are made with `emoji=False`, so a `:smile:` in a name stays text too.
"""

from __future__ import annotations

import re

from rich.markup import escape

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _visible(m: re.Match) -> str:
    c = m.group()
    return _NAMED.get(c) or f"\\x{ord(c):02x}"


def safe(text: object, markup: bool = True) -> str:
    """`str(text)` with control characters shown as escapes (`\\x1b`) and, when `markup`, rich markup escaped."""
    shown = _CONTROL.sub(_visible, str(text))
    return escape(shown) if markup else shown
