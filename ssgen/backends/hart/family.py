"""HART as a family the generic loop drives: loading (config files <-> checkpoint checks) and one
generation call.

Weights roles (folders): `transformer` = `llm/` (config.json + ema_model.bin; `model.use_ema: false`
in the YAML selects pytorch_model.bin), `vae` = `tokenizer/`, `text_encoder` = a Qwen2 folder, and
optionally `safety` = google/shieldgemma-2b for `safety_check=True`. The architecture is read from
`llm/config.json` and `tokenizer/config.json`; the YAML `model:` section may be empty, and any of
`patch_nums`, `vocab_size`, `latent_channels`, `context_token`, `resolution` given there is checked
against those files.

The call options and their sampling semantics are in options.py.
Scale 0's logits come from the last prefix position (l = 1). The residual's noise comes from
`rng.stream()`: in rng="batch" mode a second generator seeded with the same seed, drawing x_T and
then one (2B, l, Cvae) draw per step, as upstream's global-RNG calls after `torch.manual_seed(seed)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ...checkpoint import drop_keys, empty_model, load_into, read_json, read_state_dict, unused_note
from ...config import ModelConfig
from ...errors import ConfigError, WeightsError
from ...loop import ScaleSampling
from ...request import Request
from ..checks import smoothing
from ..common import Call, cfg_mix, per_image
from .model import HART, IGNORED_KEYS_HART, HARTConfig, fields_from_state_dict
from .options import HartOptions, smooth_ratio
from .text import EncodedPrompts, TextEncoder
from .tokenizer import HybridTokenizer, read_config, read_tokenizer_state, vqvae_config, weight_file

STATE_FIELDS = ("depth", "embed_dim", "latent_channels", "context_dim", "vocab_size", "attn_type", "mlp_type",
                "attn_l2_norm", "use_context_norm", "num_heads")


@dataclass
class HartFamily:
    """Loaded HART (a `common.Family`): transformer (+ diffusion head), hybrid tokenizer and text encoder on one
    device and dtype."""

    config: ModelConfig
    hart_cfg: HARTConfig
    model: HART
    tokenizer: HybridTokenizer
    text: TextEncoder
    device: torch.device
    dtype: torch.dtype
    offline: bool | None = None
    safety: Any = None  # SafetyChecker, loaded on first use
    notes: list[str] = field(default_factory=list)  # what loading adapted, as upstream does (one line)

    def __post_init__(self):
        self.tokenizer.channels_last()  # the decoder runs NHWC (VQVAE.channels_last)
        if self.device.type == "cpu":
            self.model.prepack_cpu()  # oneDNN-prepacked linears (ssgen/backends/onednn.py)

    @property
    def patch_nums(self) -> tuple[int, ...]:
        return self.hart_cfg.patch_nums

    @property
    def resolution(self) -> int:
        return self.patch_nums[-1] * self.tokenizer.downsample

    @property
    def facts(self) -> dict[str, Any]:
        """The scales and codebook size llm/ and tokenizer/ define (a config may leave them out)."""
        return {"patch_nums": list(self.patch_nums), "vocab_size": self.hart_cfg.vocab_size}

    @property
    def step_module(self) -> HART:
        """The transformer whose `forward_scale` is the per-scale step (what `ssgen.compile` compiles)."""
        return self.model

    def encode(self, prompts: list[str], system_prompt: bool = True) -> EncodedPrompts:
        """Prompts -> text features (B, T, Dt) and HART's mask/position ids (see text.py)."""
        enc = self.text.encode(prompts, self.hart_cfg.context_token, system_prompt)
        if enc.features.shape[-1] != self.hart_cfg.context_dim:
            raise WeightsError(f"the text encoder gives {enc.features.shape[-1]}-dim features but the transformer "
                               f"expects context_dim={self.hart_cfg.context_dim}; check weights.text_encoder")
        return enc

    def start(self, request: Request) -> Call:
        o: HartOptions = request.parsed
        if o.safety_check:
            if self.safety is None:
                from .safety import load_checker

                self.safety = load_checker(self.config, self.device, self.offline)
            self.safety.check(o.prompts)
        enc = self.encode(o.prompts, o.system_prompt)
        return Call(HartBackend(self, enc, o), o.settings, self.notes + list(enc.notes))


