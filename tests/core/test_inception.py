"""ssgen.inception: the 2015 TF Inception of ADM's FID, sFID and IS, against torch-fidelity's port.

tests/data/inception/reference.safetensors holds the features torch-fidelity 0.4.0's FeatureExtractorInceptionV3
computed on the random-weight file `make_tiny_inception(path, seed=0)` writes, for the images
`reference_images` makes (README.md there says how). The file is made again here, from the same seed
(integer hashing: the same bytes on every machine), and ssgen's features must match.

Tolerance: 1e-4 of each feature's largest magnitude. Both sides run the same float32 torch kernels in the
same order: on the machine that made the reference (torch 2.14.1 there, 2.13 here) they agree to the last
bit on the reference's 2 threads, and within 1.1e-6 of the scale on one thread (this test's), where the
convolutions sum in another order; another CPU may pick other algorithms, with differences of that size.
A real difference is far larger: torch's own bilinear resize instead of TF1's moves pool_3 by 4e-3 of its
scale (256 px), counting the padding in the blocks' average pools by 6e-2, an average pool in Mixed_7c by 3e-1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from ssgen.errors import ConfigError, WeightsError
from ssgen.inception import load_inception, make_tiny_inception

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "inception" / "reference.safetensors"
# name -> (number of images, height, width); each group was one batch for torch-fidelity
GROUPS = {"64x64": (2, 64, 64), "256x256": (1, 256, 256), "299x299": (1, 299, 299),
          "512x512": (1, 512, 512), "40x72": (1, 40, 72)}
RTOL = 1e-4


def splitmix64(counters: np.ndarray) -> np.ndarray:
    z = counters * np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def reference_images(group: int, n: int, h: int, w: int) -> torch.Tensor:
    """(n, h, w, 3) uint8: 6 bits of noise plus a ramp per channel (rows, columns, diagonal), integers only
    (the same function as in the reference script, tests/data/inception/README.md)."""
    counters = np.arange(1, n * h * w * 3 + 1, dtype=np.uint64) + np.uint64(group << 32)
    noise = (splitmix64(counters) >> np.uint64(58)).astype(np.int64).reshape(n, h, w, 3)  # 0..63
    y = np.arange(h, dtype=np.int64).reshape(1, h, 1)
    x = np.arange(w, dtype=np.int64).reshape(1, 1, w)
    ramps = np.stack(np.broadcast_arrays(y * 191 // max(h - 1, 1), x * 191 // max(w - 1, 1),
                                         (x + y) * 191 // max(h + w - 2, 1)), -1)  # (1, h, w, 3) 0..191
    return torch.from_numpy((noise + ramps).astype(np.uint8))


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return make_tiny_inception(tmp_path_factory.mktemp("inception") / "weights-tiny.pth", seed=0)


@pytest.fixture(scope="module")
def net(weights):
    return load_inception(weights)


@pytest.fixture(scope="module")
def ref():
    with safe_open(str(REFERENCE), "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


def assert_close(got: torch.Tensor, want: torch.Tensor, what: str) -> None:
    assert got.shape == want.shape and got.dtype == torch.float32, (what, got.shape, got.dtype)
    scale = float(want.abs().max())
    err = float((got - want).abs().max())
    assert scale > 0 and err <= RTOL * scale, f"{what}: max difference {err:.3g}, scale {scale:.3g}"


def test_the_inputs_are_those_of_the_reference(weights, ref):
    """The maker and the images give what the reference was computed from (else regenerate the reference)."""
    sd = torch.load(weights, map_location="cpu", weights_only=True, mmap=True)
    assert not any(k.endswith("num_batches_tracked") for k in sd) and len(sd) == 4 * 94 + 94 + 2  # bn x4, conv, fc
    assert tuple(sd["fc.weight"].shape) == (1008, 2048)
    assert tuple(sd["Conv2d_1a_3x3.conv.weight"].shape) == (32, 3, 3, 3)
    for key in ("Conv2d_1a_3x3.conv.weight", "Mixed_6d.branch1x1.bn.running_var", "fc.weight"):
        assert torch.equal(sd[key].flatten()[:16], ref[f"check.{key}"]), key
    for g, (name, shape) in enumerate(GROUPS.items()):
        assert int(reference_images(g, *shape).to(torch.int64).sum()) == int(ref[f"{name}.images_sum"]), name


@pytest.mark.parametrize("group", list(GROUPS))
def test_features_equal_torch_fidelity(net, ref, group):
    images = reference_images(list(GROUPS).index(group), *GROUPS[group])  # (n, h, w, 3) uint8
    f = net(images)
    assert set(f) == {"pool", "spatial", "logits"}
    n = GROUPS[group][0]
    assert (f["pool"].shape, f["spatial"].shape, f["logits"].shape) == ((n, 2048), (n, 2023), (n, 1008))
    for k in ("pool", "spatial", "logits"):
        assert_close(f[k], ref[f"{group}.{k}"], f"{group} {k}")
    # not degenerate: the random weights keep the activations alive
    assert (f["pool"] > 0).float().mean() > 0.5 and (f["spatial"] > 0).float().mean() > 0.2
    assert torch.isfinite(f["logits"]).all() and f["logits"].std() > 0.1


def test_logits_are_pool_times_the_unbiased_weight(net):
    w = net.logits_weight
    assert tuple(w.shape) == (2048, 1008)
    f = net(reference_images(0, 1, 32, 32))
    torch.testing.assert_close(f["logits"], f["pool"] @ w, rtol=1e-5, atol=1e-5)


def test_layouts_and_batch_invariance(net):
    """(B, H, W, 3) and (B, 3, H, W) give the same features, and a batch of 3 the features of 3 batches of 1."""
    images = reference_images(7, 3, 48, 48)  # (3, 48, 48, 3)
    batch = net(images)
    singles = [net(images[0:1].permute(0, 3, 1, 2)), net(images[1:2]), net(images[2:3])]  # the first as (1, 3, H, W)
    for k in batch:
        one_by_one = torch.cat([s[k] for s in singles])
        assert_close(one_by_one, batch[k], f"batch of 3 vs 3 of 1: {k}")


@pytest.mark.parametrize("images, words", [
    (torch.zeros(1, 64, 64, 3), "uint8 images"),
    (torch.zeros(1, 64, 64, 4, dtype=torch.uint8), "(B, H, W, 3) or (B, 3, H, W), got (1, 64, 64, 4)"),
    (torch.zeros(64, 64, 3, dtype=torch.uint8), "got (64, 64, 3)"),
    (np.zeros((1, 64, 64, 3), np.uint8), "torch.from_numpy"),
    (torch.zeros(1, 0, 5, 3, dtype=torch.uint8), "size 0"),
])
def test_input_errors(net, images, words):
    with pytest.raises(ConfigError) as e:
        net(images)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_loading_errors_name_the_problem(weights, tmp_path):
    sd = torch.load(weights, map_location="cpu", weights_only=True, mmap=True)

    missing = dict(sd)
    del missing["Mixed_6d.branch1x1.bn.running_var"]
    torch.save(missing, tmp_path / "missing.pth")
    with pytest.raises(WeightsError, match=r"missing 1 key\(s\): Mixed_6d\.branch1x1\.bn\.running_var"):
        load_inception(tmp_path / "missing.pth")

    wrong = dict(sd, **{"fc.weight": torch.zeros(1000, 2048)})
    torch.save(wrong, tmp_path / "wrong.pth")
    with pytest.raises(WeightsError, match=r"fc\.weight has shape \(1000, 2048\) but this model expects \(1008, 2048"):
        load_inception(tmp_path / "wrong.pth")

    torch.save({"blocks.0.attn.mat_qkv.weight": torch.zeros(4, 4)}, tmp_path / "var.pth")
    with pytest.raises(WeightsError, match=r"is not Inception weights: its 1 tensor\(s\) \(blocks\.0\.attn\.mat_qkv"):
        load_inception(tmp_path / "var.pth")

    torch.save({"AuxLogits.fc.weight": torch.zeros(2, 2), "Conv2d_1a_3x3.conv.weight": torch.zeros(1)},
               tmp_path / "torchvision.pth")
    with pytest.raises(WeightsError, match="torchvision's ImageNet InceptionV3"):
        load_inception(tmp_path / "torchvision.pth")

    (tmp_path / "page.pth").write_text("<!DOCTYPE html><html>Not Found</html>")
    with pytest.raises(WeightsError, match="HTML page"):
        load_inception(tmp_path / "page.pth")


def test_a_file_saved_from_batchnorm_modules_loads(weights, tmp_path, ref):
    """nn.BatchNorm2d's state dict adds `num_batches_tracked` to each batch norm: ignored (inference never reads it)."""
    sd = torch.load(weights, map_location="cpu", weights_only=True, mmap=True)
    bns = {k.rpartition(".")[0] for k in sd if k.endswith(".running_var")}
    sd.update({f"{bn}.num_batches_tracked": torch.tensor(0) for bn in bns})
    torch.save(sd, tmp_path / "with-counters.pth")
    net = load_inception(tmp_path / "with-counters.pth")
    assert torch.equal(net.fc.weight[0, :16], ref["check.fc.weight"])
