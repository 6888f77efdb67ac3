"""The Inception network behind ADM's FID, sFID and Inception Score, as a small PyTorch module.

ADM's evaluator (openai/guided-diffusion `evaluations/evaluator.py`) runs TensorFlow's 2015-12-05 Inception
graph (`classify_image_graph_def.pb`) on uint8 images fed as float32 in [0, 255] at their own size, and reads:

- `pool_3:0` (1, 1, 2048) per image: the FID features;
- `mixed_6/conv:0` (17, 17, 192), of which it keeps `[..., :7]` and flattens row-major: 17*17*7 = 2023
  values in height, width, channel order, the sFID features;
- the weight of `softmax/logits/MatMul` (2048, 1008): the Inception Score is `softmax(pool_3 @ W)`, without
  the graph's bias.

The graph's own first steps are `ResizeBilinear` to 299x299 (TF1 semantics, no corner alignment, no
antialiasing: a 512 px image is sampled, not averaged), then `Sub` 128 and `Mul` 0.0078125 (= 1/128). Then
InceptionV3 as it was in 2015, which differs from torchvision's in three places: the average pools inside
the blocks skip the padding (TF's SAME average pool divides by the number of real pixels), the last block's
pool branch is a max pool, and the classifier has 1008 classes.

torch-fidelity's `FeatureExtractorInceptionV3` is the maintained PyTorch port of that graph, documented to
match TF's features; its weights file `weights-inception-2015-12-05-6726825d.pth` (the same bytes as
pytorch-fid's `pt_inception-2015-12-05-6726825d.pth`) is a plain state dict converted from the graph's
constants. This module is ssgen's own implementation of that port: its parameter names are the file's keys,
so the file loads as it is, and on the same weights and images it gives torch-fidelity's features up to
float rounding (`tests/core/test_inception.py` checks it against features torch-fidelity computed,
`tests/data/inception/README.md`).

Which tensor is `mixed_6/conv`: the graph names its blocks `mixed`, `mixed_1`, ..., `mixed_10`, which are
`Mixed_5b`, `Mixed_5c`, `Mixed_5d`, `Mixed_6a`, `Mixed_6b`, `Mixed_6c`, `Mixed_6d`, ... in the port
(torch-fidelity's converter maps `mixed_6/conv/conv2d_params` to `Mixed_6d.branch1x1.conv`). Inside a block,
the op named `conv` is the Relu that follows `conv/Conv2D` and `conv/batchnorm`, so `mixed_6/conv:0` is the
output of `Mixed_6d.branch1x1` after its batch norm and ReLU, (B, 192, 17, 17). The block concatenates
that branch first, so it is also channels 0-191 of `Mixed_6d`'s output, which is where it is read here.

    >>> net = load_inception("weights-inception-2015-12-05-6726825d.pth")
    >>> f = net(images)                    # images: (B, H, W, 3) or (B, 3, H, W) uint8, any H, W
    >>> f["pool"], f["spatial"], f["logits"]   # (B, 2048), (B, 2023), (B, 1008) float32
    >>> net.logits_weight                  # (2048, 1008): softmax(pool @ W) is ADM's Inception Score input
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .checkpoint import drop_keys, empty_model, load_into, read_state_dict
from .errors import ConfigError, WeightsError

WEIGHTS_NAME = "weights-inception-2015-12-05-6726825d.pth"  # 6726825d: the start of its sha256
WEIGHTS_URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" + WEIGHTS_NAME

SIZE = 299  # the graph's ResizeBilinear/size
SPATIAL_CHANNELS = 7  # ADM keeps mixed_6/conv[..., :7]
BN_EPS = 0.001  # the graph's BatchNormWithGlobalNormalization variance_epsilon

# The file's batch-norm entries are weight, bias, running_mean, running_var; a copy saved from an
# nn.BatchNorm2d module also carries its training counter, which inference never reads.
IGNORED_KEYS = ("*.num_batches_tracked",)


# ----------------------------------------------------------------------------------------------
# Layers
# ----------------------------------------------------------------------------------------------


class FrozenBatchNorm(nn.Module):
    """Batch norm with fixed statistics (TF's BatchNormWithGlobalNormalization, scale after normalisation):
    (x - running_mean) / sqrt(running_var + eps) * weight + bias, per channel. The same kernel as
    nn.BatchNorm2d in eval mode, without its training counter."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))  # (C,) TF's gamma
        self.bias = nn.Parameter(torch.zeros(channels))  # (C,) TF's beta
        self.register_buffer("running_mean", torch.zeros(channels))  # (C,) TF's moving_mean
        self.register_buffer("running_var", torch.ones(channels))  # (C,) TF's moving_variance

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, BN_EPS)


