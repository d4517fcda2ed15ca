"""The optional numba kernels (``_numba``): their log, log1p and exp against long double on
millions of inputs and against mpmath on edge values, the 1-ulp promise of reduction="none",
the size threshold and the LOGLOSS_DISABLE_NUMBA switch.

The long-double reference (x87 80-bit ``logl``/``log1pl``/``expl``, themselves within ~1 ulp of
64 bits, i.e. 2**-11 float64 ulp) is checked against mpmath on a sample first.
"""

from __future__ import annotations

import os
import subprocess
import sys

import mpmath
import numpy as np
import pytest

import logloss
from logloss._numpy import chunked as _fast

from .. import reference as ref

numba = pytest.importorskip("numba")
K = _fast.numba_kernels()
if K is None:  # LOGLOSS_ENGINE=numpy in the environment
    from logloss._numpy import numba_kernels as K

rng = np.random.default_rng(2718)
M = 1_000_000  # per regime
EXTENDED = np.finfo(np.longdouble).nmant >= 63
POWERS = np.ldexp(1.0, np.arange(-1022, 1022))


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
def test_log_within_one_ulp():
    a = _log_inputs()
    out = np.empty_like(a)
    K.vector_log(a, np.zeros_like(a), out)
    worst = _ulps(out, np.log(a.astype(np.longdouble))).max()
    print(f"log: max error {float(worst):.3f} ulp over {a.size} inputs")
    assert worst < 0.9  # measured 0.85


@needs_extended
def test_log1p_of_minus_p_within_one_ulp():
    p = _log1p_inputs()
    out = np.empty_like(p)
    K.vector_log1p_neg(p, out)
    worst = _ulps(out, np.log1p(-p.astype(np.longdouble))).max()
    print(f"log1p(-p): max error {float(worst):.3f} ulp over {p.size} inputs")
    assert worst < 0.95  # measured 0.875


@needs_extended
def test_log_term_for_sums_within_one_and_a_half_ulp():
    """c / a to first order only: at most 2**-53 relative more than log_plus."""
    p = _log1p_inputs()
    out = np.empty_like(p)
    K.vector_log_term_1p_neg(p, out)
    worst = _ulps(out, np.log1p(-p.astype(np.longdouble))).max()
    print(f"log_term, log1p(-p): max error {float(worst):.3f} ulp over {p.size} inputs")
    assert worst < 1.5  # measured 1.4


@needs_extended
def test_log1p_of_unit_within_one_ulp():
    e = np.concatenate([
        rng.uniform(0, 1, M), rng.uniform(0.40, 0.52, M), 2.0 ** rng.uniform(-1074, 0, M),
        [0.0, 5e-324, 2.0**-53, np.sqrt(2) - 1, np.nextafter(np.sqrt(2) - 1, 1), 0.5, 1.0],
    ])
    out = np.empty_like(e)
    K.vector_log1p_unit(e, out)
    worst = _ulps(out, np.log1p(e.astype(np.longdouble))).max()
    print(f"log1p(e), 0 <= e <= 1: max error {float(worst):.3f} ulp over {e.size} inputs")
    assert worst < 0.9  # measured 0.84


@needs_extended
def test_exp_within_1_1_ulp():
    x = _exp_inputs()
    out = np.empty_like(x)
    K.vector_exp(x, out)
    worst = _ulps(out, np.exp(x.astype(np.longdouble))).max()
    print(f"exp: max error {float(worst):.3f} ulp over {x.size} inputs")
    assert worst < 1.1  # measured 1.07


@needs_extended
def test_short_exp_within_2_to_the_minus_37():
    x = _exp_inputs()
    out = np.empty_like(x)
    K.vector_exp_short(x, out)
    exact = np.exp(x.astype(np.longdouble))
    worst = (np.abs(out - exact) / exact).max()
    print(f"short exp: max relative error 2**{float(np.log2(worst)):.1f} over {x.size} inputs")
    assert worst < 2.0**-37  # measured 2**-37.8


@needs_extended
def test_softplus_within_two_ulp():
    """Fine for sums (and, with the short exp, for float32 results); float64 "none" from logits
    takes softplus_exact instead."""
    z = np.concatenate([rng.uniform(-708, 708, M), rng.uniform(-40, 40, M), rng.uniform(-1e-9, 1e-9, M)])
    out = np.empty_like(z)
    K.vector_softplus(z, out)
    zl = z.astype(np.longdouble)
    worst = _ulps(out, np.maximum(zl, 0) + np.log1p(np.exp(-np.abs(zl)))).max()
    print(f"softplus: max error {float(worst):.3f} ulp over {z.size} inputs")
    assert worst < 2.0  # measured 1.5


