"""The orderings behind diagnose's exact in-memory figures (``_numpy/ordering.py``, the kernels'
``ordering.c``): radix sorts against NumPy's sorts, the grouping and the worst-first sums against
plain Python, the pooling against exact rationals and scikit-learn, on every CPU path and on the
NumPy engine."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

import logloss
from logloss._numpy import ordering

sklearn_isotonic = pytest.importorskip("sklearn.isotonic")


@pytest.fixture(params=["kernels", "numpy"])
def engine(request, K):
    """Each CPU path's kernels, and the NumPy engine (once per path: cheap)."""
    with logloss.config_context(engine="auto" if request.param == "kernels" else "numpy"):
        yield request.param


def _float_table(rng, n):
    """float64 values a sort can get wrong: both zeros, both infinities, subnormals, values a bit
    apart, repeats, and every exponent."""
    special = np.array([0.0, -0.0, np.inf, -np.inf, 5e-324, -5e-324, 2.2250738585072014e-308,
                        1.0, np.nextafter(1.0, 2), np.nextafter(1.0, 0), -1.0, 1e308, -1e308])
    values = np.concatenate([special, rng.normal(size=n) * 10.0 ** rng.integers(-300, 300, n)])
    values = np.concatenate([values, rng.choice(values, n)])  # repeats
    rng.shuffle(values)
    return values


@pytest.mark.parametrize("n", [0, 1, 2, 255, 256, 257, 10_000])
def test_the_kernels_sort_of_keys_is_numpy_sort(K, n):
    rng = np.random.default_rng(n)
    cases = {
        "probability keys": (rng.random(n).view(np.int64) << 1) | rng.integers(0, 2, n),
        "one repeated key": np.full(n, 1234567, dtype=np.int64),
        "top bytes shared": rng.integers(0, 1 << 12, n).astype(np.int64) | (0x7F << 56),
        "low bytes shared": rng.integers(0, 1 << 20, n).astype(np.int64) << 40,
        "full unsigned range": rng.integers(0, 1 << 64, n, dtype=np.uint64),
    }
    for name, keys in cases.items():
        expected = np.sort(keys)
        K.sort_keys(keys, np.empty_like(keys))
        np.testing.assert_array_equal(keys, expected, err_msg=name)


@pytest.mark.parametrize("n", [0, 1, 3, 300, 20_000])
@pytest.mark.parametrize("descending", [False, True])
def test_the_kernels_argsort_is_numpys_stable_argsort(K, n, descending):
    values = _float_table(np.random.default_rng(n), n)
    order = np.empty(len(values), dtype=np.int64)
    K.argsort(values, order, descending)
    np.testing.assert_array_equal(
        order, np.argsort(-values if descending else values, kind="stable"))


def _reference_pool(negative, positive):
    """Pool adjacent violators in exact rationals, one block at a time, pooling equal shares too:
    (starts, neg, pos) of the fit's level sets."""
    blocks = []
    for start, (a, b) in enumerate(zip(negative, positive)):
        blocks.append([start, Fraction(a), Fraction(b)])
        while len(blocks) > 1 and (blocks[-2][2] / (blocks[-2][1] + blocks[-2][2])
                                   >= blocks[-1][2] / (blocks[-1][1] + blocks[-1][2])):
            _, a, b = blocks.pop()
            blocks[-1][1] += a
            blocks[-1][2] += b
    return [b[0] for b in blocks], [b[1] for b in blocks], [b[2] for b in blocks]


@pytest.mark.parametrize("case", ["random", "equal shares", "increasing", "decreasing",
                                  "one block", "long chain"])