class HartBackend:
    """One generation call: the text condition, the running latent and the transformer's next input.

    After `decode`, `residual` (B, P*P, Cvae) (None without the diffusion head) and `fhat`
    (B, Cvae, P, P), the latent handed to the decoder, are kept for inspection.
    """

    def __init__(self, m: HartFamily, enc: EncodedPrompts, o: HartOptions):
        self.m, self.enc = m, enc
        self.t, self.top_k, self.top_p = o.t, o.top_k, o.top_p
        self.smooth, self.use_residual = o.more_smooth, o.residual
        pns = m.patch_nums
        self.grid = [(p, p) for p in pns]
        self.B = enc.features.shape[0]
        model = m.model
        model.reset_cache()
        self.ctx = model.context(enc.features.to(m.device), enc.mask.to(m.device), enc.position_ids.to(m.device))
        self.x = model.first_input(self.ctx)  # (2B, T, C)
        P, Cv = pns[-1], m.hart_cfg.latent_channels
        self.f_hat = torch.zeros(self.B, Cv, P, P, device=m.device, dtype=torch.float32)  # (B, Cvae, P, P)
        self.h_last = None  # (2B, P*P, C) final hidden states of the last scale
        self.last_codes = None  # (B, P*P) hard indices of the last scale
        self.last_h = None  # (B, P*P, Cvae) last-scale embedding (soft with more_smooth)
        self.residual = None
        self.fhat = None

    def logits(self, k: int) -> torch.Tensor:
        h = self.m.model.forward_scale(self.x, self.ctx, k)  # (2B, l, C)
        if k == len(self.grid) - 1:
            self.h_last = h
        if k == 0:
            h = h[:, -1:]  # scale 0 is predicted from the last prefix position
        return self.m.model.logits(h, self.ctx)  # (2B, pn*pn, V) float32

    def guide(self, k: int, raw: torch.Tensor) -> torch.Tensor:
        return cfg_mix(raw, self.t[k])  # (B, pn*pn, V)

    def sampling(self, k: int) -> ScaleSampling:
        smooth = smoothing(smooth_ratio(k, len(self.grid))) if self.smooth else None
        return ScaleSampling(self.top_k[k], self.top_p, smooth)

    def categories(self, l: torch.Tensor) -> torch.Tensor:
        return l  # (B, pn*pn, V): one categorical over the codebook per position

    def advance(self, k: int, tokens: torch.Tensor, soft: torch.Tensor | None) -> torch.Tensor:
        tok, K, pn = self.m.tokenizer, len(self.grid), self.grid[k][0]
        h = tok.embed(tokens) if soft is None else tok.embed_soft(soft.to(self.m.dtype))  # (B, l, Cvae)
        if k < K - 1:
            h = h.transpose(1, 2).reshape(self.B, -1, pn, pn)  # (B, Cvae, pn, pn)
            self.f_hat = tok.add_scale(self.f_hat, h, k, K)
            nxt = self.grid[k + 1][0]
            self.x = self.m.model.next_input(tok.next_map(self.f_hat, nxt), k + 1)  # (2B, nxt*nxt, C)
        else:  # the hybrid last scale: added in decode, with the residual and without phi
            self.last_codes, self.last_h = tokens, h
        return tokens

    def sample_residual(self, rng) -> torch.Tensor:
        """The diffusion head's residual (B, l, Cvae) float32 for the last scale."""
        model, tok = self.m.model, self.m.tokenizer
        B, l = self.last_codes.shape
        Cv = self.m.hart_cfg.latent_channels
        z = model.residual_condition(self.h_last, tok.embed(self.last_codes))  # (2B, l, C)
        t = self.t[-1]
        s = rng.stream()
        batch = s.mode == "batch"
        rows = 2 * B if batch else B  # upstream draws per-step noise for both CFG halves

        def step_noise() -> torch.Tensor:
            return s.normal((rows, l, Cv))[:B].reshape(B * l, Cv)

        # Upstream draws x_T on the CPU's global generator and moves it to the device, the per-step noise
        # on the device's: in batch mode x_T comes from a CPU generator with the same seed, so that batch
        # mode means the same on every device (on the CPU both are the one generator, drawn in order).
        x_src = rng.stream("cpu") if batch and s.device.type != "cpu" else s
        if batch and t == 1.0:  # upstream's unguided path draws x_T for both halves too
            x_T = x_src.normal((rows, l, Cv))[:B]
        else:
            x_T = x_src.normal((B, l, Cv))
        x_T = x_T.to(s.device).reshape(B * l, Cv)
        res = model.diffloss.sample(z.reshape(2 * B * l, -1), t, x_T, step_noise)  # (B*l, Cvae)
        return res.view(B, l, Cv)

    def decode(self, rng=None) -> torch.Tensor:
        h = self.last_h.float()
        if self.use_residual:
            if rng is None:
                raise ValueError("HART's residual diffusion needs the loop's Rng: decode(rng)")
            self.residual = self.sample_residual(rng)
            h = h + self.residual
        self.m.model.reset_cache(release=True)
        self.h_last = None
        self.fhat = self.m.tokenizer.add_last(self.f_hat, h)  # (B, Cvae, P, P)
        return per_image(self.m.tokenizer.decode, self.fhat).float()  # (B, 3, H, W) in [0, 1]

    def preview(self) -> torch.Tensor:
        """Decode the running latent as it stands (for --save-scales); the last scale without residual."""
        f = self.f_hat if self.last_h is None else self.m.tokenizer.add_last(self.f_hat, self.last_h.float())
        return per_image(self.m.tokenizer.decode, f).float()


