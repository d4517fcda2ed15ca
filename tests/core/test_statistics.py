"""The streaming state read back from JSON: every field checked, every bad field a clear error;
every state the code can produce is strict JSON."""

from __future__ import annotations

import copy
import json
import math
import warnings

import numpy as np
import pytest

import logloss
from logloss._core.statistics import Statistics


def _state(**changes) -> dict:
    acc = logloss.Accumulator()
    acc.update([1.0, 0.0, 1.0], [0.9, 0.2, 0.6], [1.0, 2.0, 0.5])
    state = json.loads(json.dumps(acc.to_dict(), allow_nan=False))
    for path, value in changes.items():
        target = state
        keys = path.split(".")
        for key in keys[:-1]:
            target = target[key] if not key.isdigit() else target[int(key)]
        last = keys[-1]
        if value is _DELETE:
            del target[last]
        elif last.isdigit():
            target[int(last)] = value
        else:
            target[last] = value
    return state


_DELETE = object()

# (id, changes, exception type, fragments of the message)
BAD = [
    ("from_logits-string", {"from_logits": "false"}, TypeError, ["state['from_logits']", "bool", "'false'"]),
    ("from_logits-int", {"from_logits": 0}, TypeError, ["state['from_logits']", "bool"]),
    ("from_logits-missing", {"from_logits": _DELETE}, ValueError, ["lacks the settings", "from_logits"]),
    ("pos_weight-negative", {"pos_weight": -1.0}, ValueError, ["state['pos_weight']", "> 0", "-1.0"]),
    ("pos_weight-nan", {"pos_weight": math.nan}, ValueError, ["state['pos_weight']", "nan"]),
    ("pos_weight-bool", {"pos_weight": True}, ValueError, ["state['pos_weight']", "True"]),
    ("pos_weight-string", {"pos_weight": "2"}, ValueError, ["state['pos_weight']", "'2'"]),
    ("smoothing-2", {"label_smoothing": 2.0}, ValueError, ["state['label_smoothing']", "[0, 1]", "2.0"]),
    ("smoothing-nan", {"label_smoothing": math.nan}, ValueError, ["state['label_smoothing']", "nan"]),
    ("count-negative", {"count": -1}, ValueError, ["state['count']", "non-negative int", "-1"]),
    ("count-float", {"count": 3.0}, ValueError, ["state['count']", "non-negative int", "3.0"]),
    ("count-string", {"count": "3"}, ValueError, ["state['count']", "'3'"]),
    ("count-bool", {"count": True}, ValueError, ["state['count']", "True"]),
    ("count-missing", {"count": _DELETE}, ValueError, ["exactly the keys", "Missing: ['count']"]),
    ("extra-key", {"extra": 1}, ValueError, ["exactly the keys", "unknown: ['extra']"]),
    ("infinite-negative", {"infinite": -2}, ValueError, ["state['infinite']", "-2"]),
    ("infinite-over-count", {"infinite": 4, "sums.loss.0": "inf"}, ValueError, ["inconsistent", "'infinite' (4)", "'count' (3)"]),
    ("positives-over-count", {"positives": 5.0}, ValueError, ["inconsistent", "'positives' (5.0)"]),
    ("positives-nan", {"positives": math.nan}, ValueError, ["state['positives']", "finite", "nan"]),
    ("positives-negative", {"positives": -1.0}, ValueError, ["state['positives']", "non-negative"]),
    ("scale-float", {"scale": 0.5}, ValueError, ["state['scale']", "int", "0.5"]),
    ("scale-huge", {"scale": 10**6}, ValueError, ["state['scale']", "1000000"]),
    ("scale-missing", {"scale": _DELETE}, ValueError, ["Missing: ['scale']"]),
    ("sums-list", {"sums": [1, 2]}, TypeError, ["state['sums']", "dict", "list"]),
    ("sums-missing-key", {"sums.label": _DELETE}, ValueError, ["state['sums']", "Missing: ['label']"]),
    ("sums-extra-key", {"sums.other": [0.0, 0.0]}, ValueError, ["state['sums']", "unknown: ['other']"]),
    ("pair-scalar", {"sums.loss": 1.0}, ValueError, ["state['sums']['loss']", "pair [hi, lo]", "1.0"]),
    ("pair-three", {"sums.loss": [1.0, 0.0, 0.0]}, ValueError, ["pair [hi, lo]"]),
    ("hi-nan", {"sums.weight.0": math.nan}, ValueError, ["state['sums']['weight'][0]", "finite", "nan"]),
    ("hi-negative", {"sums.weight.0": -3.5}, ValueError, ["state['sums']['weight'][0]", "non-negative", "-3.5"]),
    ("hi-string", {"sums.weight.0": "3.5"}, ValueError, ["state['sums']['weight'][0]", "'3.5'"]),
    ("hi-inf-weight", {"sums.weight.0": "inf"}, ValueError, ["state['sums']['weight'][0]", "'inf'"]),
    ("hi-float-inf-loss", {"sums.loss.0": math.inf, "infinite": 1}, ValueError, ["state['sums']['loss'][0]", "string \"inf\"", "strict JSON"]),
    ("lo-nan", {"sums.loss.1": math.nan}, ValueError, ["state['sums']['loss'][1]", "nan"]),
    ("lo-too-big", {"sums.loss.1": 1e30}, ValueError, ["state['sums']['loss']", "compensated pair", "1e+30"]),
    ("inf-without-count", {"sums.loss.0": "inf"}, ValueError, ["inconsistent", "'infinite' is 0", "'inf'"]),
    ("count-without-inf", {"infinite": 1}, ValueError, ["inconsistent", "'infinite' is 1"]),
    ("empty-with-sums", {"count": 0, "positives": 0.0}, ValueError, ["inconsistent", "'count' is 0"]),
    ("label-over-weight", {"sums.label.0": 1e30}, ValueError, ["inconsistent", "label sum", "exceeds the weight sum"]),
    ("prediction-over-weight", {"sums.prediction.0": 1e30}, ValueError, ["inconsistent", "prediction sum"]),
]


