"""The compiled kernels (``_numpy/kernels/kernels.c``) on every CPU path this machine runs: their
log, log1p and exp against long double on millions of inputs and against mpmath on edge values,
the product blocks, the 1-ulp promise of reduction="none", every label/prediction/weight dtype,
the float32 contract, grouped sums, bad input on every block path, and the engine switches.

The long-double reference (x87 80-bit ``logl``/``log1pl``/``expl``, themselves within ~1 ulp of
64 bits, i.e. 2**-11 float64 ulp) is checked against mpmath on a sample first.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys

import mpmath
import numpy as np
import pytest

import logloss
from logloss._numpy import chunked as _fast
from logloss._numpy import kernels as paths

from .. import reference as ref

if not paths.supported_paths():
    pytest.skip("the compiled kernels were not built (no C compiler at install)", allow_module_level=True)

rng = np.random.default_rng(2718)
M = 1_000_000  # per regime
EXTENDED = np.finfo(np.longdouble).nmant >= 63
POWERS = np.ldexp(1.0, np.arange(-1022, 1022))
(LOG, LOG1P_NEG, LOG_TERM_1P_NEG, LOG1P_UNIT, EXP, EXP_SHORT, SOFTPLUS_EXACT, SOFTPLUS, SOFTPLUS_SHORT,
 LOG_SHORT) = range(10)
HARD, SOFT, LOGIT, LOGIT32, SOFT32 = range(5)  # product block kinds (32: float32 results)
LABELS = [np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
          np.float16, np.float32, np.float64]


@pytest.fixture
def small(monkeypatch):
    monkeypatch.setattr(_fast, "KERNEL_MIN_SIZE", 0)


def _vector(K, kind, a, c=None):
    out = np.empty_like(a)
    K.vector(kind, a, c, out)
    return out


def _ulps(got: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """|got - exact| in float64 ulps of the exact value (exact in long double)."""
    spacing = np.spacing(np.abs(exact.astype(np.float64))).astype(np.longdouble)
    return np.abs(got.astype(np.longdouble) - exact) / spacing


def _log_inputs():
    return np.concatenate([
        rng.uniform(0, 1, M),
        10.0 ** rng.uniform(-307.6, 307, M),
        1 - rng.integers(1, 10**6, M) * 2.0**-53,  # just below 1
        1 + rng.integers(1, 10**6, M) * 2.0**-52,  # just above 1
        rng.uniform(0.70, 0.72, M),  # around the reduction's boundary sqrt(1/2)
        POWERS, np.nextafter(POWERS, 0), np.nextafter(POWERS, np.inf)[:-1],
        [2.2250738585072014e-308, 1.0, 0.5, 2.0],
    ])


def _log1p_inputs():  # log1p(-p), the y = 0 loss
    p = np.concatenate([
        rng.uniform(0, 1, M),
        10.0 ** rng.uniform(-323, 0, M),  # subnormals included: 1 - p rounds to 1, c carries p
        1 - rng.integers(1, 10**6, M) * 2.0**-53,  # 1 - p tiny
        rng.uniform(0.29, 0.30, M),  # 1 - p around sqrt(1/2)
        POWERS[POWERS < 1], [0.0, 5e-324, 2.0**-53, 2.0**-54, 0.5, 1 - 2.0**-53],
    ])
    return p[p < 1]


def _exp_inputs():
    return np.concatenate([
        -rng.uniform(0, 708, M), -rng.uniform(0, 1, M), -(10.0 ** rng.uniform(-320, 2.85, M)),
        -np.arange(0, 708, 0.5 * np.log(2)), [0.0, -708.0, -5e-324],
    ])


needs_extended = pytest.mark.skipif(not EXTENDED, reason="long double is not the x87 80-bit type")


@needs_extended
def test_long_double_reference_agrees_with_mpmath():
    x = rng.uniform(1e-300, 1, 200)
    for v in x:
        exact = mpmath.log(mpmath.mpf(float(v)))
        got = np.log(np.longdouble(v))
        assert abs(mpmath.mpf(str(got)) - exact) <= abs(exact) * 2.0**-62


@needs_extended
def test_log_within_one_ulp(K):
    a = _log_inputs()
    worst = _ulps(_vector(K, LOG, a, np.zeros_like(a)), np.log(a.astype(np.longdouble))).max()
    print(f"{K.PATH} log: max error {float(worst):.3f} ulp over {a.size} inputs")
    assert worst < 0.9  # measured 0.85


@needs_extended
def test_log1p_of_minus_p_within_one_ulp(K):
    p = _log1p_inputs()
    worst = _ulps(_vector(K, LOG1P_NEG, p), np.log1p(-p.astype(np.longdouble))).max()
    print(f"{K.PATH} log1p(-p): max error {float(worst):.3f} ulp over {p.size} inputs")
    assert worst < 0.95  # measured 0.875


@needs_extended
def test_log_term_for_sums_within_one_and_a_half_ulp(K):
    """c / a to first order only: at most 2**-53 relative more than log_plus."""
    p = _log1p_inputs()
    worst = _ulps(_vector(K, LOG_TERM_1P_NEG, p), np.log1p(-p.astype(np.longdouble))).max()
    assert worst < 1.5  # measured 1.4


@needs_extended
def test_log1p_of_unit_within_one_ulp(K):
    e = np.concatenate([
        rng.uniform(0, 1, M), rng.uniform(0.40, 0.52, M), 2.0 ** rng.uniform(-1074, 0, M),
        [0.0, 5e-324, 2.0**-53, np.sqrt(2) - 1, np.nextafter(np.sqrt(2) - 1, 1), 0.5, 1.0],
    ])
    worst = _ulps(_vector(K, LOG1P_UNIT, e), np.log1p(e.astype(np.longdouble))).max()
    assert worst < 0.9  # measured 0.84


@needs_extended
def test_exp_within_1_1_ulp(K):
    x = _exp_inputs()
    worst = _ulps(_vector(K, EXP, x), np.exp(x.astype(np.longdouble))).max()
    assert worst < 1.1  # measured 1.07


@needs_extended
def test_short_exp_within_2_to_the_minus_37(K):
    x = _exp_inputs()
    exact = np.exp(x.astype(np.longdouble))
    worst = (np.abs(_vector(K, EXP_SHORT, x) - exact) / exact).max()
    assert worst < 2.0**-37  # measured 2**-37.8


@needs_extended
def test_short_log_within_2_to_the_minus_42(K):
    """The float32 results' log (soft labels from probabilities): its bound, LOG_SHORT_ERROR."""
    a = np.concatenate([_log_inputs(), 1 + rng.uniform(-1e-6, 1e-6, M), rng.uniform(1.40, 1.43, M)])
    exact = np.log(a.astype(np.longdouble))
    got = _vector(K, LOG_SHORT, a)
    zero = exact == 0
    assert (got[zero] == 0).all()
    worst = (np.abs(got[~zero] - exact[~zero]) / np.abs(exact[~zero])).max()
    print(f"{K.PATH} short log: max error 2**{float(np.log2(worst)):.2f} over {a.size} inputs")
    assert worst < 2.0**-42  # measured 2**-43.1


