"""FID, sFID, Inception Score, precision and recall, computed as OpenAI's ADM evaluator computes them.

Published ImageNet tables (ADM, VAR, the SSG paper, ...) report the numbers of `evaluations/evaluator.py` of
openai/guided-diffusion (commit 22e0df8). This module recomputes them from Inception features with the same
arithmetic, including the parts that move the last digits: float32 means and float64 covariances, scipy's
matrix square root with its fallback, IS as the mean of per-split scores, and the float16 distances of the
precision/recall manifolds. It does not run Inception; the features come in as arrays:
- pool: `pool_3`, (N, 2048), for FID, IS and precision/recall;
- spatial: `mixed_6/conv[..., :7]` flattened row-major (17x17x7 HWC), (N, 2023), for sFID;
- the IS weight: the graph's `softmax/logits/MatMul` weight, (2048, 1008).

Inputs may be numpy arrays or torch tensors (torch is not imported here); results are Python floats.
Checked against numbers made by the official evaluator: tests/core/test_metrics.py.

    >>> mu_s, sigma_s = feature_stats(sample_pool)                  # (2048,) float32, (2048, 2048) float64
    >>> mu_r, sigma_r = feature_stats(ref_pool)
    >>> fid = frechet_distance(mu_s, sigma_s, mu_r, sigma_r)         # ADM's order: the sample first
    >>> precision, recall = precision_recall(ref_pool, sample_pool)  # ADM's order: the reference first
"""

from __future__ import annotations

import warnings

import numpy as np

from .errors import SSGenError

# ADM's settings (Evaluator, ManifoldEstimator, compute_inception_score)
SOFTMAX_BATCH = 512  # rows per softmax call: changes only the float rounding of the logits
IS_SPLIT = 5000  # samples per Inception Score split
BLOCK = 10000  # rows and columns per distance block; one block falls back to float32 as a whole

F16, F32 = np.float16, np.float32


def _to_numpy(x) -> np.ndarray:
    """A numpy array from a numpy array or a torch tensor (moved to the CPU; bfloat16, which numpy lacks, as
    float32)."""
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().cpu()
        if str(x.dtype) == "torch.bfloat16":
            x = x.float()
        x = x.numpy()
    return np.asarray(x)


def _features(x, name: str) -> np.ndarray:
    """Feature rows (N, D) as float32: what ADM's float32 TF placeholders turn them into."""
    a = _to_numpy(x)
    if a.ndim != 2:
        raise ValueError(f"{name}: expected features of shape (N, D), got {a.shape}")
    return np.ascontiguousarray(a, dtype=F32)


# ----------------------------------------------------------------------------------------------
# FID and sFID
# ----------------------------------------------------------------------------------------------


def feature_stats(features) -> tuple[np.ndarray, np.ndarray]:
    """The mean (D,) and covariance (D, D) of features (N, D), as ADM's `compute_statistics`.

    `np.mean(features, axis=0)` keeps the features' dtype (float32 features give a float32 mean: rows summed in
    order in float32) and `np.cov(features, rowvar=False)` is float64 (normalised by N - 1). ssgen uses the same
    two calls because the FID depends on these roundings in its last digits.
    """
    x = _to_numpy(features)  # (N, D)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"feature_stats: expected features of shape (N >= 2, D), got {x.shape}")
    mu = np.mean(x, axis=0)  # (D,)
    sigma = np.cov(x, rowvar=False)  # (D, D) float64
    return mu, sigma


