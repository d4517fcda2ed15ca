"""The introductory articles' examples, with expected values computed independently here."""

from __future__ import annotations

import math

import numpy as np
import pytest

import logloss
from logloss.report.explain import ARTICLE_X, ARTICLE_Y, article_logits


def test_bird_predicted_at_99_percent_costs_about_001():
    loss = logloss.bce([1], [0.99])
    assert float(loss) == pytest.approx(-math.log(0.99), rel=1e-15)
    assert f"{float(loss):.5f}" == "0.01005"


def test_bird_predicted_at_5_percent_costs_about_3():
    loss = logloss.bce([1], [0.05])
    assert float(loss) == pytest.approx(-math.log(0.05), rel=1e-15)
    assert f"{float(loss):.4f}" == "2.9957"


def test_the_articles_numpy_function_agrees_where_it_is_accurate():
    # The article's function adds 1e-15 inside the log; with moderate p that shifts ~1e-15.
    def article(y_hat, y):
        epsilon = 1e-15
        ones = np.ones_like(y)
        return -np.mean(y * np.log(y_hat + epsilon) + (ones - y) * np.log(ones - y_hat + epsilon))

    z = article_logits(ARTICLE_X)
    p = 1 / (1 + np.exp(-z))
    assert float(logloss.bce(ARTICLE_Y, p)) == pytest.approx(article(p, ARTICLE_Y), rel=1e-12)
    direct = np.mean([-math.log(pi) if yi else -math.log(1 - pi) for yi, pi in zip(ARTICLE_Y, p)])
    assert float(logloss.bce(ARTICLE_Y, z, from_logits=True)) == pytest.approx(direct, rel=1e-14)


def test_good_classifier_scores_lower_than_bad():
    good = [0.9, 0.8, 0.2, 0.1]
    bad = [0.3, 0.4, 0.7, 0.6]
    expected_good = -(math.log(0.9) + math.log(0.8) + math.log(0.8) + math.log(0.9)) / 4
    assert float(logloss.bce(ARTICLE_Y, good)) == pytest.approx(expected_good, rel=1e-15)
    assert logloss.bce(ARTICLE_Y, good) < logloss.bce(ARTICLE_Y, bad)
