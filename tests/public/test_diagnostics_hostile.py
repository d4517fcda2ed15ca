"""DiagnosticsState and diagnose(by=...) against hostile inputs, checked against independent
computations (a dict grouping and math.fsum of -log p / -log1p(-p)), never against logloss."""

import json
import math
import zlib
from fractions import Fraction

import numpy as np
import pytest

import logloss
from logloss import DiagnosticsState
from logloss._diagnostics import SegmentCodes, pool_adjacent_violators


def _reference(y, p, keys):
    """Per segment key: row count and log loss, grouped with a dict."""
    rows: dict = {}
    for label, prob, key in zip(y.tolist(), p.tolist(), keys):
        rows.setdefault(key, []).append(-math.log(prob) if label else -math.log1p(-prob))
    return {key: (len(losses), math.fsum(losses) / len(losses)) for key, losses in rows.items()}


def _segments(state) -> dict:
    seg = state.result(max_segments=100_000)["models"]["model"]["segments"]
    return {tuple(row["segment"].values()): (row["count"], row["log_loss"])
            for row in seg["rows"]}


def _assert_segments(state, expected) -> None:
    got = _segments(state)
    assert got.keys() == expected.keys()
    for key, (count, loss) in expected.items():
        assert got[key][0] == count, key
        assert got[key][1] == pytest.approx(loss, rel=1e-13), key


@pytest.mark.parametrize("engine", ["auto", "numpy"])
@pytest.mark.parametrize("bad_code", [-1, -2, 2, 1000])
def test_segment_codes_outside_their_keys_are_refused_before_anything_is_added(engine, bad_code):
    """Pre-numbered segments (the file reader's SegmentCodes) whose code names no key: a
    negative code picked a key from the end (rows silently scored in another segment), one past
    the keys failed half way and left the state unusable. Both are refused like any bad input:
    the state stays as it was and goes on."""
    rng = np.random.default_rng(7)
    n = 300
    y = (rng.random(n) < 0.4).astype(np.int8)
    p = rng.uniform(0.02, 0.98, n)
    keys = [("a",), ("b",)]
    codes = rng.integers(0, 2, n)
    bad = codes[100:200].copy()
    bad[37] = bad_code
    with logloss.config_context(engine=engine):
        state = DiagnosticsState(k=3).update(y[:100], p[:100], by=SegmentCodes(["s"], codes[:100],
                                                                                keys))
        before = json.dumps(state.to_dict())
        with pytest.raises(ValueError, match="code"):
            state.update(y[100:200], p[100:200], by=SegmentCodes(["s"], bad, keys))
        assert json.dumps(state.to_dict()) == before
        state.update(y[200:], p[200:], by=SegmentCodes(["s"], codes[200:], keys))
    kept = np.r_[0:100, 200:300]
    _assert_segments(state, _reference(y[kept], p[kept], [keys[c] for c in codes[kept]]))


def _missing_cases():
    pd = pytest.importorskip("pandas")
    stamp = pd.Timestamp("2020-01-01", tz="UTC")
    return {
        # (column as the user passes it, each row's expected key); the text "<NA>" or "NaT" in
        # a row is that text, a missing value is None (JSON null), as NaN and None already are
        "pandas string dtype": (pd.array(["x", None, "<NA>", "x", None, "<NA>"], dtype="string"),
                                ["x", None, "<NA>", "x", None, "<NA>"]),
        "pandas boolean dtype": (pd.array([True, None, False, None, True, True], dtype="boolean"),
                                 [True, None, False, None, True, True]),
        "pd.NA and text in objects": (np.array(["<NA>", pd.NA, None, "a", pd.NA, "<NA>"],
                                               dtype=object),
                                      ["<NA>", None, None, "a", None, "<NA>"]),
        "tz-aware stamps with NaT": (pd.Series([stamp, pd.NaT, stamp, pd.NaT, stamp, stamp]),
                                     [str(stamp), None, str(stamp), None, str(stamp),
                                      str(stamp)]),
        "NaT beside the text NaT": (np.array([pd.NaT, "NaT", "NaT", pd.NaT, "b", "b"],
                                             dtype=object),
                                    [None, "NaT", "NaT", None, "b", "b"]),
    }


@pytest.mark.parametrize("engine", ["auto", "numpy"])
@pytest.mark.parametrize("case", ["pandas string dtype", "pandas boolean dtype",
                                  "pd.NA and text in objects", "tz-aware stamps with NaT",
                                  "NaT beside the text NaT"])
def test_pandas_missing_values_are_their_own_segment_keyed_none(engine, case):
    """pd.NA and pd.NaT were keyed by their text, "<NA>" and "NaT": a missing value was shown as
    a string, and its rows were pooled with rows holding that very text."""
    column, row_keys = _missing_cases()[case]
    rng = np.random.default_rng(3)
    y = np.array([1, 0, 1, 1, 0, 0], dtype=np.int8)
    p = rng.uniform(0.05, 0.95, len(y))
    with logloss.config_context(engine=engine):
        state = DiagnosticsState().update(y, p, by={"c": column})
    _assert_segments(state, _reference(y, p, [(key,) for key in row_keys]))


@pytest.mark.parametrize("engine", ["auto", "numpy"])
def test_decimal_segment_values_with_a_nan_are_numbered_not_a_decimal_error(engine):
    """Decimals (an object column read from a database) that include Decimal("NaN"): sorting
    them raised decimal.InvalidOperation out of diagnose; they are numbered in first-seen order,
    as other values that do not sort, each keyed by its text."""
    from decimal import Decimal

    values = [Decimal("1.5"), Decimal("NaN"), Decimal("0.25"), Decimal("NaN"), Decimal("1.5")]
    column = np.empty(len(values), dtype=object)
    column[:] = values
    y = np.array([1, 0, 0, 1, 1], dtype=np.int8)
    p = np.array([0.3, 0.6, 0.2, 0.9, 0.55])
    with logloss.config_context(engine=engine):
        state = DiagnosticsState().update(y, p, by={"amount": column})
    _assert_segments(state, _reference(y, p, [(str(v),) for v in values]))


