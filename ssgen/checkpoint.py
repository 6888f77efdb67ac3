"""Safe checkpoint loading.

- `.pth` / `.bin` / `.pt`: `torch.load(weights_only=True, mmap=True)` (no pickled code runs; tensors
  stay on disk until used).
- `.safetensors`, and sharded checkpoints through their `*.index.json`.
- Every file's first bytes are checked against its format before it is parsed, so that an empty file,
  an HTML error page, a Git LFS pointer or random bytes under a checkpoint's name is reported as what it
  is; a truncated file is reported as truncated. `check_model_folder` does the same for the files of a Hugging
  Face model folder (the text encoders) that transformers reads.
- Keys are checked against the model before anything is assigned: missing keys are errors that name
  them, shapes must match; known training-only entries are dropped; unexpected keys are errors, or,
  where the official loader ignores them (`unexpected_ok`), returned for a one-line note.

Memory (what a user has): the files are memory-mapped (`torch.load(mmap=True)`; safetensors maps its
files the same way), so reading a state dict and checking its keys and shapes reads only headers, and
its pages are file-backed (the kernel can drop them). Models are built with `empty_model()` on the
meta device, without running their initialisers, and `load_into` assigns the tensors one by one,
each cast to the run dtype (and moved to the device) as it is assigned: the peak anonymous memory is
the model's own bytes in the run dtype plus one tensor, never a second full copy (a bf16 run of an
fp32 file holds the bf16 weights only). The loaded tensors own their memory (copies, not views of the
file), so a cached file that is replaced or deleted later cannot pull the weights from under a running
model. Only torch's legacy (pre-1.6, non-zip) format cannot be mapped: it is read into memory whole.
"""

from __future__ import annotations

import fnmatch
import json
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import torch
from torch import nn

from .errors import WeightsError, first_line
from .textfile import read_text

TRUNCATED = "the file is truncated or corrupted (an interrupted download?): delete it and download it again"


def _fix(p: Path, local: str = TRUNCATED) -> str:
    """How to repair a damaged file. A Hub download is a link into the cache's blobs/: deleting the link alone
    would bring the same blob back, deleting the blob makes the next run download it again."""
    blob = p.resolve()
    if p.is_symlink() and blob.parent.name == "blobs":
        return (f"the downloaded file is truncated or corrupted: delete its cached copy {blob} and run again "
                "to download it again")
    return local


def _head(p: Path, n: int = 512) -> bytes:
    with open(p, "rb") as f:
        return f.read(n)


def _what_else(head: bytes) -> str:
    """What a file that is no checkpoint holds, judged from its first bytes (for error messages)."""
    text = head.lstrip().lower()
    if text.startswith(b"version https://git-lfs"):
        return "a Git LFS pointer, not the file itself (run `git lfs pull` in its clone, or download the file)"
    if text.startswith(b"<"):
        return "an HTML page (an error or login page saved in its place?)"
    if head[:4] == b"PK\x03\x04":
        return "a zip archive without a PyTorch checkpoint in it"
    if _is_safetensors(head):
        return "a safetensors file (rename it to *.safetensors)"
    try:
        head.decode("utf-8")
        return "text"
    except UnicodeDecodeError as e:  # a character cut at the end of the head is still text
        return "text" if e.start >= len(head) - 3 else "unrecognised bytes"


def _is_safetensors(head: bytes) -> bool:
    """A safetensors file: an 8-byte little-endian header size, then the JSON header."""
    return len(head) > 9 and head[8:10] in (b'{"', b"{ ", b"{\n") and int.from_bytes(head[:8], "little") > 1


