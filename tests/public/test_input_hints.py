"""Mistakes a scikit-learn user makes, answered with what to do instead."""

import numpy as np
import pytest

import logloss


def test_predict_proba_columns_against_labels_suggest_the_positive_column():
    proba = np.array([[0.2, 0.8], [0.6, 0.4], [0.1, 0.9]])
    with pytest.raises(ValueError, match=r"y_pred\[\.\.\., 1\].*categorical_cross_entropy"):
        logloss.bce([1, 0, 1], proba)
    assert logloss.bce([1, 0, 1], proba[:, 1]) == pytest.approx(
        -(np.log(0.8) + np.log(0.6) + np.log(0.9)) / 3, rel=1e-15)
    # an (n, 1) column keeps the reshape advice: there is nothing to choose
    with pytest.raises(ValueError, match="Reshape one of them explicitly"):
        logloss.bce([1, 0, 1], proba[:, :1])


@pytest.mark.parametrize("n", [3, 20_000])  # the reference path, and the fast path's fallback
def test_swapped_arguments_are_refused(n):
    rng = np.random.default_rng(0)
    probabilities = rng.uniform(0.05, 0.95, n)
    labels = (rng.uniform(size=n) < 0.5).astype(np.int64)
    with pytest.raises(ValueError, match=r"Were the arguments swapped\? The order is "
                                         r"binary_cross_entropy\(y_true, y_pred\)"):
        logloss.bce(probabilities, labels)
    with pytest.raises(ValueError, match="swapped"):
        logloss.Accumulator().update(probabilities, labels)
    # the right order, and soft labels against ordinary probabilities, are fine
    assert np.isfinite(logloss.bce(labels, probabilities))
    assert np.isfinite(logloss.bce(probabilities, np.clip(probabilities[::-1], 0.1, 0.9)))