# ------------------------------------------------------------------------------------------------
# loading
# ------------------------------------------------------------------------------------------------


def _read_json(p: Path, role: str) -> dict:
    """llm/config.json; a missing, unreadable or malformed file is a WeightsError naming the role."""
    if not p.exists():
        raise WeightsError(f"{p} not found: weights.{role} must be HART's llm/ folder (config.json and the "
                           "weights) or a weights file inside it")
    return read_json(p, "HART's llm/config.json")


def _transformer_files(path: Path, use_ema: bool) -> tuple[Path, Path]:
    """(config.json, weights file) of the `transformer` role: the llm/ folder, or one of its files."""
    if path.is_file():
        return path.parent / "config.json", path
    name = "ema_model.bin" if use_ema else "pytorch_model.bin"
    w = path / name
    if (path / "llm").is_dir() and not w.exists():  # the whole repo instead of its llm/ folder
        raise WeightsError(f"{path} is not HART's llm/ folder but holds one: point weights.transformer at "
                           f"{path / 'llm'} (and weights.vae at {path / 'tokenizer'})")
    if not w.is_file():
        raise WeightsError(f"{w} not found; the llm/ folder needs {name} (use_ema={use_ema}); for a Hub config "
                           f"add {name} to weights.transformer.allow")
    return path / "config.json", w


def _check_model_section(config: ModelConfig, hcfg: HARTConfig, resolution: int) -> None:
    """Fields of the YAML `model:` section must agree with the files (a mismatch names the field)."""
    derived = {"patch_nums": list(hcfg.patch_nums), "vocab_size": hcfg.vocab_size,
               "latent_channels": hcfg.latent_channels, "context_token": hcfg.context_token, "resolution": resolution}
    for f, have in derived.items():
        if f in config.model:
            want = list(config.model[f]) if isinstance(config.model[f], (list, tuple)) else config.model[f]
            if want != have:
                raise WeightsError(f"the HART files give {f}={have} but config {config.name} says {f}={want}; "
                                   "fix the config's model section or its weights")


def _check_state(sd: dict, hcfg: HARTConfig, path: Path) -> None:
    try:
        found = fields_from_state_dict(sd)
    except (KeyError, ValueError, IndexError) as e:
        raise WeightsError(f"{path} is not a HART transformer checkpoint (no {e}); check weights.transformer") from None
    for f in STATE_FIELDS:
        if f in found and found[f] != getattr(hcfg, f):
            raise WeightsError(f"transformer checkpoint {path} has {f}={found[f]} but the model config says "
                               f"{f}={getattr(hcfg, f)}: llm/config.json and the weights (or the tokenizer) "
                               "belong to different models")
    if "num_scales" in found and found["num_scales"] != len(hcfg.patch_nums):
        raise WeightsError(f"transformer checkpoint {path} has {found['num_scales']} scales but llm/config.json "
                           f"has patch_nums {list(hcfg.patch_nums)}")


