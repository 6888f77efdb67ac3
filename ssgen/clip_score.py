"""CLIP score of generated images against their prompts, as text-to-image papers report it.

HART reports a CLIP score on MJHQ-30K next to FID, but its repository (mit-han-lab/hart) ships no evaluation
script, so the exact code behind its numbers is not public. The definition here is the one most such numbers
are made with, torchmetrics' `CLIPScore` with its default transformers checkpoint, OpenAI's CLIP ViT-L/14
(`openai/clip-vit-large-patch14`):

- image: `CLIPImageProcessor` as configured in the checkpoint's `preprocessor_config.json`: RGB, resize the
  shortest side to 224 (PIL bicubic, the long side floored), center crop 224x224, scale to [0, 1], normalise
  with CLIP's mean and std; then `get_image_features` (the projected CLS embedding).
- text: CLIP's BPE tokenizer, truncated to the text tower's 77 positions keeping `<|endoftext|>` last (what
  OpenAI's `clip.tokenize(..., truncate=True)` does), padded to 77; then `get_text_features` (the projected
  embedding at `<|endoftext|>`).
- per image i: `score_i = 100 * max(cos(image_emb_i, text_emb_i), 0)` (the formula torchmetrics documents:
  Hessel et al.'s CLIPScore with w = 100 instead of 2.5); the reported number is the mean over images.

Where other implementations differ: torchmetrics' code clamps the mean rather than each image (the same
number unless some cosine is negative, which a matched image-prompt pair under ViT-L/14 practically never is;
its cosines lie around 0.2 to 0.35). It also cuts prompts longer than 77 tokens after tokenizing, which drops
`<|endoftext|>`, so such a prompt is pooled at whichever of its tokens has the highest id: long prompts
(MJHQ-30K has some) score differently there. Here the tokenizer truncates and keeps `<|endoftext|>`, as
OpenAI's tokenizer does. Taited/clip-score (the `clip-score` package) multiplies by `logit_scale.exp()`,
exactly 100 for OpenAI's CLIP, does not clamp, and refuses prompts over 77 tokens.

Nothing here imports torch or transformers at module level: `import ssgen.clip_score` stays cheap, and the
heavy imports happen in `load_clip` and `clip_score`.

    >>> clip = load_clip(DEFAULT_CLIP["repo"], device="cuda")   # from the HF cache; HF_HUB_OFFLINE honoured
    >>> mean, per_image = clip_score(clip, images, prompts)      # images: PIL images or (N, H, W, 3) uint8
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from .checks import as_int
from .errors import ConfigError, SSGenError, WeightsError, first_line
from .quiet import quiet_transformers

# OpenAI's CLIP ViT-L/14, torchmetrics' default for CLIPScore. `revision: None` = the repository's main branch.
DEFAULT_CLIP = {"repo": "openai/clip-vit-large-patch14", "revision": None}

SCALE = 100.0  # torchmetrics' (and Hessel et al.'s w) multiplier; OpenAI's logit_scale.exp() is 100 too
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # OpenAI CLIP's normalisation, per RGB channel
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
BICUBIC = 3  # PIL.Image.Resampling.BICUBIC, as preprocessor configs store it

# What a CLIP folder must hold for `from_pretrained`: weights and a tokenizer (the fast file, or the BPE pair)
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")
_REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]+")

FOLDER_HINT = "a CLIPModel folder holds config.json, model.safetensors (or pytorch_model.bin) and tokenizer files"


@dataclass
class ClipModel:
    """A transformers `CLIPModel` (eval mode, on its device and dtype) with the tokenizer and image processor
    that prepare its inputs. `notes` says what the loader supplied (e.g. a missing preprocessing config)."""

    model: Any  # transformers.CLIPModel
    tokenizer: Any  # a CLIP BPE tokenizer
    image_processor: Any  # transformers.CLIPImageProcessor(Pil)
    source: str  # the folder or Hub repo id it was loaded from
    notes: list[str] = field(default_factory=list)

    @property
    def max_length(self) -> int:
        """Tokens the text tower takes, <|startoftext|> and <|endoftext|> included (77 for OpenAI's CLIPs)."""
        return int(self.model.config.text_config.max_position_embeddings)

    @property
    def device(self):
        return next(self.model.parameters()).device

    @property
    def dtype(self):
        return next(self.model.parameters()).dtype


# ----------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------


def _torch_dtype(dtype):
    """A torch dtype from a torch dtype, a name ("float32", "bfloat16", "float16") or None (float32)."""
    import torch

    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    found = getattr(torch, str(dtype), None)
    if not isinstance(found, torch.dtype) or not found.is_floating_point:
        raise ConfigError(f"dtype {dtype!r} is not a floating-point torch dtype; use float32, bfloat16 or float16")
    return found


def _local_folder(path_or_repo: str | os.PathLike) -> Path | None:
    """The local path meant, or None for a Hub repo id ("owner/name" that is not an existing path)."""
    p = Path(os.path.expandvars(os.path.expanduser(str(path_or_repo))))
    if p.exists():
        return p
    if isinstance(path_or_repo, os.PathLike) or not _REPO_ID.fullmatch(str(path_or_repo)) or ".." in str(path_or_repo):
        raise WeightsError(f"no CLIP model folder at {p}; give a local folder ({FOLDER_HINT}) or a Hub repo id "
                           f"such as {DEFAULT_CLIP['repo']}")
    return None


def _check_model_type(model_type: str | None, where: str) -> None:
    """CLIP score needs both towers: a `clip` config (CLIPModel), not a text-only or vision-only one."""
    if model_type == "clip":
        return
    if model_type in ("clip_text_model", "clip_vision_model"):
        tower = "text" if model_type == "clip_text_model" else "vision"
        raise WeightsError(f"{where} is a CLIP {tower} tower only (model_type {model_type}); CLIP score needs a "
                           f"CLIPModel with text and vision towers, such as {DEFAULT_CLIP['repo']}")
    raise WeightsError(f"{where} is not a CLIP model (config.json model_type: {model_type!r}); give a CLIPModel "
                       f"checkpoint with text and vision towers, such as {DEFAULT_CLIP['repo']}")


def _check_folder(folder: Path) -> None:
    """A local folder that from_pretrained can load as a CLIPModel, or a one-line WeightsError naming what is
    missing (transformers' own messages for these cases are long or misleading)."""
    from .checkpoint import read_json

    if folder.is_file():
        raise WeightsError(f"{folder} is a file; give the CLIP model's folder ({FOLDER_HINT})")
    if not (folder / "config.json").is_file():
        raise WeightsError(f"{folder} is not a CLIP model folder: it has no config.json ({FOLDER_HINT})")
    _check_model_type(read_json(folder / "config.json", "a model config").get("model_type"), str(folder))
    if not any((folder / name).is_file() for name in WEIGHT_FILES):
        raise WeightsError(f"CLIP model folder {folder} has no weights file ({', '.join(WEIGHT_FILES)})")
    if not ((folder / "tokenizer.json").is_file() or
            ((folder / "vocab.json").is_file() and (folder / "merges.txt").is_file())):
        raise WeightsError(f"CLIP model folder {folder} has no tokenizer files (tokenizer.json, or vocab.json and "
                           "merges.txt); copy them from the checkpoint it was made from")


def _standard_processor(cls, image_size: int):
    """OpenAI CLIP's preprocessing at the vision tower's resolution: shortest side to `image_size` (bicubic),
    center crop `image_size` square, CLIP mean/std. openai/clip-vit-large-patch14's preprocessor_config.json
    is exactly this with 224."""
    return cls(size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size},
               resample=BICUBIC, do_resize=True, do_center_crop=True, do_rescale=True, rescale_factor=1 / 255,
               do_normalize=True, image_mean=list(CLIP_MEAN), image_std=list(CLIP_STD), do_convert_rgb=True)


