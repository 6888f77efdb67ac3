"""Full-size random checkpoint files for the rehearsal (scripts/rehearse.py), written or generated tensor
by tensor so that no model is ever held in memory.

A file is a list of `TensorSpec`s (name, shape, dtype, how to fill it). Every value is a pure function of
(seed, file, tensor, block): random tensors are drawn in blocks of BLOCK elements, each block from its own
seeded generator (counter-based), so any byte range of any file can be produced on its own and twice gives
the same bytes. That is what lets the Hub serve a 33.5 GB safetensors shard without storing it:

- `write_pth`: a `torch.save` zip archive, as the official `.pth`/`.bin` files are. torch writes the
  archive itself (pickle, records, 64-byte alignment) under `torch.serialization.skip_data` from fake
  tensors, then each storage record is filled in place, chunk by chunk, and the zip CRC-32 fields are
  patched. The result loads with `torch.load(weights_only=True)` (mmap or not) and passes `zipfile`'s CRC check.
- `SafetensorsFile`: the bytes of a safetensors file (header + data), produced for any byte range on demand.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
import struct
import zipfile
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import torch

BLOCK = 1 << 20  # elements per independently seeded random block
GENERATOR_VERSION = 1  # bump when the bytes a spec produces change (stored files are then rewritten)

# ("normal", mean, std) | ("const", value) | ("exact", fn(start, count) -> 1-D tensor of the spec's dtype)
Init = tuple


@dataclass
class TensorSpec:
    """One tensor of a checkpoint file: its official name, shape, dtype and how its values are made."""

    name: str
    shape: tuple[int, ...]
    dtype: torch.dtype
    init: Init

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.numel * self.dtype.itemsize

    def describe(self) -> str:
        """What identifies the bytes (for the fingerprint of a file): exact fills by their function's name."""
        init = self.init if self.init[0] != "exact" else ("exact", self.init[1].__name__)
        return f"{self.name}|{self.shape}|{self.dtype}|{init}"


def fingerprint(seed: int, key: str, tensors: list[TensorSpec], extra: str = "") -> str:
    """A digest of everything that decides a file's bytes: stored files are rewritten when it changes."""
    h = hashlib.sha256(f"v{GENERATOR_VERSION}|{seed}|{key}|{extra}".encode())
    for t in tensors:
        h.update(t.describe().encode())
    return h.hexdigest()