@needs_extended
def test_exact_softplus_within_one_ulp():
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
    out = np.empty_like(s)
    K.vector_softplus_exact(s, out)
    sl = s.astype(np.longdouble)
    exact = np.maximum(sl, 0) + np.log1p(np.exp(-np.abs(sl)))
    worst = _ulps(out, exact).max()
    print(f"exact softplus: max error {float(worst):.3f} ulp over {s.size} inputs")
    assert worst < 0.9  # measured 0.83


def test_edge_values_against_mpmath():
    a = np.array([2.2250738585072014e-308, 1e-300, 0.5, 1 - 2.0**-53, 1.0, 1 + 2.0**-52, 0.7071067811865476,
                  0.7071067811865475, 1.4142135623730951, 3.0, 1e300])
    out = np.empty_like(a)
    K.vector_log(a, np.zeros_like(a), out)
    assert ref.max_ulp_error(out, [mpmath.log(mpmath.mpf(float(v))) for v in a]) < 1
    p = np.array([0.0, 5e-324, 1e-310, 2.0**-54, 2.0**-53, 1e-17, 1e-9, 0.29289321881345254, 0.5,
                  0.75, 1 - 2.0**-53])
    K.vector_log1p_neg(p, out)
    assert ref.max_ulp_error(out, [mpmath.log(ref.one_minus(mpmath.mpf(float(v)))) for v in p]) < 1
    x = -np.array([0.0, 5e-324, 1e-300, 1e-17, 2.0**-53, 0.5, 0.34657359027997264, 1.0, 100.0, 700.0, 708.0])
    K.vector_exp(x, out)
    assert ref.max_ulp_error(out, [mpmath.exp(mpmath.mpf(float(v))) for v in x]) < 1
    s = np.array([-690.0, -500.5, -36.7, -36.0, -13.86, -1e-300, 0.0, 1e-300, 0.34657359027997264, 1.0, 17.0,
                  33.999])
    out = np.empty_like(s)
    K.vector_softplus_exact(s, out)
    assert ref.max_ulp_error(out, [ref.bce_logit(0, float(v)) for v in s]) < 1  # softplus(s)


# ---------------------------------------------------------------- through the public API


@pytest.fixture
def numba_on(monkeypatch):
    logloss.set_config(engine="auto")
    monkeypatch.setattr(_fast, "NUMBA_MIN_SIZE", 0)


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
def test_reduction_none_hard_labels_within_one_ulp(numba_on, regime, dtype):
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


def test_reduction_none_falls_back_for_soft_labels_and_infinite_losses(numba_on):
    p = rng.uniform(0, 1, 2000)
    y = rng.uniform(0, 1, 2000)
    assert _fast.hard_label_losses(y, p, from_logits=False) is None
    y = (y < 0.5).astype(np.float64)
    p[1500], y[1500] = 0.0, 1.0
    assert _fast.hard_label_losses(y, p, from_logits=False) is None
    with pytest.warns(logloss.InfiniteLossWarning):
        assert np.isinf(logloss.bce(y, p, reduction="none")[1500])


def _logit_regimes(dtype):
    return {
        "uniform": rng.uniform(-40, 40, 3000),
        "huge": rng.choice([-1, 1], 3000) * 10.0 ** rng.uniform(1.5, 3.1, 3000),  # 30 to 1300
        "tiny": rng.choice([-1, 1], 3000) * 10.0 ** rng.uniform(-300, 0, 3000),
        "edges": np.array([-800.0, -745.5, -700.0, -690.0, -689.9, -36.5, -34.0, 33.9, 34.0, 690.0, 800.0,
                           -np.inf, 0.0, -0.0]),
    }


