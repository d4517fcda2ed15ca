"""logloss.sklearn against scikit-learn itself: same inputs, exact values, usable scorers."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn import metrics
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.tree import DecisionTreeClassifier

import logloss
from logloss import sklearn as lsk


def fsum_loss(picked, weight=None):
    weight = np.ones(len(picked)) if weight is None else weight
    return math.fsum(-w * math.log(q) for w, q in zip(weight, picked)) / math.fsum(weight)


def test_binary_inputs_as_scikit_learn_takes_them():
    rng = np.random.default_rng(0)
    y = np.where(rng.uniform(size=200) < 0.4, "spam", "ham")
    p = rng.uniform(0.01, 0.99, size=200)  # P(spam): "spam" > "ham", the positive class
    two = np.column_stack([1 - p, p])
    w = rng.uniform(0.5, 2, size=200)
    for proba in (p, two, p[:, None]):
        assert lsk.log_loss(y, proba) == pytest.approx(metrics.log_loss(y, proba), rel=1e-14)
        assert lsk.log_loss(y, proba, sample_weight=w) == pytest.approx(
            metrics.log_loss(y, proba, sample_weight=w), rel=1e-14)
        assert lsk.log_loss(y, proba, normalize=False) == pytest.approx(
            metrics.log_loss(y, proba, normalize=False), rel=1e-14)
    # pos_label: the same probabilities read as P(ham)
    assert lsk.log_loss(y, 1 - p, pos_label="ham") == pytest.approx(metrics.log_loss(y, p),
                                                                     rel=1e-12)


def test_multiclass_and_labels():
    rng = np.random.default_rng(1)
    proba = rng.dirichlet([1, 1, 1], size=100)
    y = rng.choice(["a", "b", "c"], size=100)
    assert lsk.log_loss(y, proba) == pytest.approx(metrics.log_loss(y, proba), rel=1e-14)
    y2 = np.where(y == "c", "a", y)  # "c" never occurs: labels= says it exists
    assert lsk.log_loss(y2, proba, labels=["a", "b", "c"]) == pytest.approx(
        metrics.log_loss(y2, proba, labels=["a", "b", "c"]), rel=1e-14)
    # the documented example of sklearn.metrics.log_loss
    example = (["spam", "ham", "ham", "spam"], [[.1, .9], [.9, .1], [.8, .2], [.35, .65]])
    assert lsk.log_loss(*example) == pytest.approx(metrics.log_loss(*example), rel=1e-15)


def test_confident_mistakes_are_exact_where_scikit_learn_clips():
    y = np.array([1, 0, 1, 0])
    p = np.array([1e-30, 1 - 1e-16, 0.8, 0.3])
    picked = [1e-30, 1 - float(p[1]), 0.8, 0.7]
    assert lsk.log_loss(y, p) == pytest.approx(fsum_loss(picked), rel=1e-15)
    assert metrics.log_loss(y, p) < lsk.log_loss(y, p) * 0.7  # clipped at eps = 2.2e-16
    with pytest.warns(logloss.InfiniteLossWarning):
        assert lsk.log_loss([1, 0], [0.0, 0.5]) == math.inf
    assert lsk.log_loss([1, 0], [0.0, 0.5], clip=1e-15) == pytest.approx(
        (-math.log(1e-15) - math.log(0.5)) / 2, rel=1e-15)


def test_bad_input_names_the_problem():
    with pytest.raises(ValueError, match=r"only one label \(\[1\]\).*labels=\[0, 1\]"):
        lsk.log_loss([1, 1], [0.5, 0.6])
    with pytest.raises(ValueError, match=r"has 2 columns but there are 3 classes"):
        lsk.log_loss([0, 1, 2], [[0.5, 0.5]] * 3)
    with pytest.raises(ValueError, match=r"Invalid value for argument `pos_label`.*Received: pos_label=2"):
        lsk.log_loss([0, 1], [0.5, 0.6], pos_label=2)
    with pytest.raises(ValueError, match=r"labels not in `labels`: \[2\]"):
        lsk.log_loss([0, 2], [0.5, 0.6], labels=[0, 1])
    with pytest.raises(ValueError, match=r"`y_pred` must contain probabilities .* 1.5 at index 1"):
        lsk.log_loss([0, 1], [0.5, 1.5])


def test_scorer_equals_scikit_learns_on_a_probabilistic_model():
    X, y = make_classification(n_samples=300, random_state=0)
    model = LogisticRegression(max_iter=500)
    ours = cross_val_score(model, X, y, cv=3, scoring=lsk.neg_log_loss)
    theirs = cross_val_score(model, X, y, cv=3, scoring="neg_log_loss")
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    assert np.all(ours < 0)


def test_a_model_with_zero_probabilities_scores_minus_infinity_and_ranks_last():
    X, y = make_classification(n_samples=300, flip_y=0.2, random_state=0)
    tree = DecisionTreeClassifier(random_state=0)
    with pytest.warns(logloss.InfiniteLossWarning):
        scores = cross_val_score(tree, X, y, cv=3, scoring=lsk.neg_log_loss)
    assert np.all(scores == -np.inf)
    bounded = cross_val_score(tree, X, y, cv=3, scoring=lsk.scorer(clip=1e-15))
    assert np.all(np.isfinite(bounded)) and np.all(bounded < -1)
    grid = GridSearchCV(tree, {"max_depth": [2, None]}, cv=3, scoring=lsk.neg_log_loss)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", logloss.InfiniteLossWarning)
        warnings.filterwarnings("ignore", "One or more of the test scores are non-finite",
                                UserWarning)
        with np.errstate(invalid="ignore"):  # GridSearchCV's std of -inf scores: inf - inf
            grid.fit(X, y)
    assert grid.best_params_ == {"max_depth": 2}  # the unbounded tree predicts 0s and 1s
    assert grid.cv_results_["mean_test_score"][1] == -np.inf
