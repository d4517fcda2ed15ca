"""logloss.compare: each convention's value equals its function in logloss.conventions, streamed."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

import logloss
from logloss import conventions as C


def mistakes_data(n=50_000, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    y = (rng.uniform(size=n) < 0.3).astype(np.float64)
    p = np.where(y == 1, rng.beta(5, 2, n), rng.beta(2, 5, n))
    wrong = rng.choice(n, n // 50, replace=False)
    p[wrong] = np.where(y[wrong] == 1, 10.0 ** rng.uniform(-60, -3, wrong.size),
                        1 - 10.0 ** rng.uniform(-16, -3, wrong.size))
    sure = rng.choice(n, n // 50, replace=False)  # confident and right
    p[sure] = np.where(y[sure] == 1, 1 - 1e-9, 1e-12)
    return y, p.astype(dtype), rng.uniform(0.5, 2.0, n)


# Outside the band each convention is taken to equal the exact loss; float32 rows are within
# 6e-8 relative of it.
TOLERANCE = 1e-6
# tf.keras 2 adds 1e-7 inside every log: outside the band that lowers each row by
# log(1 + 1e-7/q) (1e-5 at q = 0.01), which compare does not add up (documented there).
LEGACY_TOLERANCE = 2e-4


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
def test_each_value_is_the_conventions_function(dtype, weighted):
    y, p, w = mistakes_data(dtype=dtype)
    weight = w if weighted else None
    table = logloss.compare(y, p, sample_weight=weight)
    rows = {r["convention"]: r for r in table.rows}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", logloss.InfiniteLossWarning)
        exact = float(logloss.bce(y, p.astype(np.float64), sample_weight=weight))
    assert rows["exact"]["value"] == pytest.approx(exact, rel=1e-14)
    for name in C.names():
        row = rows[name]
        if name == "torch_logits":
            assert row["value"] is None and row["note"] == "takes logits"
            continue
        expected = float(C.loss(name, y, p, sample_weight=weight))
        tolerance = LEGACY_TOLERANCE if name == "tf_keras_legacy" else TOLERANCE
        assert row["value"] == pytest.approx(expected, rel=tolerance), name
        if math.isfinite(row["exact"]):
            assert row["difference"] == pytest.approx(row["value"] - row["exact"], rel=1e-12,
                                                      abs=1e-15)
    assert rows["keras"]["rows_changed"] > 0 and rows["catboost"]["rows_changed"] == 0


def test_rows_changed_and_total_change_count_what_the_bound_did():
    y = np.array([1, 1, 0, 0, 1], dtype=np.int8)
    p = np.array([1e-50, 0.9, 0.2, 1 - 1e-12, 0.6])
    rows = {r["convention"]: r for r in logloss.compare(y, p).rows}
    exact = [-math.log(1e-50), -math.log(0.9), -math.log1p(-0.2), -math.log1p(-p[3]), -math.log(0.6)]
    keras = [-math.log(1e-7), -math.log(0.9), -math.log(0.8), -math.log(1e-7), -math.log(0.6)]
    assert rows["keras"]["rows_changed"] == 2
    assert rows["keras"]["total_change"] == pytest.approx(
        (keras[0] - exact[0]) + (keras[3] - exact[3]), rel=1e-6)
    assert rows["keras"]["value"] == pytest.approx(sum(keras) / 5, rel=1e-6)
    assert rows["exact"]["value"] == pytest.approx(sum(exact) / 5, rel=1e-13)
    assert rows["torch"]["rows_changed"] == 1  # only the 1e-50: 27.6 is below its 100 cap


def test_streaming_and_merge_give_the_same_table():
    y, p, w = mistakes_data()
    whole = C.compare_state().update(y, p, w)
    parts = [C.compare_state().update(y[a:a + 7_001], p[a:a + 7_001], w[a:a + 7_001])
             for a in range(0, len(y), 7_001)]
    merged = parts[0]
    for part in parts[1:]:
        merged.merge(part)
    restored = C.compare_state().load(json.loads(json.dumps(merged.to_dict())))
    for a, b, c in zip(whole.rows(), merged.rows(), restored.rows()):
        assert a["rows_changed"] == b["rows_changed"] == c["rows_changed"]
        if a["value"] is not None:
            assert b["value"] == pytest.approx(a["value"], rel=1e-14)
            assert c["value"] == b["value"]


def test_logits_list_the_conventions_that_have_a_logits_form():
    rng = np.random.default_rng(1)
    z = rng.normal(0, 4, 20_000)
    z[:50] = -800.0  # confident mistakes for positives
    y = (rng.uniform(size=z.size) < 0.5).astype(np.float64)
    y[:50] = 1
    rows = {r["convention"]: r for r in logloss.compare(y, z, from_logits=True).rows}
    for name in C.names():
        if C.CONVENTIONS[name].logits:
            assert rows[name]["value"] == pytest.approx(
                float(C.loss(name, y, z, from_logits=True)), rel=TOLERANCE), name
        else:
            assert rows[name]["value"] is None and rows[name]["note"] == "no logits form"
    assert rows["torch"]["value"] < rows["exact"]["value"]  # BCELoss(sigmoid(-800)) caps at 100


def test_soft_labels_leave_out_the_class_label_conventions():
    rng = np.random.default_rng(2)
    y = rng.uniform(size=30_000)
    p = rng.uniform(0.01, 0.99, size=y.size)
    rows = {r["convention"]: r for r in logloss.compare(y, p).rows}
    for name in ("sklearn", "spark", "h2o", "yardstick"):
        assert rows[name]["value"] is None and "soft" in rows[name]["note"]
    # LightGBM and CatBoost binarise soft labels: every row changes
    for name in ("lightgbm", "catboost"):
        assert rows[name]["value"] == pytest.approx(float(C.loss(name, y, p)), rel=TOLERANCE)
        assert rows[name]["rows_changed"] > y.size * 0.9


def test_an_infinite_exact_loss():
    y = np.array([1, 0, 1], dtype=np.int8)
    p = np.array([0.0, 0.1, 0.8])
    rows = {r["convention"]: r for r in logloss.compare(y, p).rows}
    assert rows["exact"]["value"] == math.inf
    assert rows["sklearn"]["value"] == pytest.approx(float(C.sklearn(y, p)), rel=1e-15)
    assert rows["sklearn"]["difference"] == -math.inf
    assert rows["sklearn"]["relative_difference"] == -1.0
    assert rows["sklearn"]["rows_changed"] == 1


def test_count_normalized_conventions_divide_by_the_count():
    y, p, _ = mistakes_data(n=20_000)
    w = np.full(y.size, 2.0)
    rows = {r["convention"]: r for r in logloss.compare(y, p, sample_weight=w).rows}
    # the weights double Keras's and PyTorch's means (sum(w*l)/n), not the others'
    assert rows["keras"]["exact"] == pytest.approx(2 * rows["exact"]["value"], rel=1e-14)
    assert rows["sklearn"]["exact"] == pytest.approx(rows["exact"]["value"], rel=1e-14)


def test_table_text_html_and_dict():
    y, p, _ = mistakes_data(n=20_000)
    table = logloss.compare(y, p)
    text = str(table)
    for name in C.names():
        assert name in text
    assert "takes logits" in text
    page = table.to_html()
    assert page.startswith('<table class="logloss-compare">') and page.count("<tr>") == 15
    assert "&lt;" in page  # "labels <= 0" escaped
    assert json.loads(json.dumps(table.to_dict(), allow_nan=True))["count"] == y.size


def test_bad_input_is_refused_as_in_binary_cross_entropy():
    with pytest.raises(ValueError, match=r"`y_pred` must contain probabilities .* 1.5 at index 1"):
        logloss.compare([1, 0], [0.5, 1.5])
    with pytest.raises(ValueError, match="same shape"):
        logloss.compare([1, 0], [0.5])


def test_a_soft_label_predicted_at_zero_is_not_taken_for_swapped_arguments():
    # The band rows alone (soft label, p = 0) look swapped; the batch is not.
    y = np.array([0.3, 1.0, 0.0, 1.0])
    p = np.array([0.0, 0.5, 0.4, 0.9])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", logloss.InfiniteLossWarning)
        rows = {r["convention"]: r for r in logloss.compare(y, p).rows}
        assert rows["exact"]["value"] == logloss.bce(y, p) == np.inf
    assert rows["keras"]["value"] == pytest.approx(float(C.keras(y, p)), rel=1e-12)