def _image_processor(source: str, kwargs: dict, image_size: int, has_config: bool | None, notes: list[str]):
    """The checkpoint's image processor, on PIL (the backend whose resizing is OpenAI's and torchmetrics');
    CLIP's standard one when the checkpoint has no preprocessor_config.json. `has_config` None = unknown (Hub)."""
    try:
        from transformers import CLIPImageProcessorPil as cls
    except ImportError:  # a transformers without the PIL/torchvision split: its CLIPImageProcessor is PIL
        from transformers import CLIPImageProcessor as cls

    proc = None
    if has_config is not False:
        try:
            proc = cls.from_pretrained(source, **kwargs)
        except OSError:
            if has_config:
                raise
    if proc is None:
        notes.append(f"{source} has no preprocessor_config.json; using CLIP's standard preprocessing at "
                     f"{image_size} px (shortest side, bicubic, center crop, CLIP mean/std)")
        proc = _standard_processor(cls, image_size)
    crop = proc.crop_size
    crop = (crop["height"], crop["width"]) if not hasattr(crop, "height") else (crop.height, crop.width)
    if proc.do_center_crop and crop != (image_size, image_size):
        raise WeightsError(f"{source}: the preprocessing crops {crop[0]}x{crop[1]} but the vision tower takes "
                           f"{image_size}x{image_size}; fix preprocessor_config.json (crop_size)")
    return proc


