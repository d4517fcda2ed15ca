"""Hostile inputs for the orderings behind diagnose's exact in-memory figures (``ordering.c``,
``_numpy/ordering.py``): buffers the kernel functions must refuse without keeping hold of them,
and diagnose's figures on inputs a sort or a grouping can get wrong, against the NumPy engine."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

import logloss

_REFUSED_FIRST_ARGUMENT = {
    "sort_keys": lambda K, a: K.sort_keys(a, np.empty(1, dtype=np.int64)),
    "argsort": lambda K, a: K.argsort(a, np.empty(1, dtype=np.int64), False),
    "pool": lambda K, a: K.pool(a, np.ones(1), np.empty(1, dtype=np.int64), np.empty(1),
                                np.empty(1)),
    "worst": lambda K, a: K.worst(a, np.ones(1), np.ones(1), np.empty(4)),
    "key_groups": lambda K, a: K.key_groups(a, np.ones(1, dtype=bool), np.ones(1), np.ones(1),
                                            None, *[np.empty(1)] * 6),
    "probability_groups": lambda K, a: K.probability_groups(a, *[np.empty(1)] * 5),
}


@pytest.mark.parametrize("name", sorted(_REFUSED_FIRST_ARGUMENT))
def test_a_refused_first_buffer_is_released(K, name):
    # a buffer of the wrong item size is refused after it was taken: it must be given back, or
    # the object stays exported (a bytearray can no longer grow) and referenced forever
    call = _REFUSED_FIRST_ARGUMENT[name]
    data = bytearray(8)
    with pytest.raises(ValueError):
        call(K, data)
    data.append(1)  # BufferError while an export is held
    array = np.ones(2, dtype=np.float32)
    before = sys.getrefcount(array)
    with pytest.raises(ValueError):
        call(K, array)
    assert sys.getrefcount(array) == before


def _hostile_case(name: str, n: int = 600):
    """(y, x, weights, from_logits) for a named case; values a sort or grouping can get wrong."""
    rng = np.random.default_rng(len(name) * 1000 + n)
    special_p = np.array([0.0, -0.0, 1.0, 5e-324, 1e-300, 0.5, np.nextafter(1.0, 0.0),
                          np.nextafter(0.5, 1.0), 2.2250738585072014e-308, 0.25])
    special_z = np.array([0.0, -0.0, np.inf, -np.inf, 5e-324, -5e-324, 40.0, -40.0, 800.0,
                          -800.0, 37.0, 36.9])
    y = rng.integers(0, 2, n).astype(np.int8)
    logits = name.startswith("z")
    x = rng.choice(special_z if logits else special_p, n)
    x[: n // 2] = np.round(rng.normal(size=n // 2), 1) if logits else np.round(
        rng.random(n // 2), 2)
    w = rng.choice([0.0, 0.5, 1.0, 2.0, 2.0**-40], n)
    if name.endswith("unweighted"):
        w = None
    elif name.endswith("all but one weight 0"):
        w = np.where(np.arange(n) == n // 3, 3.0, 0.0)
    elif name.endswith("end groups weight 0"):
        w[(x == x.min()) | (x == x.max())] = 0.0
    return y, x, w, logits


_CASES = [f"{kind} {weights}" for kind in ("p", "z")
          for weights in ("unweighted", "weighted", "all but one weight 0", "end groups weight 0")]


def _number(value):
    """to_dict writes NaN as None and the infinities as "inf" and "-inf"."""
    if isinstance(value, dict):
        return {key: _number(v) for key, v in value.items()}
    if isinstance(value, list):
        return [_number(v) for v in value]
    if value in ("inf", "-inf"):
        return float(value)
    return math.nan if value is None else value


def _exact_figures(result: dict) -> dict:
    result = _number(result)
    return {"log_loss": result["log_loss"], "decomposition": result["decomposition"],
            "ece": result["ece"], "pav": result["reliability"]["pav"],
            "bins": result["reliability"]["bins"],
            "shares": [c["share_of_loss"] for c in result["concentration"]["worst"]]}


@pytest.mark.parametrize("name", _CASES)
def test_diagnose_hostile_values_agree_on_both_engines(K, name):
    y, x, w, logits = _hostile_case(name)
    figures = []
    for engine in ("auto", "numpy"):
        with logloss.config_context(engine=engine), np.errstate(divide="ignore"):
            figures.append(_exact_figures(logloss.diagnose(y, x, sample_weight=w,
                                                           from_logits=logits).to_dict()))
    auto, numpy_ = figures
    assert auto["pav"]["blocks"] == numpy_["pav"]["blocks"]
    for key in ("prediction_low", "prediction_high", "prediction", "observed", "weight"):
        assert auto["pav"][key] == pytest.approx(numpy_["pav"][key], rel=1e-11), key
    assert auto["shares"] == pytest.approx(numpy_["shares"], rel=1e-11, nan_ok=True)
    assert auto["ece"] == pytest.approx(numpy_["ece"], rel=1e-11)
    assert len(auto["bins"]) == len(numpy_["bins"])
    for a, b in zip(auto["bins"], numpy_["bins"]):
        assert a == pytest.approx(b, rel=1e-11, nan_ok=True)
    for key in ("uncertainty", "recalibrated_log_loss", "miscalibration", "discrimination"):
        assert auto["decomposition"][key] == pytest.approx(numpy_["decomposition"][key],
                                                           rel=1e-11, abs=1e-15), key


def _python_shares(loss, w):
    """Share of the weighted loss from the worst q of the weight, the boundary row in part,
    in plain Python: ties in loss share alike, so their order does not matter."""
    total_w = math.fsum(w)
    total = math.fsum(wi * li for wi, li in zip(w, loss) if wi > 0)
    order = sorted((i for i in range(len(loss)) if w[i] > 0), key=lambda i: -loss[i])
    shares = []
    for q in (0.001, 0.01, 0.1):
        target, before, taken = q * total_w, 0.0, []
        for i in order:
            if before + w[i] >= target:
                taken.append(loss[i] * (target - before))
                break
            before += w[i]
            taken.append(w[i] * loss[i])
        shares.append(math.fsum(taken) / total)
    return shares


@pytest.mark.parametrize("name", [c for c in _CASES if c.startswith("p")] + ["z weighted"])
def test_diagnose_hostile_values_against_python_and_scikit_learn(K, name):
    sklearn_isotonic = pytest.importorskip("sklearn.isotonic")
    y, x, w, logits = _hostile_case(name)
    # finite losses only: a share of an infinite total is undefined
    x = np.clip(x, -40.0, 40.0) if logits else np.clip(x, 1e-3, 1 - 1e-3)
    ws = np.ones(len(y)) if w is None else w
    loss = [float(np.logaddexp(0.0, -xi if yi else xi)) if logits
            else -math.log(xi) if yi else -math.log1p(-xi) for xi, yi in zip(x, y)]
    keep = ws > 0
    fit = sklearn_isotonic.IsotonicRegression(y_min=0, y_max=1).fit(
        x[keep], y[keep], sample_weight=ws[keep]).predict(x[keep])
    with np.errstate(divide="ignore"):
        fit_loss = -np.where(y[keep] == 1, np.log(fit), np.log1p(-fit)) * ws[keep]
    recalibrated = math.fsum(np.where(ws[keep] > 0, fit_loss, 0.0).tolist()) / math.fsum(ws)
    result = logloss.diagnose(y, x, sample_weight=w, from_logits=logits).to_dict()
    shares = [c["share_of_loss"] for c in result["concentration"]["worst"]]
    assert shares == pytest.approx(_python_shares(loss, ws.tolist()), rel=1e-9)
    assert result["decomposition"]["recalibrated_log_loss"] == pytest.approx(recalibrated,
                                                                             rel=1e-9)
    assert result["log_loss"] == pytest.approx(
        math.fsum(a * b for a, b in zip(ws, loss)) / math.fsum(ws), rel=1e-12)
