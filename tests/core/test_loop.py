"""Unit tests of ssgen.loop: the generic next-scale loop, driven by a small fake Backend.

The fake backend's logits depend on the scale only (seeded per scale), so every expectation is computed here
without the loop: the guided logits, SSG through `ssgen.guidance.prior` (the definition, not the cached matrix
the loop uses), top-k by sorting, and the draws with plain torch generators seeded by hand.
"""

from __future__ import annotations

import math

import pytest
import torch

from ssgen import loop
from ssgen.guidance import SSG, prior
from ssgen.loop import Edit, ScaleSampling, keep_input
from ssgen.sampling import Rng

NEG = float("-inf")
GRID = [(1, 1), (2, 2), (2, 3), (4, 4), (5, 6)]  # (h, w) per scale, non-square on purpose
TOP_K = [0, 3, 2, 0, 4]  # per scale, with K = 5 categories
CFG = 1.5


def gen(seed: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def raw_logits(k: int, B: int, L: int, C: int) -> torch.Tensor:
    """The fake transformer: (2B, L, C), rows [0, B) cond, [B, 2B) uncond; depends on the scale only."""
    return torch.randn(2 * B, L, C, generator=gen(1000 + k)) * 2.0


def guided_logits(k: int, B: int, L: int, C: int) -> torch.Tensor:
    """What the fake's guide returns, recomputed: CFG on the raw logits -> (B, L, C) float32."""
    r = raw_logits(k, B, L, C).double()
    return (r[:B] + CFG * (r[:B] - r[B:])).float()


class FakeBackend:
    """A deterministic Backend: K categories per row, d rows per grid position (d = 1: VAR-like; d > 1 with
    K = 2: Infinity-like bits, a position's C = 2d channels viewed as d consecutive 2-way categoricals)."""

    def __init__(self, B=2, K=5, d=1, grid=GRID, top_k=None, smooth=None, soft_only=None):
        self.grid = [tuple(g) for g in grid]
        self.soft_only = soft_only or [False] * len(self.grid)  # per scale: Switti's Gumbel mix without a draw
        self.B, self.K, self.d, self.C = B, K, d, K * d
        self.top_k = top_k if top_k is not None else [0] * len(self.grid)
        self.smooth = smooth  # None, or per scale (multiplier, tau) / None
        self.events: list[tuple] = []
        self.guided: list[torch.Tensor] = []  # clones of what guide returned, (B, h*w, C)
        self.seen: list[torch.Tensor] = []  # clones of what categories received, (B, h*w, C)
        self.advanced: list[tuple[int, torch.Tensor, torch.Tensor | None]] = []  # (k, tokens (B, N), soft)
        self.returned: list[torch.Tensor] = []
        self.decode_rng = None
        self.pixels = torch.rand(B, 3, 8, 8, generator=gen(5))  # (B, 3, H, W)

    def logits(self, k):
        self.events.append(("logits", k))
        h, w = self.grid[k]
        return raw_logits(k, self.B, h * w, self.C)

    def guide(self, k, raw):
        self.events.append(("guide", k))
        B = self.B
        out = (raw[:B].double() + CFG * (raw[:B].double() - raw[B:].double())).float()  # (B, h*w, C)
        self.guided.append(out.clone())
        return out

    def sampling(self, k):
        self.events.append(("sampling", k))
        sm = self.smooth[k] if self.smooth is not None else None
        return ScaleSampling(top_k=self.top_k[k], top_p=0.0, smooth=sm, soft_only=self.soft_only[k])

    def categories(self, l):
        self.events.append(("categories",))
        self.seen.append(l.clone())
        B, L, C = l.shape
        return l.view(B, L * self.d, self.K)  # (B, N, K)

    def advance(self, k, tokens, soft):
        self.events.append(("advance", k))
        self.advanced.append((k, tokens.clone(), None if soft is None else soft.clone()))
        public = tokens * 10 + k  # some other layout, so the test can tell it from the sampled tokens
        self.returned.append(public)
        return public

    def decode(self, rng):
        self.events.append(("decode",))
        self.decode_rng = rng
        return self.pixels

    def preview(self):
        self.events.append(("preview",))
        return torch.full((self.B, 3, 8, 8), float(len(self.advanced)))


# ------------------------------------------------------------------------------------------------ references


def ref_top_k(cat: torch.Tensor, top_k: int) -> torch.Tensor:
    """(..., K) -> a filtered copy: values below the k-th largest become -inf."""
    K = cat.shape[-1]
    if not 0 < top_k < K:
        return cat.clone()
    kth = cat.sort(dim=-1, descending=True).values[..., top_k - 1 : top_k]
    return cat.masked_fill(cat < kth, NEG)


def ref_prior(l_prev: torch.Tensor, prev_size, size, s: SSG) -> torch.Tensor:
    """The prior of token-major logits (B, h'*w', C) by its definition on the spatial map -> (B, h*w, C)."""
    B, _, C = l_prev.shape
    (h0, w0), (h, w) = prev_size, size
    x = l_prev.permute(0, 2, 1).reshape(B, C, h0, w0).double()  # (B, C, h', w')
    p = prior(x, (h, w), kind=s.prior, interp=s.interp, rescale=s.rescale)  # (B, C, h, w)
    return p.reshape(B, C, h * w).permute(0, 2, 1).float()  # (B, h*w, C)


def ref_ssg(l: torch.Tensor, l_prev: torch.Tensor, beta: float, prev_size, size, s: SSG) -> torch.Tensor:
    return l + beta * (l - ref_prior(l_prev, prev_size, size, s))


class RefDraws:
    """The loop's draws, made with plain generators: per scale one categorical, then (smoothing) Exp(1) noise."""

    def __init__(self, mode: str, seeds: list[int]):
        self.mode = mode
        self.gens = [gen(seeds[0])] if mode == "batch" else [gen(s) for s in seeds]

    def draw(self, cat: torch.Tensor, smooth) -> tuple[torch.Tensor, torch.Tensor | None]:
        """cat: filtered logits (B, N, K) -> tokens (B, N), soft (B, N, K) or None."""
        B, N, K = cat.shape
        probs = cat.softmax(dim=-1)
        if self.mode == "batch":
            tokens = torch.multinomial(probs.reshape(B * N, K), 1, replacement=True, generator=self.gens[0]).view(B, N)
            E = torch.empty(B, N, K).exponential_(1, generator=self.gens[0]) if smooth else None
        else:
            tokens = torch.stack([torch.multinomial(probs[i], 1, replacement=True, generator=g).view(N)
                                  for i, g in enumerate(self.gens)])
            E = torch.stack([torch.empty(N, K).exponential_(1, generator=g) for g in self.gens]) if smooth else None
        soft = None
        if smooth:
            mult, tau = smooth
            soft = ((cat * mult - E.log()) / tau).softmax(dim=-1)
        return tokens, soft


def reference_run(bk: FakeBackend, mode: str, seeds: list[int], betas: list[float] | None = None,
                  s: SSG | None = None) -> list[dict]:
    """Per scale: l (guided), g (after SSG), tokens, soft, all computed without the loop."""
    out, prev = [], None
    draws = RefDraws(mode, seeds)
    for k, (h, w) in enumerate(bk.grid):
        l = guided_logits(k, bk.B, h * w, bk.C)  # (B, h*w, C)
        g = l
        if betas is not None and betas[k] != 0.0:
            g = ref_ssg(l, prev, betas[k], bk.grid[k - 1], (h, w), s)
        prev = l
        cat = ref_top_k(g.reshape(bk.B, h * w * bk.d, bk.K), bk.top_k[k])  # (B, N, K)
        sm = bk.smooth[k] if bk.smooth is not None else None
        tokens, soft = draws.draw(cat, sm)
        out.append({"l": l, "g": g, "tokens": tokens, "soft": soft})
    return out


# ------------------------------------------------------------------------------------------------ the loop


def test_run_visits_every_scale_in_order_and_decodes_once():
    bk = FakeBackend(top_k=TOP_K)
    rng = Rng("per-image", [0, 1], "cpu")
    calls = []
    out = loop.run(bk, rng, None, on_scale=lambda k, b: calls.append((k, b, b.preview())))
    n = len(GRID)
    main = [e for e in bk.events if e[0] in ("logits", "guide", "advance", "decode")]
    assert main == [x for k in range(n) for x in (("logits", k), ("guide", k), ("advance", k))] + [("decode",)]
    # per scale: sampling and categories once each, between guide and advance; on_scale (preview) after advance
    for k in range(n):
        i_guide, i_adv = bk.events.index(("guide", k)), bk.events.index(("advance", k))
        between = bk.events[i_guide + 1 : i_adv]
        assert sorted(between) == [("categories",), ("sampling", k)]
        assert bk.events[i_adv + 1] == ("preview",)
    assert [c[0] for c in calls] == list(range(n))
    assert all(c[1] is bk for c in calls)
    assert [c[2][0, 0, 0, 0].item() for c in calls] == [float(k + 1) for k in range(n)]  # after that scale's advance
    assert bk.events.count(("decode",)) == 1 and bk.events[-1] == ("decode",)
    assert bk.decode_rng is rng
    assert out.pixels is bk.pixels
    # advance got (B, N) int64 tokens, no soft without smoothing; run returns what advance returned
    for k, ((kk, tokens, soft), (h, w)) in enumerate(zip(bk.advanced, GRID)):
        assert kk == k and tokens.shape == (2, h * w) and tokens.dtype == torch.int64 and soft is None
    assert len(out.tokens) == n and all(a is b for a, b in zip(out.tokens, bk.returned))
    assert out.logits == []


def test_run_without_on_scale_never_previews():
    bk = FakeBackend()
    loop.run(bk, Rng("per-image", [0, 1], "cpu"))
    assert ("preview",) not in bk.events


@pytest.mark.parametrize("mode", ["per-image", "batch"])
def test_plain_generation_equals_direct_sampling_of_the_guided_logits(mode):
    seeds = [11, 12]
    bk = FakeBackend(top_k=TOP_K)
    loop.run(bk, Rng(mode, seeds, "cpu"))
    ref = reference_run(bk, mode, seeds)
    for k, r in enumerate(ref):
        assert torch.equal(bk.seen[k], r["l"])  # no SSG: categories gets the guided logits themselves
        assert torch.equal(bk.advanced[k][1], r["tokens"]), k
    assert any(not torch.equal(a[1], torch.zeros_like(a[1])) for a in bk.advanced)


@pytest.mark.parametrize("mode", ["per-image", "batch"])
def test_smoothing_draws_gumbel_noise_after_the_tokens(mode):
    seeds = [3, 4]
    smooth = [None, (1.0, 0.5), (2.0, 1.0), None, (0.5, 0.1)]  # per scale (logit multiplier, tau)
    bk = FakeBackend(top_k=TOP_K, smooth=smooth)
    loop.run(bk, Rng(mode, seeds, "cpu"))
    ref = reference_run(bk, mode, seeds)
    for k, r in enumerate(ref):
        _, tokens, soft = bk.advanced[k]
        assert torch.equal(tokens, r["tokens"]), k
        if smooth[k] is None:
            assert soft is None
        else:
            h, w = GRID[k]
            assert soft.shape == (2, h * w, 5)
            assert torch.allclose(soft, r["soft"], atol=1e-6), k
            assert torch.allclose(soft.sum(-1), torch.ones(2, h * w), atol=1e-5)
            if 0 < TOP_K[k] < 5:  # filtered categories get no soft mass either
                assert (soft[torch.isinf(ref_top_k(r["g"], TOP_K[k]))] == 0).all()


@pytest.mark.parametrize("mode", ["per-image", "batch"])
def test_soft_only_scales_mix_without_a_draw_or_a_filter(mode):
    """ScaleSampling(soft_only=True) (Switti): the Gumbel-softmax weights of the unfiltered logits times the
    multiplier, one Exp(1) draw and no categorical; the tokens are the weights' argmax. The other scales draw
    as before, from the same generators (one draw per scale in all)."""
    seeds = [5, 6]
    smooth = [None, (1.5, 1.0), (0.5, 2.0), None, None]  # taus without underflow: no weight is 0
    bk = FakeBackend(top_k=TOP_K, smooth=smooth, soft_only=[False, True, True, False, False])
    loop.run(bk, Rng(mode, seeds, "cpu"))
    gens = [gen(seeds[0])] if mode == "batch" else [gen(s) for s in seeds]
    for k, (h, w) in enumerate(GRID):
        l = guided_logits(k, 2, h * w, 5)  # (B, N, K) with d = 1
        _, tokens, soft = bk.advanced[k]
        if bk.soft_only[k]:
            mult, tau = smooth[k]
            if mode == "batch":
                E = torch.empty(2, h * w, 5).exponential_(1, generator=gens[0])
            else:
                E = torch.stack([torch.empty(h * w, 5).exponential_(1, generator=g) for g in gens])
            want = ((l * mult - E.log()) / tau).softmax(dim=-1)  # top-k ignored: every category keeps mass
            assert torch.allclose(soft, want, atol=1e-6) and (soft > 0).all(), k
            assert torch.equal(tokens, soft.argmax(dim=-1)), k
        else:
            assert soft is None
            ref = RefDraws(mode, seeds)
            ref.gens = gens
            want, _ = ref.draw(ref_top_k(l, TOP_K[k]), None)
            assert torch.equal(tokens, want), k


@pytest.mark.parametrize("s", [None, SSG(beta=0.8, scales=(1, -1)), SSG(beta=0.8, scales=(3, 3))])
def test_keep_logits_returns_the_guided_logits_before_ssg_and_filtering(s):
    bk = FakeBackend(top_k=TOP_K)
    out = loop.run(bk, Rng("per-image", [0, 1], "cpu"), s, keep_logits=True)
    assert len(out.logits) == len(GRID)
    for k, (h, w) in enumerate(GRID):
        want = guided_logits(k, 2, h * w, 5)  # (B, h*w, C)
        assert out.logits[k].shape == (2, h * w, 5) and out.logits[k].dtype == torch.float32
        assert torch.equal(out.logits[k], want)  # not SSG'd, no -inf from top-k
        ssg_here = s is not None and (k >= 1 if s.scales == (1, -1) else k == 3)
        if ssg_here:
            assert not torch.allclose(bk.seen[k], want)  # while the sampler did get SSG'd logits


# ------------------------------------------------------------------------------------------------ SSG


SSG_CASES = [  # (settings, the betas they mean on 5 scales, worked out by hand)
    (SSG(beta=0.7), [0.0, 0.0, 0.7, 0.7, 0.7]),  # default range 2..-1
    (SSG(beta=0.5, scales=(0, 2)), [0.0, 0.5, 0.5, 0.0, 0.0]),  # scale 0 in range but never guided
    (SSG(beta=(0.4, 0.3, 0.0, 0.9, 0.2), scales=(0, -1)), [0.0, 0.3, 0.0, 0.9, 0.2]),  # a gap at scale 2
    (SSG(beta="linear:1.0:0.2", scales=(1, -1), prior="bilinear"), [0.0, 1.0, 1.0 - 0.8 / 3, 1.0 - 1.6 / 3, 0.2]),
    (SSG(beta=0.6, scales=(3, 3), interp="bicubic", rescale=False), [0.0, 0.0, 0.0, 0.6, 0.0]),
    (SSG(beta=1.2, scales=(-2, -1), prior="nearest"), [0.0, 0.0, 0.0, 1.2, 1.2]),
]


@pytest.mark.parametrize("s, betas", SSG_CASES)
def test_ssg_logits_handed_to_sampling(s, betas):
    """At an active scale k the sampler gets l + beta*(l - prior(l_prev)), l_prev = scale k-1's guided logits
    (before SSG); every other scale gets l unchanged, bit for bit."""
    seeds = [21, 22]
    smooth = [(1.0, 0.5), None, (1.5, 0.7), (1.0, 1.0), (0.5, 0.3)]  # per scale (logit multiplier, tau)
    bk = FakeBackend(top_k=TOP_K, smooth=smooth)
    loop.run(bk, Rng("per-image", seeds, "cpu"), s)
    ref = reference_run(bk, "per-image", seeds, betas, s)
    for k, r in enumerate(ref):
        if betas[k] == 0.0:
            assert torch.equal(bk.seen[k], r["l"]), k
        else:
            assert torch.allclose(bk.seen[k], r["g"], atol=1e-4, rtol=1e-5), k
            assert (bk.seen[k] - r["l"]).abs().max() > 0.05  # SSG did change something here
    # tokens and soft samples come from the SSG'd, filtered logits: the same draws made on what categories received
    draws = RefDraws("per-image", seeds)
    for k in range(len(GRID)):
        tokens, soft = draws.draw(ref_top_k(bk.seen[k], TOP_K[k]), smooth[k])
        assert torch.equal(bk.advanced[k][1], tokens), k
        if smooth[k] is None:
            assert bk.advanced[k][2] is None
        else:
            assert torch.allclose(bk.advanced[k][2], soft, atol=1e-6), k


def test_ssg_uses_the_previous_logits_before_ssg():
    """Consecutive active scales: scale k's prior comes from scale k-1's l, not from its SSG'd (or filtered) g."""
    s = SSG(beta=0.9, scales=(1, -1))
    bk = FakeBackend(top_k=TOP_K)
    loop.run(bk, Rng("per-image", [0, 1], "cpu"), s)
    for k in range(2, len(GRID)):
        (h, w), prev_size = GRID[k], GRID[k - 1]
        l, l_prev = guided_logits(k, 2, h * w, 5), guided_logits(k - 1, 2, prev_size[0] * prev_size[1], 5)
        want = ref_ssg(l, l_prev, 0.9, prev_size, (h, w), s)
        assert torch.isfinite(bk.seen[k]).all()  # the previous scale's top-k -inf never leaks in
        assert torch.allclose(bk.seen[k], want, atol=1e-4, rtol=1e-5), k
        wrong = ref_ssg(l, bk.seen[k - 1], 0.9, prev_size, (h, w), s)  # from the previous SSG'd logits
        assert not torch.allclose(bk.seen[k], wrong, atol=1e-2), k


def test_ssg_with_beta_zero_changes_nothing():
    seeds = [5, 6]
    plain = FakeBackend(top_k=TOP_K, smooth=[None, (1.0, 0.7), None, None, (1.0, 0.3)])
    zero = FakeBackend(top_k=TOP_K, smooth=plain.smooth)
    a = loop.run(plain, Rng("per-image", seeds, "cpu"), None)
    b = loop.run(zero, Rng("per-image", seeds, "cpu"), SSG(beta=0.0, scales=(0, -1)))
    for k in range(len(GRID)):
        assert torch.equal(zero.seen[k], plain.seen[k])
        assert torch.equal(zero.advanced[k][1], plain.advanced[k][1])
        if plain.smooth[k] is None:
            assert zero.advanced[k][2] is None
        else:
            assert torch.equal(zero.advanced[k][2], plain.advanced[k][2])
        assert torch.equal(a.tokens[k], b.tokens[k])


def test_ssg_scale_range_outside_the_model_is_an_error():
    from ssgen.errors import ConfigError

    with pytest.raises(ConfigError, match="outside this model's scales"):
        loop.run(FakeBackend(), Rng("per-image", [0, 1], "cpu"), SSG(beta=0.5, scales=(2, 7)))


def test_ssg_on_infinity_like_bits():
    """SSG acts on the (B, h*w, C) logits before the bit view: C = 2d channels per position."""
    s = SSG(beta=0.5, scales=(1, -1))
    seeds = [7, 8]
    bk = FakeBackend(K=2, d=3)
    loop.run(bk, Rng("per-image", seeds, "cpu"), s)
    ref = reference_run(bk, "per-image", seeds, [0.0, 0.5, 0.5, 0.5, 0.5], s)
    for k, (h, w) in enumerate(GRID):
        assert bk.seen[k].shape == (2, h * w, 6)
        assert torch.allclose(bk.seen[k], ref[k]["g"], atol=1e-4, rtol=1e-5)
        assert bk.advanced[k][1].shape == (2, h * w * 3)
        assert set(bk.advanced[k][1].unique().tolist()) <= {0, 1}


# ------------------------------------------------------------------------------------------------ editing


def _edit_inputs(B, grid, d, K, masks):
    """Given tokens per scale (B, h*w*d) and keep masks per scale from `masks[k]`: None, 'all', 'none' or 'rand'."""
    g = gen(99)
    tokens, keep = [], []
    for (h, w), m in zip(grid, masks):
        tokens.append(torch.randint(0, K, (B, h * w * d), generator=g))
        if m is None:
            keep.append(None)
        elif m == "all":
            keep.append(torch.ones(B, h * w, dtype=torch.bool))
        elif m == "none":
            keep.append(torch.zeros(B, h * w, dtype=torch.bool))
        else:
            keep.append(torch.rand(B, h * w, generator=g) < 0.5)
    return Edit(tokens=tokens, keep=keep)


@pytest.mark.parametrize("d, K", [(1, 5), (3, 2)])
def test_edit_replaces_kept_positions_and_keeps_the_draws(d, K):
    seeds = [31, 32]
    smooth = [None, (1.0, 0.5), None, (1.0, 1.0), (2.0, 0.3)]
    top_k = TOP_K if K == 5 else None
    masks = [None, "rand", "all", "none", "rand"]
    plain = FakeBackend(K=K, d=d, top_k=top_k, smooth=smooth)
    loop.run(plain, Rng("per-image", seeds, "cpu"), SSG(beta=0.4, scales=(1, -1)))
    edited = FakeBackend(K=K, d=d, top_k=top_k, smooth=smooth)
    e = _edit_inputs(2, GRID, d, K, masks)
    loop.run(edited, Rng("per-image", seeds, "cpu"), SSG(beta=0.4, scales=(1, -1)), edit=e)
    for k, (h, w) in enumerate(GRID):
        _, pt, ps = plain.advanced[k]
        _, et, es = edited.advanced[k]
        assert torch.equal(edited.seen[k], plain.seen[k])  # SSG runs unchanged on the logits
        for b in range(2):
            for n in range(h * w * d):
                kept = e.keep[k] is not None and bool(e.keep[k][b, n // d])  # position n // d holds d rows
                assert et[b, n] == (e.tokens[k][b, n] if kept else pt[b, n]), (k, b, n)
                if smooth[k] is None:
                    assert es is None
                elif kept:
                    hot = [0.0] * K
                    hot[int(e.tokens[k][b, n])] = 1.0
                    assert es[b, n].tolist() == hot
                else:
                    assert torch.equal(es[b, n], ps[b, n])
    # the case is not vacuous: some kept tokens differ from the sampled ones, some positions are not kept
    assert not torch.equal(edited.advanced[4][1], plain.advanced[4][1])
    assert not e.keep[4].all() and e.keep[4].any()


def test_edit_keeping_nothing_is_plain_generation():
    seeds = [41, 42]
    smooth = [None, (1.0, 0.5), None, (1.0, 1.0), (2.0, 0.3)]
    plain = FakeBackend(top_k=TOP_K, smooth=smooth)
    a = loop.run(plain, Rng("per-image", seeds, "cpu"))
    for masks in ([None] * 5, ["none"] * 5):
        bk = FakeBackend(top_k=TOP_K, smooth=smooth)
        b = loop.run(bk, Rng("per-image", seeds, "cpu"), edit=_edit_inputs(2, GRID, 1, 5, masks))
        for k in range(len(GRID)):
            assert torch.equal(a.tokens[k], b.tokens[k])
            if smooth[k] is not None:
                assert torch.equal(plain.advanced[k][2], bk.advanced[k][2])


def test_edit_keeping_everything_gives_the_input_tokens():
    bk = FakeBackend(top_k=TOP_K, smooth=[(1.0, 0.5)] * 5)
    e = _edit_inputs(2, GRID, 1, 5, ["all"] * 5)
    out = loop.run(bk, Rng("per-image", [0, 1], "cpu"), edit=e)
    for k in range(len(GRID)):
        assert torch.equal(bk.advanced[k][1], e.tokens[k])
        assert torch.equal(bk.advanced[k][2].argmax(-1), e.tokens[k]) and (bk.advanced[k][2].sum(-1) == 1).all()
        assert torch.equal(out.tokens[k], e.tokens[k] * 10 + k)


# ------------------------------------------------------------------------------------------------ keep_input


def test_keep_input_repeats_a_position_over_its_bits():
    """Infinity-like layout: N = h*w*d, rows [p*d, (p+1)*d) belong to position p."""
    tokens = torch.zeros(1, 6, dtype=torch.int64)  # (B=1, N=h*w*d) with h*w = 2, d = 3
    given = torch.ones(1, 6, dtype=torch.int64)  # (B, N)
    keep = torch.tensor([[False, True]])  # (B, h*w)
    t, s = keep_input(tokens, None, given, keep)
    assert t.tolist() == [[0, 0, 0, 1, 1, 1]]
    assert s is None
    keep = torch.tensor([[True, False]])
    t, _ = keep_input(tokens, None, given, keep)
    assert t.tolist() == [[1, 1, 1, 0, 0, 0]]


def test_keep_input_soft_is_one_hot_at_kept_positions():
    tokens = torch.tensor([[0, 1, 1, 0], [1, 1, 0, 0]])  # (B=2, N=4): h*w = 2, d = 2, K = 2
    soft = torch.full((2, 4, 2), 0.5)  # (B, N, K)
    soft[..., 0] = 0.25
    soft[..., 1] = 0.75
    given = torch.tensor([[1, 0, 0, 1], [0, 0, 1, 1]])  # (B, N)
    keep = torch.tensor([[True, False], [False, True]])  # (B, h*w)
    t, s = keep_input(tokens, soft, given, keep)
    assert t.tolist() == [[1, 0, 1, 0], [1, 1, 1, 1]]
    assert s.tolist() == [
        [[0.0, 1.0], [1.0, 0.0], [0.25, 0.75], [0.25, 0.75]],
        [[0.25, 0.75], [0.25, 0.75], [0.0, 1.0], [0.0, 1.0]],
    ]
    assert torch.equal(tokens, torch.tensor([[0, 1, 1, 0], [1, 1, 0, 0]]))  # inputs not modified
    assert (soft[..., 1] == 0.75).all()


def test_keep_input_var_layout_one_row_per_position():
    g = gen(3)
    tokens = torch.randint(0, 7, (3, 12), generator=g)  # (B, N = h*w)
    given = torch.randint(0, 7, (3, 12), generator=g)
    keep = torch.rand(3, 12, generator=g) < 0.5  # (B, h*w)
    t, _ = keep_input(tokens, None, given, keep)
    want = [[given[b, n].item() if keep[b, n] else tokens[b, n].item() for n in range(12)] for b in range(3)]
    assert t.tolist() == want
    assert math.isclose(keep.float().mean().item(), 0.5, abs_tol=0.3)  # both kinds of positions are present