@pytest.mark.parametrize("engine", ["auto", "numpy"])
@pytest.mark.parametrize("what", ["models", "by", "by codes"])
def test_names_that_read_the_same_as_text_are_refused(engine, what):
    """Model names and segment columns are shown by their text: {1: p, "1": q} kept one model
    "1" (the other's figures silently dropped), and by={1: a, "1": b} showed two columns as one,
    so different segments printed the same label. Refused, before anything is added."""
    rng = np.random.default_rng(2)
    n = 100
    y = (rng.random(n) < 0.5).astype(np.int8)
    p, q = rng.uniform(0.1, 0.9, n), rng.uniform(0.1, 0.9, n)
    a, b = rng.integers(0, 2, n), rng.integers(0, 2, n)
    kwargs = {
        "models": {"y_pred": {1: p, "1": q}},
        "by": {"y_pred": p, "by": {1: a, "1": b}},
        "by codes": {"y_pred": p, "by": SegmentCodes([1, "1"], a, [(0, 0), (1, 1)])},
    }[what]
    with logloss.config_context(engine=engine):
        state = DiagnosticsState()
        with pytest.raises(ValueError, match="distinct"):
            state.update(y, **kwargs)
        with pytest.raises(ValueError, match="distinct"):
            logloss.diagnose(y, **kwargs)
        state.update(y, {"1": p, "2": q}, by={"1": a, "2": b})  # the state is still fresh
    assert state.result()["settings"]["by"] == ["1", "2"]


def test_the_report_command_takes_a_repeated_by_column_as_one(tmp_path, capsys):
    """`logloss report f --by seg --by seg`: a column repeated in a combination adds nothing;
    it gave the segments of --by seg until segment columns had to differ, then a traceback."""
    pytest.importorskip("pyarrow")
    from logloss._cli import main

    rng = np.random.default_rng(4)
    n = 60
    y = (rng.random(n) < 0.5).astype(int)
    p = rng.uniform(0.05, 0.95, n)
    seg = rng.integers(0, 3, n)
    path = tmp_path / "d.csv"
    rows = zip(y.tolist(), p.tolist(), seg.tolist())
    path.write_text("label,pred,seg\n" + "".join(f"{a},{b!r},{c}\n" for a, b, c in rows))
    reports = []
    for by in (["--by", "seg", "--by", "seg"], ["--by", "seg"]):
        out = tmp_path / f"r{len(by)}.json"
        assert main(["report", str(path), *by, "--format", "json", "--output", str(out)]) == 0, (
            capsys.readouterr().err)
        reports.append(json.loads(out.read_text()))
    segments = [r["models"]["pred"]["segments"] if "models" in r else r["segments"]
                for r in reports]
    assert segments[0] == segments[1]
    rows = {row["segment"]["seg"]: (row["count"], row["log_loss"]) for row in segments[0]["rows"]}
    expected = _reference(y, p, seg.tolist())
    assert rows.keys() == expected.keys()
    for key, (count, loss) in expected.items():
        assert rows[key][0] == count and rows[key][1] == pytest.approx(loss, rel=1e-13)


def _objects(values) -> np.ndarray:
    values = list(values)
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _python_key(value):
    """A row's value as its segment key: NumPy scalars as Python values, NaN as None."""
    if isinstance(value, np.generic):
        value = value.item()
    return None if isinstance(value, float) and math.isnan(value) else value


def _batches(case: str, rng) -> list:
    """Lists of segment columns, one per batch (lengths may differ; 0 and 1 included)."""
    from logloss._diagnostics import SEGMENT_TABLE_SPAN as span

    def extremes(dtype):
        info = np.iinfo(np.dtype(dtype))
        picks = rng.integers(0, 4, 200)
        values = [info.min, info.min + 1, info.max - 1, info.max]
        return np.array([values[i] for i in picks.tolist()], dtype=dtype)

    def at_span(width):  # values 0 and width - 1: a table of exactly `width`, 200 rows
        v = rng.integers(0, 3, 200)
        v[:2] = 0, width - 1
        return v

    return {
        **{f"extremes {t}": lambda t=t: [extremes(t)]
           for t in ["i1", "u1", "i2", ">u2", "i4", ">i4", "u4", "i8", ">i8", "u8", ">u8"]},
        "span at the table's size": lambda: [at_span(span)],
        "span one above it": lambda: [at_span(span + 1)],
        "span above it, below the rows": lambda: [np.r_[rng.integers(0, 5, span + 10), span + 4]],
        "new values in later batches": lambda: [
            rng.integers(0, 3, 50).astype(np.int16), np.array([], dtype=np.int16),
            np.array([-32768], dtype=np.int16), rng.integers(2, 9, 40).astype(np.int16),
            np.array([32767] * 3, dtype=np.int16)],
        "bool batches": lambda: [np.zeros(5, bool), np.ones(1, bool), rng.random(30) < 0.5],
        "NaN objects, each its own": lambda: [_objects(float("nan") if i % 3 else "a"
                                                       for i in range(60)),
                                              _objects([None, float("nan"), "b"] * 5)],
        "floats with -0.0, 0.0 and NaN": lambda: [rng.choice([0.0, -0.0, np.nan, 2.5], 80),
                                                   np.array([-0.0, np.nan])],
        "np.str_, str, np.int64 and int": lambda: [
            _objects([np.str_("a"), "a", np.int64(3), 3, "3"] * 8)],
        "datetime64[D] with NaT": lambda: [rng.choice(np.array(
            ["2020-01-01", "2021-06-30", "NaT"], dtype="datetime64[D]"), 50)],
        "datetime64[ns] with NaT": lambda: [rng.choice(np.array(
            ["2020-01-01T00:00:00.000000001", "2020-01-01", "NaT"], dtype="datetime64[ns]"), 50),
            np.array(["1677-09-22"], dtype="datetime64[ns]")],
        "timedelta64[ns]": lambda: [rng.choice(np.array([1, -2, 3], dtype="timedelta64[ns]"), 40)],
    }[case]()