def test_short_log_against_mpmath_at_its_edges(K):
    edges = np.array([np.sqrt(0.5), np.nextafter(np.sqrt(0.5), 0), np.sqrt(2), np.nextafter(np.sqrt(2), 0),
                      1 + 2.0**-52, 1 - 2.0**-53, 2.2250738585072014e-308, 1.7976931348623157e308, 3.0, 0.75])
    got = _vector(K, LOG_SHORT, edges)
    for a, g in zip(edges.tolist(), got.tolist()):
        exact = mpmath.log(mpmath.mpf(a))
        assert abs(mpmath.mpf(g) - exact) <= 2.0**-42 * abs(exact), a


@needs_extended
def test_softplus_within_two_ulp(K):
    """Fine for sums; float64 "none" from logits takes softplus_exact instead."""
    z = np.concatenate([rng.uniform(-708, 708, M), rng.uniform(-40, 40, M), rng.uniform(-1e-9, 1e-9, M)])
    zl = z.astype(np.longdouble)
    exact = np.maximum(zl, 0) + np.log1p(np.exp(-np.abs(zl)))
    assert _ulps(_vector(K, SOFTPLUS, z), exact).max() < 2.0  # measured 1.5
    # float32 results: 2**-37 relative, far below a float32 ulp
    short = _vector(K, SOFTPLUS_SHORT, z)
    assert (np.abs(short - exact) / exact).max() < 2.0**-36


@needs_extended
def test_exact_softplus_within_one_ulp(K):
    """The kernel behind reduction="none" from logits: one log of an exact 1 + exp(s)."""
    low, high = K.SOFTPLUS_LOW, K.SOFTPLUS_HIGH
    s = np.concatenate([
        rng.uniform(low, high, M), rng.uniform(-3, 3, M), rng.uniform(-1e-9, 1e-9, M),
        -(10.0 ** rng.uniform(-300, np.log10(-low), M)), 10.0 ** rng.uniform(-300, np.log10(high), M),
        rng.uniform(-15, -13, M),  # around exp(s) = 2**-20, where the series takes over
        rng.uniform(-38, -35, M),  # 1 + exp(s) rounds to 1 or 1 + 2**-52
        np.arange(low, high, 0.5 * np.log(2)),  # the range reduction's edges
        [low, np.nextafter(high, 0), 0.0, -0.0],
    ])
    sl = s.astype(np.longdouble)
    exact = np.maximum(sl, 0) + np.log1p(np.exp(-np.abs(sl)))
    worst = _ulps(_vector(K, SOFTPLUS_EXACT, s), exact).max()
    print(f"{K.PATH} exact softplus: max error {float(worst):.3f} ulp over {s.size} inputs")
    assert worst < 0.9  # measured 0.83


def test_edge_values_against_mpmath(K):
    a = np.array([2.2250738585072014e-308, 1e-300, 0.5, 1 - 2.0**-53, 1.0, 1 + 2.0**-52, 0.7071067811865476,
                  0.7071067811865475, 1.4142135623730951, 3.0, 1e300])
    assert ref.max_ulp_error(_vector(K, LOG, a, np.zeros_like(a)), [mpmath.log(mpmath.mpf(float(v))) for v in a]) < 1
    p = np.array([0.0, 5e-324, 1e-310, 2.0**-54, 2.0**-53, 1e-17, 1e-9, 0.29289321881345254, 0.5,
                  0.75, 1 - 2.0**-53])
    exact = [mpmath.log(ref.one_minus(mpmath.mpf(float(v)))) for v in p]
    assert ref.max_ulp_error(_vector(K, LOG1P_NEG, p), exact) < 1
    x = -np.array([0.0, 5e-324, 1e-300, 1e-17, 2.0**-53, 0.5, 0.34657359027997264, 1.0, 100.0, 700.0, 708.0])
    assert ref.max_ulp_error(_vector(K, EXP, x), [mpmath.exp(mpmath.mpf(float(v))) for v in x]) < 1
    s = np.array([-690.0, -500.5, -36.7, -36.0, -13.86, -1e-300, 0.0, 1e-300, 0.34657359027997264, 1.0, 17.0,
                  33.999])
    assert ref.max_ulp_error(_vector(K, SOFTPLUS_EXACT, s), [ref.bce_logit(0, float(v)) for v in s]) < 1