class ConvBN(nn.Module):
    """Conv2d without bias, batch norm, ReLU: one `conv` scope of the graph (`.../Conv2D`, `.../batchnorm`,
    then the Relu that carries the scope's name). `padding` is TF's SAME written out for odd kernels."""

    def __init__(self, cin: int, cout: int, kernel: int | tuple[int, int], stride: int = 1,
                 padding: int | tuple[int, int] = 0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)  # (cout, cin, kh, kw)
        self.bn = FrozenBatchNorm(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def avg_pool_3x3(x: torch.Tensor) -> torch.Tensor:
    """TF's 3x3 stride-1 SAME average pool: at the border it averages the real pixels only."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class Block35(nn.Module):
    """A 35x35 block (`mixed` to `mixed_2`; torchvision's InceptionA): 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avgpool-1x1."""

    def __init__(self, cin: int, pool_channels: int):
        super().__init__()
        self.branch1x1 = ConvBN(cin, 64, 1)
        self.branch5x5_1 = ConvBN(cin, 48, 1)
        self.branch5x5_2 = ConvBN(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = ConvBN(cin, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, padding=1)
        self.branch_pool = ConvBN(cin, pool_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, cin, 35, 35) -> (B, 224 + pool_channels, 35, 35)
        a = self.branch1x1(x)  # (B, 64, 35, 35)
        b = self.branch5x5_2(self.branch5x5_1(x))  # (B, 64, 35, 35)
        c = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))  # (B, 96, 35, 35)
        d = self.branch_pool(avg_pool_3x3(x))  # (B, pool_channels, 35, 35)
        return torch.cat([a, b, c, d], 1)


class Reduce35(nn.Module):
    """35x35 -> 17x17 (`mixed_3`; InceptionB): 3x3/2 | 1x1-3x3-3x3/2 | maxpool/2, all VALID."""

    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3 = ConvBN(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = ConvBN(cin, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 288, 35, 35) -> (B, 768, 17, 17)
        a = self.branch3x3(x)  # (B, 384, 17, 17)
        b = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))  # (B, 96, 17, 17)
        c = F.max_pool2d(x, kernel_size=3, stride=2)  # (B, 288, 17, 17)
        return torch.cat([a, b, c], 1)