_BATCH_CASES = [
    *[f"extremes {t}" for t in ["i1", "u1", "i2", ">u2", "i4", ">i4", "u4", "i8", ">i8", "u8",
                                 ">u8"]],
    "span at the table's size", "span one above it", "span above it, below the rows",
    "new values in later batches", "bool batches", "NaN objects, each its own",
    "floats with -0.0, 0.0 and NaN", "np.str_, str, np.int64 and int", "datetime64[D] with NaT",
    "datetime64[ns] with NaT", "timedelta64[ns]",
]


@pytest.mark.parametrize("engine", ["auto", "numpy"])
@pytest.mark.parametrize("case", _BATCH_CASES)
def test_segments_across_batches_states_merges_and_saves(engine, case):
    """Batches whose segment values differ (new ones later, empty and one-row batches), added
    to one state, to two states merged, and through to_dict / JSON / from_dict: every segment
    holds exactly its rows, keyed by their value (datetime64[D] keyed by its date's text;
    nanosecond times, which Python's datetime cannot hold, by NumPy's text, not an integer)."""
    rng = np.random.default_rng(zlib.crc32(case.encode()))
    columns = _batches(case, rng)
    ys, ps = [], []
    for column in columns:
        ys.append((rng.random(len(column)) < 0.4).astype(np.int8))
        ps.append(rng.uniform(0.02, 0.98, len(column)))
    keys = []
    for column in columns:
        if column.dtype.kind == "M" and column.dtype.name.endswith("[D]"):  # datetime.date's text
            keys += [(None if v is None else str(v),) for v in column.tolist()]
        elif column.dtype.kind in "mM":  # nanoseconds: NumPy's text of each value
            keys += [(None if np.isnat(v) else str(v),) for v in column]
        else:
            keys += [(_python_key(v),) for v in column]
    expected = _reference(np.concatenate(ys), np.concatenate(ps), keys)
    half = len(columns) // 2
    with logloss.config_context(engine=engine):
        one, first, second = DiagnosticsState(), DiagnosticsState(), DiagnosticsState()
        for index, (y, p, column) in enumerate(zip(ys, ps, columns)):
            one.update(y, p, by={"s": column})
            (first if index < half or not half else second).update(y, p, by={"s": column})
        merged = DiagnosticsState.from_dict(json.loads(json.dumps(first.to_dict())))
        merged.merge(DiagnosticsState.from_dict(json.loads(json.dumps(second.to_dict()))))
    _assert_segments(one, expected)
    _assert_segments(merged, expected)
    _assert_segments(DiagnosticsState.from_dict(json.loads(json.dumps(one.to_dict()))), expected)


_EXTREME_PREDICTIONS = {
    # rows added to 40 ordinary ones; every probability distinct (the path without ties)
    "p = 0, label 1 (infinite)": ([0.0], [1]),
    "p = 1, label 0 (infinite)": ([1.0], [0]),
    "p = 0 and 1, right labels": ([0.0, 1.0], [0, 1]),
    "p = 0 and 1, wrong labels": ([0.0, 1.0], [1, 0]),
    "-0.0, label 0": ([-0.0], [0]),
    "subnormals": ([5e-324, 1e-310, 2e-320], [1, 0, 0]),
    "1 - 2**-53 and 1 - 2**-52": ([1 - 2**-53, 1 - 2**-52], [0, 1]),
}


@pytest.mark.parametrize("engine", ["auto", "numpy"])
@pytest.mark.parametrize("labels", ["mixed", "all 1", "all 0"])
@pytest.mark.parametrize("case", list(_EXTREME_PREDICTIONS))
def test_exact_decomposition_without_ties_at_the_ends_of_the_unit_interval(case, labels, engine):
    """The in-place per-row losses of the exact path against scikit-learn's isotonic fit and a
    log loss from math.log / math.log1p (infinite where a row's true class has p = 0)."""
    isotonic = pytest.importorskip("sklearn.isotonic")
    special = pytest.importorskip("scipy.special")
    rng = np.random.default_rng(3)
    extra_p, extra_y = _EXTREME_PREDICTIONS[case]
    p = np.r_[rng.uniform(0.01, 0.99, 40), extra_p]
    y = np.r_[(rng.random(40) < 0.5).astype(np.int64), extra_y]
    y = {"mixed": y, "all 1": np.ones_like(y), "all 0": np.zeros_like(y)}[labels]
    losses = [(-math.log(q) if q > 0 else math.inf) if t else
              (-math.log1p(-q) if q < 1 else math.inf) for t, q in zip(y.tolist(), p.tolist())]
    log_loss = math.inf if math.inf in losses else math.fsum(losses) / len(losses)
    # out_of_bounds="clip": without it scikit-learn's interpolation gives NaN at 1 - 2**-53
    fit = isotonic.IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(p, y)
    fitted = fit.predict(p)
    recalibrated = -math.fsum((special.xlogy(y, fitted)
                               + special.xlogy(1 - y, 1 - fitted)).tolist()) / len(y)
    rate = y.mean()
    uncertainty = 0.0 if rate in (0, 1) else -(rate * math.log(rate)
                                                + (1 - rate) * math.log1p(-rate))
    with logloss.config_context(engine=engine):
        d = logloss.diagnose(y, p)
    decomposition = d.decomposition
    assert d.log_loss == pytest.approx(log_loss, rel=1e-13)
    assert decomposition["exact"]
    assert decomposition["recalibrated_log_loss"] == pytest.approx(recalibrated, rel=1e-9,
                                                                   abs=1e-14)
    assert decomposition["miscalibration"] == pytest.approx(log_loss - recalibrated, rel=1e-9,
                                                            abs=1e-12)
    assert decomposition["discrimination"] == pytest.approx(uncertainty - recalibrated, rel=1e-9,
                                                            abs=1e-12)