# ---------------------------------------------------------------- product blocks


def _block_kinds(logits: bool, dtype=np.float64):
    """Full blocks of BLOCK samples: each kind exercises one branch of the product kernels."""
    B = 512
    y = (rng.uniform(size=B) < 0.5).astype(dtype)
    sign = np.where(y == 1, 1.0, -1.0)
    if logits:
        kinds = {
            "calibrated": rng.uniform(-12, 12, B),
            "near_perfect": sign * rng.uniform(27, 29, B),  # losses ~ 1e-12: the bound rejects
            "huge": np.where(np.arange(B) == 7, 800.0, rng.uniform(-5, 5, B)),  # |z| > 708
            "confident_mistakes": -sign * rng.uniform(600, 708, B),  # losses ~ 650, factors ~ 1
        }
    else:
        tiny = rng.uniform(0.5e-12, 1.5e-12, B)
        first = np.flatnonzero(y == 1)[0]
        kinds = {
            "calibrated": rng.uniform(0, 1, B),
            "near_perfect": np.where(y == 1, 1 - tiny, tiny),
            "tiny_q": np.where(np.arange(B) == first, 1e-17, rng.uniform(0, 1, B)),  # q >= 2**-60
            "rare_q": np.where(np.arange(B) == first, 1e-30, rng.uniform(0, 1, B)),  # q < 2**-60
            "wide": 10.0 ** -rng.uniform(0, 17, B),  # q from 1e-17 to 1: underflow-free only split
        }
    return y, {name: x.astype(dtype) for name, x in kinds.items()}


@pytest.mark.parametrize("logits", [False, True], ids=["probabilities", "logits"])
def test_product_block_accepts_or_declines(K, logits):
    y, kinds = _block_kinds(logits)
    expect = {"calibrated": True, "near_perfect": False, "huge": False, "tiny_q": True, "rare_q": False,
              "confident_mistakes": True, "wide": True}
    term = ref.bce_logit if logits else ref.bce_probability
    for name, x in kinds.items():
        invalid, _, got = K.block(LOGIT if logits else HARD, y, x)
        assert invalid == 0 and (got >= 0) == expect[name], name
        if got >= 0:
            exact = float(mpmath.fsum(term(float(a), float(b)) for a, b in zip(y, x)))
            assert got == pytest.approx(exact, rel=1e-14, abs=0), name


def test_logit_product_serves_soft_labels(K):
    """From logits the labels only weight the linear term, so soft labels keep the product."""
    y = rng.uniform(0, 1, 512)
    for z in (rng.uniform(-12, 12, 512), rng.uniform(-700, 700, 512), rng.uniform(-1e-3, 1e-3, 512)):
        invalid, _, got = K.block(LOGIT, y, z)
        assert invalid == 0 and got >= 0
        exact = float(mpmath.fsum(ref.bce_logit(float(a), float(b)) for a, b in zip(y, z)))
        assert got == pytest.approx(exact, rel=1e-14, abs=0)
    y[3] = 1.5
    assert K.block(LOGIT, y, z)[0] == 1  # invalid label found in the same pass


def _soft_probability_kinds(dtype):
    B = 512
    y = rng.uniform(0, 1, B)
    kinds = {
        "uniform": (y, rng.uniform(0, 1, B)),
        "hard labels": ((y < 0.5).astype(float), rng.uniform(0.01, 0.99, B)),
        "wide p": (y, 10.0 ** -rng.uniform(0, 17, B)),  # log r down to -39, 1 - p rounded
        "near 1": (y, 1 - 10.0 ** -rng.uniform(1, 15 if dtype == np.float64 else 7, B)),
        # y log r and log a cancel: losses ~ 1e-9 from terms ~ 20, the bound declines
        "confident": (1 - rng.uniform(0, 1e-10, B), 1 - 10.0 ** -rng.uniform(8, 9, B)),
        "p = 0": (np.where(np.arange(B) == 5, 0.0, y), np.where(np.arange(B) == 5, 0.0, rng.uniform(0, 1, B))),
        "a < 2**-60": (np.where(np.arange(B) == 5, 1.0, y), np.where(np.arange(B) == 5, 1.0, rng.uniform(0, 1, B))),
    }
    return {name: (a.astype(dtype), b.astype(dtype)) for name, (a, b) in kinds.items()}


def test_soft_probability_product_accepts_or_declines(K):
    """One log per sample (y log(p / a)) and one per block (log prod a), within 1e-14 of mpmath."""
    expect = {"uniform": True, "hard labels": True, "wide p": True, "near 1": True,
              "confident": False, "p = 0": False, "a < 2**-60": False}
    for name, (y, p) in _soft_probability_kinds(np.float64).items():
        invalid, _, got = K.block(SOFT, y, p)
        assert invalid == 0 and (got >= 0) == expect[name], name
        if got >= 0:
            exact = float(mpmath.fsum(ref.bce_probability(float(a), float(b)) for a, b in zip(y, p)))
            assert got == pytest.approx(exact, rel=1e-14, abs=0), name
    y, p = _soft_probability_kinds(np.float64)["uniform"]
    y[9] = 1.5
    assert K.block(SOFT, y, p)[0] == 1


