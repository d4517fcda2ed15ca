"""Hostile tests of the diagnosis's sentences: every share or verdict a sentence states is checked
against a reference computed here from the rows (math.fsum), never by the code under test."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

import logloss


def _losses(y, p) -> list[float]:
    return [-math.log(q) if t else -math.log1p(-q) for t, q in zip(y.tolist(), p.tolist())]


def _true_of(phrase: str, share: float) -> bool:
    """Whether a percent phrase of the report states ``share`` truly: rounded to its digits,
    and never the whole or none of it for a part."""
    if phrase == "under 0.1%":
        return 0 < share < 0.001
    if phrase == "over 99.9%":
        return 0.999 < share < 1
    value = float(phrase.rstrip("%")) / 100
    digits = len(phrase.rstrip("%").partition(".")[2])
    if value == 1 and share != 1 or value == 0 and share != 0:
        return False
    return abs(value - share) <= 0.5 * 10.0 ** -(digits + 2) * (1 + 1e-9)


def _phrase(sentences: list[str], pattern: str) -> str:
    found = [m.group(1) for s in sentences for m in [re.search(pattern, s)] if m]
    assert len(found) == 1, (pattern, sentences)
    return found[0]


_PCT = r"(under 0\.1%|over 99\.9%|[\d.]+%)"


def _confident_case():
    # one confident mistake (p = 1e-300 for a positive) beside 999 near-perfect rows
    y = np.ones(1000, dtype=np.int64)
    p = np.full(1000, 1 - 1e-6)
    p[0] = 1e-300
    loss = _losses(y, p)
    return y, p, {}, rf"^{_PCT} of the loss comes from", loss[0] / math.fsum(loss)


def _normalized_entropy_case():
    # barely better than the base rate: 0.29% below it, not "0%"
    y = np.array([0, 1] * 50)
    p = np.where(y == 1, 0.501, 0.499)
    entropy = math.log(2)
    return y, p, {}, rf", {_PCT} below the loss", 1 - math.fsum(_losses(y, p)) / 100 / entropy


def _calibration_case():
    # predictions 99.95% too low, not "100%" (that would be predictions of 0)
    y = np.array([1, 0, 1, 0])
    p = np.array([0.001, 0.0, 0.0, 0.0])
    p[1:] = 1e-12
    ratio = math.fsum(p.tolist()) / 2
    return y, p, {}, rf"predictions are {_PCT} too low", 1 - ratio


def _segment_rows_case():
    # the top segment holds 1000 of 1001 rows: 99.9%, not "100%" of the rows
    y = np.array([1, 0] * 500 + [1])
    p = np.where(y == 1, 0.4, 0.6)
    p[-1] = 0.999
    by = np.array(["a"] * 1000 + ["b"])
    return y, p, {"by": by}, rf"being {_PCT} of\s+the rows", 1000 / 1001


def _segment_loss_case():
    y = np.array([1, 0] * 500 + [1])
    p = np.where(y == 1, 0.4, 0.6)
    p[-1] = 0.999
    by = np.array(["a"] * 1000 + ["b"])
    loss = _losses(y, p)
    return y, p, {"by": by}, rf"segment = a carry {_PCT} of the loss", math.fsum(
        loss[:1000]) / math.fsum(loss)


@pytest.mark.parametrize("case", [_confident_case, _normalized_entropy_case, _calibration_case,
                                  _segment_rows_case, _segment_loss_case])
def test_a_stated_share_is_true_of_the_rows(case):
    y, p, kwargs, pattern, share = case()
    sentences = logloss.diagnose(y, p, **kwargs).conclusions()
    phrase = _phrase(sentences, pattern)
    assert _true_of(phrase, share), (phrase, share, sentences)


def _pair_loss(y, p) -> float:
    return math.fsum(_losses(y, p)) / len(y)


@pytest.mark.parametrize("change", [None, 0, 3])
def test_the_pair_sentence_names_the_better_model_or_none(change):
    y = np.array([0, 1, 0, 1, 1])
    a = np.array([0.2, 0.7, 0.4, 0.9, 0.6])
    b = a.copy()
    if change is not None:  # b differs from a on one row, better there
        b[change] = 0.1 if y[change] == 0 else 0.95
    difference = _pair_loss(y, b) - _pair_loss(y, a)
    [sentence] = [s for s in logloss.diagnose(y, {"a": a, "b": b}).conclusions()
                  if s.startswith(("a ", "b "))]
    if difference == 0:
        # identical models: neither beats the other
        assert "beats" not in sentence and "lower by" not in sentence, sentence
        assert "same mean loss" in sentence, sentence
    else:
        assert sentence.startswith("b beats a on 20% of rows"), sentence
        stated = float(re.search(r"lower by ([\d.e-]+)", sentence).group(1))
        assert stated == pytest.approx(-difference, rel=5e-3), (sentence, difference)


@pytest.mark.parametrize("order", [[-0.0, 0.0], [0.0, -0.0]])
@pytest.mark.parametrize("kind", [np.float64, object])
def test_the_zeros_segment_is_named_alike_whichever_zero_comes_first(order, kind):
    # -0.0 and 0.0 are one segment; its name followed whichever row came first
    y = np.array([1, 0, 1, 0])
    p = np.array([0.3, 0.4, 0.8, 0.1])
    by = np.array(order * 2, dtype=kind)
    d = logloss.diagnose(y, p, by={"g": by})
    [row] = d.to_dict()["segments"]["rows"]
    assert row["count"] == 4 and math.copysign(1, row["segment"]["g"]) == 1, row
    assert any("g = 0.0 carry" in s for s in d.conclusions()), d.conclusions()


@pytest.mark.parametrize("b_row2", [0.8, 0.7])
def test_the_pair_sentence_does_not_call_a_finite_rows_mean_the_mean_loss(b_row2):
    # both models predict 0 for the same positive: both log losses are infinite, and the mean
    # difference is over the other rows only
    y = np.array([1, 0, 1, 0, 1, 0])
    a = np.array([0.0, 0.2, 0.8, 0.3, 0.6, 0.1])
    b = a.copy()
    b[2] = b_row2
    with np.errstate(divide="ignore"):
        d = logloss.diagnose(y, {"a": a, "b": b})
    assert all(math.isinf(m["log_loss"]) for m in d.models.values())
    [sentence] = [s for s in d.conclusions() if s.startswith(("a ", "b "))]
    finite = math.fsum(_losses(y[1:], b[1:])) / 5 - math.fsum(_losses(y[1:], a[1:])) / 5
    assert "where both losses are finite (both are infinite on 1 row)" in sentence, sentence
    if finite == 0:
        assert "same mean loss" in sentence, sentence
    else:
        stated = float(re.search(r"is lower by ([\d.e-]+)", sentence).group(1))
        assert stated == pytest.approx(abs(finite), rel=5e-3), (sentence, finite)


@pytest.mark.parametrize("form", [np.asarray, list, lambda v: np.asarray(v, dtype=np.float32)])
@pytest.mark.parametrize("streamed", [False, True])
def test_a_confident_mistake_of_weight_zero_is_not_a_row_the_loss_comes_from(form, streamed):
    # two of the three confident mistakes have weight 0: the loss comes from one row, not "(3)"
    y = [1, 0, 1, 0, 1, 1, 1]
    p = [0.9, 0.1, 0.9, 0.1, 1e-4, 1e-9, 1e-9]
    w = [1.0, 1, 1, 1, 1, 0, 0]
    live = [t == 1 and q < 0.01 and v > 0 for t, q, v in zip(y, p, w)]
    if streamed:
        state = logloss.DiagnosticsState(resolution=16)
        state.update(np.asarray(y), form(p), form(w))
        d = logloss.Diagnosis.from_state(state)
    else:
        d = logloss.diagnose(np.asarray(y), form(p), sample_weight=form(w))
    confident = d.concentration["confident_mistakes"]
    assert confident["rows"] == sum(live), confident
    keras = {c["framework"]: c["rows_above"] for c in d.concentration["caps"]}["keras"]
    assert keras == 0  # -log(1e-9) = 20.7 is past Keras's cap only on the rows of weight 0
    sentence = _phrase(d.conclusions(), r"(.* all confident mistakes.*)")
    assert f"of the weight ({sum(live)} row)" in sentence, sentence


@pytest.mark.parametrize("streamed", [False, True])
def test_with_weights_a_share_of_rows_is_said_to_be_of_the_weight(streamed):
    # nine rows of weight 1 and one heavy confident mistake (weight 30): the mistake is 10% of
    # the rows but 30 / 39 = 77% of the weight; a sentence saying "of the rows" beside 77% is false
    y = np.array([1, 0, 1, 0, 1, 0, 1, 0, 1, 1])
    p = np.array([0.8, 0.3, 0.7, 0.2, 0.9, 0.4, 0.6, 0.1, 0.75, 0.001])
    w = np.array([1.0] * 9 + [30.0])
    total_weight = math.fsum(w.tolist())
    losses = _losses(y, p)
    if streamed:
        state = logloss.DiagnosticsState(resolution=64)
        state.update(y, p, w)
        d = logloss.Diagnosis.from_state(state)
    else:
        d = logloss.diagnose(y, p, sample_weight=w)
    sentences = d.conclusions()
    assert not any("of the rows" in s or "% positives" in s for s in sentences), sentences
    mistake = _phrase(sentences, rf"from rows with {_PCT} of the weight \(1 row\), all confident")
    assert _true_of(mistake, 30.0 / total_weight), mistake
    share = _phrase(sentences, rf"Positives carry {_PCT} of the weight")
    positive_weight = math.fsum(v for v, t in zip(w.tolist(), y.tolist()) if t)
    assert _true_of(share, positive_weight / total_weight), share
    base = _phrase(sentences, rf"with {_PCT} of the weight on positives")
    assert _true_of(base, positive_weight / total_weight), base
    carried = _phrase(sentences, rf"and {_PCT} of the loss \(mean loss")
    positive_loss = math.fsum(v * l for v, l, t in zip(w.tolist(), losses, y.tolist()) if t)
    all_loss = math.fsum(v * l for v, l in zip(w.tolist(), losses))
    assert _true_of(carried, positive_loss / all_loss), carried


def test_without_weights_the_shares_are_of_rows_and_one_row_is_a_row():
    y, p = np.array([1]), np.array([0.3])
    (headline,) = [s for s in logloss.diagnose(y, p).conclusions() if "log loss is" in s]
    assert " over 1 row with " in headline, headline
    y = np.array([1, 0, 1, 0])
    p = np.array([0.9, 0.2, 0.6, 0.4])
    sentences = logloss.diagnose(y, p, sample_weight=np.ones(4)).conclusions()
    share = _phrase(sentences, rf"Positives are {_PCT} of the rows and carry")
    assert _true_of(share, 0.5), share
    assert _phrase(sentences, rf"over 4 rows with {_PCT} positives") == "50%"


@pytest.mark.parametrize("p_a, p_b", [
    ([0.2, 0.7, 0.6, 0.3], [0.2, 0.0, 0.6, 0.3]),      # b alone: infinite on one positive
    ([0.2, 0.7, 0.0, 0.3], [1.0, 0.0, 0.6, 0.3]),      # a on one row, b on two others
    ([1.0, 0.7, 0.6, 0.3], [0.2, 0.7, 0.6, 0.3]),      # a alone
])
def test_the_models_with_infinite_rows_are_named_with_their_counts(p_a, p_b):
    y = np.array([0, 1, 1, 0])
    a, b = np.array(p_a), np.array(p_b)
    # a loss is infinite where the true class was given probability 0
    infinite_a = sum((q if t else 1 - q) == 0 for t, q in zip(y.tolist(), p_a))
    infinite_b = sum((q if t else 1 - q) == 0 for t, q in zip(y.tolist(), p_b))
    sentences = logloss.diagnose(y, {"a": a, "b": b}).conclusions()
    sentence = _phrase(sentences, r"^((?:a|b) has infinite loss.*)")
    assert " 0 rows" not in sentence, sentence
    for model, other, count in (("a", "b", infinite_a), ("b", "a", infinite_b)):
        said = f"{model} has infinite loss on {count} row{'s' if count != 1 else ''} where {other}"
        assert (said in sentence) == (count > 0), (said, sentence)
