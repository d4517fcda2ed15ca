"""Orderings for the exact in-memory diagnostics: the rows grouped by distinct prediction in
sorted order, the rows worst first and pooling adjacent violators (the isotonic fit), on the
compiled kernels (``kernels/ordering.c``: radix sorts, one pass over the sorted rows and a
one-pass stack, linear in the row count, with no array of the row count beyond the sort's own)
or, without them or with ``engine="numpy"``, on NumPy. Both give the same groups; their sums may
differ in the last bits, added in another order, and each loss is within 1 ulp on both. The
pooled blocks are the same too, except where two neighbours' shares are equal in exact
arithmetic but not after rounding (weights such as 0.1): one engine may then merge them and the
other not, which leaves the fit and the recalibrated loss unchanged within rounding.
"""

from __future__ import annotations

import numpy as np

from .chunked import compiled_kernels


def probability_groups(y: np.ndarray, p: np.ndarray):
    """Unweighted probabilities p (float64) with labels y (bool): per distinct p, in increasing
    order, (p, negatives, positives, count * p, summed loss, count). One sort of int64 keys
    instead of an argsort: non-negative float64 values order as their bit patterns, and the
    label rides in a bit below them."""
    keys = np.left_shift(p.view(np.int64), 1)
    np.bitwise_or(keys, y, out=keys)
    kernels = compiled_kernels()
    if kernels is None:
        keys.sort()
        return _probability_groups_numpy(keys)
    n = len(keys)
    scratch = np.empty(n, dtype=np.int64)
    kernels.sort_keys(keys, scratch)
    # every row-sized array costs a page-faulted pass on first touch: the groups' p are
    # written over the sorted keys and their counts over the sort's scratch
    out = [np.empty(n) for _ in range(4)]
    weight = scratch.view(np.float64)
    count = kernels.probability_groups(keys, *out, weight)
    return _cut((keys.view(np.float64), *out, weight), count)


def key_groups(key: np.ndarray, y: np.ndarray, p: np.ndarray, loss: np.ndarray, w):
    """Rows grouped by equal key (float64; the logit for logits, which tells apart logits whose
    probabilities round to the same float), in key order: per group the prediction of its first
    row, the weight of negatives and of positives, sum w p, sum w loss (0 for rows of weight 0,
    even an infinite loss) and the weight. w None: unweighted. Groups of weight 0 are left out."""
    kernels = compiled_kernels()
    arrays = (key, p, loss) if w is None else (key, p, loss, w)
    if (kernels is None or y.dtype != np.bool_
            or any(a.dtype != np.float64 or not a.flags.c_contiguous for a in arrays)
            or not y.flags.c_contiguous):
        return _key_groups_numpy(key, y, p, loss, w)
    return _groups(kernels.key_groups, len(key), key, y, p, loss, w)


def _groups(kernel, n: int, *inputs):
    # np.empty does not touch its pages: only the groups written cost memory
    out = [np.empty(n) for _ in range(6)]
    return _cut(out, kernel(*inputs, *out))


