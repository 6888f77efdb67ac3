"""What many test files share: running the CLI (in this process or as the real entry point), the one-line
error check, and YAML configs of the tiny models with replaced weights. Test folders import it as `helpers`
(tests/ is on sys.path: conftest.py's folder)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path

import yaml


def ssgen(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The installed `ssgen` console script (else `python -m ssgen`) in a fresh process: interpreter start-up
    and the torch import included (2-3 s), so only for tests of the entry point itself."""
    exe = shutil.which("ssgen", path=os.path.dirname(sys.executable))
    cmd = [exe] if exe else [sys.executable, "-m", "ssgen"]
    e = dict(os.environ, **(env or {}))
    e.setdefault("HF_HUB_OFFLINE", "1")  # never touch the network from CLI tests
    return subprocess.run(cmd + list(args), capture_output=True, text=True, env=e, cwd=cwd, timeout=300)


@dataclass
class Ran:
    """What a user of a CLI run sees: its exit code (also as `returncode`, like a subprocess), stdout, and
    stderr with what Python would print there (the warnings a fresh interpreter shows, and the traceback
    of an exception that escaped)."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def returncode(self) -> int:
        return self.exit_code

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def ssgen_here(*args: str, env: dict | None = None, input: str | None = None) -> Ran:
    """The CLI run in this process by Typer's test runner: no interpreter start-up, for the tests that do
    not need the entry point. `env`: variables set for the run only (read at call time, as ssgen does);
    `input`: what the user types (answers to prompts)."""
    from typer.testing import CliRunner

    from ssgen.cli import app

    with warnings.catch_warnings(record=True) as shown:
        warnings.resetwarnings()  # the filters of a fresh interpreter, not pytest's
        warnings.simplefilter("default")
        for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
            warnings.simplefilter("ignore", category)
        r = CliRunner().invoke(app, list(args), env=env, input=input)  # Click >= 8.2: stderr apart from stdout
    stderr = r.stderr + "".join(warnings.formatwarning(w.message, w.category, w.filename, w.lineno) for w in shown)
    if r.exc_info is not None and not issubclass(r.exc_info[0], SystemExit):  # a bug: Python prints its traceback
        stderr += "".join(traceback.format_exception(*r.exc_info))
    return Ran(r.exit_code, r.stdout, stderr)


def model_with(src: Path, tmp: Path, **paths: Path) -> Path:
    """A YAML in `tmp` for the tiny model `src` (weights as absolute paths), with some roles replaced."""
    cfg = yaml.safe_load(src.read_text())
    cfg["weights"] = {role: {"path": str(src.parent / spec["path"])} for role, spec in cfg["weights"].items()}
    for role, path in paths.items():
        cfg["weights"][role] = {"path": str(path)}
    out = tmp / f"{cfg['name']}-bad.yaml"
    out.write_text(yaml.safe_dump(cfg))
    return out


def truncated(src: Path, dst: Path, keep: float = 0.5) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * keep)])
    return dst


def copy_folder(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def one_line_error(r, *needles: str) -> str:
    """Exit code 2, one `error:` line, no traceback, every needle in it; returns the line."""
    code = r.returncode if hasattr(r, "returncode") else r.exit_code  # a subprocess, or Typer's runner
    assert code == 2, (code, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


CLIP_IMAGE_SIZE = 56  # the tiny CLIP's vision tower: 56 px, patches of 14 (4x4 patches)


def _byte_symbols() -> list[str]:
    """CLIP's (GPT-2's) 256 printable stand-ins for the bytes 0..255, in byte order."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = iter(range(256, 512))
    return [chr(b) if b in keep else chr(next(extra)) for b in range(256)]


def make_tiny_clip(out: Path, preprocessor: dict | None = None) -> Path:
    """A CLIPModel folder like openai/clip-vit-large-patch14's, tiny: random weights, a byte-level CLIP BPE
    tokenizer with a few merges and the special tokens last (so the legacy eos_token_id 2 pooling, argmax of
    the ids, finds <|endoftext|> as in the real checkpoint), max length 77."""
    import torch
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

    symbols = _byte_symbols()
    merges = [("t", "h"), ("th", "e</w>"), ("a", "n"), ("an", "d</w>"), ("o", "n</w>")]
    tokens = symbols + [s + "</w>" for s in symbols] + [a + b for a, b in merges] + ["<|startoftext|>",
                                                                                      "<|endoftext|>"]
    tok = CLIPTokenizer(vocab={t: i for i, t in enumerate(tokens)}, merges=merges)
    tok.model_max_length = 77
    config = CLIPConfig(
        text_config=dict(vocab_size=len(tokens), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=77, bos_token_id=0, eos_token_id=2),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=CLIP_IMAGE_SIZE, patch_size=14),
        projection_dim=16)
    torch.manual_seed(0)
    model = CLIPModel(config)
    with torch.no_grad():  # O(1) embeddings: different images and prompts get clearly different features
        model.text_model.embeddings.token_embedding.weight.normal_()
        model.vision_model.embeddings.patch_embedding.weight.normal_(std=0.2)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    if preprocessor is not None:
        (out / "preprocessor_config.json").write_text(json.dumps(preprocessor))
    return out


def png_header(path: Path, width: int, height: int) -> Path:
    """A PNG that claims width x height (8-bit gray) in its IHDR but holds one empty IDAT: PIL opens it (the size
    comes from the header) and any decode fails, so a reader that refuses it by size decoded nothing. Costs a few
    bytes whatever the size claimed."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0"))
                     + chunk(b"IEND", b""))
    return path


def with_orientation(im, orientation: int):
    """The EXIF block of a photo whose Orientation tag is `orientation` (6: the camera was turned 90 degrees
    clockwise; a viewer turns the stored pixels 90 degrees clockwise to show them)."""
    exif = im.getexif()
    exif[0x0112] = orientation
    return exif