@pytest.mark.parametrize("engine", ["auto", "numpy"])
@pytest.mark.parametrize("how", ["state", "diagnose"])
def test_perfect_hard_predictions_report_without_a_division_warning(engine, how):
    """Every row predicted exactly (p = y, total loss 0): the loss's concentration is undefined
    (no loss to share), and the figures said so with NaN, but its curve divided 0 by 0 first, a
    RuntimeWarning (an error under -W error) out of result() and diagnose()."""
    y = np.array([0, 1, 1, 0, 1], dtype=np.int8)
    p = y.astype(np.float64)
    with logloss.config_context(engine=engine):
        if how == "state":
            figures = DiagnosticsState().update(y, p).result()["models"]["model"]
        else:
            figures = logloss.diagnose(y, p).to_dict()
    assert figures["log_loss"] == 0.0
    concentration = figures["concentration"]
    assert concentration["curve"] == []
    # undefined: NaN in the state's figures, null (None) in the diagnosis's JSON-safe dict
    assert all(share["share_of_loss"] is None or math.isnan(share["share_of_loss"])
               for share in concentration["worst"])


@pytest.mark.parametrize("engine", ["auto", "numpy"])
@pytest.mark.parametrize("weights", [[1e308, 1.0, 1.0], [1e308, 1e308, 1e308]],
                         ids=["a weighted loss past the range", "a total weight past it"])
def test_weights_whose_sums_leave_the_float64_range_are_refused_by_result_not_update(engine,
                                                                                     weights):
    """The NumPy path multiplied and summed such weights with NumPy's overflow warning on: a
    RuntimeWarning out of update (an error under -W error, which left the state incomplete),
    where the compiled kernel adds the batch and result() refuses the figures, on both paths."""
    y = np.array([1, 0, 1], dtype=np.int8)
    p = np.array([0.01, 0.5, 0.9])  # -log 0.01 = 4.6: times 1e308 past the range
    with logloss.config_context(engine=engine):
        state = DiagnosticsState().update(y, p, np.array(weights), by=np.array([1, 2, 1]))
        with pytest.raises(OverflowError, match="float64 range"):
            state.result()
        with pytest.raises(OverflowError, match="float64 range"):
            state.result()  # refused again, the state still whole
        with pytest.raises(OverflowError, match="float64 range"):
            logloss.diagnose(y, p, sample_weight=np.array(weights))  # before its exact figures


def _corrupt(saved: dict, how: str) -> None:
    if how == "a segment key dropped":
        saved["segment_keys"].pop()
    elif how == "a segment key repeated":
        saved["segment_keys"][1] = saved["segment_keys"][0]
    elif how == "a model with an extra segment row":
        saved["models"][1]["segments"].append([0.0] * 7)
    elif how == "a pair's segment rows cut":
        saved["pairs"][0]["segments"].pop()
    elif how == "the pair missing":
        saved["pairs"].clear()
    elif how == "a worst row without its id":
        saved["models"][0]["worst"]["id"].pop()
    elif how == "a worst loss too many":
        saved["models"][0]["worst"]["loss"].append(5.0)
    elif how == "more worst rows than k":
        worst = saved["models"][0]["worst"]
        for field in worst:
            worst[field] = worst[field] + worst[field][:1]


@pytest.mark.parametrize("how", ["a segment key dropped", "a segment key repeated",
                                 "a model with an extra segment row", "a pair's segment rows cut",
                                 "the pair missing", "a worst row without its id",
                                 "a worst loss too many", "more worst rows than k"])
def test_a_saved_state_whose_parts_disagree_is_refused_by_from_dict(how):
    """A saved state (a JSON file, edited or cut) whose segment keys, segment rows and pairs
    disagree loaded, then failed in result() (IndexError), reported a comparison of zeros or
    the wrong worst rows (one dropped, more than k), or, merged into a good state, failed half
    way and left that state incomplete."""
    rng = np.random.default_rng(8)
    n = 90
    y = (rng.random(n) < 0.5).astype(np.int8)
    p = rng.uniform(0.1, 0.9, n)
    models = {"a": p, "b": p ** 2}
    saved = json.loads(json.dumps(DiagnosticsState(k=3).update(y, models, by=np.arange(n) % 3)
                                  .to_dict()))
    _corrupt(saved, how)
    with pytest.raises(ValueError, match="saved"):
        DiagnosticsState.from_dict(saved)


# -- huge and tiny sample weights --------------------------------------------------------------

_SCALES = {"1e200": 1e200, "2**600": 2.0**600, "1e-300": 1e-300, "2**-600": 2.0**-600,
           "subnormal 5e-324": 5e-324}


def _row_losses(y, p) -> list[float]:
    """-log p for a positive, -log(1 - p) for a negative, one row at a time."""
    return [-math.log(q) if label else -math.log1p(-q) for label, q in zip(y.tolist(), p.tolist())]


