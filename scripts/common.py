"""What the scripts in scripts/ share, in one module (each script imports it as its sibling: `from common import ...`).

- the machine: `cpu_info`, `cpu_name` (from ssgen.hardware, the one reader of the CPU's name and flags);
- the yardstick: `matmul_timer`, `matmul_rate` (a large matrix product timed in the same run as a benchmark);
- timing: `interleave` and its wrappers `time_interleaved`, `time_generate`;
- memory: `read_status`, `RssSampler` (RssAnon of this process or a child, sampled from a thread);
- random-weight models at full size, one builder per family: `var_modules`, `infinity_modules`, `hart_modules`
  (the modules; on the meta device only their shapes, for the rehearsal's files), `build_var`, `build_infinity`,
  `build_hart` (those modules as a Pipeline, for the benchmarks), `RandomText` (the text encoders' stand-in);
- the per-scale profile: `profile`, `print_profile`, `flop_formulas`;
- the official VAR sampler run beside ssgen: `import_official`, `build_official`, `official_call`, `ssgen_call`.

Random weights compute exactly what the released ones do, so the benchmarks measure what a user gets without
downloading gigabytes. ssgen's model code is imported inside the functions that use it: a script pays only for
the families it builds, and load_memory.py's measuring process holds little besides torch when it starts.
"""

from __future__ import annotations

import contextlib
import fnmatch
import importlib
import io
import math
import os
import statistics
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import torch

from ssgen import hardware

# ------------------------------------------------------------------------------------------------
# the machine
# ------------------------------------------------------------------------------------------------

CPU_FLAGS = ("amx_bf16", "avx512_bf16", "avx512f", "avx2")  # the flags that decide bf16's and fp32's speed


def cpu_info(flags: tuple[str, ...] = CPU_FLAGS) -> dict:
    """The CPU every figure of a report is measured on: {"model_name", "cores", "bf16_native" (whether the rehearsal
    measures bf16 here: ssgen.hardware's rule), and True/False for each of `flags`}."""
    cpu = hardware.cpu_info()
    info = {"model_name": cpu.model_name, "cores": os.cpu_count(), "bf16_native": hardware.cpu_has_native_bf16()}
    info.update({flag: flag in cpu.flags for flag in flags})
    return info


def cpu_name() -> str:
    """'MODEL (flags; N threads)': one line naming the CPU and the threads torch uses."""
    info = cpu_info()
    feats = [f for f in CPU_FLAGS if info[f]]
    return f"{info['model_name']} ({', '.join(feats) or 'no avx2'}; {torch.get_num_threads()} threads)"


# ------------------------------------------------------------------------------------------------
# the yardstick: a large matmul, timed in the same run (a shared machine's speed drifts between runs)
# ------------------------------------------------------------------------------------------------

MATMUL = (4096, 1024, 4096)  # (M, K, N) of the reference matmul


def sync(device: torch.device) -> None:
    """Wait for the GPU, so that a wall-clock time covers the work queued on it."""
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_timer(dtype: torch.dtype, device: torch.device = torch.device("cpu")):
    """A function that times one MATMUL-sized product in `dtype` on `device` -> seconds (into a preallocated
    output, so the allocator's page faults are not counted). Warmed up once."""
    M, K, N = MATMUL
    g = torch.Generator().manual_seed(0)
    a = torch.randn(M, K, generator=g).to(device=device, dtype=dtype)
    b = torch.randn(K, N, generator=g).to(device=device, dtype=dtype)
    out = torch.empty(M, N, dtype=dtype, device=device)

    def timed() -> float:
        with torch.inference_mode():
            sync(device)
            t0 = time.perf_counter()
            torch.matmul(a, b, out=out)
            sync(device)
            return time.perf_counter() - t0

    timed()
    return timed