def _check_weights(source: str, model, info: dict) -> None:
    """from_pretrained fills tensors a checkpoint lacks with random values; for a score that is an error."""
    missing = sorted(info.get("missing_keys") or ())
    if missing:
        shown = ", ".join(missing[:3]) + (f" (+{len(missing) - 3} more)" if len(missing) > 3 else "")
        raise WeightsError(f"the CLIP weights in {source} lack {len(missing)} of the model's "
                           f"{len(model.state_dict())} tensors ({shown}); a checkpoint of another model?")


def load_clip(path_or_repo: str | os.PathLike = DEFAULT_CLIP["repo"], device="cpu", dtype=None,
              offline: bool | None = None, revision: str | None = DEFAULT_CLIP["revision"]) -> ClipModel:
    """A CLIP model for `clip_score`, from a local folder or a Hub repo id.

    A local folder is a transformers CLIPModel checkpoint (config.json with `model_type: clip`, weights,
    tokenizer files; preprocessor_config.json optional: CLIP's standard preprocessing at the vision tower's
    size when absent, said in `.notes`). A repo id is loaded through transformers' `from_pretrained` from the
    standard Hugging Face cache (downloaded there when missing); `offline` None follows `HF_HUB_OFFLINE`.
    `dtype` is a torch dtype or its name (default float32, the precision published scores were made in).
    Any problem a user can fix is a one-line WeightsError / ConfigError.
    """
    import torch

    try:
        from transformers import AutoConfig, AutoTokenizer, CLIPModel
    except ImportError:
        raise WeightsError("CLIP score needs the `transformers` package: pip install 'transformers>=5' "
                           "(an ssgen dependency)") from None
    from .checkpoint import check_model_folder
    from .weights.env import hub_cache_dir, is_offline

    torch_dtype = _torch_dtype(dtype)
    folder = _local_folder(path_or_repo)
    offline_now = False
    if folder is not None:
        _check_folder(folder)
        source, kwargs = str(folder), {"local_files_only": True}
        has_processor_config = (folder / "preprocessor_config.json").is_file()
    else:
        source = str(path_or_repo)
        offline_now = is_offline(offline)
        kwargs = {"cache_dir": str(hub_cache_dir()), "local_files_only": offline_now}
        if revision:
            kwargs["revision"] = revision
        has_processor_config = None
    notes: list[str] = []
    try:
        with quiet_transformers():
            config = AutoConfig.from_pretrained(source, **kwargs)
            _check_model_type(getattr(config, "model_type", None), source)
            model, info = CLIPModel.from_pretrained(source, dtype=torch_dtype, output_loading_info=True, **kwargs)
            tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
            image_size = int(config.vision_config.image_size)
            processor = _image_processor(source, kwargs, image_size, has_processor_config, notes)
    except Exception as e:
        if isinstance(e, SSGenError):  # raised here, already worded
            raise
        if folder is not None:
            check_model_folder(folder)  # a truncated or corrupted file is named as such
        if not isinstance(e, (OSError, ValueError, KeyError, RuntimeError)) and \
                type(e).__module__.split(".")[0] not in ("safetensors", "huggingface_hub", "httpx"):
            raise  # not a problem of the files or the Hub: a bug, with its traceback
        if folder is not None:
            raise WeightsError(f"cannot load a CLIP model from {folder} ({first_line(e)}); {FOLDER_HINT}") from None
        files = "--include '*.json' '*.txt' '*.safetensors'"
        at = f" --revision {revision}" if revision else ""
        if offline_now:
            raise WeightsError(f"CLIP model {source} is not in the Hugging Face cache ({hub_cache_dir()}) and offline "
                               f"mode is on (offline=True / HF_HUB_OFFLINE=1); download it once online: "
                               f"hf download {source}{at} {files}") from None
        raise WeightsError(f"cannot load CLIP model {source} from the Hub ({first_line(e)}); check the repo id and "
                           f"the network (HF_ENDPOINT), or download it (hf download {source}{at} {files}) "
                           "and pass its folder") from None
    _check_weights(source, model, info)
    if tokenizer.pad_token_id is None:  # OpenAI's pads with <|endoftext|>; a copy without a pad token cannot batch
        raise WeightsError(f"the tokenizer of {source} has no pad token; CLIP pads prompts with <|endoftext|> "
                           "(set pad_token in tokenizer_config.json)")
    model = model.to(torch.device(device)).eval()
    return ClipModel(model=model, tokenizer=tokenizer, image_processor=processor, source=source, notes=notes)


