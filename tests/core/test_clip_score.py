"""ssgen.clip_score: the CLIP score of images against prompts, on a tiny random-weight CLIPModel built here.

The expected values are computed independently of the module: preprocessing written out with PIL and numpy
(shortest side bicubic, center crop, CLIP mean/std), the tokenizer called directly, the model's
get_image_features / get_text_features, then 100 * max(cos, 0). No network: the offline cases point the
Hugging Face cache at an empty folder.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import need_goldens
from helpers import CLIP_IMAGE_SIZE as IMAGE_SIZE
from helpers import make_tiny_clip
from PIL import Image

from ssgen.clip_score import CLIP_MEAN, CLIP_STD, DEFAULT_CLIP, clip_score, load_clip, truncated_prompts
from ssgen.errors import ConfigError, WeightsError


def one_line(excinfo, *needles: str) -> str:
    """The raised error's message: one line, with every needle in it."""
    msg = str(excinfo.value)
    assert "\n" not in msg, msg
    for needle in needles:
        assert needle in msg, (needle, msg)
    return msg


# openai/clip-vit-large-patch14's preprocessor_config.json (the legacy feature-extractor format: `size` an int,
# the shortest side), with the tiny tower's size in place of 224
LEGACY_PREPROCESSOR = {"crop_size": IMAGE_SIZE, "do_center_crop": True, "do_normalize": True, "do_resize": True,
                       "feature_extractor_type": "CLIPFeatureExtractor", "image_mean": list(CLIP_MEAN),
                       "image_std": list(CLIP_STD), "resample": 3, "size": IMAGE_SIZE}


@pytest.fixture(scope="module")
def tiny_clip_dir(tmp_path_factory) -> Path:
    return make_tiny_clip(tmp_path_factory.mktemp("tiny-clip") / "clip", LEGACY_PREPROCESSOR)


@pytest.fixture(scope="module")
def clip(tiny_clip_dir):
    return load_clip(tiny_clip_dir)


def random_images(sizes, seed=0) -> list[np.ndarray]:
    """uint8 (H, W, 3) images with smooth structure (a gradient + noise), one per (H, W)."""
    rng = np.random.default_rng(seed)
    out = []
    for h, w in sizes:
        base = rng.integers(0, 256, (1, 1, 3)) + np.linspace(0, 80, w)[None, :, None] + rng.normal(0, 40, (h, w, 3))
        out.append(np.clip(base, 0, 255).astype(np.uint8))
    return out


def reference_pixels(image: np.ndarray, size: int) -> np.ndarray:
    """OpenAI CLIP preprocessing written out: shortest side to `size` (bicubic; the long side floored), center
    crop (offsets floored), [0, 1], CLIP mean/std; (3, size, size) float32."""
    pil = Image.fromarray(image)
    w, h = pil.size
    nw, nh = (int(size * w / h), size) if w >= h else (size, int(size * h / w))
    pil = pil.resize((nw, nh), Image.Resampling.BICUBIC)
    left, top = (nw - size) // 2, (nh - size) // 2
    x = np.asarray(pil.crop((left, top, left + size, top + size)), dtype=np.float32) / 255
    x = (x - np.array(CLIP_MEAN, np.float32)) / np.array(CLIP_STD, np.float32)
    return x.transpose(2, 0, 1)


def reference_scores(clip, images, prompts, clamp=True) -> np.ndarray:
    """100 * max(cos, 0) per pair from the model's own feature functions (no ssgen code in the path)."""
    size = clip.model.config.vision_config.image_size
    pixels = torch.from_numpy(np.stack([reference_pixels(im, size) for im in images]))  # (N, 3, S, S)
    t = clip.tokenizer(prompts, padding="max_length", truncation=True, max_length=77, return_tensors="pt")
    with torch.no_grad():
        img = clip.model.get_image_features(pixel_values=pixels).pooler_output  # (N, D)
        txt = clip.model.get_text_features(input_ids=t["input_ids"], attention_mask=t["attention_mask"]).pooler_output
    cos = torch.nn.functional.cosine_similarity(img.double(), txt.double(), dim=-1).numpy()  # (N,)
    return 100 * np.maximum(cos, 0) if clamp else 100 * cos