def matmul_rate(dtype: torch.dtype, device: torch.device, repeat: int = 10) -> float:
    """GFLOP/s of the reference product in `dtype`: this machine's practical peak, timed now (median)."""
    timed = matmul_timer(dtype, device)
    return 2 * math.prod(MATMUL) / statistics.median(timed() for _ in range(repeat)) / 1e9


# ------------------------------------------------------------------------------------------------
# timing
# ------------------------------------------------------------------------------------------------


def interleave(runs: dict, repeat: int, warmup: int = 1) -> dict:
    """{label: fn(seed)} -> {label: [seconds per call]}, the labels alternating run by run so that a busy
    machine slows them alike (a ratio of two sequential blocks measures the machine's load, not the
    difference). CUDA is synchronized around every timed call."""
    for _ in range(warmup):
        for fn in runs.values():
            fn(0)
    wait = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    times: dict = {k: [] for k in runs}
    for r in range(repeat):
        for label, fn in runs.items():
            wait()
            t0 = time.perf_counter()
            fn(r)
            wait()
            times[label].append(time.perf_counter() - t0)
    return times


def time_interleaved(pipe, kwargs: dict, settings: dict, repeat: int, warmup: int = 1) -> dict:
    """Seconds per `pipe.generate(**kwargs, seed=r, ssg=...)` call for each SSG setting ({label: ssg}),
    interleaved (`interleave`)."""
    runs = {label: (lambda r, ssg=ssg: pipe.generate(**kwargs, seed=r, ssg=ssg)) for label, ssg in settings.items()}
    return interleave(runs, repeat, warmup)


def time_generate(pipe, batch: int, ssg, repeat: int, warmup: int = 1) -> list[float]:
    """Seconds per call of a VAR pipe generating `batch` images (classes 207, 208, ...) with SSG setting `ssg`."""
    classes = [(207 + i) % 1000 for i in range(batch)]
    return time_interleaved(pipe, {"classes": classes}, {"x": ssg}, repeat, warmup)["x"]


# ------------------------------------------------------------------------------------------------
# memory: RssAnon is the anonymous memory a process made; the file-backed pages of memory-mapped
# checkpoints are not in it (the kernel can drop them), so it is what holding a model really costs
# ------------------------------------------------------------------------------------------------


