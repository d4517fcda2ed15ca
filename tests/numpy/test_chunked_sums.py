"""The fast reduction path (``_fast``) against mpmath sums computed here, chunk by chunk and threaded.

Chunks are made small so that a few thousand samples cross many chunk and group boundaries;
every reference is math.fsum of 256-bit mpmath terms (``tests/reference.py``), not the code.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

import logloss
from logloss._numpy import chunked as _fast
from logloss._numpy.kernels import set_cpu_path, supported_paths

from .. import reference as ref

rng = np.random.default_rng(314)
N = 3001  # not a multiple of the chunk or of the group of 64


@pytest.fixture(params=[1, 2, *[f"kernels-{name}" for name in supported_paths()]],
                ids=["numpy-1thread", "numpy-2threads", *[f"kernels-{name}" for name in supported_paths()]],
                autouse=True)
def small_chunks(monkeypatch, request):
    """NumPy path with small chunks (one or two threads), or the compiled kernels (512-sample
    blocks) on each CPU path this machine runs."""
    monkeypatch.setattr(_fast, "CHUNK", 320)
    monkeypatch.setattr(_fast, "HARD_CHUNK", 320)
    monkeypatch.setattr(_fast, "MIN_SIZE", 0)
    monkeypatch.setattr(_fast, "_pool", None)
    if str(request.param).startswith("kernels-"):
        logloss.set_config(engine="auto")
        monkeypatch.setattr(_fast, "KERNEL_MIN_SIZE", 0)
        set_cpu_path(request.param.removeprefix("kernels-"))
        request.addfinalizer(lambda: set_cpu_path(None))
        assert _fast.compiled_kernels() is not None
    else:
        logloss.set_config(engine="numpy")
        logloss.set_config(threads=request.param)


def _exact_mean(y, x, *, logits=False, w=None):
    term = ref.bce_logit if logits else ref.bce_probability
    w = np.ones(len(y)) if w is None else w
    terms = [mpmath.mpf(float(wi)) * term(float(yi), float(xi)) for yi, xi, wi in zip(y, x, w) if wi]
    return float(mpmath.fsum(terms) / mpmath.fsum(mpmath.mpf(float(v)) for v in w))


def _fast_used(y, x, **kw):
    return _fast.loss_sums(y, x, from_logits=kw.get("from_logits", False),
                           sample_weight=kw.get("sample_weight")) is not None


def _hard(n=N, rate=0.4):
    y = (rng.uniform(size=n) < rate).astype(np.float64)
    p = np.where(y == 1, rng.beta(5, 2, n), rng.beta(2, 5, n))
    return y, p


def _check(y, x, rel=1e-13, **kw):
    assert _fast_used(y, x, **kw)
    logits = kw.get("from_logits", False)
    got = logloss.bce(y, x, **kw)
    exact = _exact_mean(y, x, logits=logits, w=kw.get("sample_weight"))
    assert float(got) == pytest.approx(exact, rel=rel, abs=0)
    return got


def test_hard_labels_mean_and_sum():
    y, p = _hard()
    _check(y, p)
    total = logloss.bce(y, p, reduction="sum")
    assert float(total) == pytest.approx(_exact_mean(y, p) * N, rel=1e-13)


@pytest.mark.parametrize("label_dtype", [np.bool_, np.int8, np.float32, np.float64])
def test_label_dtypes(label_dtype):
    y, p = _hard()
    _check(y.astype(label_dtype), p)


def test_near_perfect_classifier_mean_loss_1e_12():
    y = (rng.uniform(size=N) < 0.5).astype(np.float64)
    tiny = rng.uniform(0.5e-12, 1.5e-12, N)
    p = np.where(y == 1, 1 - tiny, tiny)
    got = _check(y, p)
    assert 1e-13 < got < 1e-11


def test_probabilities_down_to_1e_300_and_subnormals():
    y = (rng.uniform(size=N) < 0.5).astype(np.float64)
    p = 10.0 ** rng.uniform(-300, 0, N)
    p[:5] = [5e-324, 1e-320, 2.2e-310, 1e-300, 1e-300]
    y[:5] = [0, 0, 1, 1, 0]
    _check(y, p)
    _check(1 - y, p)  # the same probabilities, now mostly confident mistakes


def test_float32_is_rounded_once_from_the_exact_mean():
    y, p = _hard()
    y32, p32 = y.astype(np.float32), p.astype(np.float32)
    got = logloss.bce(y32, p32)
    assert got.dtype == np.float32
    assert _fast_used(y32, p32)
    assert got == np.float32(_exact_mean(y32, p32))


def test_soft_labels():
    y = rng.uniform(0, 1, N)
    p = rng.uniform(0, 1, N)
    y[:3], p[:3] = [0.0, 1.0, 0.5], [0.0, 1.0, 1e-300]  # 0 log 0 = 0 inside a soft chunk
    _check(y, p)


@pytest.mark.parametrize("hard", [True, False])
def test_logits(hard):
    y = (rng.uniform(size=N) < 0.5).astype(np.float64) if hard else rng.uniform(0, 1, N)
    z = rng.uniform(-40, 40, N)
    z[:4] = [40.0, -40.0, 700.0, -745.0]
    y[:4] = [0, 1, 0, 1] if hard else y[:4]
    _check(y, z, from_logits=True)
    # the exact sum must not be dominated by a few huge terms, or a lost term could hide
    assert float(logloss.bce(y, z, from_logits=True)) < 30


def test_huge_logits():
    y = (rng.uniform(size=N) < 0.5).astype(np.float64)
    z = rng.uniform(-4, 4, N)
    z[:2], y[:2] = [1e300, -1e300], [0, 1]
    _check(y, z, from_logits=True)


def test_confident_logits_near_perfect():
    y = (rng.uniform(size=N) < 0.5).astype(np.float64)
    z = np.where(y == 1, 1, -1) * rng.uniform(27, 29, N)  # losses ~ 1e-12
    _check(y, z, from_logits=True)


def test_weights_with_zeros_even_on_an_infinite_loss():
    y, p = _hard()
    w = rng.uniform(0, 2, N)
    w[::7] = 0
    _check(y, p, sample_weight=w)
    y[7], p[7] = 1.0, 0.0  # infinitely wrong, but weighted 0: the reference path decides
    assert float(logloss.bce(y, p, sample_weight=w)) == pytest.approx(
        _exact_mean(y, p, w=w), rel=1e-13
    )


def test_exact_zero_and_one_give_inf_with_the_warning():
    y, p = _hard()
    p[100], y[100] = 1.0, 0.0
    with pytest.warns(logloss.InfiniteLossWarning, match="1 of 3001 samples"):
        assert math.isinf(logloss.bce(y, p))


def test_axis_given_agrees_with_axis_none():
    y, p = _hard(3000)
    y, p = y.reshape(60, 50), p.reshape(60, 50)
    assert logloss.bce(y, p) == pytest.approx(float(logloss.bce(y, p, axis=(0, 1))), rel=1e-14)
    assert logloss.bce(y, p, axis=0).shape == (50,)


def test_errors_are_the_reference_messages():
    y, p = _hard()
    p[2000] = np.nan
    with pytest.raises(ValueError, match="`y_pred` must not contain NaN. Received NaN at index 2000"):
        logloss.bce(y, p)
    p[2000] = 1.5
    with pytest.raises(ValueError, match=r"Received (np.float64\()?1.5\)? at index 2000"):
        logloss.bce(y, p)
    p[2000], y[2500] = 0.5, 2.0
    with pytest.raises(ValueError, match="`y_true`.*index 2500"):
        logloss.bce(y, p)
    with pytest.raises(ValueError, match="total `sample_weight` is zero"):
        logloss.bce(np.ones(N), np.full(N, 0.5), sample_weight=np.zeros(N))


BAD_INPUTS = {  # labels, from_logits, weighted, what to spoil with which value, the name in the error
    "soft label > 1": ("soft", False, False, "y", 1.5, "`y_true`"),
    "negative p, label 0": ("hard", False, False, "p", -0.25, "`y_pred`"),
    "negative p, soft": ("soft", False, False, "p", -0.25, "`y_pred`"),
    "p > 1, soft": ("soft", False, False, "p", 1.25, "`y_pred`"),
    "NaN label": ("soft", False, False, "y", np.nan, "`y_true`"),
    "negative weight": ("hard", False, True, "w", -1.0, "`sample_weight`"),
    "infinite weight": ("soft", False, True, "w", np.inf, "`sample_weight`"),
    "NaN logit": ("soft", True, False, "p", np.nan, "`y_pred`"),
    "label < 0, logits": ("hard", True, False, "y", -0.5, "`y_true`"),
    "NaN weight, logits": ("hard", True, True, "w", np.nan, "`sample_weight`"),
}


@pytest.mark.parametrize("index", [2100, 2900])  # in a full 512-sample block, in the last partial one
@pytest.mark.parametrize("case", BAD_INPUTS)
def test_every_pass_reports_bad_input(case, index):
    """Whatever block path sees it (product, hard or soft pass, weighted, logits), an invalid value is
    reported with its index; a label of 0 puts p = -0.25 where 1 - p is a fine probability."""
    labels, logits, weighted, where, value, name = BAD_INPUTS[case]
    y = rng.uniform(0, 1, N) if labels == "soft" else (rng.uniform(size=N) < 0.5).astype(np.float64)
    x = rng.uniform(-5, 5, N) if logits else rng.uniform(0.01, 0.99, N)
    w = rng.uniform(0.5, 2, N) if weighted else None
    if where == "p" and labels == "hard":
        y[index] = 0.0
    {"y": y, "p": x, "w": w}[where][index] = value
    with pytest.raises(ValueError, match=f"{name}.*index {index}"):
        logloss.bce(y, x, from_logits=logits, sample_weight=w)


@pytest.mark.parametrize("batch", [1000, 2999, N])
def test_accumulator_uses_the_fast_path_and_matches(batch):
    y, p = _hard()
    acc = logloss.Accumulator()
    for start in range(0, N, batch):
        acc.update(y[start : start + batch], p[start : start + batch])
    assert acc.result() == pytest.approx(_exact_mean(y, p), rel=1e-13)
    assert acc.summary()["calibration"] == pytest.approx(math.fsum(p) / math.fsum(y), rel=1e-13)


# -- hard_label_sums: the one-pass entry of ``logloss score`` ---------------------------------


def _hard_label_reference(y, p):
    """(loss sum, positives, prediction sum) from 256-bit mpmath terms and math.fsum."""
    loss = float(mpmath.fsum(ref.bce_probability(float(yi), float(pi)) for yi, pi in zip(y, p)))
    return loss, float(sum(int(v) for v in y)), math.fsum(float(v) for v in p)


@pytest.mark.parametrize("label_dtype", [np.int8, np.uint8, np.int64, np.bool_])
@pytest.mark.parametrize("pred_dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", ["typical", "tiny", "near_perfect", "hard_ends"])
def test_hard_label_sums_match_an_independent_reference(label_dtype, pred_dtype, case):
    y = rng.uniform(size=N) < 0.3
    p = np.where(y, rng.beta(5, 2, N), rng.beta(2, 5, N))
    if case == "tiny":  # products of tiny q split exponents off (k < 64 factors per product)
        p[::7] = np.where(y[::7], p[::7] * 1e-30, p[::7])
        y[1500] = True
        p[1500] = 1e-300 if pred_dtype is np.float64 else 1e-44  # k < 2 or 6: few products
    elif case == "near_perfect":  # losses ~1e-12: the error bound sends chunks sample by sample
        p = np.where(y, 1 - 1e-12 * p, 1e-12 * p)
    elif case == "hard_ends":  # p = 1 for y = 1 and p = 0 for y = 0: zero losses, q = 1
        p[::5] = np.where(y[::5], 1.0, 0.0)
    y, p = y.astype(label_dtype), p.astype(pred_dtype)
    got = _fast.hard_label_sums(y, p)
    assert got is not None
    loss, positives, prediction = _hard_label_reference(y, p)
    assert got[0] == pytest.approx(loss, rel=1e-13, abs=1e-300)
    assert got[1] == positives
    assert got[2] == pytest.approx(prediction, rel=1e-15)


def test_hard_label_sums_loss_is_loss_sums_bit_for_bit():  # with the same chunks
    y = (rng.uniform(size=N) < 0.4).astype(np.int8)
    p = rng.uniform(size=N).astype(np.float32)
    with logloss.config_context(engine="numpy"):  # the NumPy path's two entries
        assert _fast.hard_label_sums(y, p)[0] == _fast.loss_sums(y, p, from_logits=False)[0]


@pytest.mark.parametrize("spoil", ["p_nan", "p_above_1", "p_negative", "label_2", "label_minus_1",
                                   "infinite_loss", "float_labels", "two_dim", "sizes_differ",
                                   "int_preds", "strided"])
def test_hard_label_sums_declines_what_it_cannot_vouch_for(spoil):
    y = (rng.uniform(size=N) < 0.4).astype(np.int8)
    p = rng.uniform(0.01, 0.99, size=N)
    if spoil == "p_nan":
        p[N - 1] = np.nan
    elif spoil == "p_above_1":
        p[1234] = 1.5
    elif spoil == "p_negative":
        p[0] = -0.1
    elif spoil == "label_2":
        y[2000] = 2
    elif spoil == "label_minus_1":
        y[17] = -1
    elif spoil == "infinite_loss":
        y[999], p[999] = 1, 0.0
    elif spoil == "float_labels":
        y = y.astype(np.float64)
    elif spoil == "two_dim":
        y, p = y[:3000].reshape(2, -1), p[:3000].reshape(2, -1)
    elif spoil == "sizes_differ":
        p = p[:-1]
    elif spoil == "int_preds":
        p = (p > 0.5).astype(np.int64)
    elif spoil == "strided":
        y, p = y[::2], p[::2]
    assert _fast.hard_label_sums(y, p) is None


def test_hard_label_sums_leaves_small_batches_to_the_general_path(monkeypatch):
    monkeypatch.setattr(_fast, "MIN_SIZE", 1 << 14)
    y = (rng.uniform(size=N) < 0.4).astype(np.int8)
    assert _fast.hard_label_sums(y, rng.uniform(size=N)) is None