PROMPTS = ["a photo of the sea", "the red car and the road", "a cat on a sofa"]
SIZES = [(56, 56), (60, 85), (97, 64)]  # square, landscape with an odd crop margin, portrait


def test_score_is_100_max_cos_0_with_clip_preprocessing(clip):
    images = random_images(SIZES)
    mean, scores = clip_score(clip, images, PROMPTS)
    # the module's preprocessing is CLIP's, pixel for pixel
    got = clip.image_processor(images=[Image.fromarray(im) for im in images], return_tensors="pt")["pixel_values"]
    for i, im in enumerate(images):
        np.testing.assert_allclose(got[i].numpy(), reference_pixels(im, IMAGE_SIZE), atol=1e-6)
    ref = reference_scores(clip, images, PROMPTS)
    np.testing.assert_allclose(scores, ref, atol=1e-4)
    assert mean == pytest.approx(float(np.mean(ref)), abs=1e-4)
    assert isinstance(mean, float) and len(scores) == 3
    assert any(s > 1 for s in scores)  # not all clamped to 0: the comparison above means something


def test_negative_cosines_score_zero(tiny_clip_dir):
    """Flipping the visual projection flips every cosine's sign: the positive pairs now score 0 and the
    negative ones 100*|cos|: the clamp is per image."""
    clip = load_clip(tiny_clip_dir)
    images = random_images(SIZES)
    unclamped = reference_scores(clip, images, PROMPTS, clamp=False)
    with torch.no_grad():
        clip.model.visual_projection.weight.neg_()
    _, scores = clip_score(clip, images, PROMPTS)
    np.testing.assert_allclose(scores, np.maximum(-unclamped, 0), atol=1e-4)


def test_batching_and_input_forms_do_not_change_scores(clip):
    images = random_images([(64, 64)] * 5, seed=3)
    prompts = [f"photo {i} of the sea" for i in range(5)]
    _, one = clip_score(clip, images, prompts, batch_size=1)
    _, three = clip_score(clip, images, prompts, batch_size=3)
    _, stacked = clip_score(clip, np.stack(images), prompts)  # (N, H, W, 3) uint8
    _, pil = clip_score(clip, [Image.fromarray(im) for im in images], prompts, batch_size=2)
    _, streamed = clip_score(clip, (im for im in images), prompts, batch_size=2)  # a generator: no len()
    for other in (three, stacked, pil, streamed):
        np.testing.assert_allclose(other, one, atol=1e-4)


def test_count_mismatch_is_a_one_line_error(clip):
    images = random_images([(56, 56)] * 3)
    with pytest.raises(ConfigError) as e:
        clip_score(clip, images, PROMPTS[:2])
    one_line(e, "3 images but 2 prompts")
    with pytest.raises(ConfigError) as e:  # a generator is counted as it streams
        clip_score(clip, iter(images), PROMPTS[:2], batch_size=1)
    one_line(e, "more images than the 2 prompts")
    with pytest.raises(ConfigError) as e:
        clip_score(clip, iter(images[:2]), PROMPTS)
    one_line(e, "2 images but 3 prompts")
    with pytest.raises(ConfigError) as e:
        clip_score(clip, [], [])
    one_line(e, "no images")
    with pytest.raises(ConfigError) as e:
        clip_score(clip, [images[0].astype(np.float32)], PROMPTS[:1])
    one_line(e, "image 0", "uint8")
    with pytest.raises(ConfigError) as e:
        clip_score(clip, images[:1], "a single string")
    one_line(e, "list of strings")


def test_long_prompts_are_truncated_to_77_tokens(clip):
    """Text past the 77th token has no effect (truncation keeps <|endoftext|> last, so the pooled position
    is the real end token), and such prompts are listed."""
    long = "the sea and the sky " * 40  # ~ 200 tokens
    prompts = [long, long + " and a red boat on the horizon", "the sea"]
    images = random_images([(56, 56)] * 8, seed=5)  # cosines of random weights have either sign: 8 images
    _, a = clip_score(clip, images, [prompts[0]] * 8)
    _, b = clip_score(clip, images, [prompts[1]] * 8)
    _, c = clip_score(clip, images, [prompts[2]] * 8)
    assert max(a) > 1  # not all clamped to 0
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert np.abs(np.subtract(a, c)).max() > 1e-2
    ids = clip.tokenizer(prompts[:1], truncation=True, max_length=77)["input_ids"][0]
    assert len(ids) == 77 and ids[-1] == clip.tokenizer.eos_token_id
    assert truncated_prompts(clip, prompts) == [0, 1]
    np.testing.assert_allclose(a, reference_scores(clip, images, [long] * 8), atol=1e-4)