def read_status(pid: int | str = "self") -> dict[str, int]:
    """The memory fields of /proc/PID/status in bytes (RssAnon, RssFile, VmHWM, ...); {} when the process is
    gone or the system has no /proc."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        parts = value.split()
        if len(parts) == 2 and parts[1] == "kB":
            out[key] = int(parts[0]) * 1024
    return out


class RssSampler:
    """Samples a process's memory every `interval` seconds in a background thread while the `with` block runs.

    `peak` holds the largest value seen of every /proc/PID/status memory field (bytes); `samples` the
    (seconds since `t0`, RssAnon bytes) pairs, with which a report splits a run into phases afterwards
    (loading, then generating). A peak shorter than `interval` can be missed: loading a model from a
    memory-mapped file rises and falls in milliseconds, so measure it with interval=0.001. Call `sample()`
    once more after the block to include the final state of this process.
    """

    def __init__(self, pid: int | str = "self", interval: float = 0.05, t0: float | None = None):
        self.pid, self.interval = pid, interval
        self.t0 = time.perf_counter() if t0 is None else t0
        self.peak: dict[str, int] = {}
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="RssSampler", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def sample(self) -> None:
        """Read the status once and fold it into `peak` and `samples`."""
        status = read_status(self.pid)
        for key, value in status.items():
            self.peak[key] = max(self.peak.get(key, 0), value)
        if "RssAnon" in status:
            self.samples.append((time.perf_counter() - self.t0, status["RssAnon"]))

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)


# ------------------------------------------------------------------------------------------------
# random-weight models at full size
# ------------------------------------------------------------------------------------------------

P256 = (1, 2, 3, 4, 5, 6, 8, 10, 13, 16)  # VAR's 256 px schedule
HART_SCHEDULES = {256: P256, 512: (1, 2, 3, 4, 6, 9, 13, 18, 24, 32),
                  1024: (1, 2, 3, 4, 5, 7, 9, 12, 16, 21, 27, 36, 48, 64)}  # 1024: the released files' only one
TINY_VAR = {"depth": 2, "width": 128, "heads": 2, "vae_ch": 32}  # the goldens' tiny VAR (256 px): seconds on a CPU


def _on_meta(device: torch.device | str) -> bool:
    return torch.device(device).type == "meta"


class RandomText:
    """Stands in for a family's text encoder (the benchmarks leave text encoders out): random features of
    `channels` for `tokens` real tokens per prompt, in the form the family's own encoder returns them.

    Infinity (T5): (packed (sum of lengths, channels) features of T5-XL's O(0.1) magnitude, lengths, no notes).
    HART (Qwen2): `EncodedPrompts` padded to the context length the family asks for, with its mask and
    positions. `encode` takes the arguments of both families' calls.
    """

    def __init__(self, family: str, channels: int, tokens: int, device: torch.device):
        if family not in ("infinity", "hart"):
            raise ValueError(f"RandomText stands in for Infinity's or HART's text encoder, not {family!r}'s")
        self.family, self.channels, self.tokens, self.device = family, channels, tokens, device

    def encode(self, prompts, max_length: int = 300, system_prompt: bool = True, offload: bool = False,
               what: str = "prompt"):
        """Features for `prompts` in the family's form; the other arguments are those the families pass (HART:
        its context length, used; the rest change nothing here)."""
        if self.family == "infinity":
            return self._packed(len(prompts))
        return self._padded(len(prompts), max_length)

    def _packed(self, n: int):
        """Infinity's form: (packed (n * tokens, channels), lengths, notes)."""
        g = torch.Generator().manual_seed(0)
        lens = [self.tokens] * n
        packed = torch.randn(sum(lens), self.channels, generator=g).mul_(0.2)  # T5-XL features are O(0.1)
        return packed.to(self.device), lens, []

    def _padded(self, n: int, max_length: int):
        """HART's form: EncodedPrompts of n rows padded to max_length, the first `tokens` real."""
        from ssgen.backends.hart.text import EncodedPrompts

        g = torch.Generator().manual_seed(0)
        mask = torch.zeros(n, max_length, dtype=torch.bool)
        mask[:, : self.tokens] = True
        positions = mask.long().cumsum(1) - 1
        ids = torch.zeros(n, max_length, dtype=torch.long)
        features = torch.randn(n, max_length, self.channels, generator=g)
        return EncodedPrompts(ids, mask, positions, features.to(self.device))


def var_modules(vcfg, vae_cfg, device: torch.device | str, dtype: torch.dtype = torch.float32):
    """VAR's transformer and VQVAE for these configs (VARConfig, VQVAEConfig) with random weights, in eval mode;
    on the meta device only their shapes (nothing allocated, nothing initialised) -> (var, vae)."""
    from ssgen.backends.var.model import VAR
    from ssgen.backends.var.vae import VQVAE

    if _on_meta(device):
        with torch.device("meta"):
            return VAR(vcfg), VQVAE(vae_cfg)
    torch.manual_seed(0)
    var = VAR(vcfg).init_random(std=0.02, seed=0)
    vae = VQVAE(vae_cfg)
    return var.to(device=device, dtype=dtype).eval(), vae.to(device=device, dtype=dtype).eval()