def load(config: ModelConfig, device: torch.device, dtype: torch.dtype, offline: bool | None = None,
         progress: bool = True) -> HartFamily:
    """Load the llm/ and tokenizer/ folders and the Qwen2 text encoder, every tensor cast to `dtype` as it
    is assigned (upstream casts the whole model too).

    As upstream: `llm/ema_model.bin` is loaded strictly (upstream's `load_state_dict` on top of the
    from_pretrained model); `pytorch_model.bin` (use_ema: false) and the tokenizer's weights through
    from_pretrained semantics: keys the model lacks (the discriminator, the encoder...) are ignored, said
    in one note (`HartFamily.notes`); the training-only buffers are neither needed nor required; the
    `torch_dtype` field of a config.json is ignored (transformers 4.42 loads in float32 unless told
    otherwise: ssgen loads in the run dtype whatever the file's). Missing weights and wrong shapes are
    errors naming the file (from_pretrained also raises on a wrong shape)."""
    from ...weights import resolve_weight
    from ..kinds import expect_folder_kind, expect_kind

    use_ema = config.model.get("use_ema", True)
    if not isinstance(use_ema, bool):
        raise ConfigError(f"{config.name}: model.use_ema must be true or false, got {use_ema!r}")
    t_path = resolve_weight(config, "transformer", offline=offline, progress=progress)
    v_path = resolve_weight(config, "vae", offline=offline, progress=progress)
    te_path = resolve_weight(config, "text_encoder", offline=offline, progress=progress)
    v_dir = Path(v_path) if Path(v_path).is_dir() else Path(v_path).parent
    # a folder of another part (tokenizer/ as llm/, the T5 folder as the text encoder) is named before loading
    expect_folder_kind(Path(t_path) if Path(t_path).is_dir() else Path(t_path).parent, "hart", "transformer")
    expect_folder_kind(v_dir, "hart", "vae")
    expect_folder_kind(te_path, "hart", "text_encoder")
    cfg_file, w_file = _transformer_files(Path(t_path), use_ema)
    hcfg = HARTConfig.from_files(_read_json(cfg_file, "transformer"), read_config(v_dir))
    vcfg = vqvae_config(read_config(v_dir), hcfg.patch_nums)
    _check_model_section(config, hcfg, hcfg.patch_nums[-1] * 2 ** (len(vcfg.ch_mult) - 1))

    sd = read_state_dict(w_file, "transformer")  # memory-mapped: nothing is read yet
    expect_kind(sd, "hart", "transformer", w_file)
    sd = drop_keys(sd, IGNORED_KEYS_HART)  # the 380 MB mask is never read
    _check_state(sd, hcfg, w_file)
    with empty_model():
        model = HART(hcfg)
    strict = w_file.name == "ema_model.bin"  # upstream: load_state_dict(strict=True); from_pretrained otherwise
    ignored = load_into(model, sd, "transformer", w_file, dtype=dtype, device=device, unexpected_ok=not strict)
    done = [unused_note(ignored, f"{w_file.parent.name}/{w_file.name}")]
    del sd

    v_file = Path(v_path) if Path(v_path).is_file() else weight_file(v_dir)
    vsd = read_tokenizer_state(v_file)
    with empty_model():
        tok = HybridTokenizer(vcfg)
    ignored = load_into(tok, vsd, "vae", v_file, dtype=dtype, device=device, unexpected_ok=True)
    done.append(unused_note(ignored, f"{v_file.parent.name}/{v_file.name}"))

    text = TextEncoder.load(te_path, device, dtype)
    if text.hidden_size != hcfg.context_dim:
        raise WeightsError(f"the text encoder has hidden size {text.hidden_size} but the transformer expects "
                           f"context_dim={hcfg.context_dim}; check weights.text_encoder")
    done = [d for d in done if d]
    notes = [f"{config.name} loaded as upstream's from_pretrained does: {'; '.join(done)}"] if done else []
    return HartFamily(config, hcfg, model.eval(), tok.eval(), text, device, dtype, offline, notes=notes)

