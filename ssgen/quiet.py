"""Loading models through transformers without its own progress bars and info logs (ssgen prints its own
progress and rewords errors). Shared by the text encoders (Infinity's T5, HART's Qwen2) and the CLIP score.
transformers is imported only inside the block."""

from __future__ import annotations

import contextlib


@contextlib.contextmanager
def quiet_transformers():
    """Silence transformers' progress bars and info/warning lines for the duration of the block."""
    from transformers.utils import logging as tlog

    level = tlog.get_verbosity()
    bars = tlog.is_progress_bar_enabled()
    tlog.set_verbosity_error()
    tlog.disable_progress_bar()
    try:
        yield
    finally:
        tlog.set_verbosity(level)
        if bars:
            tlog.enable_progress_bar()
