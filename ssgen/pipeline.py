"""The public API: `ssgen.load(name) -> Pipeline`, `Pipeline.generate(...) -> GenerationResult`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import torch

from .backends import family
from .backends.common import Call, Family
from .config import ModelConfig, load_config
from .edit import prepare as prepare_edit
from .errors import ConfigError, SSGenError
from .hardware import cpu_has_amx, cpu_has_native_bf16, cpu_has_native_fp16, use_huge_pages
from .loop import run as run_loop
from .request import Request, rebind, resolve
from .sampling import Rng
from .settings import SSG
from .version import __version__

use_huge_pages()  # before any weights load: large batches' activations without a page fault per 4 KiB

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
          "float16": torch.float16, "fp16": torch.float16}


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """`auto` picks cuda, then mps, then cpu."""
    if str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ConfigError(f"unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but no CUDA GPU is available; use --device cpu or auto")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("--device mps was asked for but MPS is not available; use --device cpu or auto")
    return dev


def auto_dtype(device: torch.device) -> tuple[torch.dtype, str]:
    """What `dtype="auto"` picks on `device`, and why (one line, shown by the CLI at load).

    CUDA: bf16 where supported, else fp16. MPS: fp16. CPU: bf16 only with AMX, where bf16 products run
    several times faster than fp32; without AMX (AVX512-BF16 or AVX2 only) bf16 is slower than fp32 in
    PyTorch's CPU kernels (measured: 160 vs 250 GFLOP/s on an AVX512-BF16 Xeon), so fp32, which is also
    the exact path. Logits and the SSG math stay float32 whatever the run dtype.
    """
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return torch.bfloat16, "bfloat16 (this GPU supports it)"
        return torch.float16, "float16 (this GPU has no bf16)"
    if device.type == "mps":
        return torch.float16, "float16 (MPS)"
    if cpu_has_amx():
        return torch.bfloat16, "bfloat16 (this CPU has AMX; --dtype float32 for the exact path)"
    return torch.float32, "float32 (this CPU has no AMX, bf16 would be slower here)"


def describe_placement(device: str, dtype: str) -> str:
    """Where and in what dtype a load with these arguments runs, for the CLI: 'cpu, float32 (this CPU has no
    AMX, ...)' for auto, 'cpu, bfloat16' for an explicit dtype."""
    dev = resolve_device(device)
    if dtype == "auto":
        return f"{dev}, {auto_dtype(dev)[1]}"
    return f"{dev}, {str(resolve_dtype(dtype, dev)).replace('torch.', '')}"


def slow_dtype_note(device: str, dtype: str) -> str | None:
    """A note when an explicit --dtype runs emulated, several times slower than float32, on this device: float16
    on a CPU without AVX512-FP16/AMX-FP16, bfloat16 on a CPU without AVX512-BF16/AMX (`auto` never picks
    either there). None otherwise."""
    dev = resolve_device(device)
    if dtype == "auto" or dev.type != "cpu":
        return None
    dt = resolve_dtype(dtype, dev)
    if dt == torch.float16 and not cpu_has_native_fp16():
        what = "float16 (this CPU has no AVX512-FP16 or AMX-FP16)"
    elif dt == torch.bfloat16 and not cpu_has_native_bf16():
        what = "bfloat16 (this CPU has no AVX512-BF16 or AMX)"
    else:
        return None
    return (f"{what} is emulated through float32 on this CPU: several times slower than float32; "
            "--dtype float32 (or auto) is faster here")