def _paired_reference(y, pa, pb, units):
    """The weighted mean of d = loss_b - loss_a and its standard error
    sqrt(n / (n - 1) * sum u^2 (d - mean)^2) / sum u, in exact rationals on the integer weights
    ``units`` (scaling every weight by c cancels from both)."""
    d = [Fraction(b) - Fraction(a) for a, b in zip(_row_losses(y, pa), _row_losses(y, pb))]
    u = [Fraction(int(v)) for v in units]
    total = sum(u)
    mean = sum(ui * di for ui, di in zip(u, d)) / total
    n = len(d)
    spread = sum(ui * ui * (di - mean) ** 2 for ui, di in zip(u, d))
    return float(mean), math.sqrt(float(Fraction(n, n - 1) * spread / (total * total)))


def _two_models(n=60, seed=31):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(np.int8)
    pa = rng.uniform(0.05, 0.95, n)
    pb = np.clip(pa + rng.normal(0.0, 0.15, n), 0.01, 0.99)
    units = rng.integers(1, 5, n).astype(np.float64)
    return y, pa, pb, units


@pytest.mark.parametrize("engine", ["auto", "numpy"])
@pytest.mark.parametrize("how", ["one batch", "three merged states", "saved and loaded",
                                 "diagnose"])
@pytest.mark.parametrize("scale", list(_SCALES), ids=list(_SCALES))
def test_the_paired_comparison_of_two_models_with_huge_or_tiny_weights(engine, how, scale):
    """Weights of 1e200 made update square them (1e400): NumPy overflow warnings out of
    _add_pair / _merge_pair (an error under -W error, leaving the state incomplete), and
    otherwise a null standard error, which the report's sentence called an interval that
    "includes zero". The pair's sums are kept in shares of the weight now."""
    y, pa, pb, units = _two_models()
    w = units * _SCALES[scale]
    models = {"a": pa, "b": pb}
    with logloss.config_context(engine=engine):
        if how == "one batch":
            figures = DiagnosticsState().update(y, models, w).result()
        elif how == "diagnose":
            figures = logloss.diagnose(y, models, sample_weight=w).to_dict()
        else:
            parts = [DiagnosticsState().update(y[s], {k: v[s] for k, v in models.items()}, w[s])
                     for s in (slice(0, 7), slice(7, 40), slice(40, None))]
            state = parts[0].merge(parts[1]).merge(parts[2])
            if how == "saved and loaded":
                state = DiagnosticsState.from_dict(json.loads(json.dumps(state.to_dict())))
            figures = state.result()
    pair = figures["comparison"][0]
    mean, se = _paired_reference(y, pa, pb, units)
    assert pair["mean_difference"] == pytest.approx(mean, rel=1e-12)
    assert pair["standard_error"] == pytest.approx(se, rel=1e-12)
    low, high = pair["interval_95"]
    assert low == pytest.approx(mean - 1.959963984540054 * se, rel=1e-12)
    assert high == pytest.approx(mean + 1.959963984540054 * se, rel=1e-12)
    d = np.array(_row_losses(y, pb)) - np.array(_row_losses(y, pa))
    a_wins = math.fsum(units[d > 0].tolist()) / math.fsum(units.tolist())
    assert pair["a_better"] == pytest.approx(a_wins, rel=1e-12)


def test_a_version_2_state_with_a_pair_of_models_loads_with_the_same_comparison():
    """Version 2 saved the pair as plain sums (sum w d, sum w^2, sum w^2 dev, sum w^2 dev^2);
    version 3 keeps shares of the weight. Old files must load to the same figures: the version-2
    sums are written here from the rows, by their own definition."""
    y, pa, pb, units = _two_models(n=40, seed=5)
    saved = json.loads(json.dumps(DiagnosticsState().update(y, {"a": pa, "b": pb}, units)
                                  .to_dict()))
    assert saved["version"] == 5
    d = [b - a for a, b in zip(_row_losses(y, pa), _row_losses(y, pb))]
    u = units.tolist()
    total = math.fsum(u)
    mean = math.fsum(ui * di for ui, di in zip(u, d)) / total
    dev = [di - mean for di in d]
    overall = saved["pairs"][0]["overall"]
    overall[2] = math.fsum(ui * di for ui, di in zip(u, d))
    overall[3] = math.fsum(ui * ui for ui in u)
    overall[4] = math.fsum(ui * ui * e for ui, e in zip(u, dev))
    overall[5] = math.fsum(ui * ui * e * e for ui, e in zip(u, dev))
    saved["version"] = 2
    pair = DiagnosticsState.from_dict(saved).result()["comparison"][0]
    ref_mean, ref_se = _paired_reference(y, pa, pb, units)
    assert pair["mean_difference"] == pytest.approx(ref_mean, rel=1e-12)
    assert pair["standard_error"] == pytest.approx(ref_se, rel=1e-12)


def _leaves(figures, path=""):
    """Every number in the figures, by its path (a.b[0].c)."""
    if isinstance(figures, dict):
        for key, value in figures.items():
            yield from _leaves(value, f"{path}.{key}")
    elif isinstance(figures, list):
        for index, value in enumerate(figures):
            yield from _leaves(value, f"{path}[{index}]")
    else:
        yield path, figures


# figures that are ratios of weighted sums: a common factor of every weight cancels from them
_RATIOS = {"log_loss", "brier", "base_rate", "calibration_ratio", "normalized_entropy", "d2",
           "ece", "ece_bound", "miscalibration", "discrimination", "uncertainty",
           "recalibrated_log_loss", "bound", "mean_loss", "share_of_loss", "observed",
           "mean_difference", "standard_error", "interval_95", "a_better", "b_better", "tied"}


