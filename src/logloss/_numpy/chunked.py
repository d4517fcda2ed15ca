"""Fast exact reductions of binary cross-entropy on NumPy arrays.

The reference path (``reference.py``) builds input-sized arrays in extended precision. For a
full reduction ("mean" or "sum", ``axis=None``) this module instead walks the flattened
inputs in cache-sized chunks, on all cores (NumPy ufuncs release the GIL), validates each
chunk with one min/max pass, and keeps only a few MB of buffers whatever the input size.

Hard labels use ``sum(-log q) = -log(prod q)`` with ``q = p`` for ``y = 1`` and
``q = 1 - p`` for ``y = 0``: the ``q`` are multiplied in groups of 64 (exponents split off
with ``frexp`` when a product could underflow), so there is one ``log`` per 64 samples.
Every rounding in that product is at most ``u = 2**-53`` relative, so the absolute error
of a chunk's loss is below ``2 n u``; where that is not below ``TOLERANCE`` times the
chunk's loss (a near-perfect classifier, whose losses are tiny), the chunk is recomputed
sample by sample. Logits work the same way on ``prod(1 + exp(-|s|))``.

The per-sample formulas are float64 and write ``log1p(-p)`` as ``log(s) + c/s`` with
``s = fl(1 - p)`` and ``c = (1 - p) - s`` exact (Fast2Sum): every loss term is
non-negative, so a few roundings per sample keep the sum within ~1e-15 relative.

Where the compiled kernels were built (``kernels/kernels.c``, at install time), inputs of
``KERNEL_MIN_SIZE`` samples or more go instead to them (one fused pass per block, vectorized
``log`` and ``exp``, every label dtype widened a block at a time), split into one range per
thread of this module's pool; they also serve ``reduction="none"`` for hard labels (each loss
within 1 ulp) and grouped sums. The setting ``engine="numpy"`` (``logloss.config_context``, or
``LOGLOSS_ENGINE=numpy``) keeps everything on NumPy.

``reduction="none"`` without options (no weight, clip, smoothing or pos_weight) from logits, and
with soft labels from probabilities, is computed here too, chunk by chunk on all cores, with only
the two transcendental calls a sample needs in the working precision (``per_element_losses``).

Whenever the fast path cannot vouch for its answer (bad input, an infinite loss, a weight
that is not simply elementwise, options such as ``clip``) it returns ``None`` and the
caller runs the reference path, which also produces every error message and warning.
"""

from __future__ import annotations

import contextvars
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .._core.checks import is_masked
from .._core.config import available_cpus, engine, thread_count
from .._core.constants import LN2, PRODUCT_TOLERANCE, UNIT_ROUNDOFF
from .._core.precision import extended_dtype
from . import elementwise as ew
from . import kernels as _kernel_paths

CHUNK = 1 << 15  # samples per chunk: ~256 KB per float64 buffer, L2-sized
HARD_CHUNK = 1 << 17  # hard_label_sums' chunks: fewer NumPy calls per sample (see there)
GROUP = 64  # factors per product
MIN_SIZE = 1 << 14  # below this the reference path is as fast and simpler
TOLERANCE = PRODUCT_TOLERANCE
_U = UNIT_ROUNDOFF
KERNEL_MIN_SIZE = 1 << 12  # below this the reference path is as fast

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


class _Fallback(Exception):
    """The fast path cannot vouch for this input; use the reference path."""