@pytest.mark.parametrize("changes, error, fragments", [row[1:] for row in BAD], ids=[row[0] for row in BAD])
def test_every_bad_field_is_refused_clearly(changes, error, fragments):
    state = _state(**changes)
    with pytest.raises(error) as raised:
        logloss.Accumulator.from_dict(state)
    for fragment in fragments:
        assert fragment in str(raised.value), (fragment, str(raised.value))


@pytest.mark.parametrize("state", [None, [], "state", 3])
def test_a_state_that_is_not_a_dict(state):
    with pytest.raises(TypeError, match="`state` must be a dict as written by to_dict"):
        logloss.Accumulator.from_dict(state)
    with pytest.raises(TypeError, match="`state` must be a dict"):
        Statistics.from_dict(state)


def test_the_good_state_round_trips():
    state = _state()
    again = logloss.Accumulator.from_dict(copy.deepcopy(state))
    assert again.to_dict() == state


def _states():
    """States from every kind of update: infinite losses, extreme weights, logits, empty, merged."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", logloss.InfiniteLossWarning)
        empty = logloss.Accumulator()
        yield "empty", empty
        infinite = logloss.Accumulator()
        infinite.update([1.0, 0.0], [0.0, 0.5])
        yield "infinite", infinite
        tiny = logloss.Accumulator()
        tiny.update([1.0, 0.0], [0.5, 0.5], [5e-324, 5e-324])
        yield "subnormal weights", tiny
        huge = logloss.Accumulator()
        huge.update([1.0, 0.0], [0.5, 0.5], [1.7e308, 1.7e308])
        huge.update([1.0, 0.0], [0.5, 0.5], [1e-300, 1e-300])
        yield "huge weights", huge
        logits = logloss.Accumulator(from_logits=True, pos_weight=2.0, label_smoothing=0.1)
        logits.update(np.arange(70000) % 2 == 0, np.linspace(-1e300, 1e300, 70000))
        yield "logits", logits
        merged = logloss.Accumulator()
        merged.merge(infinite).merge(empty)
        yield "merged", merged


@pytest.mark.parametrize("name, acc", list(_states()), ids=[name for name, _ in _states()])
def test_every_state_is_strict_json_and_reads_back(name, acc):
    text = json.dumps(acc.to_dict(), allow_nan=False)
    again = logloss.Accumulator.from_dict(json.loads(text))
    assert again.to_dict() == acc.to_dict()
    if acc.count:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", logloss.InfiniteLossWarning)
            assert again.result() == acc.result()