def build_var(depth: int, dtype: torch.dtype, device: torch.device, vae_ch: int = 160, width: int | None = None,
              heads: int | None = None, patch_nums: tuple[int, ...] = P256, keep_state_dicts: bool = False):
    """A VAR-d{depth} + VQVAE (ch 160) with random weights, on the 256 px schedule unless told, as a Pipeline. On the
    CPU the transformer's linears get prepacked (their plain weights released) as `ssgen.load` does;
    `keep_state_dicts` keeps a copy of both state dicts first, as `pipe.state_dicts` {"var", "vae"} (the official
    modules load them)."""
    from ssgen.backends.var.family import VarFamily
    from ssgen.backends.var.model import VARConfig
    from ssgen.backends.var.vae import VQVAEConfig
    from ssgen.config import ModelConfig
    from ssgen.pipeline import Pipeline

    vcfg = VARConfig(depth=depth, width=width, heads=heads, patch_nums=patch_nums)
    var, vae = var_modules(vcfg, VQVAEConfig(ch=vae_ch, patch_nums=patch_nums), device, dtype)
    cfg = ModelConfig(name=f"var-d{depth}-w{vcfg.width}-random", family="var",
                      defaults={"cfg": 4.0, "top_k": 900, "top_p": 0.95, "more_smooth": False})
    sds = None
    if keep_state_dicts:
        sds = {"var": {k: v.clone() for k, v in var.state_dict().items()}, "vae": vae.state_dict()}
    pipe = Pipeline(cfg, VarFamily(cfg, vcfg, var, vae, device, dtype), device, dtype)
    pipe.state_dicts = sds
    return pipe


def infinity_modules(model: dict, device: torch.device | str, dtype: torch.dtype = torch.float32):
    """Infinity's transformer and BSQ VAE decoder for a config's `model:` section, with random weights, in eval
    mode: the transformer's blocks in `dtype` and the rest float32 (as ssgen and upstream run it), the VAE in
    `dtype`; on the meta device only their shapes -> (InfinityConfig, transformer, vae)."""
    from ssgen.backends.infinity.model import Infinity, InfinityConfig
    from ssgen.backends.infinity.vae import BSQVAE, VAEConfig

    icfg = InfinityConfig.from_dict(model)
    vcfg = VAEConfig(codebook_dim=icfg.codebook_dim, base_ch=model.get("base_ch", 128),
                     ch_mult=model.get("decoder_ch_mult", (1, 2, 4, 4, 4)),
                     num_res_blocks=model.get("num_res_blocks", 2))
    with torch.device("meta"):
        transformer, vae = Infinity(icfg), BSQVAE(vcfg)
    if _on_meta(device):
        return icfg, transformer, vae
    transformer = transformer.blocks_to(dtype).to_empty(device=device).init_random(seed=0).eval()  # never fp32 first
    torch.manual_seed(0)
    vae = BSQVAE(vcfg).to(device=device, dtype=dtype).eval()
    return icfg, transformer, vae


def build_infinity(config, dtype: torch.dtype, device: torch.device, text_tokens: int = 32):
    """An Infinity of `config`'s size (a ModelConfig: a registered one such as `load_config("infinity-2b")`, or a
    tiny model's) with random weights and `RandomText` for T5, as a Pipeline."""
    from ssgen.backends.infinity.family import InfinityFamily
    from ssgen.pipeline import Pipeline

    icfg, transformer, vae = infinity_modules(config.model, device, dtype)
    if torch.device(device).type == "cpu":
        transformer.prepack_cpu()  # as the family's load does
    text = RandomText("infinity", icfg.text_channels, text_tokens, device)
    return Pipeline(config, InfinityFamily(config, icfg, transformer, vae, text, device, dtype), device, dtype)


def hart_config_files(patch_nums, depth: int = 20, width: int = 1280, heads: int = 20) -> tuple[dict, dict]:
    """`llm/config.json` and `tokenizer/config.json` of a HART at `patch_nums`. The defaults are hart-0.7b-1024px's
    size as the notes estimate it (depth 20, width 1280, 20 heads, context_dim 1536, residual MLP 1024 x 6: the
    released files' values are not known here); the tokenizer is VAR's VQVAE (ch 160) with HART's hybrid quantizer."""
    from ssgen.backends.hart.tiny import llm_config, tokenizer_config

    return (llm_config(depth, width, heads, 1536, patch_nums, diff_width=1024, diff_depth=6),
            tokenizer_config(4096, 32, 160, (1, 1, 2, 2, 4), patch_nums))