def test_pooling_ends_in_the_level_sets_of_the_exact_fit(engine, case):
    rng = np.random.default_rng(3)
    if case == "random":
        neg, pos = rng.integers(0, 5, 3000), rng.integers(0, 5, 3000)
        neg[(neg + pos) == 0] = 1
    elif case == "equal shares":  # runs of equal shares in other weights: one level set each
        share, times = rng.integers(1, 4, 2000), rng.integers(1, 4, 2000)
        neg, pos = (4 - share) * times, share * times
    elif case == "increasing":
        neg, pos = np.arange(1000, 0, -1), np.arange(1, 1001)
    elif case == "decreasing":
        neg, pos = np.arange(1, 1001), np.arange(1000, 0, -1)
    elif case == "one block":
        neg, pos = np.array([3]), np.array([1])
    else:  # one heavy first block, then a slowly rising run: the NumPy engine's stack pass
        neg = np.r_[1, np.arange(20_000, 0, -1)]
        pos = np.r_[10**9, np.arange(1, 20_001)]
    ref_starts, ref_neg, ref_pos = _reference_pool(neg.tolist(), pos.tolist())
    starts, pneg, ppos = ordering.pool_adjacent_violators(neg.astype(float), pos.astype(float))
    assert starts.tolist() == ref_starts
    assert pneg.tolist() == [float(v) for v in ref_neg]  # integers: every sum exact
    assert ppos.tolist() == [float(v) for v in ref_pos]
    shares = ppos / (ppos + pneg)
    assert (np.diff(shares) > 0).all()  # strictly rising: nothing left to pool
    fitted = np.repeat(shares, np.diff(np.append(starts, len(neg))))
    weight = (neg + pos).astype(float)
    ref = sklearn_isotonic.IsotonicRegression().fit(
        np.arange(len(neg)), pos / weight, sample_weight=weight).predict(np.arange(len(neg)))
    np.testing.assert_allclose(fitted, ref, rtol=1e-9, atol=1e-12)


def test_a_block_of_zero_weight_pools_with_nothing(engine):
    neg = np.array([1.0, 0.0, 3.0, 0.0, 1.0])
    pos = np.array([3.0, 0.0, 1.0, 0.0, 1.0])
    starts, pneg, ppos = ordering.pool_adjacent_violators(neg, pos)
    # the zero-weight blocks separate what would pool: every block stays
    assert starts.tolist() == [0, 1, 2, 3, 4]
    assert pneg.tolist() == neg.tolist() and ppos.tolist() == pos.tolist()


def test_pooling_refuses_arrays_of_two_lengths(engine):
    with pytest.raises(ValueError, match="1-D of one length"):
        ordering.pool_adjacent_violators(np.ones(3), np.ones(4))


def _python_groups(key, y, p, loss, w):
    """Rows grouped by key in plain Python, sums in row order with fsum."""
    groups: dict = {}
    for i, k in enumerate(key.tolist()):
        k = k + 0.0  # -0.0 and 0.0: one key
        g = groups.setdefault(k, {"p": float(p[i]), "rows": []})
        g["rows"].append(i)
    out = []
    for k in sorted(groups):
        rows = groups[k]["rows"]
        wr = [1.0 if w is None else float(w[i]) for i in rows]
        weight = math.fsum(wr)
        if not weight > 0:
            continue
        out.append((groups[k]["p"],
                    math.fsum(v for v, i in zip(wr, rows) if not y[i]),
                    math.fsum(v for v, i in zip(wr, rows) if y[i]),
                    math.fsum(v * float(p[i]) for v, i in zip(wr, rows)),
                    math.fsum(v * float(loss[i]) if v > 0 else 0.0 for v, i in zip(wr, rows)),
                    weight))
    return [np.array(column) for column in zip(*out)]


