"""Hostile checks of the figures a streamed DiagnosticsState gives and the bounds they state.

Every reference here is computed in the test from the rows: the exact log loss with math.fsum,
the isotonic recalibration with scikit-learn's IsotonicRegression, the ECE from its definition
(equal-mass bins over the sorted unique predictions, a straddling prediction split in
proportion) and the concentration shares by sorting the losses. A streamed figure must lie
within its stated bound of the reference, and a sentence must not state one number for a figure
the state only knows to within its bound.
"""

from __future__ import annotations

import json
import math
import re
import warnings

import numpy as np
import pytest

import logloss
from logloss import DiagnosticsState, Diagnosis

IsotonicRegression = pytest.importorskip("sklearn.isotonic").IsotonicRegression

SHARES = (0.001, 0.01, 0.1)


def _sigmoid(z):
    return 1 / (1 + np.exp(-np.asarray(z, dtype=np.float64)))


def _losses(y, p):
    """-log of the probability given to what happened, per row (exact floats of libm)."""
    with np.errstate(divide="ignore"):
        return np.where(y == 1, -np.log(p), -np.log1p(-p))


def _reference(y, p, w, bins):
    """log loss, recalibrated log loss, uncertainty, ECE and concentration shares, exactly."""
    y = np.asarray(y, dtype=np.int64)
    w = np.ones(len(y)) if w is None else np.asarray(w, dtype=np.float64)
    keep = w > 0
    y, p, w = y[keep], p[keep], w[keep]
    total_w = math.fsum(w.tolist())
    loss = _losses(y, p)
    log_loss = math.fsum((w * loss).tolist()) / total_w
    rate = math.fsum(w[y == 1].tolist()) / total_w
    uncertainty = -(rate * math.log(rate) if rate > 0 else 0.0) - (
        (1 - rate) * math.log1p(-rate) if rate < 1 else 0.0)
    fit = IsotonicRegression(increasing=True, out_of_bounds="clip", y_min=0.0, y_max=1.0)
    f = fit.fit(p, y.astype(np.float64), sample_weight=w).predict(p)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(y == 1, np.where(f > 0, -np.log(f), math.inf),
                         np.where(f < 1, -np.log1p(-f), math.inf))
    recalibrated = math.fsum((w * terms).tolist()) / total_w
    # ECE: groups of equal predictions, bins by cumulative weight, a group split in proportion
    values, inverse = np.unique(p, return_inverse=True)
    gw = np.bincount(inverse, w)
    gp = np.bincount(inverse, w * p)
    gy = np.bincount(inverse, w * y)
    ends = np.cumsum(gw)
    starts = ends - gw
    ece = 0.0
    for b in range(bins):
        lo, hi = total_w * b / bins, total_w * (b + 1) / bins
        frac = np.clip((np.minimum(ends, hi) - np.maximum(starts, lo)) / gw, 0.0, 1.0)
        ece += abs(math.fsum((gp * frac).tolist()) - math.fsum((gy * frac).tolist()))
    ece /= total_w
    # concentration: worst first, the row at the boundary counted in part
    order = np.argsort(-loss, kind="stable")
    lw, ll = w[order], loss[order]
    cum = np.cumsum(lw)
    total_loss = math.fsum((w * loss).tolist())
    shares = []
    for q in SHARES:
        frac = np.clip((q * total_w - (cum - lw)) / lw, 0.0, 1.0)
        shares.append(math.fsum((lw * ll * frac).tolist()) / total_loss)
    return {"log_loss": log_loss, "recalibrated": recalibrated, "uncertainty": uncertainty,
            "ece": ece, "shares": shares}


def _streamed(y, x, w, *, resolution, bins=10, from_logits=False, pieces=1, seed=0):
    """A state built in pieces, merged in a shuffled order, through a JSON round trip."""
    rng = np.random.default_rng(seed)
    n = len(y)
    cuts = sorted(rng.choice(np.arange(1, n), pieces - 1, replace=False).tolist())
    states = []
    for a, b in zip([0] + cuts, cuts + [n]):
        s = DiagnosticsState(resolution=resolution, bins=bins, from_logits=from_logits)
        s.update(y[a:b], x[a:b], None if w is None else w[a:b])
        states.append(s)
    order = rng.permutation(len(states))
    state = states[order[0]]
    for i in order[1:]:
        state = state.merge(states[i])
    state = DiagnosticsState.from_dict(json.loads(json.dumps(state.to_dict())))
    return Diagnosis.from_state(state)


