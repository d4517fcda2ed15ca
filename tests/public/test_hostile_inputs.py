"""What a hostile but realistic caller passes to the public API, one row per class of input.

Each row: an id, a call, and what must come of it: an exception type with fragments of its
message (the argument's name, what was expected, what was received, where), or a value
checked against an independent reference (mpmath in tests/reference.py, or an identity).
test_count_of_classes prints the tally the issue asks for.
"""

from __future__ import annotations

import importlib
import json
import math
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import mpmath
import numpy as np
import pytest

import logloss

from .. import reference as ref

Y = np.array([0.0, 1.0, 1.0])
P = np.array([0.2, 0.7, 0.9])
BIG = 1 << 16  # large enough for the chunked and compiled fast paths
bce = logloss.bce


def _mean_reference(y, p, w=None) -> mpmath.mpf:
    w = np.ones(len(y)) if w is None else w
    num = mpmath.fsum(ref.bce_probability(a, b) * mpmath.mpf(float(c)) for a, b, c in zip(y, p, w))
    return num / mpmath.fsum(mpmath.mpf(float(c)) for c in w)


EXACT = _mean_reference(Y, P)


@dataclass
class Row:
    id: str
    call: Callable
    error: type | None = None
    fragments: tuple = ()
    expected: object = None  # an mpmath value (ulp-compared) or a callable(result) -> bool
    engine: str = "numpy"


def raises(id, call, error, *fragments, engine="numpy"):
    return Row(id, call, error, fragments, engine=engine)


def equals(id, call, expected, engine="numpy"):
    return Row(id, call, None, (), expected, engine=engine)


def _readonly(a):
    a = np.array(a)
    a.setflags(write=False)
    return a


def _masked():
    return np.ma.array(Y, mask=[0, 1, 0])