@pytest.mark.parametrize("engine", ["auto", "numpy"])
@pytest.mark.parametrize("how", ["state", "diagnose"])
@pytest.mark.parametrize("factor", [2.0**600, 2.0**-600], ids=["2**600", "2**-600"])
def test_scaling_every_weight_by_a_power_of_two_changes_no_ratio(engine, how, factor):
    """Every figure that is a ratio of weighted sums (log loss, Brier, ECE and its bound, the
    decomposition, each class's and segment's loss, the concentration shares, the paired
    difference, its standard error and win shares) is the same bit for bit when every weight is
    multiplied by 2**600 or 2**-600, and every other number is the same or exactly scaled.
    Before: 2**600 raised overflow warnings (pair sums, concentration), and 2**-600 gave
    concentration shares of 0 (row_l * (target - before) underflowed)."""
    y, pa, pb, units = _two_models(n=300, seed=12)
    pb = np.round(pb, 2)  # ties, pooled by the exact decomposition
    w = units * np.random.default_rng(3).uniform(0.5, 2.0, len(y))
    models = {"a": pa, "b": pb}
    by = np.arange(len(y)) % 4

    def figures(weights):
        with logloss.config_context(engine=engine):
            if how == "state":
                return DiagnosticsState(k=5).update(y, models, weights, by=by).result()
            return logloss.diagnose(y, models, sample_weight=weights, by=by, k=5).to_dict()

    base, scaled = dict(_leaves(figures(w))), dict(_leaves(figures(w * factor)))
    assert base.keys() == scaled.keys()
    compared = 0
    for path, value in base.items():
        got = scaled[path]
        name = path.rsplit(".", 1)[-1].split("[")[0]
        if not isinstance(value, float):
            assert got == value, path
            continue
        if math.isnan(value):
            assert math.isnan(got), path
        elif name in _RATIOS:
            assert got == value, (path, got, value)
            compared += 1
        else:
            assert got in (value, value * factor), (path, got, value)
    assert compared > 100


def _ratio_leaves(figures) -> dict:
    return {path: value for path, value in _leaves(figures)
            if path.rsplit(".", 1)[-1].split("[")[0] in _RATIOS and isinstance(value, float)}


@pytest.mark.parametrize("engine", ["auto", "numpy"])
@pytest.mark.parametrize("how", ["state", "diagnose"])
@pytest.mark.parametrize("weight", [1e307, 1.5e307, 2.0**1020], ids=["1e307", "1.5e307", "2**1020"])
def test_equal_weights_near_the_float64_limit_give_the_unweighted_figures(engine, how, weight):
    """Ten rows of equal weight w, with 10 w below 1.8e308: the figures are those without
    weights. The equal-mass bins and the ECE bound cut at weight_total * b / bins, past float64
    for b >= 2 (an overflow warning, or infinite edges: every row in the first bin)."""
    y = np.array([0, 1, 1, 0, 1, 0, 0, 1, 1, 0], dtype=np.int8)
    p = np.array([0.1, 0.8, 0.35, 0.3, 0.9, 0.6, 0.2, 0.55, 0.7, 0.45])

    def figures(weights):
        with logloss.config_context(engine=engine):
            if how == "state":
                return DiagnosticsState().update(y, p, weights).result()["models"]["model"]
            return logloss.diagnose(y, p, sample_weight=weights).to_dict()

    heavy, plain = _ratio_leaves(figures(np.full(10, weight))), _ratio_leaves(figures(None))
    assert heavy.keys() == plain.keys()
    # the bins cut at weight_total * (b / bins): rounded, a cut may fall just inside a cell,
    # whose width the streamed ECE bound then counts (a bound, not an error)
    assert 0 <= heavy.pop(".ece_bound") <= 0.01
    for path, value in plain.items():
        if path == ".ece_bound":
            continue
        if math.isnan(value):
            assert math.isnan(heavy[path]), path
        else:
            assert heavy[path] == pytest.approx(value, rel=1e-12, abs=1e-15), path
    assert heavy[".log_loss"] == pytest.approx(math.fsum(_row_losses(y, p)) / 10, rel=1e-13)


@pytest.mark.parametrize("engine", ["auto", "numpy"])
@pytest.mark.parametrize("how", ["state", "diagnose", "two models"])
def test_weights_whose_total_passes_float64_are_refused_naming_sample_weight(engine, how):
    y = np.array([1, 0, 1], dtype=np.int8)
    p = np.array([0.6, 0.4, 0.3])
    w = np.array([1.7e308, 1.0, 1.7e308])
    with logloss.config_context(engine=engine), pytest.raises(
            OverflowError, match=r"total `sample_weight` exceeds the float64 range"):
        if how == "state":
            DiagnosticsState().update(y, p, w).result()
        elif how == "two models":
            DiagnosticsState().update(y, {"a": p, "b": p[::-1].copy()}, w).result()
        else:
            logloss.diagnose(y, p, sample_weight=w)


def _reference_pav(negative, positive):
    """Pool adjacent violators in exact rationals, one block at a time: (starts, neg, pos)."""
    blocks = []
    for start, (a, b) in enumerate(zip(negative, positive)):
        blocks.append([start, Fraction(a), Fraction(b)])
        while len(blocks) > 1 and (blocks[-2][2] / (blocks[-2][1] + blocks[-2][2])
                                   > blocks[-1][2] / (blocks[-1][1] + blocks[-1][2])):
            _, a, b = blocks.pop()
            blocks[-1][1] += a
            blocks[-1][2] += b
    return [b[0] for b in blocks], [b[1] for b in blocks], [b[2] for b in blocks]


@pytest.mark.parametrize("factor", [1.0, 2.0**600, 2.0**-600, 1e200],
                         ids=["1", "2**600", "2**-600", "1e200"])
