"""Switti as a family the generic loop drives: loading (the Hub folders, checked against each other) and one
generation call.

Weights roles, each a Hub folder (or a local folder, or a weights file inside one):
- `transformer`: yresearch/Switti, Switti-AR, Switti-1024 or Switti-1024-AR: config.json (SwittiHF's
  arguments: depth, reso, rope, ...) + model.safetensors (pytorch_model.bin as a fallback, as the Hub mixin);
- `vae`: yresearch/VQVAE-Switti: config.json (vocab_size, z_channels, ch, share_quant_resi, reso) +
  model.safetensors (fp16). The architecture is VAR's VQVAE (var/vae.py, var/encoder.py for editing); its
  scale schedule is the transformer's (upstream passes `reso` to the VAE only, models/pipeline.py:39, so the
  VAE's own `reso` field is not what decides: ssgen takes the transformer's, which its weights require);
- `text_encoder`, `text_encoder_2`: openai/clip-vit-large-patch14 and laion/CLIP-ViT-bigG-14-laion2B-39B-b160k
  (text.py).

What loading tolerates, as upstream's `from_pretrained` (the Hub mixin loads with strict=False) does, and what
it refuses where the mixin would go on with random weights:
- the buffers `lvl_1L` and `attn_bias_for_masking` are dropped before anything is read (the 1024 px mask is
  341 MB) and rebuilt from `reso` (model.py); the VAE's `quantize.ema_vocab_hit_SV` (a training statistic whose
  row count upstream tolerates) and its encoder side (loaded only to edit) are dropped too;
- other keys the model lacks are ignored, said in one note (`SwittiFamily.notes`);
- a missing key, a tensor of another shape, or weights that contradict config.json (depth, scales, RoPE or
  position table, FFN kind, crop conditioning) are errors naming them;
- every tensor is cast to the run dtype as it is assigned, except `crop_embed.weight`, kept float32 (the crop
  embedding is computed in float32: model.py `fourier`).
Sampling (options.py) follows upstream's `SwittiPipeline.__call__`.
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
from ..var.encoder import VQEncoder, encode_images, load_encoder
from ..var.vae import IGNORED_KEYS_VAE, VQVAE, VQVAEConfig
from .model import CONTEXT_DIM, IGNORED_KEYS_SWITTI, POOLED_DIM, Switti, SwittiConfig, fields_from_state_dict
from .options import SwittiOptions

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")  # what the Hub mixin reads, in its order


@dataclass
class SwittiFamily:
    """Loaded Switti (a `common.Family`): transformer, VQVAE and the two CLIP text encoders on one device and
    dtype. The VAE's encoder side (image -> tokens) is read from `vae_path` on the first edit (`encoder()`)."""

    config: ModelConfig
    cfg: SwittiConfig
    model: Switti
    vae: VQVAE
    text: Any  # text.TextEncoders, or anything with .encode(prompts, negative_prompt) -> EncodedPrompts
    device: torch.device
    dtype: torch.dtype
    vae_path: Path | None = None
    notes: list[str] = field(default_factory=list)  # what loading adapted, as upstream does (one line)
    _encoder: VQEncoder | None = field(default=None, repr=False)

    def __post_init__(self):
        self.vae.channels_last()  # the decoder runs NHWC (VQVAE.channels_last)
        if self.device.type == "cpu":
            self.model.prepack_cpu()  # oneDNN-prepacked linears (ssgen/backends/onednn.py)

    @property
    def patch_nums(self) -> tuple[int, ...]:
        return self.cfg.patch_nums

    @property
    def facts(self) -> dict[str, Any]:
        """The transformer's config.json fields (a config's `model:` may leave them out; reso gives the scales)."""
        return self.cfg.fields()

    @property
    def step_module(self) -> Switti:
        """The transformer whose `forward_scale` is the per-scale step (what `ssgen.compile` compiles)."""
        return self.model

    def encoder(self) -> VQEncoder:
        """The VAE's encoder + quant_conv, loaded from the VAE file on first use (generation never reads them)."""
        if self._encoder is None:
            if self.vae_path is None:
                raise WeightsError(f"{self.config.name}: no VAE file known to read the encoder from; load the model "
                                   "with ssgen.load to edit images")
            self._encoder = load_encoder(self.vae_path, self.vae.cfg, self.dtype, self.device)
        return self._encoder

    def start(self, request: Request) -> Call:
        o: SwittiOptions = request.parsed
        enc = self.text.encode(list(o.prompts), o.negative_prompt)
        return Call(SwittiBackend(self, enc, o), o.settings, self.notes + list(enc.notes))