def hart_modules(patch_nums, device: torch.device | str, dtype: torch.dtype = torch.float32, depth: int = 20,
                 width: int = 1280, heads: int = 20):
    """HART's transformer (with its residual diffusion MLP) and hybrid tokenizer of `hart_config_files`, with random
    weights, in eval mode; on the meta device only their shapes -> (HARTConfig, transformer, tokenizer)."""
    from ssgen.backends.hart.model import HART, HARTConfig
    from ssgen.backends.hart.tokenizer import HybridTokenizer, vqvae_config

    llm, tok = hart_config_files(patch_nums, depth, width, heads)
    hcfg = HARTConfig.from_files(llm, tok)
    vcfg = vqvae_config(tok, tuple(patch_nums))
    if _on_meta(device):
        with torch.device("meta"):
            return hcfg, HART(hcfg), HybridTokenizer(vcfg)
    model = HART(hcfg).init_random(seed=0)
    torch.manual_seed(0)
    tokenizer = HybridTokenizer(vcfg)
    return (hcfg, model.to(device=device, dtype=dtype).eval(), tokenizer.to(device=device, dtype=dtype).eval())


def build_hart(res: int, dtype: torch.dtype, device: torch.device, depth: int = 20, width: int = 1280,
               heads: int = 20):
    """A HART (`hart_modules`) on the `res` px schedule with random weights and `RandomText` for Qwen2 (24 real
    tokens per prompt), as a Pipeline; `pipe.n_params` counts the transformer and its residual MLP."""
    from ssgen.backends.hart.family import HartFamily
    from ssgen.backends.hart.options import upstream_top_k
    from ssgen.config import ModelConfig
    from ssgen.pipeline import Pipeline

    pns = HART_SCHEDULES[res]
    hcfg, model, tokenizer = hart_modules(pns, device, dtype, depth, width, heads)
    cfg = ModelConfig(name=f"hart-d{depth}-random-{res}px", family="hart",
                      defaults={"cfg": 4.5, "more_smooth": True, "top_k": [upstream_top_k(k) for k in range(len(pns))]})
    text = RandomText("hart", hcfg.context_dim, 24, device)
    pipe = Pipeline(cfg, HartFamily(cfg, hcfg, model, tokenizer, text, device, dtype), device, dtype)
    pipe.n_params = sum(p.numel() for p in model.parameters())
    return pipe


# ------------------------------------------------------------------------------------------------
# the per-scale profile
# ------------------------------------------------------------------------------------------------


def cpu_sdpa_flops(q_shape, k_shape, v_shape, *args, out_shape=None, **kwargs) -> int:
    """softmax(q k^T) v: q (B, H, l, d), k (B, H, n, d), v (B, H, n, dv) -> 2*B*H*l*n*(d + dv) FLOPs."""
    B, H, L, d = q_shape
    return 2 * B * H * L * k_shape[-2] * (d + v_shape[-1])


def packed_linear_flops(x_shape, w_shape, *args, out_shape=None, **kwargs) -> int:
    """x (..., K) @ a oneDNN-packed weight -> (..., N): 2 * rows * K * N FLOPs."""
    return 2 * math.prod(x_shape) * out_shape[-1]


def flop_formulas() -> dict:
    """Formulas PyTorch's FlopCounterMode lacks: the CPU's fused SDPA kernel (where fp32 attention lands; ssgen's
    bf16 CPU path is two matmuls, which it counts itself) and the oneDNN-packed linears of the CPU (the custom
    op registered when ssgen.backends.infinity.model is imported, and PyTorch's own mkldnn op)."""
    import ssgen.backends.infinity.model  # noqa: F401  (registers torch.ops.ssgen.onednn_linear)

    return {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: cpu_sdpa_flops,
            torch.ops.ssgen.onednn_linear: packed_linear_flops,
            torch.ops.mkldnn._linear_pointwise: packed_linear_flops}