def test_pooling_a_long_chain_of_violators_with_huge_or_tiny_weights(factor):
    """6000 blocks in increasing order, then one that pools back through most of them: the
    vectorized passes make slow progress and hand over to the stack pass, which compared the
    cross products p2 (n1 + p1): past float64 for weights of 2**600 or 1e200 (inf > inf, so
    nothing pooled)."""
    n = 6000
    units_pos = [1] * n
    units_neg = [12000 - i for i in range(n)]  # the positive share rises along the blocks
    units_neg.append(500_000)  # pools back through about 700 blocks
    units_pos.append(1)
    starts, neg, pos = pool_adjacent_violators(np.array(units_neg) * factor,
                                               np.array(units_pos) * factor)
    ref_starts, ref_neg, ref_pos = _reference_pav(units_neg, units_pos)
    assert 4000 < len(ref_starts) < 6000
    assert starts.tolist() == ref_starts
    assert neg.tolist() == pytest.approx([float(v * Fraction(factor)) for v in ref_neg],
                                         rel=1e-12)
    assert pos.tolist() == pytest.approx([float(v * Fraction(factor)) for v in ref_pos],
                                         rel=1e-12)


@pytest.mark.parametrize("engine", ["auto", "numpy"])
@pytest.mark.parametrize("how", ["state", "diagnose"])
def test_rows_of_weight_1e_300_beside_rows_of_1e300_count_as_nothing(engine, how):
    """Half the rows weigh 1e300, half 1e-300 (a share of 1e-600: nothing in float64): every
    ratio figure is that of the 1e-300 rows weighted 0. The pooled loss took the log of a share
    that underflowed to 0: -inf times 1e-300, and the decomposition's bound was NaN."""
    y, pa, pb, units = _two_models(n=400, seed=44)
    light = np.arange(len(y)) % 2 == 1
    # the lowest prediction: heavy negatives and light positives only, so its pooled block's
    # positive share is 1e-600, 0 in float64
    y[:4], pa[:4], pb[:4] = [0, 1, 0, 1], 0.01, 0.01
    models = {"a": pa, "b": pb}

    def figures(weights):
        with logloss.config_context(engine=engine):
            if how == "state":
                return DiagnosticsState(resolution=64).update(y, models, weights).result()
            return logloss.diagnose(y, models, sample_weight=weights, resolution=64).to_dict()

    mixed = _ratio_leaves(figures(np.where(light, 1e-300, units * 1e300)))
    zeroed = _ratio_leaves(figures(np.where(light, 0.0, units * 1e300)))
    # the paired standard error's n / (n - 1) counts the rows of positive weight: 400, not 200
    rows = math.sqrt(400 / 399 / (200 / 199))
    compared = 0
    for path, value in zeroed.items():
        if "reliability" in path:  # the tiny rows' own cells and blocks: listed, weight 0
            continue
        got = mixed[path]
        if path.endswith(".standard_error"):
            value *= rows
        elif ".interval_95" in path:
            mean = zeroed[".comparison[0].mean_difference"]
            value = mean + (value - mean) * rows
        assert not math.isnan(got), path
        assert got == pytest.approx(value, rel=1e-12, abs=1e-15), path
        compared += 1
    assert compared > 40


@pytest.mark.parametrize("engine", ["auto", "numpy"])
def test_a_cell_of_heavy_positives_keeps_the_weight_of_its_light_negatives(engine):
    """The NumPy path took a prediction cell's negatives as its total weight less its
    positives': 1e20 of positives beside 3e4 of negatives left 32768 (the total's rounding
    step), and the recalibrated loss, which the negatives' -log of their share dominates there,
    came out 9% high (the compiled kernel adds the negatives directly)."""
    y = np.array([0, 0, 0, 0, 0, 1, 1, 0], dtype=np.int8)
    p = np.array([0.2] * 6 + [0.9] * 2)
    w = np.array([1.0] * 6 + [1e20, 3e4])
    with logloss.config_context(engine=engine):
        figures = DiagnosticsState().update(y, p, w).result()["models"]["model"]
    heavy, light = Fraction(1e20), Fraction(3e4)
    total = Fraction(6) + heavy + light
    # two cells, their positive shares 1/6 and 1e20 / (1e20 + 3e4) already increasing
    entropy_low = -(math.log(1 / 6) + 5 * math.log(5 / 6))
    entropy_high = (1e20 * math.log1p(3e4 / 1e20)
                    - 3e4 * (math.log(3e4) - math.log(1e20 + 3e4)))
    recalibrated = math.fsum([entropy_low, entropy_high]) / float(total)
    decomposition = figures["decomposition"]
    assert decomposition["recalibrated_log_loss"] == pytest.approx(recalibrated, rel=1e-12, abs=0)
    assert figures["reliability"]["pav"]["observed"] == pytest.approx(
        [1 / 6, float(heavy / (heavy + light))], rel=1e-15)
    assert figures["reliability"]["pav"]["weight"][0] == pytest.approx(float(6 / total),
                                                                       rel=1e-15)


