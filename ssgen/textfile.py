"""Reading a text file a user gave (a model config, a job file, a prompts file, ...): one helper, one set of errors.

Every text file ssgen reads goes through `read_text(path, what, fix)`, so that a binary file given where text
belongs (`-m model.pth`, `--jobs image.png`), text in another encoding (Latin-1, UTF-16), a folder, a missing
or unreadable file all end in one line that names the file and what was expected, never a traceback.
Text is UTF-8; a UTF-8 byte-order mark (Windows editors write one) is dropped.
"""

from __future__ import annotations

from pathlib import Path

from .errors import ConfigError, SSGenError

_HEAD = 8192  # enough to tell a binary file without reading a multi-GB checkpoint given by mistake
# binary formats a user may give by mistake, by their first bytes (what they are, for the message)
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"PK\x03\x04", "a zip archive, such as a PyTorch checkpoint"),
    (b"\x93NUMPY", "a NumPy array"),
)


def _binary(head: bytes) -> str | None:
    """What a file is when its first bytes say it is not text (a known format, or NUL bytes); None for text."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 text has NUL bytes too: told apart below
        return None
    for magic, what in _SIGNATURES:
        if head.startswith(magic):
            return what
    if len(head) > 1 and head[0] == 0x80 and head[1] in (2, 3, 4, 5):  # pickle protocol 2 to 5
        return "a pickle, such as a PyTorch checkpoint"
    if len(head) > 9 and head[8:10] == b'{"':
        return "a safetensors file"
    return "binary data" if b"\x00" in head else None


def read_text(path: str | Path, what: str, fix: str, error: type[SSGenError] = ConfigError) -> str:
    """The text of a UTF-8 file; any problem reading it is an `error` naming the file.

    what: what the file should be, after "a" ("model config", "job file", ...); fix: how to give the right thing
    (ends the message of a binary file or a folder: "pass a YAML config"). A file that is not UTF-8 text is
    named with its first undecodable byte, line and offset.
    """
    p = Path(path).expanduser()
    try:
        with open(p, "rb") as f:
            head = f.read(_HEAD)
            kind = _binary(head)
            if kind is not None:
                raise error(f"{p} is {kind}, not a {what} (text); {fix}")
            data = head + f.read()
    except FileNotFoundError:
        raise error(f"{what} {p} does not exist; {fix}") from None
    except IsADirectoryError:
        raise error(f"{what} {p} is a folder, not a file; {fix}") from None
    except PermissionError:
        raise error(f"cannot read {what} {p} (permission denied); check the file's permissions") from None
    except OSError as e:
        raise error(f"cannot read {what} {p} ({e.strerror or type(e).__name__}); check the file") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise error(f"{what} {p} is UTF-16 text; save it as UTF-8")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise error(f"{what} {p} is not UTF-8 text (byte 0x{data[e.start]:02x} on line {line}, at offset "
                    f"{e.start}); save it as UTF-8") from None
    return text.removeprefix("\ufeff")  # a byte-order mark is no part of the text