ROWS = [
    # ---- dtypes that are not real numbers
    raises("object-labels", lambda: bce(Y.astype(object), P), TypeError, "`y_true`", "real numbers", "object"),
    raises("none-labels", lambda: bce(None, P), TypeError, "`y_true`", "object", "pandas.NA"),
    raises("complex-pred", lambda: bce(Y, P.astype(complex)), TypeError, "`y_pred`", "complex128", "real part"),
    raises("datetime-pred", lambda: bce(Y, np.array(["2020-01-01"] * 3, dtype="datetime64[D]")), TypeError,
           "`y_pred`", "datetime64"),
    raises("timedelta-pred", lambda: bce(Y, np.arange(3).astype("timedelta64[s]")), TypeError, "`y_pred`", "timedelta64"),
    raises("string-labels", lambda: bce(["0", "1", "1"], P), TypeError, "`y_true`", "<U1", "Parse the text"),
    raises("bytes-pred", lambda: bce(Y, np.array([b"a", b"b", b"c"])), TypeError, "`y_pred`", "|S1"),
    raises("decimal-pred", lambda: bce(Y, [__import__("decimal").Decimal("0.2")] * 3), TypeError, "`y_pred`", "object"),
    raises("python-int-beyond-int64", lambda: bce([2**70], [0.5]), TypeError, "`y_true`", "ints beyond 64 bits"),
    raises("generator", lambda: bce((v for v in Y), P), TypeError, "`y_true`", "object"),
    raises("dict", lambda: bce({"a": 1}, P), TypeError, "`y_true`", "object"),
    raises("ragged", lambda: bce([[0, 1], [1]], [[0.2, 0.3], [0.4]]), ValueError, "`y_true`", "rectangular array"),
    raises("masked-array", lambda: bce(_masked(), P), TypeError, "`y_true`", "masked array", "compressed()"),
    raises("masked-weight", lambda: bce(Y, P, sample_weight=np.ma.array([1.0, 1, 1])), TypeError,
           "`sample_weight`", "masked array"),
    raises("complex-weight", lambda: bce(Y, P, sample_weight=np.ones(3, complex)), TypeError, "`sample_weight`", "complex"),
    raises("string-weight", lambda: bce(Y, P, sample_weight="1"), TypeError, "`sample_weight`", "<U1"),
    raises("string-pos-weight", lambda: bce(Y, P, pos_weight="2"), TypeError, "`pos_weight`", "<U1"),
    raises("bool-pos-weight", lambda: bce(Y, P, pos_weight=True), TypeError, "`pos_weight`", "not bool", "True"),
    # ---- dtypes and layouts that are numbers: the right value
    equals("float16", lambda: bce(Y.astype(np.float16), P.astype(np.float16)),
           lambda r: r.dtype == np.float16 and ref.ulp_error(r, _mean_reference(Y, P.astype(np.float16)), np.float16) <= 1),
    equals("float32", lambda: bce(Y.astype(np.float32), P.astype(np.float32)),
           lambda r: r.dtype == np.float32 and r == np.float32(ref.to_float(_mean_reference(Y, P.astype(np.float32))))),
    equals("longdouble", lambda: bce(Y.astype(np.longdouble), P.astype(np.longdouble)),
           lambda r: r.dtype == np.longdouble and abs(float(r) - ref.to_float(EXACT)) <= 1e-16),
    equals("int64-labels", lambda: bce(np.array([0, 1, 1]), P), EXACT),
    equals("uint64-labels", lambda: bce(np.array([0, 1, 1], np.uint64), P), EXACT),
    equals("bool-labels", lambda: bce(np.array([False, True, True]), P), EXACT),
    equals("int8-predictions", lambda: bce(Y, np.array([0, 1, 1], np.int8)), mpmath.mpf(0)),
    equals("big-endian", lambda: bce(Y.astype(">f8"), P.astype(">f8")), EXACT),
    equals("big-endian-many", lambda: bce(np.tile(Y, BIG).astype(">f8"), np.tile(P, BIG).astype(">f4")),
           lambda r: r.dtype == np.float32 and ref.ulp_error(r, _mean_reference(Y, P.astype(np.float32)), np.float32) <= 1),
    equals("read-only", lambda: bce(_readonly(Y), _readonly(P)), EXACT),
    equals("read-only-many", lambda: bce(_readonly(np.tile(Y, BIG)), _readonly(np.tile(P, BIG))), EXACT),
    equals("negative-stride", lambda: bce(Y[::-1], P[::-1]), EXACT),
    equals("negative-stride-many", lambda: bce(np.tile(Y, BIG)[::-1], np.tile(P, BIG)[::-1]), EXACT),
    equals("non-contiguous", lambda: bce(np.repeat(Y, 2)[::2], np.repeat(P, 2)[::2]), EXACT),
    equals("fortran-order-axis", lambda: bce(np.asfortranarray(np.tile(Y, (4, 1)).T), np.asfortranarray(np.tile(P, (4, 1)).T),
                                             axis=0), lambda r: r.shape == (4,) and all(ref.ulp_error(v, EXACT) <= 1 for v in r)),
    equals("python-lists", lambda: bce([0, 1, 1], [0.2, 0.7, 0.9]), EXACT),
    equals("0-d", lambda: bce(1.0, 0.7), ref.bce_probability(1.0, 0.7)),
    equals("0-d-none", lambda: bce(1.0, 0.7, reduction="none"), ref.bce_probability(1.0, 0.7)),
    raises("0-d-axis", lambda: bce(1.0, 0.7, axis=0), ValueError, "`axis` must be None for 0-d input", "axis=0"),
    raises("empty-mean", lambda: bce([], []), ValueError, "`y_true` is empty", "reduction='sum'"),
    equals("empty-sum", lambda: bce([], [], reduction="sum"), mpmath.mpf(0)),
    equals("empty-none", lambda: bce(np.zeros((0, 2)), np.zeros((0, 2)), reduction="none"), lambda r: r.shape == (0, 2)),
    equals("subnormal-probability", lambda: bce([1.0], [5e-324]), ref.bce_probability(1.0, 5e-324)),
    equals("subnormal-complement", lambda: bce([0.0], [5e-324]), ref.bce_probability(0.0, 5e-324)),
    equals("subnormal-logit", lambda: bce([1.0], [5e-324], from_logits=True), ref.bce_logit(1.0, 5e-324)),
    equals("infinite-logits-right", lambda: bce([1.0, 0.0], [np.inf, -np.inf], from_logits=True), mpmath.mpf(0)),
    equals("huge-logits", lambda: bce([0.0, 1.0], [1e300, -1e300], from_logits=True), mpmath.mpf(1e300)),
    equals("negative-zero-label", lambda: bce([-0.0], [0.5]), ref.bce_probability(0.0, 0.5)),
    equals("bool-weights", lambda: bce(Y, P, sample_weight=np.array([True, False, True])),
           _mean_reference(Y, P, [1.0, 0.0, 1.0])),
    equals("negative-zero-weight", lambda: bce(Y, P, sample_weight=[-0.0, 1, 1]), _mean_reference(Y, P, [0.0, 1, 1])),
    equals("subnormal-weights", lambda: bce(Y, P, sample_weight=[5e-324] * 3), EXACT),
    equals("huge-weights", lambda: bce(Y, P, sample_weight=[1.7e308] * 3), EXACT),
    equals("huge-weights-many", lambda: bce(np.tile(Y, BIG), np.tile(P, BIG), sample_weight=np.full(3 * BIG, 1e308)),
           EXACT),
    equals("huge-weights-many-kernels", lambda: bce(np.tile(Y, BIG), np.tile(P, BIG), sample_weight=np.full(3 * BIG, 1e308)),
           EXACT, engine="kernels"),
    equals("clip-below-1.1e-16", lambda: bce([0.0, 0.0], [1.0, 0.5], clip=1e-20, reduction="none")[0],
           -mpmath.log(mpmath.mpf(1e-20))),
    # ---- bad values: named, expected, received, where
    raises("label-1.5", lambda: bce([0.0, 1.5], [0.5, 0.5]), ValueError, "`y_true`", "[0, 1]", "1.5", "index 1"),
    raises("label-2-int-many", lambda: bce(np.tile([0, 1, 2], BIG), np.tile(P, BIG)), ValueError, "`y_true`", "2", "index 2"),
    raises("label-int64-max", lambda: bce(np.array([0, 2**63 - 1]), [0.5, 0.5]), ValueError, "9223372036854775807"),
    raises("label-nan", lambda: bce([np.nan], [0.5]), ValueError, "`y_true`", "NaN", "index 0"),
    raises("pandas-NA-label", lambda: bce(__import__("pandas").array([0.0, 1.0, None], dtype="Float64"), P),
           ValueError, "`y_true`", "NaN", "index 2"),
    raises("prediction-nan", lambda: bce([1.0], [np.nan]), ValueError, "`y_pred`", "NaN"),
    raises("prediction-nan-many", lambda: bce(np.tile(Y, BIG), np.tile([0.2, np.nan, 0.9], BIG)), ValueError,
           "`y_pred`", "NaN", "index 1"),
    raises("prediction-1.5", lambda: bce([1.0], [1.5]), ValueError, "`y_pred`", "probabilities", "from_logits=True"),
    raises("logit-nan", lambda: bce([1.0], [np.nan], from_logits=True), ValueError, "`y_pred`", "NaN"),
    raises("shape-mismatch", lambda: bce([1.0, 0], [[0.5, 0.5]]), ValueError, "same shape", "(2,)", "(1, 2)"),
    raises("pandas-series-vs-frame", lambda: bce(__import__("pandas").Series(Y), __import__("pandas").DataFrame({"a": P})),
           ValueError, "same shape", "(3,)", "(3, 1)"),
    raises("weight-negative", lambda: bce(Y, P, sample_weight=[1, -1, 1]), ValueError, "`sample_weight`", "non-negative",
           "-1.0", "index 1"),
    raises("weight-nan", lambda: bce(Y, P, sample_weight=[1, np.nan, 1]), ValueError, "`sample_weight`", "NaN", "index 1"),
    raises("weight-inf", lambda: bce(Y, P, sample_weight=[1, np.inf, 1]), ValueError, "`sample_weight`", "finite", "inf"),
    raises("weight-all-zero", lambda: bce(Y, P, sample_weight=[0, 0, 0]), ValueError, "total `sample_weight` is zero"),
    raises("weight-shape", lambda: bce(Y, P, sample_weight=[1, 1]), ValueError, "`sample_weight`", "(3,)", "(2,)"),
    raises("weight-enlarges", lambda: bce(Y, P, sample_weight=np.ones((2, 3))), ValueError, "`sample_weight`", "(2, 3)"),
    raises("pos-weight-zero", lambda: bce(Y, P, pos_weight=0), ValueError, "`pos_weight`", "> 0", "0.0"),
    raises("pos-weight-nan", lambda: bce(Y, P, pos_weight=np.nan), ValueError, "`pos_weight`", "nan"),
    raises("pos-weight-enlarges", lambda: bce(Y, P, pos_weight=np.ones((2, 1))), ValueError, "`pos_weight`",
           "without enlarging", "(2, 1)"),
    # ---- bad options
    raises("reduction-avg", lambda: bce(Y, P, reduction="avg"), ValueError, "`reduction`", "'avg'"),
    raises("reduction-none-object", lambda: bce(Y, P, reduction=None), ValueError, "`reduction`", "None"),
    raises("from-logits-string", lambda: bce(Y, P, from_logits="false"), TypeError, "`from_logits`", "'false'"),
    raises("from-logits-none", lambda: bce(Y, P, from_logits=None), TypeError, "`from_logits`", "None"),
    equals("from-logits-numpy-bool", lambda: bce(Y, P, from_logits=np.bool_(False)), EXACT),
    raises("smoothing-string", lambda: bce(Y, P, label_smoothing="0.1"), TypeError, "`label_smoothing`", "'0.1'"),
    raises("smoothing-nan", lambda: bce(Y, P, label_smoothing=math.nan), ValueError, "`label_smoothing`", "nan"),
    raises("smoothing-array", lambda: bce(Y, P, label_smoothing=np.array([0.1])), TypeError, "`label_smoothing`"),
    raises("clip-zero", lambda: bce(Y, P, clip=0), ValueError, "`clip`", "(0, 0.5)", "clip=0"),
    raises("clip-nan", lambda: bce(Y, P, clip=math.nan), ValueError, "`clip`", "nan"),
    raises("clip-bool", lambda: bce(Y, P, clip=True), TypeError, "`clip`", "True"),
    raises("axis-float", lambda: bce(Y, P, axis=0.0), ValueError, "`axis`", "axis=0.0"),
    raises("axis-bool", lambda: bce(np.zeros((2, 2)), np.full((2, 2), 0.5), axis=True), ValueError, "`axis`", "axis=True"),
    raises("axis-string", lambda: bce(Y, P, axis="0"), ValueError, "`axis`", "'0'"),
    raises("axis-repeated", lambda: bce(np.zeros((2, 2)), np.full((2, 2), 0.5), axis=(0, 0)), ValueError, "repeat"),
    raises("positional-option", lambda: bce(Y, P, True), TypeError, "positional"),
    raises("misspelled-option", lambda: bce(Y, P, weights=[1, 1, 1]), TypeError, "weights"),
    # ---- the other public functions
    raises("gradient-from-logits-string", lambda: logloss.binary_cross_entropy_gradient(Y, P, from_logits="no"),
           TypeError, "`from_logits`"),
    raises("gradient-weight-negative", lambda: logloss.binary_cross_entropy_gradient(Y, P, sample_weight=[1, -1, 1]),
           ValueError, "`sample_weight`", "index 1"),
    raises("hessian-masked", lambda: logloss.binary_cross_entropy_hessian(_masked(), P), TypeError, "masked array"),
    raises("hessian-pos-weight-enlarges", lambda: logloss.binary_cross_entropy_hessian(Y, P, pos_weight=np.ones((3, 3))),
           ValueError, "`pos_weight`", "(3, 3)"),
    raises("entropy-1.5", lambda: logloss.binary_entropy([1.5]), ValueError, "`p`", "1.5"),
    raises("entropy-masked", lambda: logloss.binary_entropy(np.ma.array(P)), TypeError, "`p`", "masked array"),
    raises("entropy-object", lambda: logloss.binary_entropy(np.ones(2, object)), TypeError, "`p`", "object"),
    raises("kl-masked", lambda: logloss.binary_kl_divergence(_masked(), P), TypeError, "`y_true`", "masked array"),
    raises("convention-masked", lambda: importlib.import_module("logloss.conventions").loss("sklearn", _masked(), P), TypeError, "`y_true`",
           "masked array"),
    raises("convention-ragged", lambda: importlib.import_module("logloss.conventions").loss("sklearn", [[1], []], P), ValueError, "`y_true`",
           "rectangular"),
    raises("kl-shape", lambda: logloss.binary_kl_divergence([0.5], [0.5, 0.5]), ValueError, "same shape"),
    raises("kl-ragged", lambda: logloss.binary_kl_divergence([[0.5], []], [0.5, 0.5]), ValueError, "`y_true`", "rectangular"),
    raises("categorical-rows", lambda: logloss.categorical_cross_entropy([[1, 0]], [[0.5, 0.6]]), ValueError,
           "`y_pred`", "sum to 1", "1.1"),
    raises("categorical-label-out-of-range", lambda: logloss.categorical_cross_entropy([2], [[0.5, 0.5]]), ValueError,
           "`y_true`", "[0, 1]", "2"),
    raises("categorical-scalar", lambda: logloss.categorical_cross_entropy(0, 0.5), ValueError, "class axis"),
    raises("categorical-logit-inf", lambda: logloss.categorical_cross_entropy([0], [[np.inf, 0.0]], from_logits=True),
           ValueError, "finite or -inf", "(0, 0)"),
    raises("categorical-from-logits-string", lambda: logloss.categorical_cross_entropy([0], [[0.5, 0.5]], from_logits="1"),
           TypeError, "`from_logits`"),
    raises("categorical-masked", lambda: logloss.categorical_cross_entropy([0], np.ma.array([[0.5, 0.5]])), TypeError,
           "`y_pred`", "masked array"),
    # ---- adapters (thin shells: the same checks)
    raises("torch-bce-loss-clip-zero", lambda: _torch().BCELoss(clip=0)(_tensor(P), _tensor(Y)), ValueError, "`clip`"),
    raises("torch-pos-weight-enlarges", lambda: _torch().BCEWithLogitsLoss(pos_weight=_tensor(np.ones((2, 1))))(
        _tensor(np.zeros(4)), _tensor(np.ones(4))), ValueError, "`pos_weight`", "without enlarging"),
    raises("torch-weight-nan", lambda: _torch().BCELoss(weight=_tensor([1.0, math.nan, 1.0]))(_tensor(P), _tensor(Y)),
           ValueError, "`sample_weight`", "NaN", "index 1"),
    # ---- the streaming state
    raises("accumulator-from-logits-string", lambda: logloss.Accumulator(from_logits="false"), TypeError, "`from_logits`"),
    raises("accumulator-pos-weight-negative", lambda: logloss.Accumulator(pos_weight=-1), ValueError, "`pos_weight`", "-1"),
    raises("accumulator-pos-weight-array", lambda: logloss.Accumulator(pos_weight=np.ones(2)), ValueError, "`pos_weight`"),
    raises("accumulator-smoothing-2", lambda: logloss.Accumulator(label_smoothing=2), ValueError, "`label_smoothing`", "2"),
    raises("accumulator-merge-int", lambda: logloss.Accumulator().merge(3), TypeError, "`other`", "Accumulator", "int"),
    raises("accumulator-merge-settings", lambda: logloss.Accumulator().merge(logloss.Accumulator(from_logits=True)),
           ValueError, "different settings"),
    raises("accumulator-empty-result", lambda: logloss.Accumulator().result(), ValueError, "no samples"),
    raises("accumulator-weight-negative", lambda: logloss.Accumulator().update(Y, P, [1, -1, 1]), ValueError,
           "`sample_weight`", "index 1"),
    raises("accumulator-masked", lambda: logloss.Accumulator().update(_masked(), P), TypeError, "masked array"),
    raises("accumulator-zero-weight-result", lambda: logloss.Accumulator().update(Y, P, [0, 0, 0]).result(), ValueError,
           "total `sample_weight` is zero"),
    raises("accumulator-overflow", lambda: logloss.Accumulator(from_logits=True).update([0.0], [1e308]).update([0.0], [1e308]),
           OverflowError, "exceeds the float64 range"),
    raises("from-dict-string-flag", lambda: logloss.Accumulator.from_dict({**logloss.Accumulator().to_dict(), "from_logits": "false"}),
           TypeError, "state['from_logits']", "'false'"),
    raises("from-dict-negative-count", lambda: logloss.Accumulator.from_dict({**logloss.Accumulator().to_dict(), "count": -1}),
           ValueError, "state['count']", "-1"),
    equals("state-strict-json", lambda: json.dumps(_infinite_state(), allow_nan=False), lambda r: '"inf"' in r),
    # ---- settings
    raises("set-config-threads-0", lambda: logloss.set_config(threads=0), ValueError, "`threads`", "threads=0"),
    raises("set-config-engine", lambda: logloss.set_config(engine="gpu"), ValueError, "`engine`", "'gpu'"),
    raises("config-context-threads-string", lambda: logloss.config_context(threads="2").__enter__(), ValueError,
           "`threads`", "'2'"),
    raises("set-config-unknown", lambda: logloss.set_config(foo=1), TypeError, "foo"),
]


