"""A saved DiagnosticsState is a JSON file a user may edit, cut or write by hand. Each case here
spoils one field of a good saved state; before from_dict checked every field, most of them
loaded and reported figures from the spoiled numbers (a count of -5, a NaN or a negative cell in
a histogram, a worst row with label 2) or failed with a bare KeyError / zip() / int() message.
Each must be refused with an error that names the field by its path and says what it received.
"""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logloss import DiagnosticsState

RESOLUTION = 64


@pytest.fixture(scope="module")
def good() -> dict:
    """Two models, two segments, k = 3, one infinite loss (model a, row 0), as JSON."""
    rng = np.random.default_rng(3)
    n = 200
    y = (rng.random(n) < 0.4).astype(np.int8)
    p = rng.uniform(0.05, 0.95, n)
    y[0], p[0] = 1, 0.0
    state = DiagnosticsState(k=3, resolution=RESOLUTION).update(
        y, {"a": p, "b": np.clip(p, 0.1, 0.9)}, by={"country": np.where(np.arange(n) % 2, "x", "y")})
    return json.loads(json.dumps(state.to_dict(), allow_nan=False))


def _model(s, i=0):
    return s["models"][i]


def _set(path, value):
    def spoil(s):
        *head, last = path
        target = s
        for key in head:
            target = target[key]
        target[last] = value(target[last]) if callable(value) else value
    return spoil


def _delete(path):
    def spoil(s):
        *head, last = path
        target = s
        for key in head:
            target = target[key]
        del target[last]
    return spoil