def _losses(y, p):
    """-log p or -log(1 - p) per row in libm, infinite at p = 0 (positive) or 1 (negative)."""
    q = [pi if yi else 1.0 - pi for yi, pi in zip(y.tolist(), p.tolist())]
    return np.array([(-math.log(pi) if yi else -math.log1p(-pi)) if qi > 0 else math.inf
                     for yi, pi, qi in zip(y.tolist(), p.tolist(), q)])


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("logits", [False, True])
def test_key_groups_are_the_rows_grouped_in_python(engine, weighted, logits):
    rng = np.random.default_rng(11)
    n = 4000
    p = np.round(rng.random(n), 2)  # ties
    p[:3] = [0.0, 1.0, 0.5]
    y = rng.random(n) < p
    y[:2] = [True, False]  # infinite losses...
    w = rng.choice([0.0, 0.5, 1.0, 3.0], n) if weighted else None
    if weighted:
        w[:2] = 0.0  # ...of weight 0: they add nothing, not NaN
        w[(p == 0.37)] = 0.0  # a whole group of weight 0 is left out
    with np.errstate(divide="ignore"):
        key = np.log(p) - np.log1p(-p) if logits else p  # -inf and inf at 0 and 1
    if logits:
        key[p == 0.5] = np.where(np.arange(n)[p == 0.5] % 2, 0.0, -0.0)  # both zeros, one key
    with np.errstate(divide="ignore"):
        loss = _losses(y, p)
    got = ordering.key_groups(np.ascontiguousarray(key), y, p, loss, w)
    ref = _python_groups(key, y, p, loss, w)
    assert len(got) == len(ref) == 6
    np.testing.assert_array_equal(got[0], ref[0])  # the predictions, in key order
    for g, r in zip(got[1:], ref[1:]):
        np.testing.assert_allclose(g, r, rtol=1e-14)
    if weighted:
        assert 0.37 not in got[0]


def test_probability_groups_are_the_rows_grouped_in_python(engine):
    rng = np.random.default_rng(12)
    n = 5000
    p = np.round(rng.random(n), 3)
    p[:4] = [0.0, 1.0, 5e-324, 1 - 2**-53]
    y = rng.random(n) < p
    y[:4] = [False, True, True, False]
    with np.errstate(divide="ignore"):
        loss = _losses(y, p)
    got = ordering.probability_groups(y, p)
    ref = _python_groups(p, y, p, loss, None)
    np.testing.assert_array_equal(got[0], ref[0])
    np.testing.assert_array_equal(got[1], ref[1])  # counts: exact
    np.testing.assert_array_equal(got[2], ref[2])
    np.testing.assert_array_equal(got[5], ref[5])
    np.testing.assert_allclose(got[3], ref[3], rtol=1e-15)
    # each group's loss is its count times a loss within 1 ulp: 2 ulp of the product
    np.testing.assert_allclose(got[4], ref[4], rtol=4.5e-16)


def test_probability_groups_without_ties_keep_every_row(engine):
    p = np.random.default_rng(13).random(100_000)
    y = p > 0.5
    got = ordering.probability_groups(y, p)
    assert len(got[0]) == len(np.unique(p))
    np.testing.assert_array_equal(got[0], np.sort(p))
    np.testing.assert_allclose(got[4], _losses(y[np.argsort(p)], np.sort(p)), rtol=2.3e-16)


@pytest.mark.parametrize("case", ["random", "ties", "zero weights", "infinite"])
def test_worst_first_is_the_cumulative_sums_of_the_sorted_rows(engine, case):
    rng = np.random.default_rng(17)
    n = 3000
    loss = rng.exponential(size=n)
    w = rng.random(n) * 2
    if case == "ties":
        loss = np.round(loss, 1)
    elif case == "zero weights":
        w[rng.random(n) < 0.5] = 0.0
    elif case == "infinite":
        loss[[5, 50]] = np.inf
        w[5] = 0.0  # counts for nothing; row 50 makes the total infinite
    total_w = math.fsum(w.tolist())
    targets = [q * total_w for q in (0.001, 0.01, 0.1, 1.0, 2.0)]
    rows = sorted(range(n), key=lambda i: (-loss[i], i))
    cum_w, cum_l, ref = [], [], []
    acc_w = acc_l = 0.0
    for i in rows:
        acc_w += w[i]
        acc_l += w[i] * loss[i] if w[i] > 0 else 0.0
        cum_w.append(acc_w)
        cum_l.append(acc_l)
    for t in targets:
        i = next((j for j, c in enumerate(cum_w) if c >= t), n - 1)
        ref.append((cum_w[i - 1] if i else 0.0, cum_l[i - 1] if i else 0.0, cum_w[i], cum_l[i]))
    total, got = ordering.worst_first(loss, w, targets)
    with np.errstate(invalid="ignore"):
        expected_total = math.fsum(np.where(w > 0, w * loss, 0.0).tolist())
    if math.isinf(expected_total):
        assert total == math.inf
    else:
        assert total == pytest.approx(expected_total, rel=1e-15)
    np.testing.assert_allclose(got, np.array(ref), rtol=1e-15)