def _case(name, seed=0):
    rng = np.random.default_rng(seed)
    n = 20_000
    if name == "one cell, classes separated inside it":
        y = (rng.random(n) < 0.5).astype(np.int8)
        p = _sigmoid(np.where(y == 1, rng.uniform(1.3, 2.4, n), rng.uniform(0.1, 1.2, n)))
        return y, p, None
    if name == "one cell, classes reversed inside it":
        y = (rng.random(n) < 0.3).astype(np.int8)
        p = _sigmoid(np.where(y == 1, rng.uniform(0.1, 0.6, n), rng.uniform(0.7, 2.4, n)))
        return y, p, None
    if name == "cell edges and their neighbouring floats":
        k = rng.integers(0, 17, n)
        edge = _sigmoid(-20 + 40 * k / 16)
        p = np.where(rng.random(n) < 0.5, np.nextafter(edge, 0), edge)
        p = np.where(rng.random(n) < 0.3, np.nextafter(edge, 1), p)
        y = (rng.random(n) < _sigmoid(4 - 40 * k / 16 + 16)).astype(np.int8)
        return y, p, None
    if name == "bimodal, pooled across many cells":
        z = np.where(rng.random(n) < 0.5, rng.normal(-3, 1, n), rng.normal(3, 1, n))
        return (rng.random(n) < _sigmoid(-0.5 * z)).astype(np.int8), _sigmoid(z), None
    if name == "tails: 1e-12 and 1 - 1e-12 beside the middle":
        y = (rng.random(n) < 0.5).astype(np.int8)
        p = rng.choice([1e-12, 1 - 1e-12, 0.3, 0.7], n)
        return y, p, None
    if name == "one row of weight 1e12 beside 10^4 of weight 1":
        z = rng.normal(0, 2, n // 2)
        y = (rng.random(n // 2) < _sigmoid(z)).astype(np.int8)
        w = np.ones(n // 2)
        w[int(np.argmax(z))] = 1e12
        y[int(np.argmax(z))] = 0  # the heavy row is the worst mistake
        return y, _sigmoid(z), w
    if name == "weights near 1e-300":
        z = rng.normal(0, 2, n)
        y = (rng.random(n) < _sigmoid(z)).astype(np.int8)
        return y, _sigmoid(z), rng.uniform(0.5, 1.0, n) * 1e-300
    raise KeyError(name)


CASES = ["one cell, classes separated inside it", "one cell, classes reversed inside it",
         "cell edges and their neighbouring floats", "bimodal, pooled across many cells",
         "tails: 1e-12 and 1 - 1e-12 beside the middle",
         "one row of weight 1e12 beside 10^4 of weight 1", "weights near 1e-300"]


@pytest.mark.parametrize("resolution", [16, 256])
@pytest.mark.parametrize("name", CASES)
def test_streamed_figures_lie_within_their_bounds_of_the_exact_ones(name, resolution):
    y, p, w = _case(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = _reference(y, p, w, bins=10)
    m = _streamed(y, p, w, resolution=resolution, pieces=4).figures["models"]
    m = next(iter(m.values()))
    d = m["decomposition"]
    tol = 1e-10
    assert m["log_loss"] == pytest.approx(ref["log_loss"], rel=1e-13)
    for value in (d["bound"], m["ece_bound"]):
        assert math.isfinite(value) and value >= 0
    exact_mis = ref["log_loss"] - ref["recalibrated"]
    exact_dis = ref["uncertainty"] - ref["recalibrated"]
    assert d["miscalibration"] - tol <= exact_mis <= d["miscalibration"] + d["bound"] + tol
    assert d["discrimination"] - tol <= exact_dis <= d["discrimination"] + d["bound"] + tol
    assert abs(m["ece"] - ref["ece"]) <= m["ece_bound"] + tol
    for share, exact in zip(m["concentration"]["worst"], ref["shares"]):
        assert math.isfinite(share["bound"]) and share["bound"] >= 0
        low, high = share["share_of_loss"], share["share_of_loss"] + share["bound"]
        assert low - tol <= exact <= high + tol


@pytest.mark.parametrize("name", CASES)
def test_streamed_miscalibration_is_never_below_what_any_recalibration_removes(name):
    # The identity map is isotonic, so recalibrating never adds loss: the exact miscalibration
    # is at least 0, and a streamed one below 0 (a histogram fit worse than the predictions
    # themselves, as cells 2.5 logits wide make it) is a figure no data can have.
    y, p, w = _case(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = _reference(y, p, w, bins=10)
    d = _streamed(y, p, w, resolution=16).decomposition
    exact = ref["log_loss"] - ref["recalibrated"]
    assert exact >= -1e-12
    assert 0.0 <= d["miscalibration"] <= exact + 1e-10, (d, exact)
    assert d["discrimination"] + d["bound"] >= ref["uncertainty"] - ref["recalibrated"] - 1e-10


@pytest.mark.parametrize("name", CASES[:2])
def test_logits_and_several_models_stream_within_their_bounds(name):
    y, p, w = _case(name)
    z = np.log(p) - np.log1p(-p)
    ref = _reference(y, _sigmoid(z), w, bins=7)
    state = DiagnosticsState(resolution=16, bins=7, from_logits=True)
    half = len(y) // 2
    for a, b in ((half, len(y)), (0, half)):
        state.update(y[a:b], {"a": z[a:b], "b": -z[a:b]})
    m = Diagnosis.from_state(state).models["a"]
    d = m["decomposition"]
    assert d["discrimination"] - 1e-10 <= ref["uncertainty"] - ref["recalibrated"]
    assert ref["uncertainty"] - ref["recalibrated"] <= d["discrimination"] + d["bound"] + 1e-10
    assert abs(m["ece"] - ref["ece"]) <= m["ece_bound"] + 1e-10


def _percents(sentence: str) -> list[float]:
    return [float(v) for v in re.findall(r"(\d+(?:\.\d+)?)%", sentence)]


@pytest.mark.parametrize("name", CASES[:2] + ["bimodal, pooled across many cells"])
def test_a_sentence_states_no_single_number_for_a_bounded_discrimination(name):
    # From the state the discrimination is only known within [value, value + bound]; a sentence
    # giving one percent of the uncertainty must give the exact one (to its rounding), or else a
    # range that holds it.
    y, p, w = _case(name)
    ref = _reference(y, p, w, bins=10)
    exact = 100 * (ref["uncertainty"] - ref["recalibrated"]) / ref["uncertainty"]
    state = DiagnosticsState(resolution=16)
    state.update(y, p, w)
    [sentence] = [s for s in Diagnosis.from_state(state).conclusions()
                  if "beyond the base rate" in s]
    numbers = _percents(sentence.split("(discrimination")[1] if "between" not in sentence
                        else sentence)
    low, high = min(numbers), max(numbers)
    assert low - 0.5 <= exact <= high + 0.5, (sentence, exact)


@pytest.mark.parametrize("resolution", [16, 65536])
def test_a_concentration_sentence_holds_the_exact_share(resolution):
    # The worst 1% at the top of one loss-histogram bin (50 a decade: [10^0.18, 10^0.2)), 9%
    # at its bottom, the rest far below: the histogram's mean share of that bin is as far from
    # the exact share as it can be (4.7%), enough to change the percent a sentence prints.
    n = 10_000
    y = np.ones(n, dtype=np.int8)
    top, bottom = 10 ** (0.2 - 1e-9), 10 ** (0.18 + 1e-9)
    loss = np.where(np.arange(n) < n // 100, top, np.where(np.arange(n) < n // 10, bottom, 0.15))
    p = np.exp(-loss)
    ref = _reference(y, p, None, bins=10)
    state = DiagnosticsState(resolution=resolution)
    state.update(y, p)
    [sentence] = [s for s in Diagnosis.from_state(state).conclusions() if "worst 1%" in s]
    exact = ref["shares"][1] * 100
    # "The worst 1% of rows carry A% of the loss, ..." or "... carry between A% and B% ..."
    stated = _percents(sentence.split(", the worst 10%")[0])[1:]
    assert min(stated) - 0.05 <= exact <= max(stated) + 0.05, (sentence, exact)


@pytest.mark.parametrize("engine", ["auto", "numpy"])
def test_a_loss_just_above_a_bin_edge_stays_within_the_concentration_bound(engine):
    # The loss histogram's bins (50 a decade) are found from a log: a loss a few ulps above an
    # edge can land in the bin below it, whose upper edge then is not the most its rows lose.
    # The worst row alone (0.1% of 1000) sits just above an edge; 99 rows at the bottom of the
    # bin below make the bin's mean far from that row's loss; the rest lose almost nothing.
    mpmath = pytest.importorskip("mpmath")
    checked = 0
    with logloss.config_context(engine=engine):
        for k in range(800, 808):
            edge, below = (mpmath.power(10, mpmath.mpf(j) / 50 - 16) for j in (k, k - 1))
            bottom = math.exp(-float(below) * (1 + 1e-9))
            p_top = float(mpmath.exp(-edge))
            for _ in range(24):  # losses from the edge to a few ulps above it
                p_top = math.nextafter(p_top, 0.0)
                if -mpmath.log(p_top) <= edge:
                    continue
                p = np.concatenate([[p_top], np.full(99, bottom), np.full(900, 1 - 1e-9)])
                state = DiagnosticsState(resolution=16, k=0)
                state.update(np.ones(len(p), dtype=np.int8), p)
                share = Diagnosis.from_state(state).concentration["worst"][0]
                losses = [-mpmath.log(v) for v in p.tolist()]
                exact = float(losses[0] / mpmath.fsum(losses))
                tol = 1e-15 * exact  # the rounding of a loss and a sum; the edge's slip is 3.6e-15
                assert share["share_of_loss"] - tol <= exact, (k, p_top)
                assert exact <= share["share_of_loss"] + share["bound"] + tol, (k, p_top, exact,
                                                                                 share)
                checked += 1
    assert checked > 50


def test_the_html_says_which_way_the_streamed_recalibrated_loss_may_be_off():
    # The histogram fit's recalibrated loss is an upper end: the exact one is up to `bound`
    # below it, while miscalibration and discrimination are up to `bound` above theirs.
    pytest.importorskip("jinja2")
    pytest.importorskip("matplotlib")
    y, p, w = _case("one cell, classes reversed inside it")
    ref = _reference(y, p, w, bins=10)
    state = DiagnosticsState(resolution=16)
    state.update(y, p, w)
    diagnosis = Diagnosis.from_state(state)
    d = diagnosis.decomposition
    assert d["recalibrated_log_loss"] - d["bound"] - 1e-10 <= ref["recalibrated"]
    assert ref["recalibrated"] <= d["recalibrated_log_loss"] + 1e-10
    html = diagnosis.to_html()
    row = html[html.index("<th>after recalibration</th>"):]
    row = row[:row.index("</table>")]
    stated = re.search(r"after recalibration at most ([0-9.e+-]+) below", row)
    assert stated, row
    assert float(stated.group(1)) == pytest.approx(d["bound"], rel=1e-3)


@pytest.mark.parametrize("rows, weight", [(10, 1.7e307), (1000, 1.7e305), (1, 1.7e308),
                                          (2, 8e307)])
@pytest.mark.parametrize("resolution, bins", [(16, 10), (16, 1000), (256, 7)])
def test_the_ece_bound_stays_finite_with_weights_near_the_float64_limit(rows, weight, resolution,
                                                                         bins):
    # The ECE is a ratio: a common weight changes neither it nor how far it may be off. Its
    # bound summed the cut pieces' weights before dividing by the total, and a total near
    # 1.8e308 made that sum inf beside an ECE of 0.14.
    rng = np.random.default_rng(rows)
    p = rng.uniform(0.2, 0.8, rows)
    y = (rng.random(rows) < p).astype(np.int8)
    ref = _reference(y, p, None, bins)["ece"]
    state = DiagnosticsState(resolution=resolution, bins=bins)
    state.update(y, p, np.full(rows, weight))
    m = Diagnosis.from_state(state)
    assert math.isfinite(m.ece_bound) and m.ece_bound >= 0, m.ece_bound
    assert abs(m.ece - ref) <= m.ece_bound + 1e-10
    unweighted = DiagnosticsState(resolution=resolution, bins=bins)
    unweighted.update(y, p)
    assert m.ece_bound == pytest.approx(Diagnosis.from_state(unweighted).ece_bound, rel=1e-9)