def test_soft_probability_product_of_float32_results(K):
    """With the short log, within 2**-30 of mpmath (the float32 tolerance) where it accepts;
    it declines where the bound, log_short's error included, passes 2**-30 of the loss."""
    expect = {"uniform": True, "hard labels": True, "wide p": True, "near 1": True,
              "confident": False, "p = 0": False, "a < 2**-60": False}
    for name, (y, p) in _soft_probability_kinds(np.float32).items():
        y, p = y.astype(np.float64), p.astype(np.float64)
        invalid, _, got = K.block(SOFT32, y, p)
        assert invalid == 0 and (got >= 0) == expect[name], name
        if got >= 0:
            exact = float(mpmath.fsum(ref.bce_probability(float(a), float(b)) for a, b in zip(y, p)))
            assert got == pytest.approx(exact, rel=2.0**-30, abs=0), name
    # y log(p / a) and log a of ~16.6 each cancel to losses of 6e-8: the short log's error on
    # them would be 2**-42 * 16.6 / 6e-8 ~ 6e-5 of the loss, and the bound declines
    y, p = np.full(512, 1.0), np.full(512, 1 - 2.0**-24)
    assert K.block(SOFT32, y, p) == (0, 0, -1.0)


# Product blocks read float32 and int64 inputs in place (no widening pass): each must compute the
# bits the float64 block computes on the same values widened, flags included.
IN_PLACE = {"f64": (np.float64, 11), "f32": (np.float32, 10), "i64": (np.int64, 4)}


def _in_place_blocks(label):
    """(kind, labels, predictions) blocks, clean and spoiled, for one label dtype."""
    B = 512
    hard = (rng.uniform(size=B) < 0.5).astype(np.float64)
    p, z = rng.uniform(0.001, 0.999, B), rng.uniform(-30, 30, B)
    blocks = [(HARD, hard, p), (SOFT, hard, p), (LOGIT, hard, z), (LOGIT32, hard, z),
              (HARD, hard, np.where(hard == 1, 1 - 1e-7, 1e-7)),  # near perfect: declined
              (HARD, hard, np.where(np.arange(B) == 300, 1e-30, p)),  # q < 2**-60: declined
              (LOGIT, hard, np.where(np.arange(B) == 300, 800.0, z))]  # |z| > 708: declined
    for index in (0, 300, B - 1):
        for kind in (HARD, SOFT, LOGIT):
            x = (z if kind == LOGIT else p).copy()
            x[index] = np.nan
            blocks.append((kind, hard, x))
            if kind != LOGIT:
                x = p.copy()
                x[index] = 1.5
                blocks.append((kind, hard, x))
    if label == "i64":
        for value in (2, -1, 2**40, -2**40, 2**63 - 1):  # clamped to [-1, 2] when read
            y = hard.copy().astype(np.int64)
            y[7] = value
            blocks += [(HARD, y, p), (SOFT, y, p), (LOGIT, y, z)]
    else:
        soft = rng.uniform(0, 1, B)
        blocks += [(SOFT, soft, p), (LOGIT, soft, z), (HARD, np.where(np.arange(B) == 9, 0.5, hard), p),
                   (SOFT, soft, 1 - 10.0 ** -rng.uniform(1, 7, B)), (SOFT, np.where(np.arange(B) == 9, 1.5, soft), p)]
    return blocks


@pytest.mark.parametrize("prediction", ["f64", "f32"])
@pytest.mark.parametrize("label", list(IN_PLACE))
def test_product_blocks_read_float32_and_int64_in_place_as_float64(K, label, prediction):
    (ydtype, ycode), (xdtype, xcode) = IN_PLACE[label], IN_PLACE[prediction]
    accepted = 0
    for kind, y, x in _in_place_blocks(label):
        y, x = y.astype(ydtype), x.astype(xdtype)
        got = K.block(kind, y, x, -1.0, ycode, xcode)
        assert got == K.block(kind, y.astype(np.float64), x.astype(np.float64)), (kind, y[:8], x[:8])
        accepted += got[2] >= 0
    assert accepted >= 4  # the clean blocks were computed, not all declined


def test_product_blocks_refuse_dtypes_they_do_not_read_in_place(K):
    y, p = np.zeros(512, dtype=np.int8), np.full(512, 0.5)
    with pytest.raises(ValueError, match="in place"):
        K.block(HARD, y, p, -1.0, 1, 11)
    with pytest.raises(ValueError, match="in place"):
        K.block(HARD, np.zeros(512), p.astype(np.int64), -1.0, 11, 4)


@pytest.mark.parametrize("logits", [False, True], ids=["probabilities", "logits"])
@pytest.mark.parametrize("stats", [False, True])
@pytest.mark.parametrize(("label", "prediction", "labels"), [
    (label, prediction, labels) for label, prediction in
    [("f32", "f32"), ("i64", "f64"), ("i64", "f32"), ("f64", "f32"), ("f32", "f64")]
    for labels in (["hard"] if label == "i64" else ["hard", "soft", "soft later"])])
def test_sums_of_dtypes_read_in_place_are_the_sums_of_their_float64_values(K, logits, stats, label,
                                                                            prediction, labels):
    """The whole sums kernel (full and partial blocks, the soft-label guess, the statistics) gives
    the same bits from float32 or int64 arrays as from their float64 copies."""
    (ydtype, ycode), (xdtype, xcode) = IN_PLACE[label], IN_PLACE[prediction]
    n = 5 * 512 + 77
    y = (rng.uniform(size=n) < 0.5).astype(np.float64)
    if labels == "soft":
        y = rng.uniform(0, 1, n)
    elif labels == "soft later":  # hard labels first: the guess picks the hard path, then changes
        y[1500:] = rng.uniform(0, 1, n - 1500)
    x = rng.uniform(-8, 8, n) if logits else rng.uniform(0.001, 0.999, n)
    y, x = y.astype(ydtype), x.astype(xdtype)
    f32 = xdtype == np.float32
    got = K.sums(y, ycode, x, xcode, None, 11, 0, n, logits, f32, stats)
    want = K.sums(y.astype(np.float64), 11, x.astype(np.float64), 11, None, 11, 0, n, logits, f32, stats)
    assert got == want
    assert got[0] == K.OK