def test_missing_preprocessor_config_uses_clip_standard(tmp_path, tiny_clip_dir):
    """A checkpoint without preprocessor_config.json gets CLIP's standard preprocessing at its vision size."""
    folder = make_tiny_clip(tmp_path / "clip")  # the same weights (seed 0), no preprocessing config
    plain, full = load_clip(folder), load_clip(tiny_clip_dir)
    assert any("preprocessor_config.json" in n for n in plain.notes) and not full.notes
    images = random_images(SIZES, seed=7)
    np.testing.assert_allclose(clip_score(plain, images, PROMPTS)[1], clip_score(full, images, PROMPTS)[1],
                               atol=1e-5)


def test_not_a_clip_folder_is_a_one_line_error(tmp_path, tiny_clip_dir):
    with pytest.raises(WeightsError) as e:
        load_clip(tmp_path)
    one_line(e, str(tmp_path), "no config.json")
    qwen = tmp_path / "qwen"
    qwen.mkdir()
    (qwen / "config.json").write_text(json.dumps({"model_type": "qwen2", "hidden_size": 32}))
    with pytest.raises(WeightsError) as e:
        load_clip(qwen)
    one_line(e, str(qwen), "not a CLIP model", "qwen2")
    text_only = tmp_path / "text-only"
    text_only.mkdir()
    (text_only / "config.json").write_text(json.dumps({"model_type": "clip_text_model"}))
    with pytest.raises(WeightsError) as e:
        load_clip(text_only)
    one_line(e, str(text_only), "text tower only")
    with pytest.raises(WeightsError) as e:
        load_clip(tiny_clip_dir / "config.json")
    one_line(e, "is a file")
    with pytest.raises(WeightsError) as e:
        load_clip(tmp_path / "nowhere")
    one_line(e, "no CLIP model folder at", "nowhere")


def test_incomplete_clip_folder_is_a_one_line_error(tmp_path, tiny_clip_dir):
    import shutil

    no_tok = shutil.copytree(tiny_clip_dir, tmp_path / "no-tokenizer")
    (no_tok / "tokenizer.json").unlink()
    with pytest.raises(WeightsError) as e:
        load_clip(no_tok)
    one_line(e, str(no_tok), "no tokenizer files")
    cut = shutil.copytree(tiny_clip_dir, tmp_path / "truncated")
    data = (cut / "model.safetensors").read_bytes()
    (cut / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError) as e:
        load_clip(cut)
    one_line(e, "model.safetensors")


def test_offline_without_files_gives_the_download_hint(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    repo = DEFAULT_CLIP["repo"]
    for offline in (None, True):  # HF_HUB_OFFLINE, and the explicit switch
        with pytest.raises(WeightsError) as e:
            load_clip(repo, offline=offline)
        one_line(e, repo, "not in the Hugging Face cache", "offline", f"hf download {repo}", "*.safetensors")


def test_default_is_openai_vit_l14():
    assert DEFAULT_CLIP == {"repo": "openai/clip-vit-large-patch14", "revision": None}


def test_import_is_cheap():
    """Importing the module loads neither torch nor transformers (the other ssgen modules import it freely)."""
    code = "import sys, ssgen.clip_score; print(sorted({'torch', 'transformers'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_golden_switti_clip_loads_and_scores():
    """The goldens' text_encoder/ is a complete CLIPModel in openai/clip-vit-large-patch14's layout (fp16 weights,
    28 px vision tower, no preprocessor config): loaded in float32 and scored like any CLIP."""
    folder = need_goldens("switti", "tiny", "text_encoder")
    clip = load_clip(folder)
    assert clip.max_length == 77 and clip.dtype == torch.float32 and clip.notes
    images = random_images([(28, 28), (40, 30)], seed=11)
    prompts = ["a red fox in the snow", "a wooden boat at sunset"]
    _, scores = clip_score(clip, images, prompts)
    np.testing.assert_allclose(scores, reference_scores(clip, images, prompts), atol=1e-4)