class TimedBackend:
    """Wraps one call's loop Backend and adds the seconds of each part to rows[k][part]:
    transformer (logits), cfg (guide), ssg, advance (token embedding, running latent, next input),
    sampling (the rest of the scale: filtering, softmax, the draw) and, at k = -1, vae (decode)."""

    def __init__(self, backend, rows: dict, device: torch.device):
        self._b, self._rows, self._dev = backend, rows, device
        self.grid = backend.grid
        self._t0 = 0.0
        self.k = 0

    def __getattr__(self, name):
        return getattr(self._b, name)

    def time(self, k: int, part: str, fn, *args, **kwargs):
        sync(self._dev)
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        sync(self._dev)
        self._rows[k][part] += time.perf_counter() - t0
        return out

    def logits(self, k):
        self.k = k
        sync(self._dev)
        self._t0 = time.perf_counter()
        return self.time(k, "transformer", self._b.logits, k)

    def guide(self, k, raw):
        return self.time(k, "cfg", self._b.guide, k, raw)

    def advance(self, k, tokens, soft):
        out = self.time(k, "advance", self._b.advance, k, tokens, soft)
        self._rows[k]["total"] += time.perf_counter() - self._t0
        return out

    def decode(self, rng):
        return self.time(-1, "vae", self._b.decode, rng)


def profile(pipe, kwargs: dict, ssg, repeat: int = 3) -> dict:
    """Per-scale breakdown of `pipe.generate(**kwargs, ssg=ssg)`: median seconds of each part over
    `repeat` runs (after one warm-up), and the transformer's FLOPs per scale (counted once with
    FlopCounterMode in a separate run, so the counting does not slow the timed ones).
    Returns {"scales": [{k, transformer, cfg, ssg, sampling, advance, total, gflop}], "grid": [(h, w)], "vae": s}."""
    from torch.utils.flop_counter import FlopCounterMode

    import ssgen.loop
    import ssgen.pipeline

    runs: list[dict] = []
    flops: dict = defaultdict(int)
    orig_run, orig_ssg = ssgen.pipeline.run_loop, ssgen.loop.ssg_update
    state: dict = {}

    def run_wrapped(backend, rng, ssg_, **kw):
        rows: dict = defaultdict(lambda: defaultdict(float))
        tb = TimedBackend(backend, rows, pipe.device)
        state["tb"], state["grid"] = tb, list(backend.grid)
        if state.get("count"):
            def counted_logits(k, _f=backend.logits):
                with FlopCounterMode(display=False, custom_mapping=flop_formulas()) as fc:
                    out = _f(k)
                flops[k] += fc.get_total_flops()
                return out
            tb.logits = counted_logits
        out = orig_run(tb, rng, ssg_, **kw)
        runs.append(rows)
        return out

    def ssg_timed(*a, **kw):
        tb = state["tb"]
        return tb.time(tb.k, "ssg", orig_ssg, *a, **kw)

    ssgen.pipeline.run_loop, ssgen.loop.ssg_update = run_wrapped, ssg_timed
    try:
        state["count"] = True
        pipe.generate(**kwargs, seed=0, ssg=ssg)
        state["count"] = False
        runs.clear()
        for r in range(repeat + 1):
            pipe.generate(**kwargs, seed=r, ssg=ssg)
    finally:
        ssgen.pipeline.run_loop, ssgen.loop.ssg_update = orig_run, orig_ssg
    runs = runs[1:]  # drop the warm-up
    parts = ("transformer", "cfg", "ssg", "advance", "total")
    scales = []
    for k in range(len([k for k in runs[0] if k >= 0])):
        row = {"k": k, **{p: statistics.median(rr[k][p] for rr in runs) for p in parts}}
        row["sampling"] = max(0.0, row["total"] - row["transformer"] - row["cfg"] - row["ssg"] - row["advance"])
        row["gflop"] = flops[k] / 1e9
        scales.append(row)
    return {"scales": scales, "grid": state["grid"], "vae": statistics.median(rr[-1]["vae"] for rr in runs)}


