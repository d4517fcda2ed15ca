"""Every kind of bad input gets an error naming the argument, the expectation, what came and where."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import logloss

bce = logloss.binary_cross_entropy
cce = logloss.categorical_cross_entropy

Y = np.array([1, 0, 1, 0])
P = np.array([0.9, 0.2, 0.6, 0.4])

CASES = [
    # (id, call, exception, message fragments)
    ("nan-pred", lambda: bce(Y, [0.9, np.nan, 0.6, 0.4]), ValueError, ["`y_pred`", "NaN", "index 1"]),
    ("nan-label", lambda: bce([1, 0, np.nan, 0.0], P), ValueError, ["`y_true`", "NaN", "index 2"]),
    ("nan-logit", lambda: bce(Y, [0, 0, 0, np.nan], from_logits=True), ValueError, ["`y_pred`", "NaN", "index 3"]),
    ("prob-above-one", lambda: bce(Y, [0.9, 0.2, 1.5, 0.4]), ValueError, ["`y_pred`", "[0, 1]", "Received 1.5 at index 2", "from_logits=True"]),
    ("prob-negative", lambda: bce(Y, [0.9, -0.1, 0.6, 0.4]), ValueError, ["`y_pred`", "Received -0.1 at index 1"]),
    ("label-two", lambda: bce([1, 2, 1, 0], P), ValueError, ["`y_true`", "labels in [0, 1]", "2", "index 1"]),
    ("label-negative-2d", lambda: bce([[1, 0], [0, -1]], [[0.5, 0.5], [0.5, 0.5]]), ValueError, ["`y_true`", "index (1, 1)"]),
    ("shape", lambda: bce(Y, P[:, None]), ValueError, ["same shape", "(4,)", "(4, 1)"]),
    ("empty-mean", lambda: bce([], []), ValueError, ["empty", "reduction='sum'"]),
    ("complex", lambda: bce(Y, P + 0j), TypeError, ["`y_pred`", "real numbers", "complex128"]),
    ("object", lambda: bce(Y, np.array([0.1, "a", 0.2, 0.3], dtype=object)), TypeError, ["`y_pred`", "object"]),
    ("strings", lambda: bce(np.array(["yes", "no", "yes", "no"]), P), TypeError, ["`y_true`", "real numbers"]),
    ("negative-weight", lambda: bce(Y, P, sample_weight=[1, 1, -2, 1]), ValueError, ["`sample_weight`", "non-negative", "Received -2.0 at index 2"]),
    ("nan-weight", lambda: bce(Y, P, sample_weight=[1, np.nan, 1, 1]), ValueError, ["`sample_weight`", "NaN", "index 1"]),
    ("inf-weight", lambda: bce(Y, P, sample_weight=[1, 1, 1, np.inf]), ValueError, ["`sample_weight`", "finite", "index 3"]),
    ("weight-shape", lambda: bce(Y, P, sample_weight=[1, 2, 3]), ValueError, ["`sample_weight`", "broadcastable", "(4,)", "(3,)"]),
    ("zero-total-weight", lambda: bce(Y, P, sample_weight=[0, 0, 0, 0]), ValueError, ["total `sample_weight` is zero", "reduction='sum'"]),
    ("pos-weight-zero", lambda: bce(Y, P, pos_weight=0), ValueError, ["`pos_weight`", "> 0", "0.0"]),
    ("pos-weight-negative-array", lambda: bce(Y, P, pos_weight=[1.0, -1.0, 1.0, 1.0]), ValueError, ["`pos_weight`", "-1.0", "index 1"]),
    ("smoothing-high", lambda: bce(Y, P, label_smoothing=1.5), ValueError, ["`label_smoothing`", "[0, 1]", "1.5"]),
    ("smoothing-negative", lambda: bce(Y, P, label_smoothing=-0.1), ValueError, ["`label_smoothing`", "-0.1"]),
    ("smoothing-type", lambda: bce(Y, P, label_smoothing="0.1"), TypeError, ["`label_smoothing`", "real number"]),
    ("reduction", lambda: bce(Y, P, reduction="avg"), ValueError, ["`reduction`", "'mean', 'sum', 'none'", "reduction='avg'"]),
    ("axis", lambda: bce(Y, P, axis=3), ValueError, ["`axis`", "axis=3"]),
    ("clip-range", lambda: bce(Y, P, clip=0.7), ValueError, ["`clip`", "(0, 0.5)", "0.7"]),
    ("cce-label-range", lambda: cce([0, 3], [[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]]), ValueError, ["`y_true`", "[0, 2]", "Received 3 at index 1"]),
    ("cce-label-negative", lambda: cce([-1, 0], [[0.5, 0.5], [0.2, 0.8]]), ValueError, ["`y_true`", "-1", "index 0"]),
    ("cce-not-normalized", lambda: cce([0, 1], [[0.5, 0.6], [0.2, 0.8]]), ValueError, ["`y_pred`", "sum to 1", "sample index 0 sums to 1.1"]),
    ("cce-shape", lambda: cce([[1, 0, 0]], [[0.5, 0.5]]), ValueError, ["`y_true`", "(1, 3)", "(1, 2)"]),
    ("cce-logit-nan", lambda: cce([0], [[np.nan, 1.0]], from_logits=True), ValueError, ["`y_pred`", "nan", "index (0, 0)"]),
    ("cce-scalar", lambda: cce(0, 0.5), ValueError, ["`y_pred`", "class axis"]),
    ("grad-nan", lambda: logloss.binary_cross_entropy_gradient(Y, [0.1, 0.2, np.nan, 0.5]), ValueError, ["`y_pred`", "NaN", "index 2"]),
    ("entropy-range", lambda: logloss.binary_entropy([0.5, 2.0]), ValueError, ["`p`", "2.0", "index 1"]),
    ("kl-shape", lambda: logloss.binary_kl_divergence([0.5], [0.5, 0.5]), ValueError, ["same shape"]),
]


@pytest.mark.parametrize(("call", "exception", "fragments"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_has_a_clear_error(call, exception, fragments):
    with pytest.raises(exception) as info:
        call()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_empty_input_is_fine_for_sum_and_none():
    assert logloss.bce([], [], reduction="sum") == 0
    assert logloss.bce([], [], reduction="none").shape == (0,)


def test_infinite_count_ignores_zero_weight_samples():
    with pytest.warns(logloss.InfiniteLossWarning, match="1 of 3 samples"):
        logloss.bce([1, 1, 0], [0.0, 0.0, 0.5], sample_weight=[0, 1, 1])


def test_zero_weight_removes_an_infinitely_wrong_sample():
    # 0 * inf would be NaN; a zero weight means the sample is not there.
    result = logloss.bce([1, 1], [0.0, 0.5], sample_weight=[0, 1])
    assert float(result) == pytest.approx(np.log(2), rel=1e-15)


def test_a_half_imported_numpy_ma_is_not_a_crash(monkeypatch):
    """`logloss report` imports matplotlib on a prefetch thread while the reader checks each batch
    for masked arrays; matplotlib imports numpy.ma, which sits in sys.modules before its classes
    exist. The check must take that for "no masked array yet", as no instance can exist then."""
    import types

    from logloss._core.checks import is_masked

    masked = np.ma.array([1.0, 0.0], mask=[False, True])
    for name in ("numpy.ma", "numpy.ma.core"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))  # nothing defined yet
    assert not is_masked(Y)
    assert bce(Y, P) == pytest.approx(-np.mean(Y * np.log(P) + (1 - Y) * np.log1p(-P)))
    state = logloss.DiagnosticsState()
    state.update(Y, P)
    assert state.result()["models"]["model"]["count"] == 4
    monkeypatch.undo()
    assert is_masked(masked)


def test_a_half_imported_pandas_is_not_a_crash(monkeypatch):
    """The segment keys' check for pandas' missing values, while pandas is being imported."""
    import types

    from decimal import Decimal  # a key that is no str, bool or number: shown by its text

    monkeypatch.setitem(sys.modules, "pandas", types.ModuleType("pandas"))
    keys = np.array([Decimal("1.5"), Decimal("2"), Decimal("1.5"), Decimal("2")], dtype=object)
    rows = logloss.diagnose(Y, P, by=keys).to_dict()["segments"]["rows"]
    assert sorted(row["segment"]["segment"] for row in rows) == ["1.5", "2"]