def _executor() -> ThreadPoolExecutor:
    """The process's worker threads, started on first use; only ``thread_count()`` tasks are
    ever submitted at once, so the pool's size is a ceiling, not the parallelism."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max(available_cpus(), 8), thread_name_prefix="logloss")
        return _pool


def _forget_pool_after_fork() -> None:
    # A forked child inherits the pool's bookkeeping but none of its threads: waiting on it
    # would hang. The child starts a pool of its own on first use.
    global _pool, _pool_lock
    _pool = None
    _pool_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def _workers(chunks: int) -> int:
    return max(1, min(thread_count(), chunks))


def run_in_ranges(function, n: int, chunk: int, *args) -> list:
    """``function(*args, start, stop)`` over ``[0, n)`` cut at multiples of ``chunk``, one range
    per thread of the ``threads`` setting, on the process's pool; the results in order."""
    workers = _workers(-(-n // chunk)) if n else 1
    if workers == 1:
        return [function(*args, 0, n)]
    bounds = [(n * i // workers) // chunk * chunk for i in range(workers)] + [n]
    # each task in a copy of the caller's context: its config_context holds on the pool's threads
    futures = [_executor().submit(contextvars.copy_context().run, function, *args, bounds[i],
                                  bounds[i + 1])
               for i in range(workers) if bounds[i] < bounds[i + 1]]
    return [future.result() for future in futures]


def run_chunks(function, count: int) -> list:
    """``function(i)`` for i in ``range(count)`` on up to ``thread_count()`` threads, this one
    among them, each taking the next i as it finishes the last: a thread slowed by another
    process (the file reader) takes fewer. The results in order of i, so that which thread ran
    which never shows."""
    workers = _workers(count)
    if workers == 1:
        return [function(i) for i in range(count)]
    results: list = [None] * count
    indices = iter(range(count))
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                i = next(indices, None)
            if i is None:
                return
            results[i] = function(i)

    # the caller's context copied for each thread: its config_context holds in function there
    futures = [_executor().submit(contextvars.copy_context().run, work)
               for _ in range(workers - 1)]
    try:
        work()
    finally:
        for future in futures:  # every chunk is finished (or failed) before returning
            future.result()
    return results


def _chunk_bounds(n: int, chunks: int, chunk: int) -> list:
    """``chunks + 1`` bounds cutting [0, n) at multiples of ``chunk`` (empty ranges possible)."""
    return [(n * i // chunks) // chunk * chunk for i in range(chunks)] + [n]


# ---------------------------------------------------------------- compiled kernels (C)

# dtype codes of kernels.c, by (kind, itemsize): every label, prediction and weight dtype is
# widened there one block at a time, never copied here.
_CODES = {("b", 1): 0, ("i", 1): 1, ("i", 2): 2, ("i", 4): 3, ("i", 8): 4, ("u", 1): 5, ("u", 2): 6,
          ("u", 4): 7, ("u", 8): 8, ("f", 2): 9, ("f", 4): 10, ("f", 8): 11}
_F32, _F64 = 10, 11


def compiled_kernels():
    """The active CPU path's kernel module, or None when none was built or the engine is "numpy"."""
    if engine() == "numpy":
        return None
    return _kernel_paths.module()


def _code(array: np.ndarray) -> int | None:
    if not array.dtype.isnative:
        return None
    return _CODES.get((array.dtype.kind, array.dtype.itemsize))


def _weight_code(w: np.ndarray) -> int | None:
    """The dtype code of weights, or None for 64-bit integers: kernels.c's loader clamps those
    to [-1, 2] (for labels), so a weight of 5 would count as 2."""
    if w.dtype.kind in "iu" and w.dtype.itemsize == 8:
        return None
    return _code(w)


def kernel_sums(y, x, w, *, from_logits: bool, result_float32: bool = False, stats: bool = False):
    """(loss, weight, label, prediction) sums of flat arrays on the compiled kernels (labels and
    predictions weighted; the prediction of a logit is its sigmoid; the last two only with
    ``stats``), or None when the kernels are missing or cannot vouch for the input.

    ``result_float32``: the caller rounds the loss to float32, so float32 predictions may take
    the kernels' float32 bounds (2**-30 relative per block instead of 1e-14)."""
    kernels = compiled_kernels()
    if kernels is None:
        return None
    yt, xt = _code(y), _code(x)
    wt = _F64 if w is None else _weight_code(w)
    if yt is None or xt not in (_F32, _F64) or wt is None:
        return None
    f32 = result_float32 and xt == _F32

    def run(lo, hi):
        return kernels.sums(y, yt, x, xt, w, wt, lo, hi, from_logits, f32, stats), hi - lo

    parts = run_in_ranges(run, x.size, kernels.CHUNK)
    if any(status != kernels.OK for (status, _), _ in parts):
        return None  # invalid input or an infinite loss: the reference path reports it
    totals = [r[0] + r[1] for (_, r), _ in parts]
    weights = [r[2] + r[3] for (_, r), _ in parts]
    # As _exact_totals, per range: a weighted sum below SMALLEST per sample may hold products
    # that lost bits to subnormals; above LARGEST the ranges' sum could overflow.
    if not (max(totals) < LARGEST and max(weights) < LARGEST):
        return None
    if w is not None and any(t < n * SMALLEST and v != 0 for t, v, (_, n) in zip(totals, weights, parts)):
        return None
    return tuple(math.fsum(v for (_, r), _ in parts for v in r[2 * i: 2 * i + 2]) for i in range(4))


def statistics_sums(y_true, y_pred, *, from_logits: bool, sample_weight=None):
    """(loss, weight, label, prediction) sums in one pass on the compiled kernels (labels and
    predictions weighted, a logit's prediction its sigmoid), or None: no kernels, small or
    unusual input, or input they cannot vouch for."""
    y, x = _flat(y_true), _flat(y_pred)
    if y is None or x is None or y_true.shape != y_pred.shape or x.size < KERNEL_MIN_SIZE:
        return None
    w = None
    if sample_weight is not None:
        w = _flat(sample_weight)
        if w is None or sample_weight.shape != y_true.shape:
            return None
    return kernel_sums(y, x, w, from_logits=from_logits, stats=True)


# A chunk's float64 sums are exact enough only away from the ends of the float range: below
# SMALLEST (per sample) a weighted sum may hold products that lost bits to subnormals (weights
# of 1e-320), above LARGEST the sum of all chunks could overflow (logits or weights near 1e308).
SMALLEST = 2.0**-960
LARGEST = 2.0**1000


def _exact_totals(totals, weights, chunk: int, weighted: bool) -> tuple[float, float] | None:
    """(fsum of totals, fsum of weights), or None when a chunk's sums are outside the range
    where they are exact: the reference path then sums with exponents kept apart."""
    totals, weights = np.asarray(totals, dtype=np.float64), np.asarray(weights, dtype=np.float64)
    if not (totals.max(initial=0.0) < LARGEST and weights.max(initial=0.0) < LARGEST):
        return None
    # (A chunk whose weights are all 0, a padding mask, sums to exactly 0: nothing was lost.)
    if weighted and np.any((totals < chunk * SMALLEST) & (weights != 0)):
        return None
    return math.fsum(totals), math.fsum(weights)


def hard_label_losses(y_true, y_pred, *, from_logits: bool) -> np.ndarray | None:
    """``reduction="none"`` for hard labels (compiled kernels, each loss within 1 ulp), or None."""
    y, x = _flat(y_true), _flat(y_pred)
    if y is None or x is None or y_true.shape != y_pred.shape or x.size < KERNEL_MIN_SIZE:
        return None
    kernels = compiled_kernels()
    yt, xt = _code(y), _code(x)
    if kernels is None or yt is None or xt not in (_F32, _F64):
        return None
    out = np.empty(x.shape, dtype=x.dtype)

    def run(lo, hi):
        return kernels.losses(y, yt, x, xt, out, xt, lo, hi, from_logits)

    if any(status != kernels.OK for status in run_in_ranges(run, x.size, kernels.CHUNK)):
        return None  # soft labels, invalid input or an infinite loss
    return out.reshape(y_pred.shape)


def grouped_sums(y, x, w, codes, groups: int, *, from_logits: bool) -> np.ndarray | None:
    """Each group's sufficient statistics in one pass on all threads: an array (groups, 7) of
    loss, weight, weighted label and weighted prediction sums (a logit's prediction is its
    sigmoid), count, infinite losses and the unweighted label sum; or None (kernels missing,
    invalid input, sums at the ends of the float range: the caller checks the batch the general
    way). ``codes``: flat integer group numbers in [0, groups)."""
    pairs = grouped_pairs(y, x, w, codes, groups, from_logits=from_logits)
    if pairs is None:
        return None
    hi, lo, counts = pairs
    out = np.empty((groups, 7))
    out[:, :4] = np.where(np.isinf(hi), hi, hi + lo)
    out[:, 4:] = counts
    return out


# Above this many float64 per group table (1 MiB, a core's L2 cache on the machines measured),
# each sample's scatter misses the cache anyway, and a table per thread only doubles the tables
# to zero, fill and merge: one thread was the faster from about 12 000 groups up
# (benchmarks/bench_grouped.py, results in results-2core-epyc-score-groups-s3.txt).
GROUPED_ONE_THREAD = 1 << 17


def grouped_pairs(y, x, w, codes, groups: int, *, from_logits: bool):
    """As :func:`grouped_sums`, with each of the four sums kept as a compensated pair:
    ``(hi, lo, counts)``, arrays (groups, 4), (groups, 4) and (groups, 3); lo is 0 where hi is
    infinite. None where grouped_sums gives None."""
    kernels = compiled_kernels()
    if kernels is None:
        return None
    y, x, codes = (_flat(np.asarray(a)) for a in (y, x, codes))
    w = None if w is None else _flat(np.asarray(w))
    if y is None or x is None or codes is None:
        return None
    if not (y.size == x.size == codes.size and (w is None or w.size == x.size)):
        return None
    yt, xt, ct = _code(y), _code(x), _code(codes)
    wt = _F64 if w is None else _weight_code(w)
    if yt is None or xt not in (_F32, _F64) or wt is None or codes.dtype.kind not in "iu":
        return None

    def run(lo, hi):  # one partial array per thread, merged below
        partial = np.zeros(groups * kernels.GROUP_FIELDS)
        return kernels.grouped(y, yt, x, xt, w, wt, codes, ct, groups, partial, lo, hi, from_logits), partial

    if groups * kernels.GROUP_FIELDS > GROUPED_ONE_THREAD:
        parts = [run(0, x.size)]  # on the calling thread: one table to zero, fill and merge
    else:
        parts = run_in_ranges(run, x.size, kernels.CHUNK)
    if any(status != kernels.OK for status, _ in parts):
        return None
    partial = [p.reshape(groups, kernels.GROUP_FIELDS) for _, p in parts]
    hi, lo, counts = np.empty((groups, 4)), np.empty((groups, 4)), np.empty((groups, 3))
    # A slice of groups at a time: the temporaries stay in cache (a million groups' arrays
    # did not, and each fresh 32 MB temporary cost its page faults).
    for start in range(0, groups, GROUP_SLICE):
        rows = slice(start, start + GROUP_SLICE)
        if not _merge_group_slice(partial, rows, hi[rows], lo[rows], counts[rows], w is not None):
            return None
    return hi, lo, counts


GROUP_SLICE = 1 << 13


def _merge_group_slice(partial, rows, hi, lo, counts, weighted: bool) -> bool:
    """The threads' tables merged for the groups ``rows`` into ``hi``, ``lo``, ``counts``; False
    where a sum lies near the ends of the float range (the caller then checks the batch the
    general way)."""
    first = partial[0][rows]
    hi[...], lo[...], counts[...] = first[:, 0:4], first[:, 4:8], first[:, 8:11]
    with np.errstate(invalid="ignore"):  # inf - inf where a loss sum is infinite
        for part in partial[1:]:  # (hi, lo) pairs merged across threads with TwoSum
            part = part[rows]
            b = part[:, 0:4]
            s = hi + b
            v = s - hi
            lo += (hi - (s - v)) + (b - v) + part[:, 4:8]
            hi[...] = s
            counts += part[:, 8:11]
        finite = np.isfinite(hi)
        lo[~finite] = 0.0
        value = np.where(finite, hi + lo, hi)
    no_inf = counts[:, 1] == 0  # groups with an infinite loss keep it: that sum is +inf on purpose
    if not (np.all(value[no_inf, 0] < LARGEST) and np.all(value[:, 1] < LARGEST)):
        return False  # as _exact_totals: sums near the top of the float range
    if weighted and np.any(no_inf & (value[:, 0] < counts[:, 0] * SMALLEST) & (value[:, 1] != 0)):
        return False  # products that may have lost bits to subnormals
    return True


# ---------------------------------------------------------------- reduction="none", chunked

# Per-element losses within 1 ulp, in chunks on all cores. float64 inputs are computed in
# long double (the reference path's precision), but only the two transcendental calls a
# sample needs: the reference evaluates both softplus terms and builds input-sized
# long-double temporaries, several times slower. float32 and float16 inputs are computed in
# float64 (a few float64 roundings, then one to the input's dtype: within 1 ulp).
#
# Logits: with a = |z| and l = log1p(exp(-a)), y softplus(-z) + (1 - y) softplus(z)
# = l + c a, with c = 1 - y for z > 0 and c = y otherwise: two non-negative terms, no
# cancellation, so each element is the correctly rounded value of an expression whose
# relative error is a few units of the working precision.

LOSS_CHUNK = 1 << 13  # samples per chunk: long-double temporaries of 128 KB


def _logit_chunk(y, z, out, work) -> bool:
    """Losses into out; False when the chunk needs the reference path (NaN or inf logits, bad labels)."""
    zlow, zhigh = z.min(), z.max()
    if not (-math.inf < zlow and zhigh < math.inf):
        return False  # NaN, or an infinite logit (0 * inf below): the reference path decides
    if y.dtype != np.bool_:
        ylow, yhigh = y.min(), y.max()
        if not (ylow >= 0 and yhigh <= 1):
            return False
    a = np.abs(z).astype(work)
    np.negative(a, out=a)
    loss = np.exp(a)
    np.log1p(loss, out=loss)
    np.negative(a, out=a)
    yw = y.astype(work, copy=False)
    c = np.subtract(1, yw, dtype=work)  # exact or rounded in the working precision only
    np.copyto(c, yw, where=z <= 0)
    c *= a
    loss += c
    out[...] = loss
    return True


def _probability_chunk(y, p, out, work) -> bool:
    """-(y log p + (1 - y) log1p(-p)) into out; False for an infinite loss, 0 log 0, bad input."""
    if y.dtype != np.bool_:
        ylow, yhigh = y.min(), y.max()
        if not (ylow >= 0 and yhigh <= 1):
            return False
    plow, phigh = p.min(), p.max()
    if not (plow > 0 and phigh < 1):
        return False  # p = 0 or 1 (0 log 0, or an infinite loss), NaN, out of range
    if work != np.float64 and float(np.minimum(y, 1 - y).max()) == 0:
        work = np.dtype(np.float64)  # hard labels: a single libm call, as on the reference path
    pw = p.astype(work)
    yw = y.astype(work)
    loss = np.log(pw)
    loss *= yw
    if work == np.float64:
        np.negative(pw, out=pw)
        np.log1p(pw, out=pw)
    else:
        # 1 - p is exact in long double for p >= 2**-11 (p's last bit is >= 2**-64), and log
        # is cheaper than log1p there.
        small = p < 2.0**-11
        np.subtract(1, pw, out=pw)
        np.log(pw, out=pw)
        if small.any():
            pw[small] = np.log1p(-p[small].astype(work))
    np.subtract(1, yw, out=yw)
    pw *= yw
    loss += pw
    np.negative(loss, out=loss)
    out[...] = loss
    return True


def _loss_range(kernel, y, x, out, work, start, stop) -> bool:
    with np.errstate(divide="ignore", over="ignore", under="ignore", invalid="ignore"):
        for lo in range(start, stop, LOSS_CHUNK):
            hi = min(lo + LOSS_CHUNK, stop)
            if not kernel(y[lo:hi], x[lo:hi], out[lo:hi], work):
                return False
    return True


def per_element_losses(y_true, y_pred, *, from_logits: bool) -> np.ndarray | None:
    """``reduction="none"`` without options, within 1 ulp, or None to use the reference path."""
    y, x = _flat(y_true), _flat(y_pred)
    if y is None or x is None or y_true.shape != y_pred.shape or x.size < MIN_SIZE:
        return None
    if x.dtype not in (np.float64, np.float32, np.float16) or y.dtype.kind not in "biuf":
        return None
    if not from_logits and y.dtype.kind != "f":
        return None  # hard labels from probabilities: one libm call on the reference path
    work = np.dtype(np.float64)
    if x.dtype == np.float64:
        work = extended_dtype()
        if work == np.float64:
            return None  # no wider type here: the reference path decides
    kernel = _logit_chunk if from_logits else _probability_chunk
    out = np.empty(x.shape, dtype=x.dtype)
    n = x.size
    chunks = -(-n // LOSS_CHUNK)
    workers = _workers(chunks)
    bounds = [(n * i // workers) // LOSS_CHUNK * LOSS_CHUNK for i in range(workers)] + [n]
    if workers == 1:
        ok = _loss_range(kernel, y, x, out, work, 0, n)
    else:
        pool = _executor()
        futures = [
            pool.submit(_loss_range, kernel, y, x, out, work, bounds[i], bounds[i + 1])
            for i in range(workers)
            if bounds[i] < bounds[i + 1]
        ]
        ok = all([future.result() for future in futures])
    return out.reshape(y_pred.shape) if ok else None


# ---------------------------------------------------------------- validation per chunk


def _check_probabilities(p: np.ndarray) -> float:
    """min(p, 1 - max p) after checking 0 <= p <= 1 (NaN fails both comparisons)."""
    low, high = p.min(), p.max()
    if not (low >= 0 and high <= 1):
        raise _Fallback
    return float(min(low, 1 - high))


def _labels(y: np.ndarray, buf: np.ndarray) -> tuple[np.ndarray, bool | None]:
    """y as float64 (in ``buf`` unless already float64); True when the dtype makes it hard."""
    if y.dtype != np.bool_:
        low, high = y.min(), y.max()
        if not (low >= 0 and high <= 1):
            raise _Fallback
    if y.dtype == np.float64:
        return y, None
    np.copyto(buf, y)
    return buf, (None if y.dtype.kind == "f" else True)


def _as_float64(x: np.ndarray, buf: np.ndarray) -> np.ndarray:
    if x.dtype == np.float64:
        return x
    np.copyto(buf, x)
    return buf


# ---------------------------------------------------------------- per-chunk kernels


def _hard_probability_product(s, t, p, qmin: float) -> float | None:
    """-sum(log|s|) through products, or None when the error bound is too loose."""
    # k factors >= qmin multiply to >= 2**-1000: no underflow, so no rounding beyond u each.
    k = min(GROUP, int(1000 / -math.log2(qmin))) if qmin < 1 else GROUP
    n = s.size - s.size % k if k >= 2 else 0
    if n == 0:
        return None
    products = np.multiply.reduce(s[:n].reshape(k, -1), axis=0)
    exponent = 0
    if k < GROUP:  # split off exponents (exact), then multiply the mantissas 64 at a time
        products, exps = np.frexp(products)
        exponent = int(exps.sum(dtype=np.int64))
        m = products.size - products.size % GROUP
        products = np.concatenate(
            [np.multiply.reduce(products[:m].reshape(GROUP, -1), axis=0), products[m:]]
        )
    np.abs(products, out=products)
    loss = -(float(np.log(products).sum()) + exponent * LN2)
    # roundings: 1 - p (y = 0), each product step, each log and the sums: all <= u relative.
    bound = 2.0 * n * _U + 4 * _U * loss
    if not bound <= TOLERANCE * loss:
        return None
    return loss + _hard_probability_exact(s[n:], t[n:], p[n:])


def _hard_probability_exact(s: np.ndarray, t: np.ndarray, p: np.ndarray) -> float:
    """sum of -log(p) (y = 1, s = -p) or -log(1 - p) (y = 0, s = 1 - p rounded), one by one."""
    if not s.size:
        return 0.0
    p = p.astype(np.float64, copy=False)  # float32 predictions: c below must be float64
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.abs(s)
        total = -float(np.log(a).sum())
        # 1 - p = s + c exactly for y = 0 (Fast2Sum, |1| >= |p|); c = 0 for y = 1 (t = 0).
        c = np.negative(p)
        c -= s - t
        c /= a
        total -= float(c.sum())
    if not math.isfinite(total):
        raise _Fallback
    return total


def _soft_probability(y: np.ndarray, p: np.ndarray) -> float:
    """sum of -(y log p + (1 - y) log1p(-p)), 0 log 0 = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = 1 - y
        s = 1 - p
        c = np.subtract(np.negative(p), s - 1)  # 1 - p = s + c exactly
        log1m = np.log(s)
        c /= s
        log1m += c  # log(1 - p) = log s + log1p(c/s), |c/s| <= u
        terms = y * np.log(p)
        terms += t * log1m
        total = -float(terms.sum())
    if not math.isfinite(total):
        total = _careful(ew.bce_from_probabilities, y, p)
    return total


def _careful(function, y, x) -> float:
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        total = float(function(np, y, x).sum())
    if not math.isfinite(total):
        raise _Fallback  # an infinite loss: the reference path reports it
    return total


def _logits(y: np.ndarray, z: np.ndarray, hard: bool) -> float:
    """sum of y softplus(-z) + (1 - y) softplus(z)."""
    with np.errstate(over="ignore", invalid="ignore"):
        if hard:
            s = z * (1 - 2 * y)  # z for y = 0, -z for y = 1: the loss is softplus(s)
            n = s.size - s.size % GROUP  # the last n % 64 samples go to _soft_logits
            positive = float(np.maximum(s[:n], 0).sum())
            e = np.exp(-np.abs(s[:n]))
            e += 1  # factors in (1, 2]: 64 of them cannot overflow
            products = np.multiply.reduce(e[:n].reshape(GROUP, -1), axis=0)
            tail = float(np.log(products).sum())
            bound = 3.0 * n * _U + 4 * _U * (tail + positive)
            if math.isfinite(positive) and bound <= TOLERANCE * (tail + positive):
                rest = _soft_logits(y[n:], z[n:])
                return positive + tail + rest
        return _soft_logits(y, z)


def _soft_logits(y: np.ndarray, z: np.ndarray) -> float:
    """L + y max(-z, 0) + (1 - y) max(z, 0) with L = log1p(exp(-|z|)): non-negative terms."""
    if not z.size:
        return 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(-np.abs(z))
        s = e + 1
        c = e - (s - 1)  # 1 + e = s + c exactly (Fast2Sum)
        c /= s
        terms = np.log(s)
        terms += c
        terms += y * np.maximum(-z, 0)
        terms += (1 - y) * np.maximum(z, 0)
        total = float(terms.sum())
    if not math.isfinite(total):
        total = _careful(ew.bce_from_logits, y, z)
    return total


def _chunk_loss(y, x, from_logits: bool, buffers) -> float:
    ybuf, xbuf = buffers
    n = y.size
    ybuf, xbuf = ybuf[:n], xbuf[:n]
    if from_logits:
        if x.size and np.isnan(x.min()):
            raise _Fallback
        qmin = None
    else:
        qmin = _check_probabilities(x)
    y64, hard = _labels(y, ybuf)
    x64 = _as_float64(x, xbuf)
    t = np.subtract(1, y64)
    if hard is None:
        # y in [0, 1] is hard iff min(y, 1 - y) = 0 everywhere. (No BLAS dot here: OpenBLAS's
        # own threads fight with ours on fresh buffers.)
        hard = float(np.minimum(y64, t, out=xbuf if x64 is not xbuf else None).max()) == 0
    if from_logits:
        return _logits(y64, x64, hard)
    if not hard:
        return _soft_probability(y64, x64)
    s = t - x64  # -p for y = 1 (exact), 1 - p rounded for y = 0
    if qmin > 0:
        total = _hard_probability_product(s, t, x64, qmin)
        if total is not None:
            return total
    return _hard_probability_exact(s, t, x64)


def _weighted_chunk_loss(y, x, w, from_logits: bool, buffers) -> tuple[float, float]:
    wlow, whigh = w.min(), w.max()
    if not (wlow >= 0 and math.isfinite(whigh)):
        raise _Fallback
    ybuf, xbuf = buffers
    n = y.size
    if from_logits:
        if np.isnan(x.min()):
            raise _Fallback
    else:
        _check_probabilities(x)
    y64, _ = _labels(y, ybuf[:n])
    x64 = _as_float64(x, xbuf[:n])
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        function = ew.bce_from_logits if from_logits else ew.bce_from_probabilities
        losses = function(np, y64, x64)
    if not np.isfinite(losses.max()):
        raise _Fallback  # an infinite loss, maybe with weight 0: the reference path decides
    w64 = w.astype(np.float64, copy=False)
    with np.errstate(invalid="ignore", over="ignore", under="ignore"):
        losses = np.where(w64 == 0, 0.0, losses * w64)  # as the reference: w = 0 drops a sample
        return float(losses.sum()), float(w64.sum())  # an overflow is caught by _exact_totals


def _run_range(y, x, w, from_logits, start, stop):
    size = min(CHUNK, stop - start)
    buffers = (np.empty(size), np.empty(size))
    out = []
    for lo in range(start, stop, CHUNK):
        hi = min(lo + CHUNK, stop)
        if w is None:
            out.append((_chunk_loss(y[lo:hi], x[lo:hi], from_logits, buffers), float(hi - lo)))
        else:
            out.append(_weighted_chunk_loss(y[lo:hi], x[lo:hi], w[lo:hi], from_logits, buffers))
    return out


def _flat(array) -> np.ndarray | None:
    if not isinstance(array, np.ndarray) or not array.flags.c_contiguous:
        return None
    if is_masked(array):
        return None  # the kernels read the data under the mask: the checks refuse it instead
    return array.reshape(-1)


def loss_sums(y_true, y_pred, *, from_logits: bool, sample_weight=None,
              result_float32: bool = False) -> tuple[float, float] | None:
    """(sum of w * loss, sum of w) over all samples, or None to use the reference path.
    ``result_float32``: the caller rounds the loss to float32 (see :func:`kernel_sums`)."""
    y, x = _flat(y_true), _flat(y_pred)
    if y is None or x is None or y_true.shape != y_pred.shape:
        return None
    w = None
    if sample_weight is not None:
        w = _flat(sample_weight)
        if w is None or sample_weight.shape != y_true.shape or w.dtype.kind not in "biuf":
            return None
    if compiled_kernels() is not None:
        if x.size < KERNEL_MIN_SIZE:
            return None
        sums = kernel_sums(y, x, w, from_logits=from_logits, result_float32=result_float32)
        return None if sums is None else sums[:2]
    if x.size < MIN_SIZE:
        return None
    if x.dtype not in (np.float64, np.float32) or y.dtype.kind not in "biuf":
        return None
    if y.dtype.kind == "f" and y.dtype not in (np.float64, np.float32):
        return None
    n = x.size
    chunks = -(-n // CHUNK)
    workers = _workers(chunks)
    bounds = [(n * i // workers) // CHUNK * CHUNK for i in range(workers)] + [n]
    try:
        if workers == 1:
            parts = _run_range(y, x, w, from_logits, 0, n)
        else:
            pool = _executor()
            futures = [
                pool.submit(_run_range, y, x, w, from_logits, bounds[i], bounds[i + 1])
                for i in range(workers)
                if bounds[i] < bounds[i + 1]
            ]
            parts = [part for future in futures for part in future.result()]
    except _Fallback:
        return None
    return _exact_totals([loss for loss, _ in parts], [weight for _, weight in parts], CHUNK, w is not None)


# ---------------------------------------------------------------- one pass for ``logloss score``


def _hard_chunk_sums(y, x, buffers) -> tuple[float, float, float]:
    """(loss, positives, prediction sum) of one chunk of 0/1 integer labels and probabilities.

    Validates as :func:`_chunk_loss` does and computes the same loss with the same roundings
    (bit for bit), but takes ``1 - y`` and ``1 - y - p`` straight from the int8/bool and
    float32 inputs (no float64 copies of them) and sums labels and predictions while the chunk
    is in cache.
    """
    qmin = _check_probabilities(x)
    if y.dtype != np.bool_ and not (y.min() >= 0 and y.max() <= 1):
        raise _Fallback
    n = y.size
    t = np.subtract(1.0, y, out=buffers[0][:n])  # exact, as 1 - float64(y)
    s = np.subtract(t, x, out=buffers[1][:n])  # -p for y = 1 (exact), 1 - p rounded for y = 0
    total = _hard_probability_product(s, t, x, qmin) if qmin > 0 else None
    if total is None:
        total = _hard_probability_exact(s, t, x)
    return total, float(np.count_nonzero(y)), float(np.sum(x, dtype=np.float64))


_local = threading.local()


def _hard_buffers(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Two float64 buffers kept per thread: fresh MB-sized ones every batch cost page faults."""
    buffers = getattr(_local, "buffers", None)
    if buffers is None or buffers[0].size < size:
        buffers = _local.buffers = (np.empty(size), np.empty(size))
    return buffers


def _hard_range(y, x, start, stop):
    buffers = _hard_buffers(min(HARD_CHUNK, stop - start))
    return [_hard_chunk_sums(y[lo:min(lo + HARD_CHUNK, stop)], x[lo:min(lo + HARD_CHUNK, stop)],
                             buffers)
            for lo in range(start, stop, HARD_CHUNK)]


def hard_label_sums(y, x) -> tuple[float, float, float] | None:
    """(sum of losses, positives, sum of predictions) for the ``logloss score`` hot path.

    For 1-D contiguous 0/1 labels of an integer or bool dtype and float32/float64 probabilities,
    unweighted: the loss sum is that of ``loss_sums(y, x, from_logits=False)`` (bit for bit
    when ``HARD_CHUNK == CHUNK``; otherwise only the chunks differ, within the same error
    bound), computed in the loop that validates each chunk and sums its labels and
    predictions, so each chunk is read once. None (invalid input, an infinite loss, another
    dtype or a small batch) means: check and score the batch the general way, which names
    every bad row.
    """
    if not (isinstance(y, np.ndarray) and isinstance(x, np.ndarray)) or y.ndim != 1 or x.ndim != 1:
        return None
    if y.size != x.size or x.size < MIN_SIZE or not (y.flags.c_contiguous and x.flags.c_contiguous):
        return None
    if x.dtype not in (np.float64, np.float32) or y.dtype.kind not in "biu":
        return None
    n = x.size
    workers = _workers(-(-n // HARD_CHUNK))
    bounds = [(n * i // workers) // HARD_CHUNK * HARD_CHUNK for i in range(workers)] + [n]
    try:
        if workers == 1:
            parts = _hard_range(y, x, 0, n)
        else:
            pool = _executor()
            futures = [pool.submit(_hard_range, y, x, bounds[i], bounds[i + 1])
                       for i in range(workers) if bounds[i] < bounds[i + 1]]
            parts = [part for future in futures for part in future.result()]
    except _Fallback:
        return None
    return tuple(math.fsum(part[i] for part in parts) for i in range(3))


def binary_reduction(
    y_true,
    y_pred,
    *,
    from_logits: bool,
    sample_weight,
    pos_weight,
    label_smoothing,
    reduction: str,
    axis,
    clip,
):
    """The full reduction of :func:`binary_cross_entropy`, or None to use the reference path."""
    if axis is not None or pos_weight is not None or clip is not None:
        return None
    if label_smoothing != 0 or isinstance(label_smoothing, bool):
        return None
    if reduction == "none":
        # A sample weight would round a second time: the reference path multiplies it in
        # the working precision.
        if sample_weight is not None:
            return None
        # The compiled kernels: hard labels only (the sum kernels' soft-label formulas are not
        # within 1 ulp per element).
        losses = hard_label_losses(y_true, y_pred, from_logits=from_logits)
        if losses is not None:
            return losses
        return per_element_losses(y_true, y_pred, from_logits=from_logits)
    result_float32 = getattr(y_pred, "dtype", None) == np.float32
    sums = loss_sums(y_true, y_pred, from_logits=from_logits, sample_weight=sample_weight,
                     result_float32=result_float32)
    if sums is None:
        return None
    total, weight = sums
    if reduction == "mean":
        if not weight > 0:
            return None  # the reference path raises the zero-total-weight error
        total /= weight
    return (np.float32 if result_float32 else np.float64)(total)


# ---------------------------------------------------------------- diagnostics (logloss.diagnose)

# Bytes of partial histograms and segment sums one DiagnosticsState may hold, all its models
# together: fewer slots when more would not fit (see diagnostics_slots).
DIAGNOSTICS_SCRATCH_LIMIT = 32 << 20
# A batch is cut into this many chunks (at most), chunk i always added into slot i whichever
# thread takes it: threads take chunks as they finish (none waits for a slow half, as with one
# range per thread while the reader shares the cores), and the sums, whose rounding depends on
# their order, are the same whatever the threads setting and the timing.
DIAGNOSTICS_SLOTS = 4


def _zeros64(n: int) -> np.ndarray:
    """np.zeros(n) starting on a 64-byte boundary: the kernel adds a histogram cell (4 doubles)
    as one vector, faster where it does not straddle two cache lines."""
    raw = np.zeros(n + 8)
    skip = (-raw.ctypes.data % 64) // 8
    return raw[skip: skip + n]


class DiagnosticsScratch:
    """One model's per-thread partial histograms and segment sums, added to by the diagnostics
    kernel batch after batch (thread i of a batch adds into slot i, so no thread waits for
    another and no batch pays for a fold); :meth:`drain` folds them into the state's layout.
    Weighted and unweighted batches have layouts of their own (kernels.c: an unweighted
    sample's weight is its count, so it adds fewer fields)."""

    def __init__(self, kernels, resolution: int):
        self.resolution = resolution
        self.loss_bins = kernels.DIAG_LOSS_BINS
        self.fields = {True: (kernels.DIAG_HIST, kernels.DIAG_LOSS, kernels.DIAG_SEGMENT),
                       False: (kernels.DIAG_HIST_U, kernels.DIAG_LOSS_U, kernels.DIAG_SEGMENT_U)}
        self.slots: list[dict] = []  # per thread: weighted -> [hist, loss_hist, segments|None]
        self.rows = 0  # segment rows each slot holds room for

    def slot_bytes(self, segments: int) -> int:
        hist, loss, segment = self.fields[True]
        return 8 * ((self.resolution + 2) * hist + self.loss_bins * loss + segments * segment)

    def prepare(self, slots: int, segments: int | None, weighted: bool) -> None:
        """At least ``slots`` slots of this layout, each with room for ``segments`` rows."""
        hist, loss, segment = self.fields[weighted]
        while len(self.slots) < slots:
            self.slots.append({})
        if segments is not None and segments > self.rows:
            self.rows = max(segments, 2 * self.rows)  # grown by doubling: amortized
        for slot in self.slots[:slots]:
            arrays = slot.get(weighted)
            if arrays is None:
                # np.zeros: pages the kernel never touches are never written (calloc)
                arrays = slot[weighted] = [_zeros64((self.resolution + 2) * hist),
                                           _zeros64(self.loss_bins * loss), None]
            old = arrays[2]
            if segments is not None and (old is None or old.size < self.rows * segment):
                grown = np.zeros(self.rows * segment)
                if old is not None:
                    grown[: old.size] = old
                arrays[2] = grown

    def drain(self):
        """(hist (5, resolution + 2), loss_hist (2, 3, LOSS_BINS), segments (rows, 7) or None)
        in _diagnostics' layout, summed over the slots, which are then released; None when
        nothing was added."""
        if not self.slots:
            return None
        hist = np.zeros((5, self.resolution + 2))
        loss_hist = np.zeros((2, 3, self.loss_bins))
        segments = np.zeros((self.rows, 7)) if self.rows else None
        for slot in self.slots:
            for weighted, (h, lh, s) in slot.items():
                if weighted:  # the state's layouts
                    hist += h.reshape(-1, 5).T
                    loss_hist += lh.reshape(self.loss_bins, 2, 3).transpose(1, 2, 0)
                    if s is not None:
                        segments[: s.size // 7] += s.reshape(-1, 7)
                    continue
                h = h.reshape(-1, 4).T  # negatives, positives, p, loss
                hist[:4] += h
                hist[4] += h[0] + h[1]
                lh = lh.reshape(self.loss_bins, 2, 2).transpose(1, 2, 0)  # class, (loss, count)
                loss_hist[:, 0] += lh[:, 1]
                loss_hist[:, 1:] += lh
                if s is not None:  # count, positives, p, loss, brier, infinite
                    s = s.reshape(-1, 6)
                    part = segments[: len(s)]
                    part[:, 0] += s[:, 0]
                    part[:, 1:] += s
        self.slots, self.rows = [], 0
        return hist, loss_hist, segments


def diagnostics_kernels(y, xs, w, codes):
    """The kernel module and the dtype codes (yt, [xt...], wt, ct) when the compiled diagnostics
    kernel takes these flat arrays as they are, else None."""
    kernels = compiled_kernels()
    if kernels is None or not hasattr(kernels, "diagnose"):
        return None
    yt = _code(y)
    if yt is None or y.dtype.kind not in "biuf":
        return None
    xts = [_code(x) for x in xs]
    if any(xt not in (_F32, _F64) for xt in xts):
        return None
    wt = _F64
    if w is not None:
        wt = _code(w)
        if wt not in (_F32, _F64):  # integer weights: the loader clamps 64-bit ones
            return None
    ct = None
    if codes is not None:
        ct = _code(codes)
        if ct is None or codes.dtype.kind not in "iu":
            return None
    return kernels, yt, xts, wt, ct


def diagnostics_check(kernels, types, y, x, w, codes, ncodes: int, *, from_logits: bool) -> bool:
    """Whether every row is what the diagnostics kernel takes (labels 0/1, probabilities in
    [0, 1] or logits not NaN, weights finite and >= 0, codes in [0, ncodes)), on all threads.
    ``types``: (yt, xt, wt, ct) as diagnostics_kernels gives them."""
    yt, xt, wt, ct = types
    n = x.size
    bounds = _chunk_bounds(n, max(1, min(DIAGNOSTICS_SLOTS, -(-n // kernels.CHUNK))), kernels.CHUNK)

    def run(i):
        if bounds[i] == bounds[i + 1]:
            return kernels.OK
        return kernels.diagnose_check(y, yt, x, xt, w, wt, codes, ct or 0, ncodes, bounds[i],
                                      bounds[i + 1], from_logits)

    return all(status == kernels.OK for status in run_chunks(run, len(bounds) - 1))


def diagnostics_slots(scratches, segments: int) -> int:
    """How many chunks (and slots) a batch is cut into: DIAGNOSTICS_SLOTS, fewer when every
    model's slots would not stay within DIAGNOSTICS_SCRATCH_LIMIT (at least one). Not the
    threads setting: the sums do not depend on it."""
    per_slot = sum(s.slot_bytes(segments) for s in scratches)
    return max(1, min(DIAGNOSTICS_SLOTS, DIAGNOSTICS_SCRATCH_LIMIT // max(per_slot, 1)))


def diagnostics_update(kernels, types, y, x, w, codes, remap, segments: int | None,
                       scratch: DiagnosticsScratch, slots: int, *, from_logits: bool, k: int,
                       threshold: float, losses: np.ndarray | None = None) -> dict:
    """Add one model's batch to ``scratch`` (input already checked by diagnostics_check), cut
    into up to ``slots`` chunks, chunk i into slot i, on the threads setting. Returns ``totals`` (10 compensated (hi, lo) pairs, _TOTALS order),
    ``counts`` (count, positives, infinite, infinite_positive, confident, then the 4 caps) and
    ``worst``: (row indices, losses) of at most k candidates, worst first, ties by row. ``losses``
    (float64, one per row) receives each row's loss. ``remap[code]`` is the segment row (of
    ``segments``) of a row whose code is ``code``; None without segments."""
    yt, xt, wt, ct = types
    n = x.size
    chunks = max(1, min(slots, -(-n // kernels.CHUNK)))
    scratch.prepare(chunks, segments, w is not None)
    cap = max(4 * k, 256) if k else 1
    bounds = _chunk_bounds(n, chunks, kernels.CHUNK)

    def run(slot):
        lo, hi = bounds[slot], bounds[slot + 1]
        if lo == hi and n:  # an empty chunk of a longer batch (an empty batch runs once)
            return None
        hist, loss_hist, segments = scratch.slots[slot][w is not None]
        index, loss = np.empty(cap, dtype=np.int64), np.empty(cap)
        totals, counts = np.empty(2 * kernels.DIAG_TOTALS), np.empty(kernels.DIAG_COUNTS, np.int64)
        if remap is None:
            segments = None
        status, found = kernels.diagnose(y, yt, x, xt, w, wt, codes, ct or 0, remap, hist,
                                         loss_hist, segments, losses, index, loss, totals, counts,
                                         k, threshold, scratch.resolution, lo, hi, from_logits)
        if status != kernels.OK:  # only for unchecked input, a caller's error
            raise ValueError("diagnostics_update: input not checked by diagnostics_check")
        return totals, counts, index[:found], loss[:found]

    parts = [part for part in run_chunks(run, chunks) if part is not None]
    totals = parts[0][0].reshape(-1, 2).copy()
    for part in parts[1:]:  # (hi, lo) pairs merged with TwoSum, as CompensatedSum does
        for j, (hi, lo) in enumerate(part[0].reshape(-1, 2).tolist()):
            a = totals[j, 0]
            if math.isfinite(a) and math.isfinite(hi):
                s = a + hi
                v = s - a
                totals[j, 1] += (a - (s - v)) + (hi - v) + lo
                totals[j, 0] = s
            else:
                totals[j] = (a + hi, 0.0)
    counts = np.sum([part[1] for part in parts], axis=0)
    index = np.concatenate([part[2] for part in parts])
    loss = np.concatenate([part[3] for part in parts])
    if len(parts) > 1:
        order = np.lexsort((index, -loss))[:k]  # worst first, ties by row
        index, loss = index[order], loss[order]
    return {"totals": totals, "counts": counts, "worst": (index, loss)}