def print_profile(prof: dict, batch: int, rate: float) -> None:
    """The profile as a table, in ms per call (batch `batch`), with the transformer's GFLOP/s per scale."""
    cols = ("transformer", "cfg", "ssg", "sampling", "advance", "total")
    print(f"  {'scale':>5s} {'grid':>7s} " + " ".join(f"{c:>11s}" for c in cols) + f" {'GFLOP/s':>8s}")
    tot = defaultdict(float)
    for r, (h, w) in zip(prof["scales"], prof["grid"]):
        for c in cols:
            tot[c] += r[c]
        gf = r["gflop"] / r["transformer"] if r["transformer"] else 0.0
        print(f"  {r['k']:>5d} {h:>3d}x{w:<3d} " + " ".join(f"{1e3 * r[c]:>11.1f}" for c in cols) + f" {gf:>8.0f}")
    all_t = tot["total"] + prof["vae"]
    fl = sum(r["gflop"] for r in prof["scales"])
    print(f"  {'sum':>11s} " + " ".join(f"{1e3 * tot[c]:>11.1f}" for c in cols)
          + f" {fl / tot['transformer'] if tot['transformer'] else 0:>8.0f}")
    shares = ", ".join(f"{c} {100 * tot[c] / all_t:.0f}%" for c in cols[:-1])
    print(f"  VAE decode {1e3 * prof['vae']:.1f} ms; one call {all_t:.3f} s = {all_t / batch:.3f} s/image; shares: "
          f"{shares}, vae {100 * prof['vae'] / all_t:.0f}%")
    print(f"  transformer {fl / batch:.1f} GFLOP per image at {fl / tot['transformer']:.0f} GFLOP/s = "
          f"{100 * fl / tot['transformer'] / rate:.0f}% of this run's large-matmul rate ({rate:.0f} GFLOP/s)")


# ------------------------------------------------------------------------------------------------
# the official VAR sampler (FoundationVision/VAR), imported at run time from a folder outside the repository
# ------------------------------------------------------------------------------------------------

EXTRACT_HINT = ("mkdir -p /tmp/var_official && git --git-dir=/work/.mirror/FoundationVision+VAR/repo archive HEAD "
                "| tar -x -C /tmp/var_official (or git clone https://github.com/FoundationVision/VAR)")
SAMPLING = dict(cfg=4.0, top_k=900, top_p=0.95, more_smooth=False)  # the official demo's sampling settings


def import_official(path: str | None):
    """Import the official `models` package from its source folder -> the module."""
    from ssgen.errors import ConfigError

    if not path:
        raise ConfigError(f"no official VAR code: pass --official PATH or set SSGEN_OFFICIAL_VAR; get it with: "
                          f"{EXTRACT_HINT}")
    root = Path(path).expanduser().resolve()
    if not (root / "models" / "var.py").is_file() or not (root / "dist.py").is_file():
        raise ConfigError(f"{root} is not the official VAR source (no models/var.py, dist.py); get it with: "
                          f"{EXTRACT_HINT}")
    sys.path.insert(0, str(root))  # it imports itself as top-level `models` and `dist`
    models = importlib.import_module("models")
    if Path(models.__file__).resolve().parent != root / "models":
        raise ConfigError(f"`import models` found {models.__file__}, not {root}/models: another package named "
                          "models shadows it; run from a clean environment")
    return models