class Block17(nn.Module):
    """A 17x17 block (`mixed_4` to `mixed_7`; InceptionC) with factorised 7x7 convolutions:
    1x1 | 1x1-1x7-7x1 | 1x1-7x1-1x7-7x1-1x7 | avgpool-1x1. Its first 192 output channels are the 1x1
    branch (for `Mixed_6d`: TF's `mixed_6/conv`)."""

    def __init__(self, cin: int, c7: int):
        super().__init__()
        self.branch1x1 = ConvBN(cin, 192, 1)
        self.branch7x7_1 = ConvBN(cin, c7, 1)
        self.branch7x7_2 = ConvBN(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = ConvBN(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = ConvBN(cin, c7, 1)
        self.branch7x7dbl_2 = ConvBN(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = ConvBN(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = ConvBN(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = ConvBN(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = ConvBN(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 768, 17, 17) -> (B, 768, 17, 17)
        a = self.branch1x1(x)  # (B, 192, 17, 17)
        b = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))  # (B, 192, 17, 17)
        c = self.branch7x7dbl_1(x)
        c = self.branch7x7dbl_3(self.branch7x7dbl_2(c))
        c = self.branch7x7dbl_5(self.branch7x7dbl_4(c))  # (B, 192, 17, 17)
        d = self.branch_pool(avg_pool_3x3(x))  # (B, 192, 17, 17)
        return torch.cat([a, b, c, d], 1)


class Reduce17(nn.Module):
    """17x17 -> 8x8 (`mixed_8`; InceptionD): 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | maxpool/2."""

    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3_1 = ConvBN(cin, 192, 1)
        self.branch3x3_2 = ConvBN(192, 320, 3, stride=2)
        self.branch7x7x3_1 = ConvBN(cin, 192, 1)
        self.branch7x7x3_2 = ConvBN(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = ConvBN(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = ConvBN(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 768, 17, 17) -> (B, 1280, 8, 8)
        a = self.branch3x3_2(self.branch3x3_1(x))  # (B, 320, 8, 8)
        b = self.branch7x7x3_2(self.branch7x7x3_1(x))
        b = self.branch7x7x3_4(self.branch7x7x3_3(b))  # (B, 192, 8, 8)
        c = F.max_pool2d(x, kernel_size=3, stride=2)  # (B, 768, 8, 8)
        return torch.cat([a, b, c], 1)


class Block8(nn.Module):
    """An 8x8 block (`mixed_9`, `mixed_10`; InceptionE) with split 3x3 convolutions:
    1x1 | 1x1-(1x3, 3x1) | 1x1-3x3-(1x3, 3x1) | pool-1x1. The pool is an average pool in `mixed_9` and a
    3x3 stride-1 max pool in `mixed_10`, as in the 2015 graph (the paper has an average pool there)."""

    def __init__(self, cin: int, pool: str):
        super().__init__()
        self.pool = pool  # "avg" or "max"
        self.branch1x1 = ConvBN(cin, 320, 1)
        self.branch3x3_1 = ConvBN(cin, 384, 1)
        self.branch3x3_2a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = ConvBN(cin, 448, 1)
        self.branch3x3dbl_2 = ConvBN(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = ConvBN(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, cin, 8, 8) -> (B, 2048, 8, 8)
        a = self.branch1x1(x)  # (B, 320, 8, 8)
        b = self.branch3x3_1(x)
        b = torch.cat([self.branch3x3_2a(b), self.branch3x3_2b(b)], 1)  # (B, 768, 8, 8)
        c = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        c = torch.cat([self.branch3x3dbl_3a(c), self.branch3x3dbl_3b(c)], 1)  # (B, 768, 8, 8)
        pooled = avg_pool_3x3(x) if self.pool == "avg" else F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        d = self.branch_pool(pooled)  # (B, 192, 8, 8)
        return torch.cat([a, b, c, d], 1)


# ----------------------------------------------------------------------------------------------
# Input: TF1's bilinear resize
# ----------------------------------------------------------------------------------------------


def _source_rows(n_in: int, n_out: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """TF1 resize_bilinear's sampling along one axis, without corner alignment: output i reads the input at
    i * (n_in / n_out), the scale and the product in float32 as TF computes them; returns the lower and upper
    source indices (the upper clamped to the edge) and the float32 weight of the upper one."""
    scale = torch.tensor(n_in / n_out, dtype=torch.float32)  # TF's float32 division (via float64: the same value)
    pos = torch.arange(n_out, dtype=torch.float32) * scale  # (n_out,)
    lo = pos.floor()
    frac = pos - lo  # (n_out,) in [0, 1)
    lo = lo.long()
    hi = (lo + 1).clamp(max=n_in - 1)
    return lo.to(device), hi.to(device), frac.to(device)


def resize_like_tf1(x: torch.Tensor, size: int = SIZE) -> torch.Tensor:
    """(B, C, H, W) float32 -> (B, C, size, size) as TF1's `tf.image.resize_bilinear(align_corners=False)`.

    TF1 computes each output as `top + (bottom - top) * dy` with `top = tl + (tr - tl) * dx` (and bottom
    likewise), in float32; this does the same operations in the same order, as torch-fidelity's
    `interpolate_bilinear_2d_like_tensorflow1x` ("slow" method, measured bit-exact to TF on the CPU) does.
    It differs from torch's `F.interpolate(..., "bilinear")` (half-pixel centres) and from any antialiased
    resize: downscaling samples two rows and columns per output pixel and ignores the rest."""
    y_lo, y_hi, dy = _source_rows(x.shape[2], size, x.device)
    x_lo, x_hi, dx = _source_rows(x.shape[3], size, x.device)
    top_rows, bottom_rows = x.index_select(2, y_lo), x.index_select(2, y_hi)  # (B, C, size, W) each
    dx = dx.view(1, 1, 1, size)
    top = top_rows.index_select(3, x_lo)
    top = top + (top_rows.index_select(3, x_hi) - top) * dx  # (B, C, size, size)
    bottom = bottom_rows.index_select(3, x_lo)
    bottom = bottom + (bottom_rows.index_select(3, x_hi) - bottom) * dx  # (B, C, size, size)
    return top + (bottom - top) * dy.view(1, 1, size, 1)


def as_nchw(images) -> torch.Tensor:
    """Check a batch of uint8 RGB images, (B, H, W, 3) as ADM's .npz holds them or (B, 3, H, W); return it
    as (B, 3, H, W) uint8. A shape that fits both (W == 3 and C == 3) is read as (B, H, W, 3)."""
    if not isinstance(images, torch.Tensor):
        hint = " (use torch.from_numpy)" if type(images).__name__ == "ndarray" else ""
        raise ConfigError(f"Inception features take a torch.Tensor of images, got {type(images).__name__}{hint}")
    if images.dtype != torch.uint8:
        raise ConfigError(f"Inception features take uint8 images (0-255, as ADM's evaluator reads them), got "
                          f"{images.dtype}; for x in [0, 1] use (x * 255).round().clamp(0, 255).to(torch.uint8)")
    shape = tuple(images.shape)
    if images.dim() != 4 or 3 not in (shape[-1], shape[1]):
        raise ConfigError(f"Inception features take RGB images of shape (B, H, W, 3) or (B, 3, H, W), got {shape}")
    x = images.permute(0, 3, 1, 2) if shape[-1] == 3 else images
    if x.shape[2] == 0 or x.shape[3] == 0:
        raise ConfigError(f"Inception features got images of size 0 ({shape})")
    return x


# ----------------------------------------------------------------------------------------------
# The network
# ----------------------------------------------------------------------------------------------


class InceptionV3(nn.Module):
    """The 2015 TF Inception graph as torch-fidelity ports it; module names are its weights file's keys.

    `forward(images)` takes (B, H, W, 3) or (B, 3, H, W) uint8 and returns float32 {"pool": (B, 2048),
    "spatial": (B, 2023), "logits": (B, 1008)}: ADM's `pool_3`, `mixed_6/conv[..., :7]` flattened in
    (H, W, C) order, and `pool_3 @ logits_weight` (no bias)."""

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = ConvBN(3, 32, 3, stride=2)  # graph: conv
        self.Conv2d_2a_3x3 = ConvBN(32, 32, 3)  # conv_1
        self.Conv2d_2b_3x3 = ConvBN(32, 64, 3, padding=1)  # conv_2, then pool
        self.Conv2d_3b_1x1 = ConvBN(64, 80, 1)  # conv_3
        self.Conv2d_4a_3x3 = ConvBN(80, 192, 3)  # conv_4, then pool_1
        self.Mixed_5b = Block35(192, pool_channels=32)  # mixed
        self.Mixed_5c = Block35(256, pool_channels=64)  # mixed_1
        self.Mixed_5d = Block35(288, pool_channels=64)  # mixed_2
        self.Mixed_6a = Reduce35(288)  # mixed_3
        self.Mixed_6b = Block17(768, c7=128)  # mixed_4
        self.Mixed_6c = Block17(768, c7=160)  # mixed_5
        self.Mixed_6d = Block17(768, c7=160)  # mixed_6: its branch1x1 is mixed_6/conv, the sFID features
        self.Mixed_6e = Block17(768, c7=192)  # mixed_7
        self.Mixed_7a = Reduce17(768)  # mixed_8
        self.Mixed_7b = Block8(1280, pool="avg")  # mixed_9
        self.Mixed_7c = Block8(2048, pool="max")  # mixed_10, then pool_3
        self.fc = nn.Linear(2048, 1008)  # softmax/weights transposed (1008, 2048), softmax/biases (1008,)

    @property
    def logits_weight(self) -> torch.Tensor:
        """(2048, 1008): TF's `softmax/logits/MatMul` weight, the Inception Score's classifier (no bias)."""
        return self.fc.weight.t()

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = as_nchw(images).to(self.fc.weight.device, torch.float32)  # (B, 3, H, W) in [0, 255]
        x = resize_like_tf1(x)  # (B, 3, 299, 299)
        x = (x - 128) / 128  # the graph's Sub 128, Mul 0.0078125: the same float32 values (1/128 = 2^-7)
        x = self.Conv2d_1a_3x3(x)  # (B, 32, 149, 149)
        x = self.Conv2d_2a_3x3(x)  # (B, 32, 147, 147)
        x = self.Conv2d_2b_3x3(x)  # (B, 64, 147, 147)
        x = F.max_pool2d(x, kernel_size=3, stride=2)  # (B, 64, 73, 73)
        x = self.Conv2d_3b_1x1(x)  # (B, 80, 73, 73)
        x = self.Conv2d_4a_3x3(x)  # (B, 192, 71, 71)
        x = F.max_pool2d(x, kernel_size=3, stride=2)  # (B, 192, 35, 35)
        x = self.Mixed_5b(x)  # (B, 256, 35, 35)
        x = self.Mixed_5c(x)  # (B, 288, 35, 35)
        x = self.Mixed_5d(x)  # (B, 288, 35, 35)
        x = self.Mixed_6a(x)  # (B, 768, 17, 17)
        x = self.Mixed_6b(x)  # (B, 768, 17, 17)
        x = self.Mixed_6c(x)  # (B, 768, 17, 17)
        x = self.Mixed_6d(x)  # (B, 768, 17, 17); channels 0-191: mixed_6/conv
        spatial = x[:, :SPATIAL_CHANNELS].permute(0, 2, 3, 1).flatten(1)  # (B, 17 * 17 * 7) in TF's H, W, C order
        x = self.Mixed_6e(x)  # (B, 768, 17, 17)
        x = self.Mixed_7a(x)  # (B, 1280, 8, 8)
        x = self.Mixed_7b(x)  # (B, 2048, 8, 8)
        x = self.Mixed_7c(x)  # (B, 2048, 8, 8)
        pool = F.adaptive_avg_pool2d(x, 1).flatten(1)  # (B, 2048): pool_3
        logits = pool.mm(self.logits_weight)  # (B, 1008): softmax/logits/MatMul
        return {"pool": pool, "spatial": spatial.contiguous(), "logits": logits}


def load_inception(path: str | Path, device: str | torch.device = "cpu") -> InceptionV3:
    """The network with the weights of `path` (torch-fidelity's `weights-inception-2015-12-05-6726825d.pth`
    or a file of the same format), float32, in eval mode, on `device`.

    The file is memory-mapped (`torch.load(weights_only=True, mmap=True)`) and checked before anything is
    assigned: a file that is no checkpoint, or holds another model, is named as such; missing keys and
    wrong shapes are WeightsErrors that name them."""
    path = Path(path)
    sd = drop_keys(read_state_dict(path, "inception"), IGNORED_KEYS)
    if "AuxLogits.fc.weight" in sd:
        raise WeightsError(f"{path} is torchvision's ImageNet InceptionV3 (1000 classes, AuxLogits), not the 2015 "
                           f"TF Inception of FID; use {WEIGHTS_NAME}")
    if not any(k.startswith(("Conv2d_1a_3x3.", "Mixed_")) for k in sd):
        shown = ", ".join(list(sd)[:3]) or "nothing"
        raise WeightsError(f"{path} is not Inception weights: its {len(sd)} tensor(s) ({shown}, ...) have none of "
                           f"the Inception's names; use {WEIGHTS_NAME}")
    with empty_model():
        net = InceptionV3()
    load_into(net, sd, "Inception", path, dtype=torch.float32, device=device)
    return net.eval().requires_grad_(False)


# ----------------------------------------------------------------------------------------------
# A random-weight file in the same format
# ----------------------------------------------------------------------------------------------


def _uniform(start: int, n: int):
    """n float32 numbers uniform in (-1, 1), the SplitMix64 outputs of the counters start+1 .. start+n:
    the same values on every machine and every numpy or torch version (integer arithmetic, then an exact
    conversion of 24 bits). Returns a numpy array."""
    import numpy as np

    z = (np.arange(start + 1, start + n + 1, dtype=np.uint64)) * np.uint64(0x9E3779B97F4A7C15)  # wraps mod 2^64
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    k = (z >> np.uint64(40)).astype(np.int64)  # 24 random bits
    return ((2 * k + 1 - (1 << 24)).astype(np.float32) * np.float32(2.0**-24))  # (2k + 1) / 2^24 - 1, exact


def make_tiny_inception(path: str | Path, seed: int = 0) -> Path:
    """Write random weights in the format of torch-fidelity's file to `path` (a .pth; its folder is made).

    Same keys and shapes as the real file (about 95 MB: the shapes are the architecture), saved as a plain
    state dict with `torch.save`, as torch-fidelity's converter saves it. The values come from a counter
    hash of `seed`, not from torch's RNG, so the file is the same on every machine and version; they are
    scaled so that activations keep their size through the 94 layers: convolutions uniform with variance
    2 / fan_in (He), batch norms near the identity, the classifier with variance 1 / 2048."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with empty_model():
        shapes = {k: tuple(t.shape) for k, t in InceptionV3().state_dict().items()}
    sd, start = {}, seed << 36  # 2^36 numbers per seed: far more than the 24 M the file needs
    for name, shape in shapes.items():
        n = 1
        for s in shape:
            n *= s
        u = torch.from_numpy(_uniform(start, n)).view(shape)
        start += n
        if name.endswith("conv.weight"):  # (cout, cin, kh, kw)
            std = (2.0 / (shape[1] * shape[2] * shape[3])) ** 0.5
            sd[name] = u * (3.0**0.5 * std)
        elif name.endswith("bn.weight"):
            sd[name] = 1 + 0.2 * u
        elif name.endswith("bn.running_var"):
            sd[name] = 1 + 0.5 * u
        elif name == "fc.weight":  # (1008, 2048)
            sd[name] = u * (3.0 / 2048) ** 0.5
        else:  # bn.bias, bn.running_mean, fc.bias
            sd[name] = 0.1 * u
    torch.save(sd, path)
    return path