# ----------------------------------------------------------------------------------------------
# Scoring
# ----------------------------------------------------------------------------------------------


def _check_prompts(prompts) -> list[str]:
    if isinstance(prompts, str):
        raise ConfigError("prompts must be a list of strings, one per image, not a single string")
    prompts = list(prompts)
    for i, p in enumerate(prompts):
        if not isinstance(p, str):
            raise ConfigError(f"prompt {i} is a {type(p).__name__}, not a string; give one text prompt per image")
    return prompts


def _to_pil(image, index: int):
    """One image as an RGB PIL image: a PIL image (any mode), or an (H, W, 3) uint8 array or tensor."""
    import numpy as np
    from PIL import Image

    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if hasattr(image, "detach"):  # a torch tensor
        image = image.detach().cpu().numpy()
    a = np.asarray(image)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[-1] != 3:
        raise ConfigError(f"image {index} is an array of shape {a.shape} and dtype {a.dtype}; give PIL images or "
                          "uint8 arrays of shape (H, W, 3) (or one (N, H, W, 3) array)")
    return Image.fromarray(np.ascontiguousarray(a), "RGB")


def _features(out):
    """The projected embedding (B, D): transformers 5 returns it as `pooler_output`, older ones as a tensor."""
    return out if hasattr(out, "shape") else out.pooler_output


def _score_batch(clip: ClipModel, images: list, prompts: list[str]) -> list[float]:
    """100 * max(cos, 0) for each (image, prompt) pair of one batch."""
    import torch

    pixels = clip.image_processor(images=images, return_tensors="pt")["pixel_values"]  # (B, 3, S, S) float32
    text = clip.tokenizer(prompts, padding="max_length", truncation=True, max_length=clip.max_length,
                          return_tensors="pt")  # input_ids, attention_mask: (B, 77)
    with torch.inference_mode():
        img = _features(clip.model.get_image_features(pixel_values=pixels.to(clip.device, clip.dtype)))  # (B, D)
        txt = _features(clip.model.get_text_features(input_ids=text["input_ids"].to(clip.device),
                                                     attention_mask=text["attention_mask"].to(clip.device)))
        img, txt = img.float(), txt.float()  # (B, D) each; normalised in float32 whatever the model's dtype
        img = img / img.norm(p=2, dim=-1, keepdim=True)
        txt = txt / txt.norm(p=2, dim=-1, keepdim=True)
        cos = (img * txt).sum(dim=-1)  # (B,)
        return (SCALE * cos.clamp(min=0)).cpu().tolist()


def clip_score(model: ClipModel, images, prompts, batch_size: int = 32) -> tuple[float, list[float]]:
    """The CLIP score of images against their prompts: (mean over images, per-image scores).

    Each image i scores 100 * max(cos(image_emb_i, text_emb_i), 0) (see the module docstring for the exact
    preprocessing and how it compares with torchmetrics). `images` is a list of PIL images, an (N, H, W, 3)
    uint8 array, or any iterable of them (a generator streams: only `batch_size` images are held at once);
    `prompts` holds one string per image. Prompts longer than the text tower's 77 tokens are truncated, as
    every published implementation does (`truncated_prompts` lists them). A count mismatch is a ConfigError.
    """
    prompts = _check_prompts(prompts)
    n = len(prompts)
    batch_size = as_int(batch_size, "batch_size", 1)
    if hasattr(images, "__len__") and len(images) != n:
        raise ConfigError(f"{len(images)} images but {n} prompts; give one prompt per image")
    if n == 0:
        raise ConfigError("no images to score; give at least one image and its prompt")
    scores: list[float] = []
    it = iter(images)
    while chunk := list(islice(it, batch_size)):
        start = len(scores)
        if start + len(chunk) > n:
            raise ConfigError(f"more images than the {n} prompts; give one prompt per image")
        pil = [_to_pil(im, start + i) for i, im in enumerate(chunk)]
        scores.extend(_score_batch(model, pil, prompts[start:start + len(chunk)]))
    if len(scores) != n:
        raise ConfigError(f"{len(scores)} images but {n} prompts; give one prompt per image")
    return math.fsum(scores) / n, scores


def truncated_prompts(model: ClipModel, prompts) -> list[int]:
    """Indices of the prompts longer than the text tower takes (77 tokens with <|startoftext|> and
    <|endoftext|>), which `clip_score` truncates; for a note to the user."""
    prompts = _check_prompts(prompts)
    lengths = [len(ids) for ids in model.tokenizer(prompts, truncation=False)["input_ids"]]
    return [i for i, n in enumerate(lengths) if n > model.max_length]