class SwittiBackend:
    """One generation call (a `loop.Backend`): the text condition, the running latent and the next input.

    `h` (B, Cvae, pn, pn) is the embedding the last scale added (codebook rows, or the soft mix), `f_hat`
    (B, Cvae, P, P) the running latent: both kept for inspection (tests, `on_scale`)."""

    def __init__(self, m: SwittiFamily, enc: Any, o: SwittiOptions):
        self.m, self.o = m, o
        self.B = B = len(o.prompts)
        self.grid = [(p, p) for p in m.patch_nums]
        T = enc.context.shape[1]
        want = {"context": (2 * B, T, CONTEXT_DIM), "pooled": (2 * B, POOLED_DIM), "attn_bias": (2 * B, T)}
        for name, shape in want.items():
            got = tuple(getattr(enc, name).shape)
            if got != shape:
                raise WeightsError(f"the text encoders give {name} of shape {got} but Switti needs {shape} "
                                   f"([cond; uncond] rows of CLIP-L 768 + CLIP-bigG 1280 features); check "
                                   "weights.text_encoder and weights.text_encoder_2")
        model, dev = m.model, m.device
        model.reset_cache()
        self.ctx = model.context(enc.context.to(dev), enc.attn_bias.to(dev), enc.pooled.to(dev))  # (2B, ...)
        self.x = model.first_input(self.ctx)  # (2B, 1, C)
        P, Cv = m.patch_nums[-1], m.cfg.latent_channels
        self.f_hat = torch.zeros(B, Cv, P, P, device=dev, dtype=m.dtype)  # (B, Cvae, P, P), as upstream's dtype
        self.h: torch.Tensor | None = None

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W) pixels of this call's images: the last scale's grid times the VAE's downsampling (16)."""
        P = self.grid[-1][0] * self.m.vae.downsample
        return P, P

    @torch.inference_mode()
    def encode(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """x (B, 3, H, W) float32 in [-1, 1] -> (per scale (B, pn*pn) int64 codes, (B, 3, H, W) reconstruction in
        [0, 1]): VAR's encoder path (Switti's VAE is VAR's VQVAE), image by image."""
        return encode_images(self.m.encoder(), self.m.vae, x, self.image_size, len(self.grid))

    def logits(self, k: int) -> torch.Tensor:
        if k >= self.o.cfg_stop and self.ctx.rows > self.B:  # CFG off from here: drop the unconditional half
            self.ctx = self.m.model.keep_rows(self.ctx, self.B)
        x = self.x[: self.ctx.rows]  # (R, pn*pn, C)
        return self.m.model.forward_scale(x, self.ctx, k)  # (R, pn*pn, V) float32

    def guide(self, k: int, raw: torch.Tensor) -> torch.Tensor:
        mode = self.o.mode(k)
        if mode == "cond":  # before cfg_start: the conditional rows alone (the batch still ran both halves)
            return raw[: self.B]
        if mode == "cfg":
            return cfg_mix(raw, self.o.cfg[k])  # (1 + t) cond - t uncond, t = cfg * k / (K - 1)
        t = self.o.last_scale_temp
        return raw if t is None else raw / t  # CFG off: the rows are the conditional ones

    def sampling(self, k: int) -> ScaleSampling:
        if self.o.smooth(k):  # the Gumbel-softmax mix replaces the draw (no top-k / top-p)
            return ScaleSampling(smooth=smoothing(k / (len(self.grid) - 1)), soft_only=True)
        return ScaleSampling(self.o.top_k, self.o.top_p)

    def categories(self, l: torch.Tensor) -> torch.Tensor:
        return l  # (B, pn*pn, V): one categorical over the codebook per position

    def advance(self, k: int, tokens: torch.Tensor, soft: torch.Tensor | None) -> torch.Tensor:
        vae, pn, K = self.m.vae, self.grid[k][0], len(self.grid)
        if soft is None:
            h = vae.embed(tokens)  # (B, pn*pn, Cvae)
        else:  # the soft mix, image by image: a matmul's rows would depend on how many images it holds
            h = per_image(vae.embed_soft, soft.to(self.m.dtype))
        self.h = h.transpose(1, 2).reshape(self.B, -1, pn, pn)  # (B, Cvae, pn, pn)
        self.f_hat = per_image(lambda f, x: vae.add_scale(f, x, k, K), self.f_hat, self.h)
        if k + 1 < K:
            self.x = self.m.model.next_input(vae.next_map(self.f_hat, self.grid[k + 1][0]), k + 1)  # (2B, l, C)
        return tokens

    def decode(self, rng=None) -> torch.Tensor:
        self.m.model.reset_cache(release=True)
        return self.preview()

    def preview(self) -> torch.Tensor:
        """Decode the running latent as it stands -> (B, 3, H, W) float32 in [0, 1]."""
        return per_image(self.m.vae.decode, self.f_hat).float()


# ------------------------------------------------------------------------------------------------
# loading
# ------------------------------------------------------------------------------------------------


def _folder_files(path: Path, role: str, what: str) -> tuple[Path, Path]:
    """(config.json, weights file) of a Hub-mixin folder (`path` may be the folder or its weights file)."""
    if path.is_file():
        folder, w = path.parent, path
    else:
        folder = path
        w = next((path / n for n in WEIGHT_FILES if (path / n).is_file()), None)
        if w is None:
            raise WeightsError(f"{path} holds no {' or '.join(WEIGHT_FILES)}: weights.{role} must be {what} folder "
                               f"(config.json + model.safetensors); for a Hub config add them to weights.{role}.allow")
    cfg = folder / "config.json"
    if not cfg.is_file():
        raise WeightsError(f"{cfg} not found: weights.{role} must be {what} folder (config.json + model.safetensors)")
    return cfg, w


def _check_model_section(config: ModelConfig, scfg: SwittiConfig, cfg_file: Path) -> None:
    """Each field the YAML's `model:` gives must equal config.json's (or SwittiHF's default where it has none)."""
    for f, have in scfg.fields().items():
        want = config.model.get(f)
        if want is not None and want != have:
            raise WeightsError(f"{cfg_file} gives {f}={have!r} but config {config.name} says {f}={want!r}; fix the "
                               "config's model section or its weights.transformer")


def _check_state(sd: dict, scfg: SwittiConfig, path: Path, cfg_file: Path) -> None:
    """The weights must be the model config.json describes (a mismatch names the field)."""
    try:
        found = fields_from_state_dict(sd)
    except KeyError as e:
        raise WeightsError(f"{path} is not a Switti transformer checkpoint (no {e}); check weights.transformer") \
            from None
    want = {"depth": scfg.depth, "width": scfg.width, "num_scales": len(scfg.patch_nums), "rope": scfg.rope,
            "use_swiglu_ffn": scfg.use_swiglu_ffn, "use_crop_cond": scfg.use_crop_cond}
    for f, have in found.items():
        if have != want[f]:
            hint = f" (reso {scfg.reso})" if f == "num_scales" else ""
            raise WeightsError(f"transformer checkpoint {path} has {f}={have} but {cfg_file} gives {f}={want[f]}"
                               f"{hint}: config.json and the weights belong to different models")


def load_transformer(path: Path, config: ModelConfig, device: torch.device,
                     dtype: torch.dtype) -> tuple[Switti, SwittiConfig, str | None]:
    """The transformer folder -> (model, its config, a note on ignored keys or None)."""
    from ..kinds import expect_blocks, expect_kind

    cfg_file, w_file = _folder_files(Path(path), "transformer", "a Switti transformer")
    d = read_json(cfg_file, "Switti's config.json")
    if "depth" not in d and "z_channels" in d:
        raise WeightsError(f"{cfg_file.parent} is Switti's VAE folder (its config.json has z_channels): it belongs "
                           "in weights.vae; weights.transformer needs yresearch/Switti (or -AR, -1024, -1024-AR)")
    scfg = SwittiConfig.from_json(d, str(cfg_file))
    _check_model_section(config, scfg, cfg_file)
    sd = read_state_dict(w_file, "transformer")  # memory-mapped: nothing is read yet
    expect_kind(sd, "switti", "transformer", w_file)
    expect_blocks(sd, "blocks.", w_file, "a Switti transformer")
    sd = drop_keys(sd, IGNORED_KEYS_SWITTI)  # the training mask is never read
    _check_state(sd, scfg, w_file, cfg_file)
    with empty_model():
        model = Switti(scfg)
    ignored = load_into(model, sd, "transformer", w_file, dtype=dtype, device=device,
                        cast=lambda name: name != "crop_embed.weight", unexpected_ok=True)
    return model.eval(), scfg, unused_note(ignored, f"{w_file.parent.name}/{w_file.name}")


def load_vae(path: Path, scfg: SwittiConfig, device: torch.device,
             dtype: torch.dtype) -> tuple[VQVAE, Path, str | None]:
    """The VAE folder -> (VQVAE on the transformer's scales, its weights file, a note on ignored keys or None)."""
    from ..kinds import expect_kind

    cfg_file, w_file = _folder_files(Path(path), "vae", "Switti's VAE (yresearch/VQVAE-Switti)")
    d = read_json(cfg_file, "the VAE's config.json")
    if "depth" in d:
        raise WeightsError(f"{cfg_file.parent} is a Switti transformer folder (its config.json has depth): it belongs "
                           "in weights.transformer; weights.vae needs yresearch/VQVAE-Switti")
    try:
        vcfg = VQVAEConfig(vocab_size=d.get("vocab_size", 4096), latent_channels=d.get("z_channels", 32),
                           ch=d.get("ch", 160), share_quant_resi=d.get("share_quant_resi", 4),
                           patch_nums=scfg.patch_nums)
    except (TypeError, ValueError, ConfigError, NotImplementedError) as e:
        raise WeightsError(f"{cfg_file}: not a VAE Switti can use ({e})") from None
    if (vcfg.vocab_size, vcfg.latent_channels) != (scfg.vocab_size, scfg.latent_channels):
        raise WeightsError(f"{cfg_file} gives vocab_size={vcfg.vocab_size}, z_channels={vcfg.latent_channels} but "
                           f"the transformer predicts {scfg.vocab_size} codes of {scfg.latent_channels} channels; "
                           "weights.vae must be yresearch/VQVAE-Switti")
    sd = read_state_dict(w_file, "vae")
    expect_kind(sd, "switti", "vae", w_file)
    sd = drop_keys(sd, IGNORED_KEYS_VAE)
    with empty_model():
        vae = VQVAE(vcfg)
    ignored = load_into(vae, sd, "vae", w_file, dtype=dtype, device=device, unexpected_ok=True)
    return vae.eval(), w_file, unused_note(ignored, f"{w_file.parent.name}/{w_file.name}")


def load(config: ModelConfig, device: torch.device, dtype: torch.dtype, offline: bool | None = None,
         progress: bool = True) -> SwittiFamily:
    """Resolve the four roles, check them against each other, load everything in `dtype` (see the module
    docstring for what is tolerated)."""
    from ...weights import resolve_weight
    from ..kinds import expect_folder_kind

    paths = {role: Path(resolve_weight(config, role, offline=offline, progress=progress))
             for role in ("transformer", "vae", "text_encoder", "text_encoder_2")}
    for role in ("text_encoder", "text_encoder_2"):
        expect_folder_kind(paths[role], "switti", role)
    model, scfg, t_note = load_transformer(paths["transformer"], config, device, dtype)
    vae, v_file, v_note = load_vae(paths["vae"], scfg, device, dtype)
    from .text import TextEncoders  # the CLIPs (transformers), imported only when a Switti loads

    text = TextEncoders.load(paths["text_encoder"], paths["text_encoder_2"], device, dtype)
    done = [n for n in (t_note, v_note) if n]
    notes = [f"{config.name} loaded as upstream's from_pretrained does: {'; '.join(done)}"] if done else []
    return SwittiFamily(config, scfg, model, vae, text, device, dtype, vae_path=v_file, notes=notes)