# ---------------------------------------------------------------- through the public API


def _regimes(dtype=np.float64):
    low = np.log10(float(np.finfo(dtype).smallest_subnormal))
    return {
        "uniform": rng.uniform(0, 1, 3000),
        "tiny": 10.0 ** rng.uniform(low, -1, 3000),
        "subnormal_zero_one": np.array([5e-324, 1e-320, 2.2e-310, 2.2250738585072014e-308, 0.0, 1.0]),
        "near_one": 1 - rng.integers(1, 400, 3000) * float(np.finfo(dtype).epsneg),
        "near_half": 0.5 + rng.uniform(-1e-9, 1e-9, 3000),
    }


@pytest.mark.parametrize("regime", list(_regimes()))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_reduction_none_hard_labels_within_one_ulp(K, small, regime, dtype):
    p = _regimes(dtype)[regime].astype(dtype)
    y = (rng.uniform(size=p.size) < 0.5).astype(np.int8)
    if regime == "subnormal_zero_one":
        y = np.array([1, 0, 1, 0, 0, 1], dtype=np.int8)  # p = 0 and 1 on their finite sides
        y[p == 0] = 0  # float32 flushes the float64 subnormals to 0
    assert _fast.hard_label_losses(y, p, from_logits=False) is not None
    losses = logloss.bce(y, p, reduction="none")
    assert losses.dtype == dtype and losses.shape == p.shape
    exact = [ref.bce_probability(int(yi), float(pi)) for yi, pi in zip(y, p)]
    assert ref.max_ulp_error(losses, exact, dtype) <= 1.0


def test_reduction_none_falls_back_for_soft_labels_and_infinite_losses(K, small):
    p = rng.uniform(0, 1, 2000)
    y = rng.uniform(0, 1, 2000)
    assert _fast.hard_label_losses(y, p, from_logits=False) is None
    y = (y < 0.5).astype(np.float64)
    p[1500], y[1500] = 0.0, 1.0
    assert _fast.hard_label_losses(y, p, from_logits=False) is None
    with pytest.warns(logloss.InfiniteLossWarning):
        assert np.isinf(logloss.bce(y, p, reduction="none")[1500])


def _logit_regimes():
    return {
        "uniform": rng.uniform(-40, 40, 3000),
        "huge": rng.choice([-1, 1], 3000) * 10.0 ** rng.uniform(1.5, 3.1, 3000),  # 30 to 1300
        "tiny": rng.choice([-1, 1], 3000) * 10.0 ** rng.uniform(-300, 0, 3000),
        "edges": np.array([-800.0, -745.5, -700.0, -690.0, -689.9, -36.5, -34.0, 33.9, 34.0, 690.0, 800.0,
                           -np.inf, 0.0, -0.0]),
    }