M = ("models", 0)
CASES = [
    # (id, spoil, exception, fragments of the message)
    ("no-settings", _delete(("settings",)), ValueError, ["`state` must have the keys", "Missing: ['settings']"]),
    ("unknown-key", _set(("extra",), 1), ValueError, ["`state`", "unknown: ['extra']"]),
    ("settings-unknown", _set(("settings", "bogus"), 1), ValueError, ["`state['settings']`", "unknown: ['bogus']"]),
    ("from-logits-text", _set(("settings", "from_logits"), "false"), TypeError, ["`state['settings']['from_logits']`", "'false'"]),
    ("names-text", _set(("names",), "ab"), TypeError, ["`state['names']` must be a list", "'ab'"]),
    ("names-numbers", _set(("names",), [1, 2]), TypeError, ["`state['names'][0]` must be a string", "1"]),
    ("rows-text", _set(("rows",), "many"), ValueError, ["`state['rows']` must be an integer", "'many'"]),
    ("rows-negative", _set(("rows",), -1), ValueError, ["`state['rows']`", "-1"]),
    ("rows-past-2**53", _set(("rows",), 10**20), ValueError, ["`state['rows']` must be an integer [0, 9007199254740992]"]),
    ("names-empty", lambda s: s.update(names=[], models=[], pairs=[]), ValueError, ["`state['names']` must be distinct names (at least one model)"]),
    ("names-repeated", _set(("names",), ["a", "a"]), ValueError, ["`state['names']` must be distinct names", "['a', 'a']"]),
    ("by-repeated", _set(("by",), ["country", "country"]), ValueError, ["`state['by']` must be distinct names"]),
    ("keys-not-list", _set(("segment_keys",), 5), TypeError, ["`state['segment_keys']` must be a list", "5"]),
    ("key-too-long", _set(("segment_keys", 0), ["x", "extra"]), ValueError, ["`state['segment_keys'][0]` must have 1 entries", "2"]),
    ("key-a-mapping", _set(("segment_keys", 0), [{"x": 1}]), TypeError, ["`state['segment_keys'][0][0]`", "{'x': 1}"]),
    ("models-empty", _set(("models",), []), ValueError, ["`state['models']` must have 2 entries", "0"]),
    ("model-no-hist", _delete((*M, "hist")), ValueError, ["`state['models'][0]`", "Missing: ['hist']"]),
    ("total-short", _set((*M, "totals", "loss"), [1.0]), ValueError, ["`state['models'][0]['totals']['loss']` must have 2 entries"]),
    ("total-weight-text", _set((*M, "totals", "weight", 0), "lots"), ValueError, ["`state['models'][0]['totals']['weight'][0]` must be a finite number or \"inf\"", "'lots'"]),
    ("total-minus-inf", _set((*M, "totals", "loss", 0), float("-inf")), ValueError, ["`state['models'][0]['totals']['loss'][0]`", "-inf"]),
    ("total-label-negative", _set((*M, "totals", "label", 0), -1.0), ValueError, ["`state['models'][0]['totals']['label'][0]` must be non-negative", "-1.0"]),
    ("total-not-compensated", _set((*M, "totals", "brier", 1), 1e300), ValueError, ["`state['models'][0]['totals']['brier']`", "compensated pair"]),
    ("total-int-past-float64", _set((*M, "totals", "label", 0), 10**400), ValueError, ["`state['models'][0]['totals']['label'][0]` must be a finite number"]),
    ("hist-int-past-float64", _set((*M, "hist", 1, 2), -(10**400)), ValueError, ["`state['models'][0]['hist'][1][2]` must be a finite number"]),
    ("total-nan", _set((*M, "totals", "prediction", 0), float("nan")), ValueError, ["`state['models'][0]['totals']['prediction'][0]`", "nan"]),
    ("count-negative", _set((*M, "counts", "count"), -5), ValueError, ["`state['models'][0]['counts']['count']` must be an integer >= 0", "-5"]),
    ("count-huge", _set((*M, "counts", "count"), 10**30), ValueError, ["`state['models'][0]['counts']` are inconsistent"]),
    ("positives-above-count", _set((*M, "counts", "positives"), 10**6), ValueError, ["`state['models'][0]['counts']` are inconsistent"]),
    ("count-float", _set((*M, "counts", "confident"), 2.5), ValueError, ["`state['models'][0]['counts']['confident']`", "2.5"]),
    ("infinite-but-finite-total", _set((*M, "totals", "loss"), [10.0, 0.0]), ValueError, ["infinite losses but a finite loss total"]),
    ("cap-above-count", _set((*M, "caps", "keras"), 10**6), ValueError, ["`state['models'][0]['caps']['keras']` must be an integer [0, 200]"]),
    ("hist-nan", _set((*M, "hist", 3, 17), float("nan")), ValueError, ["`state['models'][0]['hist'][3][17]`", "nan"]),
    ("hist-negative", _set((*M, "hist", 0, 5), -1.0), ValueError, ["`state['models'][0]['hist'][0][5]`", ">= 0", "-1.0"]),
    ("hist-minus-inf", _set((*M, "hist", 2, 9), float("-inf")), ValueError, ["`state['models'][0]['hist'][2][9]`", "-inf"]),
    ("hist-inf-count", _set((*M, "hist", 4, 9), "inf"), ValueError, ["the saved histograms count inf"]),
    ("hist-text", _set((*M, "hist", 1, 4), "1.5"), ValueError, ["`state['models'][0]['hist'][1][4]` must be a number or \"inf\"", "'1.5'"]),
    ("hist-bool", _set((*M, "hist", 4, 4), True), ValueError, ["`state['models'][0]['hist'][4][4]` must be a number", "True"]),
    ("hist-row-cut", _set((*M, "hist", 2), lambda row: row[:-1]), ValueError, [f"`state['models'][0]['hist'][2]` must have {RESOLUTION + 2} entries"]),
    ("hist-count-edited", _set((*M, "hist", 4, 30), lambda v: v + 1), ValueError, ["the saved histograms count 201", "the counts say 200"]),
    ("loss-hist-count-edited", _set((*M, "loss_hist", 0, 2, 800), lambda v: v + 3), ValueError, ["the saved histograms count 200 and 203"]),
    ("loss-hist-negative-inf", _set((*M, "loss_hist", 1, 1, 3), float("-inf")), ValueError, ["`state['models'][0]['loss_hist'][1][1][3]`", "-inf"]),
    ("worst-unsorted", _set((*M, "worst", "loss"), lambda v: v[::-1]), ValueError, ["`state['models'][0]['worst']['loss']` must list the worst rows worst first"]),
    ("worst-label-2", _set((*M, "worst", "label", 1), 2), ValueError, ["`state['models'][0]['worst']['label'][1]` must be an integer [0, 1]", "2"]),
    ("worst-prediction-above-1", _set((*M, "worst", "prediction", 1), 1.5), ValueError, ["`state['models'][0]['worst']['prediction'][1]` must be a probability", "1.5"]),
    ("worst-row-beyond", _set((*M, "worst", "row", 0), 10**9), ValueError, ["`state['models'][0]['worst']['row'][0]` must be an integer [-1, 199]"]),
    ("worst-id-mapping", _set((*M, "worst", "id", 0), {"a": 1}), TypeError, ["`state['models'][0]['worst']['id'][0]`", "{'a': 1}"]),
    ("worst-named-text", _set((*M, "worst", "named", 0), "yes"), TypeError, ["`state['models'][0]['worst']['named'][0]` must be true or false"]),
    ("worst-weight-negative", _set((*M, "worst", "weight", 2), -1.0), ValueError, ["`state['models'][0]['worst']['weight'][2]`", "-1.0"]),
    ("worst-a-field-short", _set((*M, "worst", "label"), lambda v: v[:-1]), ValueError, ["saved worst rows have fields of lengths [2, 3]"]),
    ("segments-nan", _set((*M, "segments", 1, 3), float("nan")), ValueError, ["`state['models'][0]['segments'][1][3]`", "nan"]),
    ("segments-a-row-short", _set((*M, "segments", 0), lambda row: row[:-1]), ValueError, ["`state['models'][0]['segments'][0]` must have 7 entries"]),
    ("pair-negative-count", _set(("pairs", 0, "overall", 0), -3.0), ValueError, ["`state['pairs'][0]['overall'][0]` (count) must be non-negative", "-3.0"]),
    ("pair-nan", _set(("pairs", 0, "overall", 2), float("nan")), ValueError, ["`state['pairs'][0]['overall'][2]`", "nan"]),
    ("pair-segment-negative", _set(("pairs", 0, "segments", 1, 6), -1.0), ValueError, ["`state['pairs'][0]['segments'][1][6]` (a_better) must be non-negative"]),
    ("pair-unknown-key", _set(("pairs", 0, "extra"), 0), ValueError, ["`state['pairs'][0]`", "unknown: ['extra']"]),
    ("pair-a-list", _set(("pairs", 0, "a"), [0]), ValueError, ["`state['pairs'][0]['a']` must be an integer [0, 1]", "[0]"]),
    ("pair-twice", _set(("pairs",), lambda pairs: pairs + pairs), ValueError, ["saved pairs of models [(0, 1), (0, 1)]"]),
    ("no-names-but-models", _set(("names",), None), ValueError, ["no models (`names` is null) but has rows"]),
    ("version-true", _set(("version",), True), ValueError, ["Unsupported diagnostics state version True"]),
]