def _open_file(p: Path, role: str | None) -> bytes:
    """The first bytes of a checkpoint file; a missing, unreadable, empty or folder path is a WeightsError."""
    where = f"weights.{role}" if role else "the config's weights"
    if not p.exists():
        if p.is_symlink():  # a Hub cache entry whose blob was deleted
            raise WeightsError(f"{p} links to a file that is gone (a damaged cache?); delete the link and "
                               "download the weights again")
        raise WeightsError(f"checkpoint {p} does not exist; check {where}")
    if p.is_dir():
        if role is None:  # a file inside a model folder
            raise WeightsError(f"{p} is a folder where a file should be; replace it with the file (download it again)")
        raise WeightsError(f"{p} is a folder, but {where} must be a checkpoint file here; point it at the file")
    try:
        head = _head(p)
    except OSError as e:
        fix = "check the file's permissions" if isinstance(e, PermissionError) else "check the file"
        raise WeightsError(f"cannot read {p}: {first_line(e)}; {fix}") from None
    if not head:
        raise WeightsError(f"{p} is empty (0 bytes); {_fix(p)}")
    return head


def _read_safetensors(p: Path, head: bytes, header_only: bool = False) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file; `header_only`: only check that the header covers the file (cheap)."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    if not _is_safetensors(head):
        raise WeightsError(f"{p} is not a safetensors file: it holds {_what_else(head)}; {_fix(p)}")
    try:
        if header_only:
            with safe_open(str(p), "pt"):  # parses the header and checks that it covers the whole file
                return {}
        return load_file(str(p), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        truncated = "not fully covered" in str(e)
        why = "its header describes more bytes than the file has" if truncated else first_line(e)
        raise WeightsError(f"cannot read checkpoint {p} ({why}); {_fix(p)}") from None


# torch's weights_only unpickler refusing a global a pickle asks for (as torch 2.13 words it): one outside its allowlist
# ("Unsupported global: GLOBAL mod.Class was not an allowed global", an unknown class or a builtin such as eval), or
# one of a module it blocks outright ("unsupported GLOBAL posix.system whose module posix is blocked": os,
# subprocess, ...). Either means the file holds code or objects, not that it is damaged.
_REFUSED = re.compile(r"unsupported (?:global: )?GLOBAL ([\w.]+)", re.IGNORECASE)


def _read_torch(p: Path, head: bytes) -> Any:
    """torch.load with weights_only=True: memory-mapped for the zip format, read for the legacy one."""
    zipped = head[:4] == b"PK\x03\x04"
    # torch.save's legacy (non-zip) format is a plain pickle, protocol 2 or later
    legacy = len(head) > 1 and head[0] == 0x80 and head[1] in (2, 3, 4, 5)
    if not (zipped or legacy):
        raise WeightsError(f"{p} is not a PyTorch checkpoint (corrupted or not a checkpoint): it holds "
                           f"{_what_else(head)}; {_fix(p, 'replace it with the real file')}")
    try:
        return torch.load(p, map_location="cpu", weights_only=True, mmap=zipped)
    except Exception as e:  # torch raises many types here (UnpicklingError, RuntimeError, EOFError, ...)
        refused = _REFUSED.search(str(e))
        if refused:  # a well-formed file that pickles Python objects: loading it would run their code
            raise WeightsError(f"{p} holds Python objects besides tensors ({refused.group(1)}), which could run code "
                               "when loaded, so it is refused for safety; ssgen loads plain state dicts only "
                               "(weights_only=True): save model.state_dict() from a trusted copy") from None
        if zipped and "central directory" in str(e):
            raise WeightsError(f"checkpoint {p} is an incomplete zip archive; {_fix(p)}") from None
        why = first_line(e).split(". ")[0]  # torch's messages go on with advice that does not apply here
        if "Weights only load failed" in str(e):
            why = "its pickled index of tensors is damaged"
        raise WeightsError(f"cannot read checkpoint {p} ({why}); {_fix(p)}") from None


def _shards(p: Path, role: str | None) -> list[Path]:
    """The shard files a `*.index.json` names; every one must be there."""
    _open_file(p, role)
    text = read_text(p, "sharded checkpoint index", _fix(p), WeightsError)
    try:
        index = json.loads(text)
        shards = sorted(set(index["weight_map"].values()))
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise WeightsError(f"cannot read sharded index {p} ({first_line(e)}); {_fix(p)}") from None
    missing = [s for s in shards if not (p.parent / s).is_file()]
    if missing:
        raise WeightsError(f"sharded checkpoint {p} names {len(missing)} shard(s) missing from {p.parent}: "
                           f"{_names(missing)}; download them again")
    return [p.parent / s for s in shards]


def read_state_dict(path: str | Path, role: str | None = None) -> dict[str, torch.Tensor]:
    """Read a checkpoint file (or a sharded index) into a flat {key: tensor} dict on the CPU.

    The tensors are memory-mapped views of the files (shards included): nothing is read but the
    headers until a tensor's values are used, and what is read stays file-backed (see the module
    docstring). The format comes from the file name; the first bytes are checked against it first, so
    that an HTML page, a Git LFS pointer or an empty file saved under a checkpoint's name is named as
    such (not as "pickled code" or a decoder's error). `role` (e.g. "vae") only words the messages.
    """
    p = Path(path)
    if p.name.endswith(".index.json"):
        sd: dict[str, torch.Tensor] = {}
        for shard in _shards(p, role):
            sd.update(read_state_dict(shard, role))
        return sd
    head = _open_file(p, role)
    if p.suffix == ".safetensors":
        return _read_safetensors(p, head)
    obj = _read_torch(p, head)
    if not isinstance(obj, dict):
        raise WeightsError(f"{p} is not a state dict (found {type(obj).__name__}); save model.state_dict()")
    odd = next((k for k in obj if not isinstance(k, str)), None)
    if odd is not None:
        raise WeightsError(f"{p} is not a state dict (key {odd!r} is not a parameter name); save model.state_dict()")
    return obj


def check_file(path: str | Path, role: str | None = None) -> None:
    """Raise the WeightsError that reading this file would raise, reading as little as the format allows:
    a safetensors header (checked against the file size), a sharded index and its shards, a JSON file,
    a torch file (memory-mapped). For files that another library reads (a text encoder's folder)."""
    p = Path(path)
    if p.name.endswith(".index.json"):
        for shard in _shards(p, role):
            check_file(shard, role)
        return
    head = _open_file(p, role)
    if p.suffix == ".safetensors":
        _read_safetensors(p, head, header_only=True)
    elif p.suffix == ".json":
        try:
            json.loads(p.read_bytes())
        except ValueError as e:
            holds = _what_else(head)
            holds = f": it holds {holds}" if holds.startswith(("an HTML", "a Git LFS")) else f" ({first_line(e)})"
            raise WeightsError(f"{p} is not valid JSON{holds}; {_fix(p)}") from None
    elif p.suffix in (".bin", ".pth", ".pt"):
        _read_torch(p, head)


# What `from_pretrained` reads from a model folder: weights (sharded or not) and the JSON files.
FOLDER_WEIGHTS = ("model.safetensors.index.json", "model.safetensors", "pytorch_model.bin.index.json",
                  "pytorch_model.bin")


def check_model_folder(folder: str | Path) -> None:
    """Raise a WeightsError naming the first broken file of a Hugging Face model folder (a truncated or
    corrupted weights file, a missing shard, malformed JSON); nothing when every file reads."""
    folder = Path(folder)
    names = [n for n in FOLDER_WEIGHTS if (folder / n).exists()] + sorted(p.name for p in folder.glob("*.json"))
    for name in dict.fromkeys(names):
        check_file(folder / name)


def read_json(path: str | Path, what: str) -> dict:
    """A JSON object file of a model folder (e.g. HART's llm/config.json); an unreadable, truncated or
    malformed file is a WeightsError. A missing file is the caller's to word (it knows the layout)."""
    p = Path(path)
    check_file(p)
    d = json.loads(p.read_bytes())
    if not isinstance(d, dict):
        raise WeightsError(f"{p} holds a JSON {type(d).__name__}, not {what}; {_fix(p)}")
    return d


def unwrap(sd: dict, *keys: str) -> dict[str, torch.Tensor]:
    """Return the nested state dict under the first of `keys` present (e.g. Infinity's {'vae': ...})."""
    for k in keys:
        if k in sd and isinstance(sd[k], dict):
            return sd[k]
    return sd


def drop_keys(sd: dict[str, torch.Tensor], patterns: Iterable[str]) -> dict[str, torch.Tensor]:
    """Remove keys matching any fnmatch pattern (known training-only buffers, unused sub-models)."""
    pats = tuple(patterns)
    return {k: v for k, v in sd.items() if not any(fnmatch.fnmatchcase(k, p) for p in pats)}


def _names(keys: list[str], n: int = 6) -> str:
    shown = ", ".join(keys[:n])
    return shown + (f" (+{len(keys) - n} more)" if len(keys) > n else "")


def check_keys(model: nn.Module, sd: dict[str, torch.Tensor], what: str, path: str | Path | None = None,
               unexpected_ok: bool = False) -> list[str]:
    """Raise WeightsError naming missing/unexpected keys or mismatched shapes. With `unexpected_ok` (the
    official loader ignores keys its model lacks) the unexpected keys are returned instead, for a note."""
    where = f"{what} checkpoint {path}" if path else f"{what} checkpoint"
    expected = model.state_dict(keep_vars=True)
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    if missing:
        raise WeightsError(f"{where} is missing {len(missing)} key(s): {_names(missing)}; "
                           "is it the right file for this model?")
    if unexpected and not unexpected_ok:
        raise WeightsError(f"{where} has {len(unexpected)} unexpected key(s): {_names(unexpected)}; "
                           "is it the right file for this model?")
    for k, t in expected.items():
        if not isinstance(sd[k], torch.Tensor):
            raise WeightsError(f"{where}: {k} is a {type(sd[k]).__name__}, not a tensor; is it the right file for "
                               "this model?")
        if tuple(sd[k].shape) != tuple(t.shape):
            raise WeightsError(f"{where}: {k} has shape {tuple(sd[k].shape)} but this model expects "
                               f"{tuple(t.shape)}; the checkpoint belongs to another model size")
    return unexpected


_MALLOC_TRIM: list = []  # [libc's malloc_trim or None], looked up once


def trim_heap() -> None:
    """Hand the heap memory freed so far back to the OS (glibc's `malloc_trim`; a no-op elsewhere).

    glibc serves allocations below its dynamic mmap threshold (up to 32 MB: most weights of a 2B model)
    from the heap and keeps what is freed there for reuse. A pass that replaces every weight by a new copy
    (Infinity's oneDNN prepacking) can leave holes the next copy does not fit. Measured: +22% of a 2.3 GB
    model whose weights had been cast in place before (blocks_to), +7% on a fresh 300 MB load, nothing on
    a fresh 2.4 GB one; trimming after each replacement keeps it at one weight, at no measurable cost."""
    if not _MALLOC_TRIM:
        import ctypes

        try:
            _MALLOC_TRIM.append(getattr(ctypes.CDLL(None), "malloc_trim", None))
        except OSError:
            _MALLOC_TRIM.append(None)
    if _MALLOC_TRIM[0] is not None:
        _MALLOC_TRIM[0](0)


@contextmanager
def empty_model() -> Iterator[None]:
    """Build modules on the meta device without running their initialisers (`with empty_model(): m = VAR(cfg)`).

    The weights come from a checkpoint, so initial values are never needed; and torch's meta kernels of
    the random initialisers (normal_, uniform_, ...) import torch._dynamo on first use: 1.4 s and ~70 MB
    for nothing. Only meta tensors skip their initialiser, so other threads building real modules meanwhile
    are not affected."""
    saved = {n: f for n, f in vars(nn.init).items() if n.endswith("_") and not n.startswith("_") and callable(f)}

    def skipping(f):
        return lambda t, *a, **k: t if isinstance(t, torch.Tensor) and t.is_meta else f(t, *a, **k)

    try:
        for n, f in saved.items():
            setattr(nn.init, n, skipping(f))
        with torch.device("meta"):
            yield
    finally:
        for n, f in saved.items():
            setattr(nn.init, n, f)


def load_into(model: nn.Module, sd: dict[str, torch.Tensor], what: str, path: str | Path | None = None, *,
              dtype: torch.dtype | None = None, device: str | torch.device = "cpu",
              cast: Callable[[str], bool] | None = None, unexpected_ok: bool = False) -> list[str]:
    """Check keys and shapes, then assign the tensors to the (meta-device) model one by one.

    Each tensor is copied to `device` as it is assigned, in `dtype` when it is floating point and
    `cast(name)` says so (default: all), else in the model's own dtype (float32 for a model built on
    the meta device): a family's dtype policy is applied here, tensor by tensor, never by a second pass
    over a loaded model (Infinity casts only its blocks, VAR and HART everything). `sd` is consumed:
    its entries are removed as they are assigned, so each source (and in the end its memory-mapped
    file) is released as soon as it is copied. Returns the unexpected keys that `unexpected_ok` let
    through (ignored, as the official loader does), for the caller's note.
    """
    ignored = check_keys(model, sd, what, path, unexpected_ok)
    device = torch.device(device)
    for name, target in model.state_dict(keep_vars=True).items():
        src = sd.pop(name)
        casts = dtype is not None and target.is_floating_point() and (cast is None or cast(name))
        value = src.to(device=device, dtype=dtype if casts else target.dtype, copy=True)
        del src
        owner, _, leaf = name.rpartition(".")
        module = model.get_submodule(owner)
        if isinstance(target, nn.Parameter):
            setattr(module, leaf, nn.Parameter(value, requires_grad=target.requires_grad))
        else:  # a buffer
            setattr(module, leaf, value)
    for k in ignored:
        sd.pop(k, None)
    return ignored


def unused_note(keys: list[str], name: str) -> str | None:
    """The words of a load note for the keys of checkpoint `name` that `load_into` ignored (None: none)."""
    if not keys:
        return None
    shown = ", ".join(keys[:4]) + (f" (+{len(keys) - 4} more)" if len(keys) > 4 else "")
    return f"ignored {len(keys)} key(s) of {name} the model does not use ({shown})"


def load_pretrained(folder: str | Path, load: Callable[[], Any], what: str, hint: str) -> Any:
    """`load()` (transformers' from_pretrained calls on `folder`), quietly; a failure of the files is one
    WeightsError: the broken file named (`check_model_folder`), else "cannot load the {what} from {folder}
    (why); {hint}". Anything else is a bug and propagates."""
    from .quiet import quiet_transformers

    try:
        with quiet_transformers():
            return load()
    except Exception as e:
        check_model_folder(folder)  # a truncated or corrupted file is named as such
        if not isinstance(e, (OSError, ValueError, KeyError, RuntimeError)):
            raise
        raise WeightsError(f"cannot load the {what} from {folder} ({first_line(e)}); {hint}") from None


def check_pretrained(folder: str | Path, model: nn.Module, info: dict, what: str) -> None:
    """After `from_pretrained(..., output_loading_info=True)`: transformers fills the tensors a checkpoint
    lacks with random values (quietly here); a file of another model lacks most of them, which is an error.
    A few missing tensors pass: transformers' own lists of optional keys differ between versions."""
    missing = sorted(info.get("missing_keys") or ())
    total = len(model.state_dict())
    if missing and 2 * len(missing) >= total:
        raise WeightsError(f"the {what} weights in {folder} lack {len(missing)} of the model's {total} tensors "
                           f"({_names(missing, 3)}): a checkpoint of another model? check weights.text_encoder")