@pytest.mark.parametrize("regime", ["uniform", "huge", "tiny", "edges"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_reduction_none_from_logits_hard_labels_within_one_ulp(K, small, regime, dtype):
    z = _logit_regimes()[regime].astype(dtype)
    y = (rng.uniform(size=z.size) < 0.5).astype(np.uint8)
    if regime == "edges":
        y = np.isin(z, [690.0, 800.0]).astype(np.uint8)
    assert _fast.hard_label_losses(y, z, from_logits=True) is not None
    losses = logloss.bce(y, z, from_logits=True, reduction="none")
    assert losses.dtype == dtype and losses.shape == z.shape
    exact = [ref.bce_logit(int(yi), float(zi)) for yi, zi in zip(y, z)]
    assert ref.max_ulp_error(losses, exact, dtype) <= 1.0


def test_reduction_none_from_logits_falls_back_for_soft_labels_and_infinite_losses(K, small):
    z = rng.uniform(-5, 5, 2000)
    y = rng.uniform(0, 1, 2000)
    assert _fast.hard_label_losses(y, z, from_logits=True) is None
    exact = [ref.bce_logit(float(a), float(b)) for a, b in zip(y, z)]
    assert ref.max_ulp_error(logloss.bce(y, z, from_logits=True, reduction="none"), exact) <= 1.0
    y = (y < 0.5).astype(np.float64)
    z[1500], y[1500] = np.inf, 0.0
    assert _fast.hard_label_losses(y, z, from_logits=True) is None
    with pytest.warns(logloss.InfiniteLossWarning):
        assert np.isinf(logloss.bce(y, z, from_logits=True, reduction="none")[1500])
    z[1500] = np.nan
    with pytest.raises(ValueError, match="y_pred"):
        logloss.bce(y, z, from_logits=True, reduction="none")


# ---------------------------------------------------------------- every dtype

N = 3 * 512 + 77  # full blocks and a partial one


@pytest.mark.parametrize("label", LABELS, ids=lambda t: np.dtype(t).name)
@pytest.mark.parametrize("pred", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("weight", [None, np.float32, np.float64], ids=["unweighted", "w32", "w64"])
@pytest.mark.parametrize("logits", [False, True], ids=["probabilities", "logits"])
def test_every_dtype_reaches_the_kernels(K, small, label, pred, weight, logits):
    y = (rng.uniform(size=N) < 0.4).astype(label)
    x = (rng.uniform(-8, 8, N) if logits else rng.uniform(0, 1, N)).astype(pred)
    w = None if weight is None else rng.uniform(0, 3, N).astype(weight)
    sums = _fast.kernel_sums(y, x, w, from_logits=logits, stats=True)
    assert sums is not None
    yf, xf = y.astype(np.float64), x.astype(np.float64)
    wf = np.ones(N) if w is None else w.astype(np.float64)
    term = ref.bce_logit if logits else ref.bce_probability
    exact = mpmath.fsum(mpmath.mpf(float(c)) * term(float(a), float(b)) for a, b, c in zip(yf, xf, wf))
    assert sums[0] == pytest.approx(float(exact), rel=1e-13, abs=0)
    assert sums[1] == pytest.approx(float(mpmath.fsum(wf)), rel=1e-15)
    assert sums[2] == pytest.approx(float(mpmath.fsum(yf * wf)), rel=1e-14)
    pr = 1 / (1 + np.exp(-xf)) if logits else xf
    assert sums[3] == pytest.approx(float(mpmath.fsum(pr * wf)), rel=1e-13)
    if not logits or label != np.float16:
        losses = _fast.hard_label_losses(y, x, from_logits=logits)
        assert losses is not None and losses.dtype == pred
        exact = [term(float(a), float(b)) for a, b in zip(yf[:600], xf[:600])]
        assert ref.max_ulp_error(losses[:600], exact, pred) <= 1.0


def test_label_dtypes_outside_the_range_go_to_the_reference(K, small):
    x = rng.uniform(0, 1, N)
    for label, bad in [(np.int64, 2), (np.int8, -1), (np.uint64, 2**64 - 1), (np.float16, np.nan)]:
        y = (rng.uniform(size=N) < 0.4).astype(label)
        y[N - 5] = bad
        assert _fast.kernel_sums(y, x, None, from_logits=False) is None
        with pytest.raises(ValueError, match=f"`y_true`.*index {N - 5}"):
            logloss.bce(y, x)


# Spoil each kind of input, at an index in a full block and in the partial last one, for each
# dtype family: the kernels decline, and the reference path names the index.
SPOIL = {
    "label 2": ("y", 2, "`y_true`"), "label -1": ("y", -1, "`y_true`"), "label NaN": ("y", np.nan, "`y_true`"),
    "p NaN": ("p", np.nan, "`y_pred`"), "p -0.25": ("p", -0.25, "`y_pred`"), "p 1.5": ("p", 1.5, "`y_pred`"),
    "w -1": ("w", -1.0, "`sample_weight`"), "w inf": ("w", np.inf, "`sample_weight`"),
    "w NaN": ("w", np.nan, "`sample_weight`"),
}


DTYPE_PAIRS = {"i64-f64": (np.int64, np.float64), "u8-f32": (np.uint8, np.float32), "f32-f32": (np.float32, np.float32),
               "f16-f64": (np.float16, np.float64), "bool-f64": (np.bool_, np.float64)}


def _spoil_cases():
    """Only the combinations that exist: a bool or int label cannot be 2.5 or NaN, every number
    but NaN is a logit, and reduction="none" with weights is the reference path anyway."""
    for reduction in ("mean", "none"):
        for logits in (False, True):
            for pair, (label, _) in DTYPE_PAIRS.items():
                for spoil, (where, value, _) in SPOIL.items():
                    if where == "y" and (label == np.bool_ or (np.dtype(label).kind in "iu" and np.isnan(value))):
                        continue
                    if (where == "p" and logits and not np.isnan(value)) or (where == "w" and reduction == "none"):
                        continue
                    yield pytest.param(reduction, logits, pair, spoil, id=f"{reduction}-{'logits' if logits else 'p'}-{pair}-{spoil}")


@pytest.mark.parametrize("index", [700, N - 3], ids=["full block", "partial block"])
@pytest.mark.parametrize(("reduction", "logits", "pair", "spoil"), list(_spoil_cases()))
def test_spoiled_input_is_reported_with_its_index(K, small, reduction, logits, pair, spoil, index):
    label, pred = DTYPE_PAIRS[pair]
    where, value, name = SPOIL[spoil]
    y = (rng.uniform(size=N) < 0.5)
    x = rng.uniform(-5, 5, N) if logits else rng.uniform(0.01, 0.99, N)
    w = rng.uniform(0.5, 2, N) if where == "w" else None
    if where == "y":
        y = y.astype(np.float64)
        y[index] = value
        y = y.astype(label)
    else:
        y = y.astype(label)
        {"p": x, "w": w}[where][index] = value
    x = x.astype(pred)
    with pytest.raises(ValueError, match=f"{name}.*index {index}"):
        logloss.bce(y, x, from_logits=logits, sample_weight=w, reduction=reduction)


# ---------------------------------------------------------------- float32: 1 ulp of the exact value


def _float32_adversarial():
    """float32 inputs where the float32 bounds (short exp, 2**-30 per block) are closest to the
    contract: blocks just above the acceptance threshold, near-perfect blocks, mixed huge and tiny
    losses, and soft labels that cancel."""
    B = 512
    sign = np.where(rng.uniform(size=8 * B) < 0.5, 1.0, -1.0)
    y = (sign > 0).astype(np.float32)
    cases = {
        "logits near threshold": (y, (sign * rng.uniform(6, 8, 8 * B)).astype(np.float32), True),
        # losses ~ 1e-11: each 1 + e rounds off ~1e-5 of e, so a product accepted on a loose
        # bound would be off by ~1e-7 relative; the 2**-30 bound sends these blocks to the losses
        "logits near perfect": (y, (sign * rng.uniform(23, 26, 8 * B)).astype(np.float32), True),
        "logits mixed": (y, (sign * np.where(np.arange(8 * B) % 97 == 0, -30.0, 12.0)).astype(np.float32), True),
        "soft logits": (rng.uniform(0, 1, 8 * B).astype(np.float32),
                        rng.uniform(-3, 3, 8 * B).astype(np.float32), True),
        "probabilities near perfect": (y, np.where(y == 1, 1 - rng.uniform(1e-7, 1e-6, 8 * B),
                                                   rng.uniform(1e-9, 1e-7, 8 * B)).astype(np.float32), False),
        "soft probabilities": (rng.uniform(0, 1, 8 * B).astype(np.float32),
                               rng.uniform(0, 1, 8 * B).astype(np.float32), False),
        # log a of up to 16.6 beside losses of ~1: the short log's bound near its threshold
        "soft probabilities near 0 and 1": (rng.uniform(0, 1, 8 * B).astype(np.float32),
                                            np.where(rng.uniform(size=8 * B) < 0.5,
                                                     1 - 2.0**-rng.integers(1, 25, 8 * B),
                                                     2.0**-rng.integers(1, 60, 8 * B)).astype(np.float32), False),
        "soft labels near certain": ((1 - rng.uniform(0, 1e-3, 8 * B)).astype(np.float32),
                                     (1 - rng.uniform(1e-4, 1e-2, 8 * B)).astype(np.float32), False),
    }
    return cases


@pytest.mark.parametrize("case", list(_float32_adversarial()))
def test_float32_results_within_one_ulp_of_the_exact_value(K, small, case):
    y, x, logits = _float32_adversarial()[case]
    term = ref.bce_logit if logits else ref.bce_probability
    exact = mpmath.fsum(term(float(a), float(b)) for a, b in zip(y, x))
    loss, _ = _fast.loss_sums(y, x, from_logits=logits, result_float32=True)
    # the float64 sum before its one rounding: within half a float32 ulp (2**-25 relative)
    assert abs(loss - float(exact)) <= 2.0**-25 * float(exact)
    mean = logloss.bce(y, x, from_logits=logits)
    assert mean.dtype == np.float32
    assert ref.ulp_error(mean, exact / len(y), np.float32) <= 1.0


# ---------------------------------------------------------------- grouped sums


@pytest.mark.parametrize("codes_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("logits", [False, True])
def test_grouped_sums_match_per_group_references(K, codes_dtype, weighted, logits):
    n, groups = 5000, 7
    y = (rng.uniform(size=n) < 0.4).astype(np.int8)
    x = rng.uniform(-6, 6, n) if logits else rng.uniform(0, 1, n)
    if not logits:
        x[10], y[10] = 0.0, 1  # an infinite loss: counted, not refused
    w = rng.uniform(0, 2, n) if weighted else None
    codes = rng.integers(0, groups, n).astype(codes_dtype)
    codes[codes == 5] = 6  # an empty group
    got = _fast.grouped_sums(y, x, w, codes, groups, from_logits=logits)
    assert got is not None and got.shape == (groups, 7)
    term = ref.bce_logit if logits else ref.bce_probability
    wf = np.ones(n) if w is None else w
    for g in range(groups):
        rows = np.flatnonzero(codes == g)
        assert got[g, 4] == rows.size
        if not rows.size:
            assert (got[g] == 0).all()
            continue
        losses = [mpmath.mpf(float(wf[i])) * term(float(y[i]), float(x[i])) for i in rows if wf[i]]
        exact = mpmath.fsum(losses)
        infinite = sum(1 for v in losses if mpmath.isinf(v))
        assert got[g, 5] == infinite
        if infinite:
            assert got[g, 0] == np.inf
        else:
            assert got[g, 0] == pytest.approx(float(exact), rel=1e-14, abs=0)
        assert got[g, 1] == pytest.approx(float(mpmath.fsum(wf[rows])), rel=1e-15)
        assert got[g, 2] == pytest.approx(float(mpmath.fsum(y[rows] * wf[rows])), rel=1e-15)
        pr = 1 / (1 + np.exp(-x[rows])) if logits else x[rows]
        assert got[g, 3] == pytest.approx(float(mpmath.fsum(pr * wf[rows])), rel=1e-13)
        assert got[g, 6] == np.count_nonzero(y[rows])


def test_grouped_sums_decline_bad_input_and_codes(K):
    n = 3000
    y = (rng.uniform(size=n) < 0.4).astype(np.int64)
    x = rng.uniform(0, 1, n)
    codes = rng.integers(0, 3, n)
    assert _fast.grouped_sums(y, x, None, codes, 3, from_logits=False) is not None
    bad = codes.copy()
    bad[2999] = 3
    assert _fast.grouped_sums(y, x, None, bad, 3, from_logits=False) is None
    x[1234] = np.nan
    assert _fast.grouped_sums(y, x, None, codes, 3, from_logits=False) is None


@pytest.mark.parametrize("threads", [1, 2])
def test_grouped_sums_merged_a_slice_of_groups_at_a_time(K, monkeypatch, threads):
    """Groups merged across threads and checked a slice at a time (slices of 3 groups here):
    every group's sums equal a NumPy reference, and a sum near the top of the float range in
    the last slice still declines the whole batch."""
    monkeypatch.setattr(_fast, "GROUP_SLICE", 3)
    n, groups = 4000, 20
    y = (rng.uniform(size=n) < 0.4).astype(np.int8)
    x = rng.uniform(0.01, 0.99, n)
    w = rng.uniform(0, 2, n)
    codes = rng.integers(0, groups, n)
    with logloss.config_context(threads=threads):
        got = _fast.grouped_sums(y, x, w, codes, groups, from_logits=False)
        loss = w * np.where(y == 1, -np.log(x), -np.log1p(-x))
        for g in range(groups):
            rows = codes == g
            assert got[g, 0] == pytest.approx(math.fsum(loss[rows]), rel=1e-13)
            assert got[g, 1] == pytest.approx(math.fsum(w[rows]), rel=1e-15)
            assert got[g, 4] == rows.sum()
        w[np.flatnonzero(codes == groups - 1)[0]] = 1e305  # past 2**1000 once multiplied by a loss
        assert _fast.grouped_sums(y, x, w, codes, groups, from_logits=False) is None


# ---------------------------------------------------------------- engine and CPU path switches


def test_large_input_uses_the_kernels_and_agrees_with_numpy(K, monkeypatch):
    n = 70_000
    y = (rng.uniform(size=n) < 0.3).astype(np.int64)
    p = rng.uniform(0, 1, n)
    calls = []
    original = _fast.kernel_sums
    monkeypatch.setattr(_fast, "kernel_sums", lambda *a, **k: calls.append(1) or original(*a, **k))
    fast = logloss.bce(y, p)
    assert calls
    with logloss.config_context(engine="numpy"):
        assert fast == pytest.approx(logloss.bce(y, p), rel=1e-14)


def _run(code: str, **env) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ, **env))
    return out.stdout.strip()


def test_environment_switches():
    code = ("import logloss; from logloss._numpy import chunked; k = chunked.compiled_kernels(); "
            "print(None if k is None else k.PATH)")
    assert _run(code, LOGLOSS_ENGINE="numpy") == "None"
    for name in paths.supported_paths():
        assert _run(code, LOGLOSS_ENGINE="auto", LOGLOSS_CPU_PATH=name) == name
    assert _run(code, LOGLOSS_ENGINE="auto", LOGLOSS_CPU_PATH="") == paths.supported_paths()[0]


def test_unknown_cpu_path_is_refused():
    with pytest.raises(ValueError, match="LOGLOSS_CPU_PATH.*Received: 'sse9'"):
        paths.set_cpu_path("sse9")


# ---------------------------------------------------------------- the memory floor (benchmarks)


@pytest.mark.parametrize("label_dtype", [np.int8, np.int64, np.float32, np.float64])
@pytest.mark.parametrize(("lo", "hi"), [(0, 1001), (3, 997), (0, 0), (500, 501)])
def test_stream_reads_every_byte_of_the_range(K, label_dtype, lo, hi):
    """stream's checksum is the sum of the range's 64-bit words (and its tail bytes) mod 2**64,
    computed here by NumPy on the same bytes: a floor that skipped bytes would read less."""
    y = rng.integers(-100, 100, 1001).astype(label_dtype)
    x = rng.uniform(0, 1, 1001)

    def words(a):
        raw = a[lo:hi].tobytes()
        whole = len(raw) // 64 * 64
        lanes = np.frombuffer(raw[:whole], dtype=np.uint64)
        return int(lanes.sum(dtype=np.uint64)) + sum(raw[whole:])

    expect = (words(y) + words(x)) % 2**64
    assert K.stream(y, _fast._code(y), x, _fast._code(x), lo, hi) == expect
    y[lo:hi] = 0
    x[lo:hi] = 0
    assert K.stream(y, _fast._code(y), x, _fast._code(x), lo, hi) == 0


# ---------------------------------------------------------------- a missing array is refused

# Entry points called with None where an array is required (w of sums, grad and losses of train
# may be None; y, x, p and out may not). get_buffer accepts None for the optional ones and then
# leaves the view unset: stream(None, ...) read through an uninitialized pointer (a segfault),
# sums(None, ...) summed whatever it pointed at. Run in a child, so a crash is a failure here.
_MISSING = [
    "K.stream(None, 11, x, 11, 0, 5)",
    "K.stream(x, 11, None, 11, 0, 5)",
    "K.sums(None, 11, x, 11, None, 11, 0, 5, False, False, False)",
    "K.sums(x, 11, None, 11, None, 11, 0, 5, False, False, False)",
    "K.losses(None, 11, x, 11, o, 11, 0, 5, False)",
    "K.losses(x, 11, None, 11, o, 11, 0, 5, False)",
    "K.losses(x, 11, x, 11, None, 11, 0, 5, False)",
    "K.block(1, None, b)",
    "K.block(1, b, None)",
    "K.train(None, 11, x, 11, None, None, 1.0, 0, 5, False)",
    "K.train(x, 11, None, 11, None, None, 1.0, 0, 5, False)",
]


@pytest.mark.parametrize("name", paths.supported_paths())
def test_a_missing_required_array_is_a_type_error_not_a_crash(name):
    code = (
        "import numpy as np\n"
        "from logloss._numpy import kernels as paths\n"
        f"paths.set_cpu_path({name!r}); K = paths.module()\n"
        "x = np.full(10, 0.5); o = np.zeros(10); b = np.full(512, 0.5)\n"
        f"for call in {_MISSING!r}:\n"
        "    try:\n"
        "        eval(call)\n"
        "    except TypeError as e:\n"
        "        assert 'None' in str(e), (call, str(e))\n"
        "        print('refused')\n"
        "    else:\n"
        "        print('accepted', call)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, (out.returncode, out.stdout, out.stderr)
    assert out.stdout.split() == ["refused"] * len(_MISSING), out.stdout


# hi beyond the array by so much that hi * itemsize wraps around 2**64: the length check compared
# the wrapped product, so stream read 8 bytes of the wrong range and sums read past the array.
_WRAPPING = [
    "K.stream(x, 11, x, 11, 0, 2**61 + 1)",
    "K.stream(x, 11, x, 11, 2**61, 2**61 + 1)",
    "K.sums(x, 11, x, 11, None, 11, 0, 2**61 + 1, False, False, False)",
    "K.losses(x, 11, x, 11, o, 11, 0, 2**61 + 1, False)",
    "K.sums(h, 9, x, 11, None, 11, 0, 2**62 + 1, False, False, False)",
]


def test_a_range_whose_byte_count_wraps_is_refused(K):
    x = np.full(10, 0.5)
    o = np.zeros(10)
    h = np.zeros(10, dtype=np.float16)
    for call in _WRAPPING:
        with pytest.raises(ValueError, match="does not fit"):
            eval(call, {"K": K, "x": x, "o": o, "h": h})