def _cut(arrays, count: int) -> tuple:
    """The first ``count`` entries of each array: a copy only where that frees most of what
    was written, else a view."""
    return tuple(a[:count].copy() if count < len(a) // 2 else a[:count] for a in arrays)


def _probability_groups_numpy(keys: np.ndarray):
    bits = keys >> 1
    first = np.empty(len(keys), dtype=bool)
    first[:1] = True
    np.not_equal(bits[1:], bits[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    p_u = bits[starts].view(np.float64)
    count = np.diff(starts, append=len(keys)).astype(np.float64)
    pos = np.add.reduceat(keys & 1, starts).astype(np.float64)
    neg = count - pos
    with np.errstate(divide="ignore", invalid="ignore"):
        # the same per-row losses, -log p and -log1p(-p), times how many rows share them
        wloss = (np.where(pos > 0, pos * -np.log(p_u), 0.0)
                 + np.where(neg > 0, neg * -np.log1p(-p_u), 0.0))
    return p_u, neg, pos, count * p_u, wloss, count


def _key_groups_numpy(key, y, p, loss, w):
    order = np.argsort(key, kind="stable")
    key = key[order]
    first = np.empty(len(key), dtype=bool)
    first[:1] = True
    np.not_equal(key[1:], key[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    ws = np.ones(len(key)) if w is None else w[order]
    ys = y[order]
    wy = np.where(ys, ws, 0.0)
    p_sorted = p[order]
    loss = loss[order]
    if w is not None:
        with np.errstate(invalid="ignore"):  # 0 * inf: dropped by the where
            loss = np.where(ws > 0, ws * loss, 0.0)
    groups = (p_sorted[starts], np.add.reduceat(ws - wy, starts), np.add.reduceat(wy, starts),
              np.add.reduceat(ws * p_sorted, starts), np.add.reduceat(loss, starts),
              np.add.reduceat(ws, starts))
    used = groups[5] > 0
    return groups if used.all() else tuple(a[used] for a in groups)


def worst_first(loss: np.ndarray, w: np.ndarray, targets) -> tuple[float, np.ndarray]:
    """The rows worst first (loss descending, ties in row order) with their cumulative weight
    W_i and weighted loss L_i (w loss, 0 where w = 0): for each target t (ascending) the first
    row with W_i >= t (the last row if none), as rows of (W_(i-1), L_(i-1), W_i, L_i); and the
    total weighted loss. Neither the order nor a cumulative sum is kept as an array."""
    targets = np.asarray(targets, dtype=np.float64)
    kernels = compiled_kernels()
    if (kernels is None or loss.dtype != np.float64 or w.dtype != np.float64
            or not (loss.flags.c_contiguous and w.flags.c_contiguous)):
        return _worst_first_numpy(loss, w, targets)
    out = np.empty((len(targets), 4))
    total = kernels.worst(loss, w, targets, out)
    return total, out


def _worst_first_numpy(loss, w, targets):
    with np.errstate(invalid="ignore"):  # 0 * inf: dropped by the where
        wloss = np.where(w > 0, w * loss, 0.0)
    order = np.argsort(-loss, kind="stable")
    cum_w = np.cumsum(w[order])
    cum_l = np.cumsum(wloss[order])
    out = np.empty((len(targets), 4))
    for row, target in zip(out, targets):
        i = min(int(np.searchsorted(cum_w, target)), len(cum_w) - 1)
        row[:] = (cum_w[i - 1] if i else 0.0, cum_l[i - 1] if i else 0.0, cum_w[i], cum_l[i])
    return float(np.sum(wloss)), out


def pool_adjacent_violators(negative: np.ndarray, positive: np.ndarray):
    """The isotonic (non-decreasing) fit of blocks in order, each with the weight of its negatives
    and of its positives. Returns (starts, negative, positive) of the pooled blocks: block i
    covers input blocks starts[i] .. starts[i+1] - 1 and its fitted value is its positive share.
    A block pools with the one before it while that one's share is at least its own, so the
    pooled shares rise strictly: the blocks are the fit's level sets. A block of zero weight
    (share NaN) pools with nothing.
    """
    neg = np.ascontiguousarray(negative, dtype=np.float64)
    pos = np.ascontiguousarray(positive, dtype=np.float64)
    if neg.shape != pos.shape or neg.ndim != 1:
        raise ValueError(f"`negative` and `positive` must be 1-D of one length. Received shapes "
                         f"{neg.shape} and {pos.shape}.")
    kernels = compiled_kernels()
    if kernels is not None:
        n = len(neg)
        # np.empty does not touch its pages: only the blocks kept cost memory
        starts, out_neg, out_pos = np.empty(n, dtype=np.int64), np.empty(n), np.empty(n)
        count = kernels.pool(neg, pos, starts, out_neg, out_pos)
        return starts[:count].copy(), out_neg[:count].copy(), out_pos[:count].copy()
    return _pool_numpy(neg, pos)


def _pool_numpy(neg: np.ndarray, pos: np.ndarray):
    """Whole decreasing runs pooled at once, vectorized, while that shrinks the problem fast; a
    stack pass over what is left finishes. Pooling adjacent violators in any order reaches the
    same fit."""
    starts = np.arange(len(neg))
    while len(neg) > 1:
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = pos / (pos + neg)
        violates = mean[:-1] >= mean[1:]  # equal neighbours too: one level set
        if not violates.any():
            return starts, neg, pos
        first = np.ones(len(neg), dtype=bool)
        first[1:] = ~violates
        if np.count_nonzero(first) > 0.95 * len(neg) and len(neg) > 5000:
            break  # slow progress (long chains): the stack pass is linear
        group = np.cumsum(first) - 1
        starts = starts[first]
        neg = np.bincount(group, weights=neg)
        pos = np.bincount(group, weights=pos)
    return _pool_stack(starts, neg, pos)


def _pool_stack(starts, neg, pos):
    s, n_, p_ = [], [], []
    for start, a, b in zip(starts.tolist(), neg.tolist(), pos.tolist()):
        s.append(start)
        n_.append(a)
        p_.append(b)
        # the shares compared, not the cross products p2 (n1 + p1), which leave float64 for
        # weights of 1e200 (inf >= inf: everything pooled) and underflow for weights of 1e-200
        while len(s) > 1 and _share(n_[-2], p_[-2]) >= _share(n_[-1], p_[-1]):
            a, b = n_.pop(), p_.pop()
            s.pop()
            n_[-1] += a
            p_[-1] += b
    return np.array(s, dtype=np.int64), np.array(n_), np.array(p_)


def _share(negative: float, positive: float) -> float:
    total = negative + positive
    return positive / total if total else float("nan")  # as in C: NaN pools with nothing