@pytest.mark.parametrize("spoil, exception, fragments", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_spoiled_saved_state_is_refused_naming_the_field(good, spoil, exception, fragments):
    state = copy.deepcopy(good)
    spoil(state)
    with pytest.raises(exception) as caught:
        DiagnosticsState.from_dict(state)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, message


def test_the_good_state_loads(good):
    """The cases above spoil a state that loads: each refusal is its own field's."""
    model = DiagnosticsState.from_dict(copy.deepcopy(good)).result()["models"]["a"]
    assert model["count"] == 200 and model["infinite"] == 1 and model["log_loss"] == math.inf


def _infinite_as_floats(value):
    """A saved state with its "inf" strings as floats: as Python's json wrote version 4
    (Infinity), and the numbers to compare."""
    if isinstance(value, dict):
        return {k: _infinite_as_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_infinite_as_floats(v) for v in value]
    return math.inf if value == "inf" else value


def test_a_state_with_an_infinite_loss_is_strict_json_and_round_trips(good):
    """Version 4 wrote Infinity for an infinite loss: Python reads it, JSON.parse, Go, serde and
    jq refuse it. Version 5 writes "inf"; the state loads to the same figures and saves the same."""
    text = json.dumps(good, allow_nan=False)  # the fixture's dump would have raised before
    assert "Infinity" not in text and '"inf"' in text
    again = DiagnosticsState.from_dict(json.loads(text))
    assert json.dumps(again.to_dict(), allow_nan=False) == text
    old = _infinite_as_floats(copy.deepcopy(good))
    old["version"] = 4
    assert json.dumps(DiagnosticsState.from_dict(old).to_dict(), allow_nan=False) == text


def test_the_figures_after_a_round_trip_are_the_rows_figures(good):
    """Against the rows themselves: the finite model's mean loss after to_dict / JSON /
    from_dict is the float64 formula's (computed here), the infinite model's is inf."""
    rng = np.random.default_rng(3)
    n = 200
    y = (rng.random(n) < 0.4).astype(np.int8)
    p = rng.uniform(0.05, 0.95, n)
    y[0], p[0] = 1, 0.0
    q = np.clip(p, 0.1, 0.9)
    expected = math.fsum(-math.log(qi) if yi else -math.log1p(-qi) for yi, qi in zip(y, q)) / n
    figures = DiagnosticsState.from_dict(json.loads(json.dumps(good))).result()["models"]
    assert figures["b"]["log_loss"] == pytest.approx(expected, rel=1e-14)
    assert figures["a"]["log_loss"] == math.inf


def test_states_that_to_dict_writes_at_the_edges_load():
    """Every infinite loss among the worst rows (their order then has inf - inf, which must not
    warn), and weights whose sums overflow float64: from_dict loads what to_dict wrote, and
    result() is where the overflow is said."""
    logits = DiagnosticsState(k=3, from_logits=True).update(
        [1, 0, 1, 0], np.array([-np.inf, np.inf, np.inf, -np.inf]))
    saved = json.loads(json.dumps(logits.to_dict(), allow_nan=False))
    assert saved["models"][0]["worst"]["loss"][:2] == ["inf", "inf"]
    assert DiagnosticsState.from_dict(saved).result()["models"]["model"]["infinite"] == 2
    huge = DiagnosticsState().update([1, 0, 1, 0], [0.5] * 4, sample_weight=[1e308] * 4)
    loaded = DiagnosticsState.from_dict(json.loads(json.dumps(huge.to_dict(), allow_nan=False)))
    with pytest.raises(OverflowError, match="exceeds the float64 range"):
        loaded.result()


def _leaf_paths(value, path=()):
    if isinstance(value, dict):
        for key, item in value.items():
            yield path + (key,)
            yield from _leaf_paths(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value[:3] + value[-2:] if len(value) > 5 else value):
            index = index if index < 3 or len(value) <= 5 else len(value) - 5 + index
            yield path + (index,)
            yield from _leaf_paths(item, path + (index,))


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70)
    | st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(["inf", "-inf", "x", ""]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children,
                                                                       max_size=3),
    max_leaves=6)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_any_one_field_replaced_is_refused_or_loads_to_a_usable_state(good, data):
    """Whatever one field of a good saved state is replaced with (any JSON value, NaN and
    infinities included): from_dict refuses it with ValueError or TypeError, or returns a state
    whose result() works (or says its sums overflowed) and whose to_dict is strict JSON that
    loads again to the same state — never another exception, a warning or a NaN."""
    paths = sorted(_leaf_paths(good), key=repr)
    path = data.draw(st.sampled_from(paths))
    state = copy.deepcopy(good)
    _set(path, data.draw(_JSON))(state)
    try:
        loaded = DiagnosticsState.from_dict(state)
    except (ValueError, TypeError):
        return
    try:
        figures = loaded.result()
    except OverflowError:
        return
    text = json.dumps(loaded.to_dict(), allow_nan=False)
    assert json.dumps(DiagnosticsState.from_dict(json.loads(text)).to_dict(),
                      allow_nan=False) == text
    for model in figures["models"].values():
        assert not (isinstance(model["log_loss"], float) and math.isnan(model["log_loss"])), path
