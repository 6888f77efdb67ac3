"""Step 3: loading (resolve, read, check the kind, build on the meta device, load) and one call's Backend."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ssgen.backends.common import Call, cfg_mix
from ssgen.backends.kinds import expect_kind
from ssgen.checkpoint import empty_model, load_into, read_state_dict
from ssgen.loop import ScaleSampling
from ssgen.weights import resolve_weight


class ToyNet(nn.Module):
    """Logits of position p for class c: class_emb[c] @ codebook.T + pos[p] (no attention: a toy)."""

    def __init__(self, num_classes: int, vocab: int, dim: int, positions: int):
        super().__init__()
        self.class_emb = nn.Parameter(torch.empty(num_classes + 1, dim))  # + the null class
        self.codebook = nn.Parameter(torch.empty(vocab, dim))
        self.pos = nn.Parameter(torch.empty(positions, vocab))

    def reset_cache(self, release: bool = False) -> None:
        pass

    def forward_scale(self, labels: torch.Tensor, a: int, b: int) -> torch.Tensor:
        return (self.class_emb[labels] @ self.codebook.T)[:, None] + self.pos[a:b]  # (2B, b - a, V)


class ToyFamily:
    def __init__(self, config, net: ToyNet, patch_nums: list[int], device, dtype):
        self.config, self.net, self.patch_nums, self.device, self.dtype = config, net, patch_nums, device, dtype

    @property
    def facts(self) -> dict[str, Any]:
        return {}

    @property
    def step_module(self) -> ToyNet:
        return self.net

    def start(self, request) -> Call:
        o = request.parsed
        return Call(ToyBackend(self, list(request.classes), o), o.settings)


class ToyBackend:
    def __init__(self, m: ToyFamily, classes: list, o):
        self.m, self.o = m, o
        self.grid = [(p, p) for p in m.patch_nums]
        null = m.net.class_emb.shape[0] - 1
        cond = [null if c is None else c for c in classes]
        self.labels = torch.tensor(cond + [null] * len(cond), device=m.device)  # (2B,)
        self.starts = [sum(p * p for p in m.patch_nums[:k]) for k in range(len(m.patch_nums))]
        self.tokens: list[torch.Tensor] = []

    def logits(self, k: int) -> torch.Tensor:
        a = self.starts[k]
        return self.m.net.forward_scale(self.labels, a, a + self.grid[k][0] ** 2).float()  # (2B, h*w, V)

    def guide(self, k: int, raw: torch.Tensor) -> torch.Tensor:
        return cfg_mix(raw, self.o.t[k]) / self.o.temperature[k]  # (B, h*w, V)

    def sampling(self, k: int) -> ScaleSampling:
        return ScaleSampling(self.o.top_k, self.o.top_p, None)

    def categories(self, l: torch.Tensor) -> torch.Tensor:
        return l

    def advance(self, k: int, tokens: torch.Tensor, soft) -> torch.Tensor:
        self.tokens.append(tokens)
        return tokens

    def decode(self, rng=None) -> torch.Tensor:
        return self.preview()

    def preview(self) -> torch.Tensor:
        """The last sampled scale's codes as colours, upsampled to 32 px -> (B, 3, 32, 32) in [0, 1]."""
        t = self.tokens[-1]
        h = self.grid[len(self.tokens) - 1][0]
        V = self.m.net.codebook.shape[0]
        rgb = torch.stack([(t * s % V).float() / (V - 1) for s in (1, 3, 7)], 1).view(-1, 3, h, h)  # (B, 3, h, h)
        return torch.nn.functional.interpolate(rgb, size=(32, 32), mode="nearest")


def load(config, device, dtype, offline=None, progress=True) -> ToyFamily:
    path = resolve_weight(config, "transformer", offline=offline, progress=progress)
    sd = read_state_dict(path, "transformer")
    expect_kind(sd, "toy", "transformer", path)
    pns = list(config.model.get("patch_nums") or (1, 2, 4))
    with empty_model():
        net = ToyNet(sd["class_emb"].shape[0] - 1, sd["codebook"].shape[0], sd["codebook"].shape[1],
                     sum(p * p for p in pns))
    load_into(net, sd, "transformer", path, dtype=dtype, device=device)
    return ToyFamily(config, net.eval(), pns, device, dtype)