@pytest.mark.parametrize("engine", ["auto", "numpy"])
@pytest.mark.parametrize("from_logits", [False, True], ids=["probabilities", "logits"])
def test_a_row_of_weight_zero_with_an_infinite_loss_adds_nothing(engine, from_logits):
    """diagnose() multiplied weight by loss before dropping weight-0 rows: 0 * inf, an
    'invalid value' RuntimeWarning (an error under -W error) from the exact figures. That row
    adds nothing; the same row with a positive weight makes the loss infinite, reported so."""
    y = np.array([1, 0, 1, 0, 1], dtype=np.int8)
    if from_logits:
        a = np.array([-np.inf, -0.8, 1.4, 0.2, 0.6])
        b = np.array([0.3, -1.0, 1.0, 0.0, 0.9])
        probs = [1 / (1 + math.exp(-v)) for v in a[1:].tolist()]
    else:
        a = np.array([0.0, 0.3, 0.8, 0.55, 0.65])
        b = np.array([0.6, 0.2, 0.7, 0.5, 0.7])
        probs = a[1:].tolist()
    w = np.array([0.0, 1.0, 2.0, 1.5, 0.5])
    losses = _row_losses(y[1:], np.array(probs))
    expected = math.fsum(wi * li for wi, li in zip(w[1:].tolist(), losses)) / math.fsum(w)
    with logloss.config_context(engine=engine):
        diagnosis = logloss.diagnose(y, {"a": a, "b": b}, sample_weight=w,
                                     from_logits=from_logits, by=np.array([0, 0, 1, 1, 1]))
        figures = diagnosis.to_dict()["models"]["a"]
        assert figures["log_loss"] == pytest.approx(expected, rel=1e-12)
        assert figures["infinite"] == 0
        shares = figures["concentration"]["worst"]
        assert all(share["share_of_loss"] is not None for share in shares)
        assert figures["decomposition"]["recalibrated_log_loss"] is not None
        assert [row["weight"] for row in figures["worst"]].count(0.0) == 0
        w[0] = 1.0
        heavy = logloss.diagnose(y, {"a": a, "b": b}, sample_weight=w, from_logits=from_logits)
    counted = heavy.to_dict()["models"]["a"]
    assert counted["log_loss"] == "inf" and counted["infinite"] == 1
    assert heavy.to_dict()["comparison"][0]["mean_difference"] == "-inf"


_TINY = {"subnormal 5e-324": 5e-324, "subnormal 1e-320": 2.0**-1063, "2**-1060": 2.0**-1060,
         "1e-300": 2.0**-997}


@pytest.mark.parametrize("engine", ["auto", "numpy"])
@pytest.mark.parametrize("how", ["state", "diagnose", "saved and loaded"])
@pytest.mark.parametrize("tiny", list(_TINY), ids=list(_TINY))
def test_tiny_and_subnormal_weights_give_the_figures_of_their_multiples(engine, how, tiny):
    """Weights k * 2**-1074 (subnormal) times a loss kept no digits: a log loss of 0.965 where
    it is 1.009, and every sentence built on such figures. The state keeps its sums in units of
    the largest weight's power of two now, so every ratio is that of the integer weights k, bit
    for bit, and the weights themselves are reported as given."""
    y, pa, pb, units = _two_models(n=120, seed=9)
    models = {"a": pa, "b": pb}
    by = np.arange(len(y)) % 3

    def figures(weights):
        with logloss.config_context(engine=engine):
            if how == "diagnose":
                return logloss.diagnose(y, models, sample_weight=weights, by=by).to_dict()
            state = DiagnosticsState().update(y, models, weights, by=by)
            if how == "saved and loaded":
                state = DiagnosticsState.from_dict(json.loads(json.dumps(state.to_dict())))
            return state.result()

    scale = _TINY[tiny]
    small, whole = figures(units * scale), figures(units)
    small_leaves, whole_leaves = dict(_leaves(small)), dict(_leaves(whole))
    compared = 0
    for path, value in _ratio_leaves(whole).items():
        got = small_leaves[path]
        assert got == value or (math.isnan(got) and math.isnan(value)), (path, got, value)
        compared += 1
    assert compared > 100
    for path, value in whole_leaves.items():
        if path.endswith(".weight") and "pav" not in path and "histogram" not in path:
            assert small_leaves[path] == value * scale, path
    model = small["models"]["a"]
    assert model["weight"] == float(sum(Fraction(u) for u in units.tolist()) * Fraction(scale))
    assert model["log_loss"] == pytest.approx(
        math.fsum(u * loss for u, loss in zip(units.tolist(), _row_losses(y, pa)))
        / math.fsum(units.tolist()), rel=1e-13)


@pytest.mark.parametrize("engine", ["auto", "numpy"])
def test_states_of_tiny_and_ordinary_weights_merge_in_either_order(engine):
    """A state of weights near 2**-1060 merged with one of weights near 2**-1050 (and the other
    way round, through to_dict, or added as two batches): the same figures as one state of the
    weights scaled by 2**1000, to 1e-12 (before: the subnormal products kept 14 to 24 bits); a
    state of weight 0 leaves the units alone."""
    y, pa, pb, units = _two_models(n=90, seed=21)
    models = {"a": pa, "b": pb}
    w = np.where(np.arange(len(y)) < 40, units * 2.0**-1060, units * 2.0**-1050)
    first, second = slice(0, 40), slice(40, None)

    def state(part, weights):
        with logloss.config_context(engine=engine):
            return DiagnosticsState().update(y[part], {k: v[part] for k, v in models.items()},
                                             weights[part])

    with logloss.config_context(engine=engine):
        reference = _ratio_leaves(DiagnosticsState().update(y, models, w * 2.0**1000).result())
        empty = DiagnosticsState().update(y[:5], {k: v[:5] for k, v in models.items()},
                                          np.zeros(5))
        streamed = DiagnosticsState().update(y[first], {k: v[first] for k, v in models.items()},
                                             w[first])
        streamed.update(y[second], {k: v[second] for k, v in models.items()}, w[second])
    merges = {
        "tiny into ordinary": state(second, w).merge(state(first, w)),
        "ordinary into tiny": state(first, w).merge(state(second, w)),
        "saved": DiagnosticsState.from_dict(json.loads(json.dumps(
            state(first, w).merge(empty).to_dict()))).merge(state(second, w)),
        "streamed": streamed,
    }
    for name, merged in merges.items():
        got = _ratio_leaves(merged.result())
        for path, value in reference.items():
            if ".pav" in path or ".bins" in path:
                continue  # the saved state has the zero-weight rows' cells: listed apart
            if math.isnan(value):
                assert math.isnan(got[path]), (name, path)
            else:
                assert got[path] == pytest.approx(value, rel=1e-12, abs=1e-15), (name, path)