def load_strict(official: torch.nn.Module, sd: dict, allowed: tuple[str, ...]) -> list[str]:
    """Load ssgen's state dict into the official module with strict=True.

    Keys ssgen does not have are filled from the official module's own state dict, and must all match
    `allowed` (ssgen's IGNORED_KEYS_*: training-only buffers, the VAE's encoder side). Returns them.
    """
    own = official.state_dict()
    extra = [k for k in sd if k not in own]
    if extra:
        raise RuntimeError(f"ssgen has keys the official {type(official).__name__} lacks: {extra[:5]}")
    taken = [k for k in own if k not in sd]
    bad = [k for k in taken if not any(fnmatch.fnmatchcase(k, p) for p in allowed)]
    if bad:
        raise RuntimeError(f"official {type(official).__name__} needs keys ssgen lacks: {bad[:5]}")
    official.load_state_dict({**{k: own[k] for k in taken}, **sd}, strict=True)
    return taken


def build_official(models, pipe):
    """The official VQVAE + VAR with the architecture of ssgen's pipe (`build_var(..., keep_state_dicts=True)`)
    and its weights (fp32, CPU) -> (var, {"var", "vae": keys taken from the official modules}, fast paths in use)."""
    from ssgen.backends.var.model import IGNORED_KEYS_VAR
    from ssgen.backends.var.vae import IGNORED_KEYS_VAE

    vcfg, vae_cfg = pipe.family.var_cfg, pipe.family.vae.cfg
    with contextlib.redirect_stdout(io.StringIO()):  # its constructor prints a config banner
        vae = models.VQVAE(vocab_size=vcfg.vocab_size, z_channels=vcfg.latent_channels, ch=vae_cfg.ch,
                           test_mode=True, share_quant_resi=vae_cfg.share_quant_resi, v_patch_nums=vcfg.patch_nums)
        var = models.VAR(vae_local=vae, num_classes=vcfg.num_classes, depth=vcfg.depth, embed_dim=vcfg.width,
                         num_heads=vcfg.heads, mlp_ratio=4.0, drop_rate=0.0, attn_drop_rate=0.0,
                         drop_path_rate=0.1 * vcfg.depth / 24, norm_eps=vcfg.norm_eps, shared_aln=vcfg.shared_aln,
                         cond_drop_rate=0.1, attn_l2_norm=vcfg.attn_l2_norm, patch_nums=vcfg.patch_nums,
                         flash_if_available=False, fused_if_available=False)  # as models.build_vae_var
    # Filled from the official modules themselves (ssgen derives or drops them):
    #   VAR: lvl_1L, attn_bias_for_masking (training mask), blocks.*.attn.zero_k_bias (zeros);
    #   VQVAE: encoder.*, quant_conv.* (image -> tokens only) and quantize.ema_vocab_hit_SV (training stat).
    # Everything generation uses (codebook, phi convs, post_quant_conv, decoder.*) comes from ssgen.
    taken = {"var": load_strict(var, pipe.state_dicts["var"], IGNORED_KEYS_VAR),  # ssgen's linears are prepacked
             "vae": load_strict(vae, pipe.state_dicts["vae"], IGNORED_KEYS_VAE)}
    var.eval(), vae.eval()
    blocks = var.blocks
    fast = {"flash": sum(b.attn.using_flash for b in blocks), "xformers": sum(b.attn.using_xform for b in blocks),
            "fused_mlp": sum(b.ffn.fused_mlp_func is not None for b in blocks)}
    return var, taken, fast


def ssgen_call(pipe, classes: list[int], seed: int, rng: str = "per-image"):
    """ssgen's side: `pipe.generate` with the official demo's sampling, SSG off."""
    with torch.inference_mode():
        return pipe.generate(classes=classes, seed=seed, ssg=False, rng=rng, **SAMPLING)


def official_call(var, classes: list[int], seed: int, autocast: bool) -> torch.Tensor:
    """The official sampler on the device its weights are on; `autocast`: bf16 autocast, as its demo runs."""
    dev = next(var.parameters()).device
    labels = torch.tensor(classes, dtype=torch.long, device=dev)
    ctx = torch.autocast(dev.type, dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
    with torch.inference_mode(), ctx:
        return var.autoregressive_infer_cfg(B=len(classes), label_B=labels, g_seed=seed, **SAMPLING)