@pytest.mark.parametrize("regime", ["uniform", "huge", "tiny", "edges"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_reduction_none_from_logits_hard_labels_within_one_ulp(numba_on, regime, dtype):
    z = _logit_regimes(dtype)[regime].astype(dtype)
    y = (rng.uniform(size=z.size) < 0.5).astype(np.uint8)
    if regime == "edges":
        # y = 0: z = -800 ... -690 and -inf reach the libm exp end (s = z); y = 1 flips z = 690
        # and 800 there too. +inf with y = 0, an infinite loss, is tested below.
        y = np.isin(z, [690.0, 800.0]).astype(np.uint8)
    assert _fast.hard_label_losses(y, z, from_logits=True) is not None
    losses = logloss.bce(y, z, from_logits=True, reduction="none")
    assert losses.dtype == dtype and losses.shape == z.shape
    exact = [ref.bce_logit(int(yi), float(zi)) for yi, zi in zip(y, z)]
    assert ref.max_ulp_error(losses, exact, dtype) <= 1.0


def test_reduction_none_from_logits_falls_back_for_soft_labels_and_infinite_losses(numba_on):
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


def test_large_input_uses_numba_by_default_and_agrees_with_numpy(monkeypatch):
    logloss.set_config(engine="auto")
    n = _fast.NUMBA_MIN_SIZE + 12345
    y = (rng.uniform(size=n) < 0.3).astype(np.float32)
    p = rng.uniform(0, 1, n).astype(np.float32)
    calls = []
    original = _fast._numba_sums
    monkeypatch.setattr(_fast, "_numba_sums", lambda *a: calls.append(1) or original(*a))
    fast = logloss.bce(y, p)
    assert calls
    logloss.set_config(engine="numpy")
    assert fast == logloss.bce(y, p)  # float32: both round the same exact mean


def test_environment_switch_disables_numba():
    code = ("import numpy as np, sys, logloss; from logloss._numpy import chunked as _fast; "
            "logloss.bce(np.ones(1 << 17), np.full(1 << 17, 0.5)); "
            "print(logloss.get_config()['engine'], 'numba' in sys.modules)")
    env = dict(os.environ, LOGLOSS_DISABLE_NUMBA="1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.split() == ["numpy", "False"]


# ---------------------------------------------------------------- product blocks (hard labels)


def _block_kinds(logits: bool, dtype):
    """Full blocks of BLOCK samples: each kind exercises one branch of the product kernels."""
    B = K.BLOCK
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
def test_product_block_accepts_or_declines(logits):
    y, kinds = _block_kinds(logits, np.float64)
    expect = {"calibrated": True, "near_perfect": False, "huge": False, "tiny_q": True, "rare_q": False,
              "confident_mistakes": True, "wide": True}
    buf, positive = np.empty(K.BLOCK), np.empty(K.BLOCK)
    for name, x in kinds.items():
        if logits:
            got = K._logit_product(y, x, buf, positive)[2]
            term = ref.bce_logit
        else:
            got = K._hard_probability_product(y, x, buf)[2]
            term = ref.bce_probability
        assert (got >= 0) == expect[name], name
        if got >= 0:
            exact = float(mpmath.fsum(term(float(a), float(b)) for a, b in zip(y, x)))
            assert got == pytest.approx(exact, rel=1e-14, abs=0), name


def test_logit_product_serves_soft_labels():
    """From logits the labels only weight the linear term, so soft labels keep the product."""
    buf, linear = np.empty(K.BLOCK), np.empty(K.BLOCK)
    y = rng.uniform(0, 1, K.BLOCK)
    for z in (rng.uniform(-12, 12, K.BLOCK), rng.uniform(-700, 700, K.BLOCK), rng.uniform(-1e-3, 1e-3, K.BLOCK)):
        invalid, _, got = K._logit_product(y, z, buf, linear)
        assert invalid == 0 and got >= 0
        exact = float(mpmath.fsum(ref.bce_logit(float(a), float(b)) for a, b in zip(y, z)))
        assert got == pytest.approx(exact, rel=1e-14, abs=0)
    y[3] = 1.5
    assert K._logit_product(y, z, buf, linear)[0] == 1  # invalid label found in the same pass


def _soft_probability_kinds(dtype):
    """Full blocks of soft labels: each kind exercises one branch of _soft_probability_product."""
    B = K.BLOCK
    y = rng.uniform(0, 1, B)
    kinds = {
        "uniform": (y, rng.uniform(0, 1, B)),
        "hard labels": ((y < 0.5).astype(float), rng.uniform(0.01, 0.99, B)),
        "wide p": (y, 10.0 ** -rng.uniform(0, 17, B)),  # log r down to -39, 1 - p rounded
        # a down to 1e-15 (float64) or 1e-7 (float32, whose 1 - 1e-8 is 1)
        "near 1": (y, 1 - 10.0 ** -rng.uniform(1, 15 if dtype == np.float64 else 7, B)),
        # y log r and log a cancel: losses ~ 1e-9 from terms ~ 20, the bound declines
        "confident": (1 - rng.uniform(0, 1e-10, B), 1 - 10.0 ** -rng.uniform(8, 9, B)),
        # p < TINY, a < 2**-60, with labels that keep the loss finite (0 log 0 = 0)
        "p = 0": (np.where(np.arange(B) == 5, 0.0, y), np.where(np.arange(B) == 5, 0.0, rng.uniform(0, 1, B))),
        "a < 2**-60": (np.where(np.arange(B) == 5, 1.0, y), np.where(np.arange(B) == 5, 1.0, rng.uniform(0, 1, B))),
    }
    return {name: (a.astype(dtype), b.astype(dtype)) for name, (a, b) in kinds.items()}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_soft_probability_product_accepts_or_declines(dtype):
    """One log per sample (y log(p / a)) and one per block (log prod a), within 1e-14 of mpmath."""
    expect = {"uniform": True, "hard labels": True, "wide p": True, "near 1": True,
              "confident": False, "p = 0": False, "a < 2**-60": False}
    buf, linear = np.empty(K.BLOCK), np.empty(K.BLOCK)
    for name, (y, p) in _soft_probability_kinds(dtype).items():
        invalid, got = K._soft_probability_product(y, p, buf, linear)
        assert invalid == 0 and (got >= 0) == expect[name], name
        if got >= 0:
            exact = float(mpmath.fsum(ref.bce_probability(float(a), float(b)) for a, b in zip(y, p)))
            assert got == pytest.approx(exact, rel=1e-14, abs=0), name
    y, p = _soft_probability_kinds(dtype)["uniform"]
    y[9] = 1.5
    assert K._soft_probability_product(y, p, buf, linear)[0] == 1  # found in the same pass


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_soft_probability_mean_through_products_and_fallbacks(numba_on, monkeypatch, dtype):
    """Accepted and declined soft blocks, a hard block between them, a partial last block."""
    monkeypatch.setattr(_fast, "MIN_SIZE", 0)
    kinds = _soft_probability_kinds(dtype)
    ys = [kinds[k][0] for k in kinds] + [kinds["uniform"][0][:123]]
    ps = [kinds[k][1] for k in kinds] + [kinds["uniform"][1][:123]]
    y, p = np.concatenate(ys), np.concatenate(ps)
    assert _fast.loss_sums(y, p, from_logits=False) is not None
    exact = float(mpmath.fsum(ref.bce_probability(float(a), float(b)) for a, b in zip(y, p)) / len(y))
    got = logloss.bce(y.astype(np.float64), p.astype(np.float64))
    assert float(got) == pytest.approx(exact, rel=1e-13, abs=0)
    if dtype == np.float32:
        assert logloss.bce(y, p) == np.float32(exact)


@pytest.mark.parametrize("logits", [False, True], ids=["probabilities", "logits"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_mixed_product_and_fallback_blocks_sum_exactly(numba_on, monkeypatch, logits, dtype):
    """Accepted, declined and rare blocks side by side, plus a partial last block."""
    monkeypatch.setattr(_fast, "MIN_SIZE", 0)
    ys, xs = [], []
    for _ in range(2):
        y, kinds = _block_kinds(logits, dtype)
        for x in kinds.values():
            ys.append(y)
            xs.append(x)
    ys.append(ys[0][:123])
    xs.append(xs[0][:123])
    y, x = np.concatenate(ys), np.concatenate(xs)
    if not logits:
        x[5], y[5] = (np.float32(1e-42) if dtype == np.float32 else 1e-300), 1  # a subnormal q
    assert _fast.loss_sums(y, x, from_logits=logits) is not None
    term = ref.bce_logit if logits else ref.bce_probability
    exact = float(mpmath.fsum(term(float(a), float(b)) for a, b in zip(y, x)) / len(y))
    got = logloss.bce(y.astype(np.float64), x.astype(np.float64), from_logits=logits)
    assert float(got) == pytest.approx(exact, rel=1e-13, abs=0)
    if dtype == np.float32:
        assert logloss.bce(y, x, from_logits=logits) == np.float32(exact)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_soft_label_logit_mean_through_products_and_rare_blocks(numba_on, monkeypatch, dtype):
    monkeypatch.setattr(_fast, "MIN_SIZE", 0)
    n = 5 * K.BLOCK + 77
    y = rng.uniform(0, 1, n).astype(dtype)
    z = rng.uniform(-20, 20, n)
    z[K.BLOCK + 3] = 900.0  # a rare block: per-sample libm formulas
    z[3 * K.BLOCK: 4 * K.BLOCK] *= 1e-9  # losses near log 2 from the log, none from the linear term
    z = z.astype(dtype)
    assert _fast.loss_sums(y, z, from_logits=True) is not None
    exact = float(mpmath.fsum(ref.bce_logit(float(a), float(b)) for a, b in zip(y, z)) / n)
    got = logloss.bce(y.astype(np.float64), z.astype(np.float64), from_logits=True)
    assert float(got) == pytest.approx(exact, rel=1e-13, abs=0)
    if dtype == np.float32:
        assert logloss.bce(y, z, from_logits=True) == np.float32(exact)