def test_the_kernel_functions_refuse_buffers_that_do_not_fit(K):
    with pytest.raises(ValueError, match="out"):
        K.pool(np.ones(4), np.ones(4), np.empty(4, dtype=np.int64), np.empty(3), np.empty(4))
    with pytest.raises(ValueError, match="scratch"):
        K.sort_keys(np.ones(4, dtype=np.int64), np.empty(3, dtype=np.int64))
    with pytest.raises(ValueError, match="order"):
        K.argsort(np.ones(4), np.empty(4, dtype=np.int32), False)
    with pytest.raises(ValueError, match="y"):
        K.key_groups(np.ones(4), np.ones(3, dtype=bool), *[np.ones(4)] * 2, None,
                     *[np.empty(4)] * 6)
    with pytest.raises((BufferError, ValueError)):  # a read-only output
        K.worst(np.ones(4), np.ones(4), np.ones(1), np.broadcast_to(np.ones(4), (4,)))


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("logits", [False, True])
def test_diagnose_gives_the_same_exact_figures_on_both_engines(K, weighted, logits):
    rng = np.random.default_rng(21)
    n = 30_000
    p = np.round(rng.beta(2, 5, n), 3)
    y = (rng.random(n) < p).astype(np.int8)
    x = np.log(p) - np.log1p(-p) if logits else p
    w = rng.choice([0.0, 0.25, 1.0, 2.0], n) if weighted else None
    with np.errstate(divide="ignore"):
        results = []
        for engine in ("auto", "numpy"):
            with logloss.config_context(engine=engine):
                results.append(logloss.diagnose(y, x, sample_weight=w,
                                                from_logits=logits).to_dict())
    auto, numpy_ = results
    assert auto["reliability"]["pav"]["blocks"] == numpy_["reliability"]["pav"]["blocks"]
    for name in ("miscalibration", "discrimination", "uncertainty"):
        assert auto["decomposition"][name] == pytest.approx(numpy_["decomposition"][name],
                                                            rel=1e-11, abs=1e-15)
    assert auto["ece"] == pytest.approx(numpy_["ece"], rel=1e-11)
    for a, b in zip(auto["concentration"]["worst"], numpy_["concentration"]["worst"]):
        assert a["share_of_loss"] == pytest.approx(b["share_of_loss"], rel=1e-12)
    for a, b in zip(auto["reliability"]["bins"], numpy_["reliability"]["bins"]):
        assert a == pytest.approx(b, rel=1e-11)


def test_the_pools_tasks_see_the_callers_config_context():
    """diagnose computes its concentration shares on a pool thread: with engine="numpy" set by
    config_context (a ContextVar) only on the caller's thread, that thread used the kernels and
    the figures changed in the last bit from call to call."""
    import threading
    import time

    from logloss._core.config import engine as current_engine
    from logloss._numpy import chunked

    def task(*_):
        time.sleep(0.02)  # every thread takes a task
        return current_engine(), threading.get_ident()

    with logloss.config_context(engine="numpy", threads=2):
        seen = chunked.run_chunks(task, 6) + chunked.run_in_ranges(task, 1 << 20, 1 << 10)
    assert len({thread for _, thread in seen}) > 1
    assert {name for name, _ in seen} == {"numpy"}


def test_the_kernels_worst_first_of_no_rows_takes_nothing(K):
    out = np.full((2, 4), np.nan)
    assert K.worst(np.zeros(0), np.zeros(0), np.array([0.5, 1.0]), out) == 0.0
    assert out.tolist() == [[0.0] * 4] * 2