def resolve_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    """A dtype name (or torch.dtype) -> torch.dtype; `auto` as `auto_dtype` says."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        return auto_dtype(device)[0]
    if dtype not in DTYPES:
        raise ConfigError(f"unknown dtype {dtype!r}; use auto, float32, bfloat16 or float16")
    return DTYPES[dtype]


@dataclass
class GenerationResult:
    images: list  # list[PIL.Image.Image]
    pixels: torch.Tensor  # (B, 3, H, W) float32 in [0, 1]
    tokens: list[torch.Tensor]  # per scale: (B, h*w) int64 codes (VAR/HART) or (B, h, w, d) bits (Infinity)
    seeds: list[int]
    settings: list[dict[str, Any]] = field(default_factory=list)  # per image, as written into PNGs
    logits: list[torch.Tensor] | None = None  # per scale (B, h*w, C), only with keep_logits=True
    seconds: float = 0.0
    reconstruction: torch.Tensor | None = None  # editing: the input's VAE reconstruction (B, 3, H, W) in [0, 1]
    notes: list[str] = field(default_factory=list)  # things the user should know (nearest template, truncation)


def to_pil(pixels: torch.Tensor) -> list:
    """(B, 3, H, W) in [0, 1] -> list of PIL images (uint8, rounded)."""
    from PIL import Image

    u8 = (pixels.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return [Image.fromarray(a) for a in u8]


class Pipeline:
    """A loaded model (transformer, tokenizer/VAE, text encoder) ready to generate."""

    def __init__(self, config: ModelConfig, family: Family, device: torch.device, dtype: torch.dtype,
                 compile: str | None = None):
        """Wrap an already loaded family model (see `load()`; benchmarks build one from random weights).
        `compile`: the mode its step was compiled with (`ssgen.compile`), None when eager. `config.model` is
        completed with what the files say (`family.facts`: e.g. HART's scales), so requests resolve fully."""
        self.config = replace(config, model={**config.model, **family.facts}) if family.facts else config
        self.family, self.device, self.dtype, self.compile = family, device, dtype, compile

    def num_scales(self, **options) -> int:
        """Number of scales a generate() call with these options runs (Infinity: depends on pn, h_div_w)."""
        given = {k: v for k, v in options.items() if v is not None}
        return family(self.config.family).options.num_scales(self.config.model, {**self.config.defaults, **given})

    def resolve(self, classes: list[int] | int | None = None, prompts: list[str] | str | None = None, *,
                seed: int = 0, seeds: list[int] | None = None, ssg: SSG | bool | None = None, rng: str = "per-image",
                image: Any = None, keep_mask: Any = None, keep_scales: int | None = None, **options) -> Request:
        """Check a call against this model and resolve it, without running it: `generate`'s arguments (sampling
        and family options as keywords) -> a `Request` for `run` (`ssgen.request.resolve`)."""
        return resolve(self.config, classes, prompts, options=options, ssg=ssg, rng=rng, seeds=seeds, seed=seed,
                       image=image, keep_mask=keep_mask, keep_scales=keep_scales)

    def generate(self, classes: list[int] | int | None = None, prompts: list[str] | str | None = None, *,
                 seed: int = 0, seeds: list[int] | None = None, cfg: float | list[float] | None = None,
                 top_k: int | None = None, top_p: float | None = None, more_smooth: bool | None = None,
                 ssg: SSG | bool | None = None, rng: str = "per-image", keep_logits: bool = False,
                 on_scale: Callable[[int, Any], None] | None = None, image: Any = None, keep_mask: Any = None,
                 keep_scales: int | None = None, **family_kw) -> GenerationResult:
        """Generate one image per class (VAR; None = the null class) or prompt (Infinity, HART). See the README
        and docs/architecture.md.

        Editing (ssgen/edit.py): `image` (a path or a PIL image, one for the whole batch) is fitted to the
        output size and encoded; `keep_mask` (a (h, w) tensor or a mask image, 1/white = keep the input, or an
        `ssgen.Box`) and/or `keep_scales=k` (keep the input's scales 0..k-1: variations) say which tokens keep
        the input's. The result's `reconstruction` is the input as the VAE reproduces it."""
        request = self.resolve(classes, prompts, seed=seed, seeds=seeds, ssg=ssg, rng=rng, image=image,
                               keep_mask=keep_mask, keep_scales=keep_scales, cfg=cfg, top_k=top_k, top_p=top_p,
                               more_smooth=more_smooth, **family_kw)
        return self.run(request, on_scale=on_scale, keep_logits=keep_logits)

    def run(self, request: Request, on_scale: Callable[[int, Any], None] | None = None,
            keep_logits: bool = False) -> GenerationResult:
        """Generate a resolved request (`ssgen.request.resolve`, e.g. made before this model loaded). It is
        trusted as it is; only a request whose scale count the config could not tell is resolved once more,
        against this model's numbers."""
        if (request.config.name, request.config.family) != (self.config.name, self.config.family):
            raise ConfigError(f"this request was resolved for {request.config.name}, not {self.config.name}")
        if request.num_scales is None:
            request = rebind(request, self.config)
        t0 = time.perf_counter()
        edit = None
        with torch.inference_mode():
            call = self.family.start(request)
            if request.edit is not None:  # fit + encode the input, keep masks per scale
                edit = prepare_edit(call.backend, request.edit, request.size, self.device)
            out = run_loop(call.backend, Rng(request.rng, list(request.seeds), self.device), request.ssg,
                           betas=request.betas, keep_logits=keep_logits, on_scale=on_scale,
                           edit=edit.edit if edit is not None else None)
        pixels = out.pixels.float().cpu()
        return GenerationResult(images=to_pil(pixels), pixels=pixels, tokens=[t.cpu() for t in out.tokens],
                                seeds=list(request.seeds), settings=self.image_settings(request, call, edit),
                                logits=[lg.cpu() for lg in out.logits] if keep_logits else None,
                                seconds=time.perf_counter() - t0,
                                notes=list(dict.fromkeys(list(request.notes) + call.notes
                                                         + (edit.notes if edit else []))),
                                reconstruction=edit.reconstruction if edit is not None else None)

    def image_settings(self, request: Request, call: Call, edit: Any) -> list[dict[str, Any]]:
        """What every image's PNG records: model, revision, the model's licence (when its config names one), the
        family's settings, rng, SSG, device, dtype, the edit's input, its seed (batch mode: the batch's seed, index
        and size) and its condition."""
        common = {"ssgen": __version__, "model": self.config.name, "family": self.config.family,
                  "revision": self.config.revision(), **call.settings, "rng": request.rng,
                  "ssg": request.ssg.to_dict() if request.ssg is not None else None,
                  "device": self.device.type, "dtype": str(self.dtype).replace("torch.", "")}
        if self.config.license:  # the weights' terms travel with the images (DDO's are non-commercial)
            common["license"] = self.config.license
        if self.compile:
            common["compile"] = self.compile
        if edit is not None:
            common.update(edit.settings)
        seeds, per_image = request.seeds, []
        for i, s in enumerate(seeds):
            if request.rng == "batch":  # one generator for the whole batch: only the whole batch reproduces an image
                d = dict(common, seed=seeds[0], batch_index=i, batch_size=len(seeds))
            else:
                d = dict(common, seed=s, batch_index=i)
            if request.classes is not None:
                d["class"] = None if request.classes[i] is None else int(request.classes[i])
            else:
                d["prompt"] = request.prompts[i]
            per_image.append(d)
        return per_image


def load(name_or_path: str | Path | ModelConfig, device: str | torch.device = "auto",
         dtype: str | torch.dtype = "auto", offline: bool | None = None, progress: bool = False,
         compile: bool | str = False) -> Pipeline:
    """Load a registered model (`"var-d30"`) or a YAML config path. Weights come from the Hub cache.

    `compile` (opt-in): True or "default" torch.compiles the per-scale transformer step, "cuda-graphs" (CUDA
    only) also replays it as CUDA graphs; the first image pays the compile (one per scale). See ssgen/compile.py.
    """
    from .compile import compile_family, compile_mode

    config = name_or_path if isinstance(name_or_path, ModelConfig) else load_config(name_or_path)
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    mode = compile_mode(compile, dev)  # a bad mode fails before any weights load
    loaded = family(config.family).load()(config, dev, dt, offline=offline, progress=progress)
    return Pipeline(config, compile_family(loaded, mode), dev, dt, compile=mode)


__all__ = ["Pipeline", "GenerationResult", "load", "SSGenError"]
