"""Safe file writes: atomic, with ordinary permissions, and never over an existing file unless asked.

Every file ssgen writes (PNGs, run.json, manifest.jsonl, .npz, the sha256 record) goes through
`atomic_file`: the bytes go to a hidden `.NAME.*.tmp` beside the target, which is renamed into place
once complete, so a reader (or a resumed run) never sees half a file and a killed run leaves at most
a `.tmp`. Why the care:
- Permissions: `tempfile.mkstemp` creates 0600 files whatever the umask, which made every image
  private in shared cluster folders. The temporary file is created here with mode 0666 filtered by
  the umask (and a folder's default ACL), exactly as `open(path, "w")` creates a new file; replacing
  an existing file keeps that file's mode, as writing into it would.
- No clobbering: with `overwrite=False` the last step is a hard link, which fails when the name
  exists, so even a concurrent writer's file is never replaced (file systems without hard links:
  the name is first created exclusively, O_EXCL, then replaced).
- Claims: `reserve` claims a name before a long run, so two runs started in the same second cannot pick
  the same default name. The claim is a hidden `.NAME.lock` beside it, locked (flock) for as long as the
  run lives, never a file at NAME itself: a run killed by SIGKILL leaves no empty NAME that would block
  its retry, and the kernel drops its lock with the process, so the retry takes the name again.
Nothing here imports more than the standard library (the weights code uses it too).
"""

from __future__ import annotations

import os
import secrets
import stat
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

from .errors import SSGenError, first_line


def _create(path: Path) -> int:
    """Create `path` exclusively (fails if it exists) with the mode a plain `open(path, "w")` gives a new
    file: 0666 filtered by the umask (and the folder's default ACL, if any). Returns the open descriptor."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)


def _why(e: OSError) -> str:
    return e.strerror or first_line(e)


def _temp_beside(path: Path) -> tuple[Path, int]:
    """A new hidden temporary file in `path`'s folder (the same file system, so the rename is atomic)."""
    while True:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            return tmp, _create(tmp)
        except FileExistsError:
            continue


def _publish(tmp: Path, path: Path, overwrite: bool) -> None:
    """Give the complete temporary file its final name."""
    if overwrite:
        try:
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))  # an existing file keeps its mode
        except OSError:
            pass  # no file there yet (or not ours to stat): the new file's own mode stands
        os.replace(tmp, path)
        return
    try:
        try:
            os.link(tmp, path)  # fails with FileExistsError if the name exists: never replaces anything
        except FileExistsError:
            raise
        except OSError:  # no hard links on this file system: claim the name exclusively, then fill it
            os.close(_create(path))
            os.replace(tmp, path)
    except FileExistsError:
        raise SSGenError(f"{path} already exists (written meanwhile by another run?); nothing was replaced") from None


@contextmanager
def atomic_file(path: str | Path, overwrite: bool = True) -> Iterator[BinaryIO]:
    """Open `path` for writing (binary) so that it appears complete or not at all.

    overwrite=False: an existing `path` is never replaced; finding one is an SSGenError (callers check
    names before the work starts, so this is a concurrent writer). Other OSErrors on the target become
    an SSGenError `cannot write PATH: reason`; errors about other files (the caller reading its inputs)
    pass through unchanged. The temporary file is removed on any failure, Ctrl-C included.
    """
    p = Path(path)
    try:
        tmp, fd = _temp_beside(p)
    except OSError as e:
        raise SSGenError(f"cannot write {p}: {_why(e)}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        _publish(tmp, p, overwrite)
    except OSError as e:
        if e.filename not in (None, str(tmp), str(p)):
            raise  # about another file: the caller's to explain
        raise SSGenError(f"cannot write {p}: {_why(e)}") from None
    finally:
        tmp.unlink(missing_ok=True)  # gone already after a rename; after a hard link the second name goes


def write_atomic(path: str | Path, data: bytes, overwrite: bool = True) -> None:
    """Write `data` to `path` atomically (see `atomic_file`)."""
    with atomic_file(path, overwrite=overwrite) as f:
        f.write(data)


@dataclass
class Claim:
    """A name claimed by `reserve`: this process holds the lock on `lock` until `release` (or its end)."""

    path: Path
    lock: Path
    fd: int

    def release(self) -> None:
        """Give the name back: remove the lock file, then drop the lock (in that order, see `reserve`)."""
        if self.fd < 0:
            return
        self.lock.unlink(missing_ok=True)
        os.close(self.fd)
        self.fd = -1


def lock_path(path: Path) -> Path:
    """The hidden lock file that claims `path`."""
    return path.with_name(f".{path.name}.lock")


def _flock(fd: int) -> bool | None:
    """Take the exclusive lock on `fd` without waiting: True, False when a live process holds it, None where this
    system or file system has no such locks."""
    try:
        import fcntl
    except ImportError:  # Windows
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    except OSError:  # ENOLCK, EOPNOTSUPP: no locks on this file system
        return None


def reserve(path: str | Path) -> Claim | None:
    """Claim `path` for this process: a Claim, or None when a live process has it claimed. The claim is the lock
    on `.NAME.lock` beside it; a lock file left by a killed run is unlocked (the kernel drops a dead process's
    locks) and is taken over. Without file locks (Windows, some network file systems) the lock file is created
    exclusively instead, and one left by a killed run keeps its name claimed. `path` itself is not touched."""
    p = Path(path)
    lock = lock_path(p)
    while True:
        try:
            try:
                fd, created = _create(lock), True
            except FileExistsError:
                fd, created = os.open(lock, os.O_RDONLY), False  # flock needs no write access
        except FileNotFoundError:
            continue  # released between the two opens: try again
        except OSError as e:
            raise SSGenError(f"cannot write {p}: {_why(e)}") from None
        held = _flock(fd)
        if held is None:
            held = created
        if not held:
            os.close(fd)
            return None
        try:  # the owner may have released (removed) this lock file between our open and our lock
            current = os.path.samestat(os.fstat(fd), os.stat(lock))
        except FileNotFoundError:
            current = False
        if current:
            return Claim(p, lock, fd)
        os.close(fd)


def release(claim: Claim | None) -> None:
    """Give back a claim made by `reserve` (None: nothing was claimed)."""
    if claim is not None:
        claim.release()