def _sqrtm(a: np.ndarray) -> np.ndarray:
    """scipy.linalg.sqrtm(a): real or complex (D, D). Called without `disp` (deprecated since SciPy 1.16): the
    matrix is the same either way."""
    try:
        from scipy import linalg
    except ImportError as e:
        raise SSGenError("FID and sFID need scipy (ADM's matrix square root): pip install 'ssgen[eval]'") from e
    return linalg.sqrtm(a)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6, *, force_eps: bool = False) -> float:
    """The Fréchet distance between two Gaussians: FID on pool features, sFID on spatial features.

    `|mu1 - mu2|^2 + tr(sigma1) + tr(sigma2) - 2 tr(sqrtm(sigma1 sigma2))`, computed as ADM's
    `FIDStatistics.frechet_distance` (itself from TTUR's fid.py), step by step:
    - `sqrtm(sigma1 @ sigma2)` with scipy;
    - if that result has a non-finite entry, a warning and `sqrtm((sigma1 + eps I) @ (sigma2 + eps I))` instead
      (a fallback for old SciPy versions that returned NaN on singular products; current SciPy does not);
    - a complex result keeps its real part if the imaginary part of its diagonal is within 1e-3 of 0
      (`np.allclose(..., atol=1e-3)`), else ValueError ("Imaginary component ...");
    - the sum in ADM's order, with `diff.dot(diff)` in the means' dtype (float32 for `feature_stats` of float32
      features).
    ADM's `main()` passes the sample statistics first (sigma1 = sample) and the reference second; the order
    changes the result only by float rounding.

    `force_eps=True` skips the first sqrtm and takes the eps branch directly: for tests of that branch.
    """
    mu1 = np.atleast_1d(_to_numpy(mu1))  # (D,)
    mu2 = np.atleast_1d(_to_numpy(mu2))
    sigma1 = np.atleast_2d(_to_numpy(sigma1))  # (D, D)
    sigma2 = np.atleast_2d(_to_numpy(sigma2))
    if mu1.shape != mu2.shape:
        raise ValueError(f"frechet_distance: mean vectors have different lengths: {mu1.shape}, {mu2.shape}")
    if sigma1.shape != sigma2.shape:
        raise ValueError(f"frechet_distance: covariances have different dimensions: {sigma1.shape}, {sigma2.shape}")

    diff = mu1 - mu2  # (D,)
    covmean = None if force_eps else _sqrtm(sigma1.dot(sigma2))  # (D, D), the product may be almost singular
    if covmean is None or not np.isfinite(covmean).all():
        warnings.warn(f"fid calculation produces singular product; adding {eps} to diagonal of cov estimates",
                      RuntimeWarning, stacklevel=2)
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = _sqrtm((sigma1 + offset).dot(sigma2 + offset))

    if np.iscomplexobj(covmean):  # numerical error may leave a small imaginary component
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"frechet_distance: imaginary component {np.max(np.abs(covmean.imag))}")
        covmean = covmean.real

    tr_covmean = np.trace(covmean)
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean)


def frechet_distance_few(sample, mu2, sigma2) -> float:
    """The Fréchet distance of a sample set with fewer images than feature dimensions (N < D) to (mu2, sigma2):
    the same quantity as `frechet_distance(*feature_stats(sample), mu2, sigma2)` without a (D, D) matrix root.

    With A the centered features (N, D) and sigma1 = A^T A / (N - 1), the non-zero eigenvalues of
    sigma1 sigma2 are those of the symmetric (N, N) matrix A sigma2 A^T / (N - 1), so
    tr(sqrtm(sigma1 sigma2)) is the sum of their square roots: O(N D^2) instead of scipy's O(D^3) Schur
    method (a 2048-dim sqrtm takes 15-100 s on 2 cores; this takes well under a second for a few hundred
    images). Such a set is a quick look, never a published FID (those use 50,000 images, where ssgen.eval
    takes ADM's `frechet_distance` as it is); on the official evaluator's rank-deficient case (800 samples)
    it agrees with ADM's values within 4e-6 relative (tests/core/test_metrics.py)."""
    x = _to_numpy(sample)  # (N, D)
    mu1 = np.mean(x, axis=0)  # (D,) in the features' dtype, as feature_stats
    mu2, sigma2 = np.atleast_1d(_to_numpy(mu2)), np.atleast_2d(_to_numpy(sigma2))
    if x.ndim != 2 or len(x) < 2 or mu1.shape != mu2.shape or sigma2.shape != (mu2.size, mu2.size):
        raise ValueError(f"frechet_distance_few: features {x.shape} do not fit statistics of {mu2.shape}")
    n = len(x)
    a = x.astype(np.float64) - x.astype(np.float64).mean(axis=0)  # (N, D), centered as np.cov does
    m = a @ sigma2 @ a.T / (n - 1)  # (N, N), symmetric positive semi-definite
    eig = np.linalg.eigvalsh((m + m.T) / 2)  # (N,)
    tr_covmean = np.sqrt(np.clip(eig, 0, None)).sum()
    tr_sigma1 = float((a * a).sum()) / (n - 1)
    diff = mu1 - mu2
    return float(diff.dot(diff) + tr_sigma1 + np.trace(sigma2) - 2 * tr_covmean)


