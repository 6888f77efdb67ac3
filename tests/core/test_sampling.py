"""Unit tests of ssgen.sampling: top-k/top-p filtering, the Rng modes, Gumbel soft sampling.

Expectations are computed independently of the code under test: filtering against a per-row reference written
from the documented rule (upstream VAR's `sample_with_top_k_top_p_`), draws against plain torch generators
seeded by hand, Gumbel probabilities by hand in float64.
"""

from __future__ import annotations

import math

import pytest
import torch

from ssgen.errors import ConfigError
from ssgen.sampling import Rng, filter_top_k_top_p_, gumbel_soft

NEG = float("-inf")


def gen(seed: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def kept(t: torch.Tensor) -> list[int]:
    """Indices of a 1-D row that survived the filter (not -inf)."""
    return [i for i, v in enumerate(t.tolist()) if v != NEG]


def reference_filter(row: list[float], top_k: int, top_p: float) -> list[int]:
    """The documented rule for one row, written independently (float64, descending formulation).

    top-k: keep every value >= the k-th largest (ties with the k-th are kept), k <= 0 or k >= K: off.
    top-p: on the top-k survivors renormalised, an entry is removed when the ascending cumulative probability up
    to and including it is <= 1 - p, i.e. kept when the mass of the entries sorted above it is < p; the most
    likely entry is always kept. p <= 0 or p >= 1: off. Returns the kept indices.
    """
    K = len(row)
    alive = list(range(K))
    if 0 < top_k < K:
        kth = sorted(row, reverse=True)[top_k - 1]
        alive = [i for i in alive if row[i] >= kth]
    if 0.0 < top_p < 1.0:
        m = max(row[i] for i in alive)
        w = {i: math.exp(row[i] - m) for i in alive}
        z = sum(w.values())
        order = sorted(alive, key=lambda i: -row[i])  # descending; no ties in the rows this is used on
        above, keep = 0.0, []
        for j, i in enumerate(order):
            if j == 0 or above < top_p:
                keep.append(i)
            above += w[i] / z
        alive = sorted(keep)
    return alive


# ------------------------------------------------------------------------------------------------ top-k / top-p


def test_filter_is_in_place_and_returns_the_same_tensor():
    x = torch.tensor([[3.0, 1.0, 2.0, 0.0]])  # (1, K=4)
    out = filter_top_k_top_p_(x, top_k=2)
    assert out is x
    assert x.tolist() == [[3.0, NEG, 2.0, NEG]]


def test_filter_in_place_on_a_view_writes_through():
    base = torch.tensor([[3.0, 1.0, 2.0, 0.0, 5.0, 4.0]])  # (1, 6): viewed as (1, 3, 2)
    view = base.view(1, 3, 2)  # (B, N, K)
    filter_top_k_top_p_(view, top_k=1)
    assert base.tolist() == [[3.0, NEG, 2.0, NEG, 5.0, NEG]]


@pytest.mark.parametrize("top_k, top_p", [(0, 0.0), (-1, 0.0), (0, -0.5), (6, 0.0), (100, 0.0), (0, 1.0), (0, 1.5)])
def test_filter_off_leaves_logits_untouched(top_k, top_p):
    """k <= 0 / p <= 0 are off; k >= K keeps all K; p >= 1 keeps everything (even a ~0-probability entry)."""
    x = torch.tensor([[0.5, -1.0, 2.0, 2.0, -300.0, 7.0]])  # (1, K=6); exp(-300 - 7) underflows in float32
    before = x.clone()
    filter_top_k_top_p_(x, top_k=top_k, top_p=top_p)
    assert torch.equal(x, before)


def test_top_k_equal_to_categories_filters_nothing_but_k_minus_one_does():
    x = torch.tensor([4.0, 3.0, 2.0, 1.0])  # (K=4)
    assert kept(filter_top_k_top_p_(x.clone(), top_k=4)) == [0, 1, 2, 3]
    assert kept(filter_top_k_top_p_(x.clone(), top_k=3)) == [0, 1, 2]


def test_top_k_one_keeps_exactly_the_argmax():
    g = gen(0)
    x = torch.randn(4, 5, 17, generator=g)  # (B, N, K): continuous values, no ties
    am = x.argmax(dim=-1)  # (B, N)
    out = filter_top_k_top_p_(x.clone(), top_k=1)
    finite = torch.isfinite(out)  # (B, N, K)
    assert finite.sum(dim=-1).eq(1).all()
    assert torch.equal(finite.float().argmax(dim=-1), am)
    assert torch.equal(out.gather(-1, am[..., None]), x.gather(-1, am[..., None]))  # the kept value is unchanged


def test_top_k_keeps_every_value_tied_with_the_kth():
    """As upstream VAR: the threshold is the k-th largest value and only values strictly below it are removed."""
    x = torch.tensor([2.0, 3.0, 2.0, 1.0, 2.0, 0.0])  # (K=6): sorted 3, 2, 2, 2, 1, 0
    assert kept(filter_top_k_top_p_(x.clone(), top_k=2)) == [0, 1, 2, 4]  # 4 kept for k=2
    assert kept(filter_top_k_top_p_(x.clone(), top_k=4)) == [0, 1, 2, 4]
    assert kept(filter_top_k_top_p_(x.clone(), top_k=5)) == [0, 1, 2, 3, 4]
    tied_top = torch.tensor([5.0, 1.0, 5.0, 0.0])  # (K=4): two maxima
    assert kept(filter_top_k_top_p_(tied_top, top_k=1)) == [0, 2]


def test_top_k_with_minus_inf_and_large_logits():
    x = torch.tensor([[NEG, NEG, 5.0, 3.0, 1.0],  # fewer finite values than k: the -inf ones stay -inf, the rest stay
                      [1e30, -1e30, 3e38, NEG, 0.0]])  # (2, K=5): extreme finite values
    out = filter_top_k_top_p_(x.clone(), top_k=4)
    assert out[0].tolist() == [NEG, NEG, 5.0, 3.0, 1.0]
    assert out[1].tolist() == x[1].tolist()
    out = filter_top_k_top_p_(x.clone(), top_k=2)
    assert kept(out[0]) == [2, 3]
    assert kept(out[1]) == [0, 2]


def _log(ps: list[float]) -> torch.Tensor:
    return torch.tensor([math.log(p) for p in ps])


@pytest.mark.parametrize("top_p, expect", [
    (0.45, [0]),  # the top entry alone holds 0.5 >= 0.45
    (0.6, [0, 1]),  # 0.5 above the second < 0.6
    (0.85, [0, 1, 2]),  # 0.8 above the third < 0.85
    (0.97, [0, 1, 2, 3]),  # 0.95 above the last < 0.97
])
def test_top_p_nucleus(top_p, expect):
    x = _log([0.5, 0.3, 0.15, 0.05])  # (K=4)
    assert kept(filter_top_k_top_p_(x.clone(), top_p=top_p)) == expect
    assert reference_filter(x.tolist(), 0, top_p) == expect
    shuffled = x[[2, 0, 3, 1]]  # (K=4): the same distribution in another order
    back = {0: 1, 1: 3, 2: 0, 3: 2}  # original index -> position in `shuffled`
    assert kept(filter_top_k_top_p_(shuffled, top_p=top_p)) == sorted(back[i] for i in expect)


@pytest.mark.parametrize("top_p", [1e-9, 1e-6, 0.01])
def test_tiny_top_p_keeps_only_the_top_category(top_p):
    g = gen(1)
    x = torch.randn(3, 8, 11, generator=g) * 4  # (B, N, K): no ties
    out = filter_top_k_top_p_(x.clone(), top_p=top_p)
    finite = torch.isfinite(out)  # (B, N, K)
    assert finite.sum(dim=-1).eq(1).all()
    assert torch.equal(finite.float().argmax(dim=-1), x.argmax(dim=-1))


def test_tiny_top_p_keeps_one_of_tied_maxima():
    """The nucleus is cut in sort order: of two equal maxima (mass 0.5 each) only one survives a small p."""
    x = torch.tensor([[5.0, -20.0, 5.0]])  # (1, K=3)
    out = filter_top_k_top_p_(x, top_p=0.3)
    assert kept(out[0]) in ([0], [2])
    assert kept(filter_top_k_top_p_(torch.tensor([5.0, -20.0, 5.0]), top_p=0.6)) == [0, 2]


def test_top_p_applies_to_the_top_k_survivors_renormalised():
    """p = 0.5 alone keeps {0.4, 0.3}; after top-k = 2 the two renormalise to (0.57, 0.43) and 0.57 >= 0.5."""
    x = _log([0.4, 0.3, 0.2, 0.1])  # (K=4)
    assert kept(filter_top_k_top_p_(x.clone(), top_p=0.5)) == [0, 1]
    assert kept(filter_top_k_top_p_(x.clone(), top_k=2, top_p=0.5)) == [0]
    assert kept(filter_top_k_top_p_(x.clone(), top_k=3, top_p=0.7)) == [0, 1]  # (0.44, 0.33, 0.22): 0.44 < 0.7
    assert reference_filter(x.tolist(), 2, 0.5) == [0]
    assert reference_filter(x.tolist(), 3, 0.7) == [0, 1]


def test_top_p_with_large_and_minus_inf_logits():
    x = torch.tensor([[1000.0, 999.0, -1000.0, NEG],  # softmax (0.731, 0.269, 0, 0): stable at this magnitude
                      [NEG, NEG, NEG, 2.0]])  # (2, K=4): a single finite entry is always kept
    out = filter_top_k_top_p_(x.clone(), top_p=0.5)
    assert kept(out[0]) == [0] and kept(out[1]) == [3]
    out = filter_top_k_top_p_(x.clone(), top_p=0.8)
    assert kept(out[0]) == [0, 1] and kept(out[1]) == [3]
    assert out[0, 0].item() == 1000.0 and out[0, 1].item() == 999.0  # survivors keep their values


@pytest.mark.parametrize("top_k, top_p", [(0, 0.3), (0, 0.7), (0, 0.9), (3, 0.0), (5, 0.8), (9, 0.95), (1, 0.5)])
def test_filter_rows_independently_against_reference(top_k, top_p):
    g = gen(2)
    x = torch.randn(3, 5, 9, generator=g) * torch.tensor([0.5, 2.0, 4.0])[:, None, None]  # (B, N, K): rows differ
    out = filter_top_k_top_p_(x.clone(), top_k=top_k, top_p=top_p)
    for b in range(3):
        for n in range(5):
            row = x[b, n].double().tolist()
            want = reference_filter(row, top_k, top_p)
            assert kept(out[b, n]) == want, (b, n)
            assert out[b, n, want].tolist() == x[b, n, want].tolist()  # kept values unchanged
    # the batch result equals each row filtered alone: no leakage across rows
    for b in range(3):
        alone = filter_top_k_top_p_(x[b : b + 1].clone(), top_k=top_k, top_p=top_p)  # (1, N, K)
        assert torch.equal(alone[0], out[b])


def test_filter_works_on_two_dimensional_logits():
    x = torch.tensor([[1.0, 4.0, 2.0], [9.0, 0.0, 8.0]])  # (rows, K=3)
    out = filter_top_k_top_p_(x, top_k=2)
    assert out.tolist() == [[NEG, 4.0, 2.0], [9.0, NEG, 8.0]]


# ------------------------------------------------------------------------------------------------ Rng


def test_unknown_mode_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown rng mode"):
        Rng("global", [0], "cpu")


def test_batch_mode_holds_one_generator_per_image_mode_one_per_seed():
    assert len(Rng("batch", [3, 4, 5], "cpu").gens) == 1
    assert len(Rng("per-image", [3, 4, 5], "cpu").gens) == 3


def _probs(B: int, n: int, K: int, seed: int) -> torch.Tensor:
    return torch.rand(B, n, K, generator=gen(seed)).add_(0.05).softmax(dim=-1)  # (B, n, K)


def test_categorical_shape_and_dtype():
    p = _probs(3, 7, 5, 0)  # (B, n, K)
    for mode in ("per-image", "batch"):
        t = Rng(mode, [10, 11, 12], "cpu").categorical(p)  # (B, n)
        assert t.shape == (3, 7) and t.dtype == torch.int64
        assert 0 <= t.min() and t.max() < 5


def test_categorical_never_picks_a_zero_probability_category():
    p = torch.zeros(2, 50, 6)  # (B, n, K)
    p[..., 1] = 0.3
    p[..., 4] = 0.7
    for mode in ("per-image", "batch"):
        t = Rng(mode, [0, 1], "cpu").categorical(p)  # (B, n)
        assert set(t.unique().tolist()) <= {1, 4}


def test_per_image_draws_equal_a_batch_of_one_with_that_seed():
    seeds = [101, 7, 55]
    p = _probs(3, 40, 9, 1)  # (B, n, K)
    rng = Rng("per-image", seeds, "cpu")
    first, second = rng.categorical(p), rng.categorical(p)  # (B, n) twice: the generators advance
    assert not torch.equal(first, second)
    for i, s in enumerate(seeds):
        one = Rng("per-image", [s], "cpu")
        assert torch.equal(one.categorical(p[i : i + 1])[0], first[i])
        assert torch.equal(one.categorical(p[i : i + 1])[0], second[i])
        g = gen(s)  # the same with a plain generator, one multinomial per scale
        assert torch.equal(torch.multinomial(p[i], 1, replacement=True, generator=g).view(-1), first[i])
        assert torch.equal(torch.multinomial(p[i], 1, replacement=True, generator=g).view(-1), second[i])


def test_per_image_draws_do_not_depend_on_neighbours_or_order():
    p = _probs(3, 30, 6, 2)  # (B, n, K)
    a = Rng("per-image", [1, 2, 3], "cpu").categorical(p)  # (B, n)
    rev = Rng("per-image", [3, 2, 1], "cpu").categorical(p.flip(0))  # the batch in reverse order
    assert torch.equal(rev.flip(0), a)
    other = p.clone()
    other[0] = other[0].flip(-1)  # a different neighbour
    b = Rng("per-image", [1, 2, 3], "cpu").categorical(other)
    assert torch.equal(b[1:], a[1:])


def test_batch_mode_is_one_multinomial_over_the_flattened_rows():
    """Upstream: one generator seeded with the first seed, torch.multinomial over (B*n, K)."""
    seeds = [42, 43, 44]
    p = _probs(3, 20, 7, 3)  # (B, n, K)
    rng = Rng("batch", seeds, "cpu")
    g = gen(42)
    for _ in range(2):  # the generator carries over from scale to scale
        want = torch.multinomial(p.reshape(-1, 7), 1, replacement=True, generator=g).view(3, 20)  # (B, n)
        assert torch.equal(rng.categorical(p), want)


def test_batch_mode_ignores_the_other_seeds_and_per_image_differs_from_image_one_on():
    p = _probs(2, 64, 8, 4)  # (B, n, K)
    a = Rng("batch", [5, 6], "cpu").categorical(p)
    b = Rng("batch", [5, 999], "cpu").categorical(p)
    assert torch.equal(a, b)
    per = Rng("per-image", [5, 6], "cpu").categorical(p)
    # image 0 consumes the first n*K exponentials of seed 5's generator in both modes; image 1 does not
    assert torch.equal(per[0], a[0])
    assert not torch.equal(per[1], a[1])


def test_batch_mode_consumes_exponentials_in_row_order():
    """torch.multinomial(p, 1) draws one Exp(1) per entry of the (B*n, K) matrix and picks argmax p / q."""
    p = _probs(2, 10, 5, 5)  # (B, n, K)
    t = Rng("batch", [9], "cpu").categorical(p)  # (B, n)
    g = gen(9)
    q = torch.empty(20, 5).exponential_(1, generator=g)  # (B*n, K)
    assert torch.equal(t, (p.reshape(20, 5) / q).argmax(dim=-1).view(2, 10))


@pytest.mark.parametrize("mode", ["per-image", "batch"])
def test_same_seed_twice_gives_identical_draws(mode):
    p = _probs(2, 16, 4, 6)  # (B, n, K)
    like = torch.zeros(2, 3, 4)  # (B, ...)
    outs = []
    for _ in range(2):
        r = Rng(mode, [8, 9], "cpu")
        outs.append((r.categorical(p), r.exponential(like), r.normal((2, 3, 4)), r.categorical(p)))
    for x, y in zip(*outs):
        assert torch.equal(x, y)


def test_exponential_per_image_and_batch():
    like = torch.zeros(3, 4, 5, dtype=torch.float64)  # (B, ...)
    seeds = [20, 21, 22]
    e = Rng("per-image", seeds, "cpu").exponential(like)
    assert e.shape == like.shape and e.dtype == torch.float64 and (e > 0).all()
    for i, s in enumerate(seeds):
        assert torch.equal(e[i], torch.empty(4, 5, dtype=torch.float64).exponential_(1, generator=gen(s)))
    eb = Rng("batch", seeds, "cpu").exponential(like)
    assert torch.equal(eb, torch.empty(3, 4, 5, dtype=torch.float64).exponential_(1, generator=gen(20)))


def test_normal_per_image_and_batch():
    seeds = [30, 31]
    x = Rng("per-image", seeds, "cpu").normal((2, 6, 3))  # (B, ...)
    assert x.shape == (2, 6, 3) and x.dtype == torch.float32
    for i, s in enumerate(seeds):
        assert torch.equal(x[i], torch.randn(6, 3, generator=gen(s)))
    xb = Rng("batch", seeds, "cpu").normal((2, 6, 3), dtype=torch.float64)
    assert xb.dtype == torch.float64
    assert torch.equal(xb, torch.randn(2, 6, 3, generator=gen(30), dtype=torch.float64))


@pytest.mark.parametrize("mode", ["per-image", "batch"])
def test_stream_is_a_second_set_of_generators_seeded_the_same_way(mode):
    seeds = [40, 41]
    p = _probs(2, 12, 6, 7)  # (B, n, K)
    rng = Rng(mode, seeds, "cpu")
    s = rng.stream()
    assert s is not rng and s.mode == mode and s.seeds == seeds and s.device == rng.device
    assert all(a is not b for a, b in zip(s.gens, rng.gens))
    fresh = Rng(mode, seeds, "cpu")
    want = fresh.categorical(p), fresh.normal((2, 5))
    n1 = s.normal((2, 5))  # drawing from the stream first ...
    assert torch.equal(rng.categorical(p), want[0])  # ... leaves the main generators where they were
    assert torch.equal(rng.normal((2, 5)), want[1])
    assert torch.equal(n1, Rng(mode, seeds, "cpu").normal((2, 5)))  # the stream starts at the seeds
    assert rng.stream("cpu").device == torch.device("cpu")


def test_categorical_frequencies_match_the_probabilities():
    """20k draws from a fixed 3-category distribution: each frequency within 0.02 (about 5 sigma) of p."""
    probs = torch.tensor([0.2, 0.5, 0.3])
    p = probs.expand(1, 20000, 3).contiguous()  # (B=1, n, K)
    for mode in ("per-image", "batch"):
        t = Rng(mode, [1234], "cpu").categorical(p)  # (1, n)
        freq = torch.bincount(t.view(-1), minlength=3).double() / t.numel()
        assert torch.allclose(freq, probs.double(), atol=0.02), (mode, freq)


# ------------------------------------------------------------------------------------------------ Gumbel


def test_gumbel_soft_rows_are_probability_vectors():
    logits = torch.randn(2, 6, 5, generator=gen(3)) * 3  # (B, N, K)
    logits[0, 0, 1] = NEG  # a filtered entry
    for tau in (0.1, 1.0, 3.0):
        s = gumbel_soft(logits, tau, Rng("per-image", [1, 2], "cpu"))  # (B, N, K)
        assert s.shape == logits.shape
        assert (s >= 0).all() and torch.isfinite(s).all()
        assert torch.allclose(s.sum(dim=-1), torch.ones(2, 6), atol=1e-5)
        assert s[0, 0, 1] == 0.0  # a -inf logit gets no mass


@pytest.mark.parametrize("mode", ["per-image", "batch"])
def test_gumbel_soft_is_deterministic_given_the_generator(mode):
    logits = torch.randn(2, 4, 6, generator=gen(4))  # (B, N, K)
    a = gumbel_soft(logits, 0.7, Rng(mode, [11, 12], "cpu"))
    b = gumbel_soft(logits, 0.7, Rng(mode, [11, 12], "cpu"))
    c = gumbel_soft(logits, 0.7, Rng(mode, [13, 14], "cpu"))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_lower_tau_concentrates_the_mass():
    logits = torch.randn(2, 30, 8, generator=gen(5))  # (B, N, K)

    def entropy(s):  # (B, N, K) -> (B, N)
        return -(s * s.clamp_min(1e-30).log()).sum(-1)

    hot = gumbel_soft(logits, 2.0, Rng("per-image", [0, 1], "cpu"))
    cold = gumbel_soft(logits, 0.02, Rng("per-image", [0, 1], "cpu"))  # the same noise
    assert (cold.amax(-1) >= hot.amax(-1)).all()
    assert (entropy(cold) < entropy(hot)).all()
    assert torch.equal(cold.argmax(-1), hot.argmax(-1))  # the same noise ranks the categories alike
    assert cold.amax(-1).mean() > 0.95 and hot.amax(-1).mean() < 0.6


@pytest.mark.parametrize("mode", ["per-image", "batch"])
def test_gumbel_soft_matches_the_formula_by_hand(mode):
    """softmax((logits + g) / tau), g = -log(E), E ~ Exp(1) from the image's generator (batch: the one generator)."""
    logits = torch.tensor([[[1.0, 0.0, -1.0], [0.5, 2.0, NEG]],
                           [[0.0, 0.0, 0.0], [-3.0, 1.0, 3.0]]])  # (B=2, N=2, K=3)
    tau = 0.5
    seeds = [77, 78]
    got = gumbel_soft(logits, tau, Rng(mode, seeds, "cpu"))
    if mode == "per-image":
        E = torch.stack([torch.empty(2, 3).exponential_(1, generator=gen(s)) for s in seeds])  # (B, N, K)
    else:
        E = torch.empty(2, 2, 3).exponential_(1, generator=gen(seeds[0]))  # (B, N, K)
    for b in range(2):
        for n in range(2):
            z = [(logits[b, n, j].item() - math.log(E[b, n, j].item())) / tau for j in range(3)]
            m = max(z)
            w = [math.exp(v - m) for v in z]
            want = torch.tensor([v / sum(w) for v in w], dtype=torch.float32)
            assert torch.allclose(got[b, n], want, atol=1e-6), (b, n)


def test_gumbel_argmax_follows_the_categorical_distribution():
    """argmax(logits + Gumbel) ~ Categorical(softmax(logits)): the soft sample's mode lands with probability p."""
    probs = torch.tensor([0.2, 0.5, 0.3])
    logits = probs.log().expand(1, 20000, 3).contiguous()  # (B=1, n, K)
    s = gumbel_soft(logits, 1.0, Rng("per-image", [4321], "cpu"))  # (1, n, K)
    freq = torch.bincount(s.argmax(-1).view(-1), minlength=3).double() / 20000
    assert torch.allclose(freq, probs.double(), atol=0.02), freq


def test_per_image_draws_need_one_row_per_image():
    """Per-image mode never drops or invents rows: a row count other than the number of seeds is an error."""
    rng = Rng("per-image", [1, 2], "cpu")
    with pytest.raises(ValueError, match="2 images asked for 3 rows"):
        rng.categorical(torch.full((3, 4, 5), 0.2))
    with pytest.raises(ValueError, match="2 images asked for 5 rows"):
        rng.normal((5, 3))
    with pytest.raises(ValueError, match="2 images asked for 1 rows"):
        rng.exponential(torch.zeros(1, 3))