def _torch():
    pytest.importorskip("torch")
    import logloss.torch

    return logloss.torch


def _tensor(values):
    import torch

    return torch.tensor(np.asarray(values, dtype=np.float64))


def _infinite_state():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", logloss.InfiniteLossWarning)
        return logloss.Accumulator().update([1.0], [0.0]).to_dict()


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_hostile_input(row):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no stray RuntimeWarning, no unexpected InfiniteLossWarning
        with logloss.config_context(engine=row.engine):
            if row.error is not None:
                with pytest.raises(row.error) as raised:
                    row.call()
                for fragment in row.fragments:
                    assert fragment in str(raised.value), (fragment, str(raised.value))
                return
            result = row.call()
    if callable(row.expected):
        assert row.expected(result), result
    else:
        assert ref.ulp_error(result, row.expected) <= 1, (result, row.expected)


def test_count_of_classes(capsys):
    """The tally for the closing note: classes tried, and how many are refused with a clear error
    (the rest are valid inputs that must give the right number)."""
    errors = sum(row.error is not None for row in ROWS)
    with capsys.disabled():
        sys.stdout.write(f"\n{len(ROWS)} hostile-input classes: {errors} refused with a clear error, "
                         f"{len(ROWS) - errors} valid and checked against a reference.\n")
    assert len({row.id for row in ROWS}) == len(ROWS)