# ----------------------------------------------------------------------------------------------
# Inception Score
# ----------------------------------------------------------------------------------------------


def _softmax(pool: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """softmax(pool @ weight) in float32, in ADM's batches of 512 rows: (N, 2048), (2048, C) -> (N, C)."""
    out = []
    for i in range(0, len(pool), SOFTMAX_BATCH):
        logits = pool[i : i + SOFTMAX_BATCH] @ weight  # (b, C) float32
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        out.append(e / e.sum(axis=1, keepdims=True))
    return np.concatenate(out, axis=0)


def inception_score(pool, weight, split_size: int = IS_SPLIT) -> float:
    """The Inception Score of pool features (N, 2048) with the classifier weight (2048, C), as ADM computes it.

    ADM's `compute_inception_score`: p(y|x) = softmax(pool @ weight) in float32 (TF, batches of 512), then for
    each split of `split_size` consecutive rows (the last one may be shorter) the score
    exp(mean_x KL(p(y|x) || p(y))) with p(y) the split's mean, all in float32 numpy; the result is the plain mean
    of the per-split scores (not exp of a mean KL, and no standard deviation). With fewer than 5000 samples this
    is one split. ssgen follows it so the numbers compare with published tables.
    """
    x = _features(pool, "inception_score pool")  # (N, 2048)
    w = np.ascontiguousarray(_to_numpy(weight), dtype=F32)  # (2048, C)
    if w.ndim != 2 or x.shape[1] != w.shape[0]:
        raise ValueError(f"inception_score: pool {x.shape} and weight {w.shape} do not multiply")
    preds = _softmax(x, w)  # (N, C) float32
    scores = []
    for i in range(0, len(preds), split_size):
        part = preds[i : i + split_size]  # (n, C)
        kl = part * (np.log(part) - np.log(np.mean(part, axis=0, keepdims=True)))  # (n, C)
        scores.append(np.exp(np.mean(np.sum(kl, axis=1))))
    return float(np.mean(scores))


# ----------------------------------------------------------------------------------------------
# Precision and recall (ADM's ManifoldEstimator and DistanceBlock, after Kynkäänniemi et al. 2019)
# ----------------------------------------------------------------------------------------------
#
# ADM computes squared distances D = max(|u|^2 - 2 u.v + |v|^2, 0) in a TF graph, in float16 first. Only when a
# block has a non-finite entry is that whole block recomputed in float32. Radii and memberships are compared on
# the float16 grid with `<=`, where ties are common, so the float16 rounding of each step decides a few points.
# Below is that arithmetic as TF runs it on an x86 CPU: values live in float32 arrays, and `_round` puts them on
# the float16 grid after every float16 operation. A float16 sum or difference computed in float32 and then
# rounded is the correctly rounded float16 result (24 >= 2 * 11 + 2 bits), which is what Eigen does.


def _round(a: np.ndarray, half: bool) -> np.ndarray:
    """In place: round a float32 array to the nearest float16 (ties to even; beyond 65504: inf), when `half`."""
    if half:
        a[...] = a.astype(F16)
    return a


def _eigen_sum(sq: np.ndarray, first: int, half: bool) -> np.ndarray:
    """Row sums (R,) of (R, n) values, in the order and precision of Eigen's vectorised inner-most reduction.

    What TF's `reduce_sum(x, 1)` runs on the CPU (Eigen's InnerMostDimReducer with 8-lane packets, AVX):
    - more than 8 * leaf values (leaf: 200 for float16, 1024 for float32) are split in two at the packet
      boundary after the middle (counted from the row's flat index `first`), each half summed the same way and
      the two added: for 2048 float16 values, [0, 1024) + [1024, 2048);
    - otherwise 4 accumulators of 8 lanes take 32 values per round (value j goes to accumulator (j // 8) % 4,
      lane j % 8), then are added as ((a0 + a1) + a2) + a3; whole packets left over go to a0, single values left
      over to a scalar;
    - the 8 lanes are summed in float32 ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)) and rounded, then the scalar added.
    For float16 every addition is rounded to float16: this reproduces TF's float16 norms bit for bit, where a
    correctly rounded sum does not.
    """
    rows, n = sq.shape
    leaf = 200 if half else 1024
    if n > 8 * leaf:
        split = 8 * -(-(first + -(-n // 2)) // 8)  # the packet boundary at or after the middle
        left = min(split - first, n)
        total = _eigen_sum(sq[:, :left], first, half)
        if left < n:
            total = _round(total + _eigen_sum(sq[:, left:], split, half), half)
        return total

    acc = np.zeros((rows, 8), F32)  # (R, 8): accumulator 0
    start = 0
    if n >= 32:
        n4 = n // 32 * 32
        packets = sq[:, :n4].reshape(rows, n4 // 32, 4, 8)  # (R, rounds, accumulator, lane)
        accs = np.zeros((rows, 4, 8), F32)
        for t in range(packets.shape[1]):
            accs = _round(accs + packets[:, t], half)
        acc = accs[:, 0]
        for k in (1, 2, 3):
            acc = _round(acc + accs[:, k], half)
        start = n4
    for j in range(start, n // 8 * 8, 8):
        acc = _round(acc + sq[:, j : j + 8], half)
    scalar = np.zeros(rows, F32)  # (R,)
    for j in range(n // 8 * 8, n):
        scalar = _round(scalar + sq[:, j], half)
    h = acc[:, :4] + acc[:, 4:]  # (R, 4): lanes (0+4, 1+5, 2+6, 3+7), float32
    lanes = _round((h[:, 0] + h[:, 2]) + (h[:, 1] + h[:, 3]), half)  # (R,)
    return _round(scalar + lanes, half)


class _Points:
    """One feature set as ADM's DistanceBlock sees it: float32 rows, their float16 values, squared norms."""

    def __init__(self, x: np.ndarray, half: bool):
        self.x = x  # (N, D) float32
        self.h = x.astype(F16).astype(F32) if half else None  # (N, D) float32 on the float16 grid: tf.cast(U, f16)
        self._norms: dict[tuple[int, bool], np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.x)

    def norms(self, batch: int, half: bool) -> np.ndarray:
        """reduce_sum(square(U), 1) (N,) of every block of `batch` rows, as TF computes it in the graph.

        Eigen's split point depends on where a row starts in the block's flat buffer (row i: i * D), so rows are
        summed in groups of equal (i * D) % 8; with D a multiple of 8 (2048) that is one group."""
        key = (batch, half)
        if key not in self._norms:
            x = self.h if half else self.x
            n, d = x.shape
            step = 1 if d % 8 == 0 else 8
            out = np.empty(n, F32)  # (N,)
            for start in range(0, n, batch):
                block = x[start : start + batch]  # (r, D)
                sq = _round(block * block, half)  # tf.square: each square rounded to float16
                for r in range(step):
                    out[start + r : start + len(block) : step] = _eigen_sum(sq[r::step], (r * d) % 8, half)
            self._norms[key] = out
        return self._norms[key]


def _sq_distances(u: np.ndarray, v: np.ndarray, nu: np.ndarray, nv: np.ndarray, half: bool) -> np.ndarray:
    """max((|u|^2 - 2 u.v) + |v|^2, 0): (r, D), (c, D), (r,), (c,) -> (r, c) float32, as ADM's graph.

    In float16 (`half`): the matrix product accumulates in float32 and is rounded once to float16 (TF's CPU
    matmul for float16 does the same, up to its summation order: the two agree on about 99.99 % of entries);
    then every step is rounded to float16. Otherwise everything is float32.
    """
    d = u @ v.T  # (r, c) float32
    _round(d, half)
    d *= -2.0  # exact (or inf beyond the float16 range)
    d += nu[:, None]
    _round(d, half)
    d += nv[None, :]
    _round(d, half)
    np.maximum(d, 0.0, out=d)  # NaN stays NaN, as in TF
    return d


def _distance_block(a: _Points, rows: slice, b: _Points, cols: slice, row_batch: int, col_batch: int,
                    fp16: bool) -> np.ndarray:
    """ADM's DistanceBlock.pairwise_distances(a[rows], b[cols]): (r, c) float32 squared L2 distances.

    float16 first; if any entry of the block is not finite (an overflow past 65504), the whole block again in
    float32, as the graph's `tf.cond` does."""
    if fp16:
        with np.errstate(over="ignore", invalid="ignore"):  # float16 overflow is what the check below catches
            d = _sq_distances(a.h[rows], b.h[cols], a.norms(row_batch, True)[rows], b.norms(col_batch, True)[cols],
                              half=True)
        if np.isfinite(d).all():
            return d
    return _sq_distances(a.x[rows], b.x[cols], a.norms(row_batch, False)[rows], b.norms(col_batch, False)[cols],
                         half=False)


def _blocks(n: int, size: int) -> list[slice]:
    """Consecutive slices of at most `size` rows covering range(n)."""
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def _manifold_radii(p: _Points, k: int, row_batch: int, col_batch: int, fp16: bool) -> np.ndarray:
    """The squared distance from each point to its k-th nearest neighbour: (N,) float32.

    ADM's `manifold_radii` with nhood k: `np.partition` of each point's row of distances, the point itself
    included, then element k, i.e. the k-th neighbour besides the point itself (its own distance is 0 or a float16
    rounding above). ADM holds (row_batch, N) distances at once; here each row keeps only its k + 1 smallest
    distances between column blocks, which selects the same value with memory bounded by one block.
    """
    n = len(p)
    if n <= k:
        raise ValueError(f"precision_recall: the k-th nearest neighbour (k={k}) needs more than {k} points, got {n}")
    radii = np.empty(n, F32)  # (N,)
    for rows in _blocks(n, row_batch):
        nearest = None  # (r, <= k + 1): the smallest distances of each row so far
        for cols in _blocks(n, col_batch):
            d = _distance_block(p, rows, p, cols, row_batch, col_batch, fp16)  # (r, c)
            m = min(k + 1, d.shape[1])
            d.partition(m - 1, axis=1)  # in place: the m smallest first
            nearest = d[:, :m].copy() if nearest is None else np.concatenate([nearest, d[:, :m]], axis=1)
            if nearest.shape[1] > k + 1:
                nearest.partition(k, axis=1)
                nearest = nearest[:, : k + 1]
        radii[rows] = np.partition(nearest, k, axis=1)[:, k]
    return radii


def precision_recall(ref, sample, k: int = 3, *, row_batch: int = BLOCK, col_batch: int = BLOCK,
                     fp16: bool = True) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) of sample features against reference features,
    both (N, D) pool features, as ADM's `compute_prec_recall` computes them.

    Each set's manifold is the union of balls around its points, with radius the squared distance to the k-th
    nearest neighbour (k = 3, ADM's only nhood). Precision is the fraction of samples inside the reference
    manifold, recall the fraction of references inside the sample manifold; a point is inside when its squared
    distance to some centre is <= that centre's radius. Distances are ADM's DistanceBlock: float16 arithmetic as
    TF does it on the CPU (see `_eigen_sum` and `_sq_distances`), a block in float32 only where float16
    overflows, in blocks of `row_batch` x `col_batch` (10000, ADM's): memory stays bounded by a few blocks of
    float32 whatever N is (about 1 GB at the default), never N x N. `fp16=False` computes every distance in
    float32 (ADM's fallback path), for comparisons.

    ssgen follows ADM's float16 arithmetic because published precision/recall numbers use it: float32 distances
    move the counts by a few points per thousand.
    """
    r = _Points(_features(ref, "precision_recall ref"), fp16)  # (N_ref, D)
    s = _Points(_features(sample, "precision_recall sample"), fp16)  # (N_sample, D)
    if r.x.shape[1] != s.x.shape[1]:
        raise ValueError(f"precision_recall: feature widths differ: {r.x.shape[1]} and {s.x.shape[1]}")
    r_radii = _manifold_radii(r, k, row_batch, col_batch, fp16)  # (N_ref,)
    s_radii = _manifold_radii(s, k, row_batch, col_batch, fp16)  # (N_sample,)

    ref_in = np.zeros(len(r), bool)  # inside the sample manifold: recall
    sample_in = np.zeros(len(s), bool)  # inside the reference manifold: precision
    for rows in _blocks(len(r), row_batch):
        for cols in _blocks(len(s), col_batch):
            d = _distance_block(r, rows, s, cols, row_batch, col_batch, fp16)  # (r, c): reference x sample
            ref_in[rows] |= (d <= s_radii[None, cols]).any(axis=1)
            sample_in[cols] |= (d <= r_radii[rows, None]).any(axis=0)
    return float(np.mean(sample_in.astype(np.float64))), float(np.mean(ref_in.astype(np.float64)))