def _block_seed(seed: int, key: str, name: str, block: int) -> int:
    digest = hashlib.blake2b(f"{seed}|{key}|{name}|{block}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1  # torch seeds are < 2**63


def values(spec: TensorSpec, seed: int, key: str, start: int, count: int) -> torch.Tensor:
    """Elements [start, start + count) of the flattened tensor -> 1-D tensor of spec.dtype.
    `key` names the file (the same tensor name in two files gets other values)."""
    kind = spec.init[0]
    if kind == "const":
        return torch.full((count,), spec.init[1], dtype=spec.dtype)
    if kind == "exact":
        return spec.init[1](start, count).to(spec.dtype)
    _, mean, std = spec.init
    first, last = start // BLOCK, (start + count - 1) // BLOCK
    parts = []
    g = torch.Generator()
    for b in range(first, last + 1):
        n = min(BLOCK, spec.numel - b * BLOCK)
        g.manual_seed(_block_seed(seed, key, spec.name, b))
        x = torch.randn(n, generator=g)
        if std != 1.0 or mean != 0.0:
            x.mul_(std).add_(mean)
        parts.append(x.to(spec.dtype))
    flat = parts[0] if len(parts) == 1 else torch.cat(parts)
    offset = start - first * BLOCK
    return flat[offset:offset + count]


def tensor_bytes(spec: TensorSpec, seed: int, key: str, start: int, end: int) -> Iterator[memoryview]:
    """Bytes [start, end) of a tensor's little-endian data, one random block (or less) at a time, without
    copies (memoryviews of the generated block)."""
    item = spec.nbytes // spec.numel if spec.numel else 1
    end = min(end, spec.nbytes)
    pos = start
    while pos < end:
        e0 = pos // item
        e1 = min(spec.numel, (e0 // BLOCK + 1) * BLOCK, -(-end // item))  # within one block
        raw = memoryview(values(spec, seed, key, e0, e1 - e0).contiguous().view(torch.uint8).numpy())
        lo = pos - e0 * item
        hi = min(len(raw), end - e0 * item)
        yield raw[lo:hi]
        pos = e0 * item + hi


# ---------------------------------------------------------------------------------------------------
# torch.save archives (.pth / .bin)
# ---------------------------------------------------------------------------------------------------


def write_pth(path: Path, tensors: list[TensorSpec], seed: int, key: str, wrap: str | None = None) -> None:
    """Write `torch.save(state_dict)` (or `{wrap: state_dict}`) to `path`, streaming every tensor.

    torch writes the archive from fake tensors under skip_data (the records get their size and alignment,
    no bytes); the tensors' bytes are then written at their record offsets and the CRC-32 fields patched,
    so the file is what `torch.save` of the materialised tensors writes (up to pickle memo numbering).
    """
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        sd = OrderedDict((t.name, torch.empty(t.shape, dtype=t.dtype)) for t in tensors)
    obj = sd if wrap is None else {wrap: sd}
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.serialization.skip_data(materialize_fake_tensors=True):
        torch.save(obj, str(path))
    reader = torch._C.PyTorchFileReader(str(path))
    offsets = [reader.get_record_offset(f"data/{i}") for i in range(len(tensors))]  # storage i: the i-th tensor
    del reader
    with zipfile.ZipFile(path) as zf:
        prefix = zf.namelist()[0].split("/")[0]  # the archive's folder: the file's stem
    crcs, where = {}, {}
    with open(path, "r+b") as f:
        for i, (t, off) in enumerate(zip(tensors, offsets)):
            f.seek(off)
            crc = 0
            for piece in tensor_bytes(t, seed, key, 0, t.nbytes):
                f.write(piece)
                crc = zlib.crc32(piece, crc)
            crcs[f"{prefix}/data/{i}"] = crc
            where[f"{prefix}/data/{i}"] = (off, t.nbytes)
    _patch_crcs(path, crcs, where)


def _patch_crcs(path: Path, crcs: dict[str, int], offsets: dict[str, tuple[int, int]]) -> None:
    """Set the CRC-32 of these zip members where torch's writer keeps it: the data descriptor after the
    member's data (its local header says so with flag bit 3 and holds zeros) and the central directory."""
    with zipfile.ZipFile(path) as zf:
        start, count = zf.start_dir, len(zf.infolist())
    with open(path, "r+b") as f:
        for name, crc in crcs.items():
            data_offset, size = offsets[name]
            f.seek(data_offset + size)
            assert f.read(4) == b"PK\x07\x08", f"{path}: no data descriptor after {name}"
            f.write(struct.pack("<I", crc))
        pos = start
        for _ in range(count):
            f.seek(pos)
            head = f.read(46)
            assert head[:4] == b"PK\x01\x02", f"{path}: unexpected central directory layout"
            n, m, k = struct.unpack("<HHH", head[28:34])
            name = f.read(n).decode()
            if name in crcs:
                f.seek(pos + 16)
                f.write(struct.pack("<I", crcs[name]))
            pos += 46 + n + m + k


# ---------------------------------------------------------------------------------------------------
# safetensors, generated on demand
# ---------------------------------------------------------------------------------------------------

ST_DTYPES = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16", torch.int64: "I64"}
PT_METADATA = {"format": "pt"}
# safetensors writes tensors by dtype (its Dtype enum, highest first), then by name: I64 before F32 before BF16...
ST_RANK = {torch.int64: 0, torch.float32: 1, torch.bfloat16: 2, torch.float16: 3}


def st_order(tensors: list[TensorSpec]) -> list[TensorSpec]:
    """The order `safetensors.torch.save_file` stores these tensors in (Switti's file: lvl_1L first)."""
    return sorted(tensors, key=lambda t: (ST_RANK[t.dtype], t.name))


class SafetensorsFile:
    """The bytes of a safetensors file whose tensors come from `values`: an 8-byte header length, the JSON
    header (padded with spaces to 8 bytes, as safetensors writes it) and the tensors back to back."""

    def __init__(self, tensors: list[TensorSpec], seed: int, key: str, metadata: dict | None = PT_METADATA):
        """`metadata` None: no `__metadata__` entry (what `safetensors.torch.save_file` writes without one, e.g.
        the Hub mixin's files; transformers' save_pretrained writes {"format": "pt"})."""
        self.tensors, self.seed, self.key = tensors, seed, key
        header: dict = {"__metadata__": metadata} if metadata else {}
        self.starts, pos = [], 0
        for t in tensors:
            header[t.name] = {"dtype": ST_DTYPES[t.dtype], "shape": list(t.shape),
                              "data_offsets": [pos, pos + t.nbytes]}
            self.starts.append(pos)
            pos += t.nbytes
        raw = json.dumps(header, separators=(",", ":")).encode()
        raw += b" " * (-len(raw) % 8)
        self.head = struct.pack("<Q", len(raw)) + raw
        self.size = len(self.head) + pos

    def chunks(self, start: int, end: int) -> Iterator[bytes | memoryview]:
        """Bytes start..end (inclusive), in pieces of a few MB."""
        end += 1
        if start < len(self.head):
            yield self.head[start:min(end, len(self.head))]
            start = len(self.head)
        base = len(self.head)
        i = max(0, bisect.bisect_right(self.starts, start - base) - 1)
        while start < end and i < len(self.tensors):
            t, t0 = self.tensors[i], base + self.starts[i]
            lo, hi = max(start, t0), min(end, t0 + t.nbytes)
            if lo < hi:
                yield from tensor_bytes(t, self.seed, self.key, lo - t0, hi - t0)
                start = hi
            i += 1

    def sha256(self) -> str:
        h = hashlib.sha256()
        for piece in self.chunks(0, self.size - 1):
            h.update(piece)
        return h.hexdigest()


def shard(tensors: list[TensorSpec], max_bytes: int) -> list[list[TensorSpec]]:
    """Split tensors in order into shards of at most max_bytes (a bigger tensor gets its own), as
    `save_pretrained(max_shard_size=...)` does."""
    shards: list[list[TensorSpec]] = [[]]
    size = 0
    for t in tensors:
        if shards[-1] and size + t.nbytes > max_bytes:
            shards.append([])
            size = 0
        shards[-1].append(t)
        size += t.nbytes
    return shards


def shard_index(shards: list[list[TensorSpec]], names: list[str]) -> bytes:
    """model.safetensors.index.json for these shards (names[i] is shard i's file name)."""
    total = sum(t.nbytes for s in shards for t in s)
    weight_map = {t.name: names[i] for i, s in enumerate(shards) for t in s}
    return json.dumps({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))},
                      indent=2).encode() + b"\n"


def shard_names(n: int) -> list[str]:
    return [f"model-{i + 1:05d}-of-{n:05d}.safetensors" for i in range(n)]


# ---------------------------------------------------------------------------------------------------
# how tensors are filled
# ---------------------------------------------------------------------------------------------------


def init_for(name: str, shape: tuple[int, ...]) -> Init:
    """Random values with O(1) effect, by parameter name (what the families' `init_random` do): weights
    N(0, 1/fan_in), small biases, norm weights near 1, embeddings N(0, 1), zero buffers."""
    leaf = name.rsplit(".", 1)[-1]
    if name.endswith(("zero_k_bias", "ema_vocab_hit_SV")):
        return ("const", 0.0)
    if leaf == "scale_mul_1H11":
        return ("normal", math.log(4.0), 0.1)
    if len(shape) == 1 and leaf == "weight" and ("norm" in name or "ln" in name.split(".")[-2]):
        return ("normal", 1.0, 0.1)
    if len(shape) == 1:
        return ("normal", 0.0, 0.02)
    if leaf == "ada_gss":
        return ("normal", 0.0, 0.3)
    if leaf in ("pos_start", "pos_1LC") or name.startswith("lvl_embed"):
        return ("normal", 0.0, 0.5)
    if leaf in ("cfg_uncond", "mat_q") or name.endswith(("word_embed.weight", "class_emb.weight", "embedding.weight",
                                                         "embed_tokens.weight", "shared.weight")):
        return ("normal", 0.0, 1.0)
    fan_in = math.prod(shape[1:])
    return ("normal", 0.0, 1.0 / math.sqrt(fan_in))


def specs_from(shapes: Iterable[tuple[str, tuple[int, ...]]], dtype: torch.dtype = torch.float32) -> list[TensorSpec]:
    return [TensorSpec(n, tuple(s), dtype, init_for(n, tuple(s))) for n, s in shapes]


def exact(fn: Callable[[int, int], torch.Tensor], name: str) -> Init:
    fn.__name__ = name
    return ("exact", fn)


def level_buffers(levels: torch.Tensor, causal: bool = True) -> tuple[Init, Init]:
    """lvl_1L (1, L) int64 and attn_bias_for_masking (1, 1, L, L) of 0 / -inf, computed for any element range
    without building the L x L mask (HART's 1024 px one is 380 MB, Switti-1024's 357 MB). `causal`: a token
    sees every earlier scale (VAR, HART, Switti-AR: `d >= dT`); else only its own scale (Switti: `d == dT`)."""
    L = levels.numel()
    key = ",".join(map(str, levels.tolist()))
    tag = hashlib.sha1(key.encode()).hexdigest()[:12]

    def lvl(start: int, count: int) -> torch.Tensor:
        return levels[start:start + count]

    def mask(start: int, count: int) -> torch.Tensor:
        idx = torch.arange(start, start + count)
        row, col = levels[idx // L], levels[idx % L]
        return torch.where(row >= col if causal else row == col, 0.0, float("-inf"))

    return exact(lvl, f"lvl_{tag}"), exact(mask, f"mask_{tag}" if causal else f"diagmask_{tag}")


def bit_mask(bits: int) -> Init:
    """Infinity's quantizer `lfq.mask`: 2**(bits-1) ... 1."""
    def fn(start: int, count: int) -> torch.Tensor:
        return (2 ** torch.arange(bits - 1, -1, -1))[start:start + count]
    return exact(fn, f"bitmask_{bits}")
