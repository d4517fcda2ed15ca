"""logloss.diagnose and DiagnosticsState against independent computations.

References: scikit-learn's IsotonicRegression (the recalibration), scipy's xlogy/log1p written
out here (the losses), NumPy formulas written in the tests (ECE, Brier, NE, d2), simulation with
a known expectation (the paired interval's coverage).
"""

import json
import math

import numpy as np
import pytest

import logloss
from logloss import DiagnosticsState, diagnose

sklearn_isotonic = pytest.importorskip("sklearn.isotonic")
special = pytest.importorskip("scipy.special")


def _log_loss(y, p, w=None):
    """-(y log p + (1 - y) log(1 - p)), weighted mean, 0 log 0 = 0; log1p keeps 1 - p exact."""
    w = np.ones(len(y)) if w is None else w
    per_row = -(special.xlogy(y, p) + np.where(y == 0, np.log1p(-p), 0.0))
    return math.fsum((w * per_row).tolist()) / math.fsum(w.tolist())


def _entropy(r):
    return -(r * math.log(r) + (1 - r) * math.log1p(-r))


def _recalibrated_loss(y, p, w=None):
    iso = sklearn_isotonic.IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip")
    fitted = iso.fit(p, y, sample_weight=w).predict(p)
    ww = np.ones(len(y)) if w is None else w
    per_row = -(special.xlogy(y, fitted) + special.xlogy(1 - y, 1 - fitted))
    return math.fsum((ww * per_row).tolist()) / math.fsum(ww.tolist())


def _data(n, seed, *, decimals=None):
    rng = np.random.default_rng(seed)
    p = rng.beta(2, 5, n)
    if decimals is not None:
        p = np.round(p, decimals)  # many ties, to be pooled
    y = (rng.random(n) < np.clip(1.3 * p, 0, 1)).astype(np.int64)
    return y, p, rng


@pytest.mark.parametrize("decimals", [None, 3, 1])
@pytest.mark.parametrize("weighted", [False, True])
def test_decomposition_matches_isotonic_regression_and_exact_log_loss(decimals, weighted):
    y, p, rng = _data(20_000, 1, decimals=decimals)
    w = rng.random(len(y)) * 3 if weighted else None
    d = diagnose(y, p, sample_weight=w).decomposition
    log_loss = _log_loss(y, p, w)
    base = np.average(y, weights=w)
    uncertainty = _entropy(base)
    recalibrated = _recalibrated_loss(y, p, w)
    total = d["miscalibration"] - d["discrimination"] + d["uncertainty"]
    assert total == pytest.approx(log_loss, rel=1e-12)
    assert d["miscalibration"] == pytest.approx(log_loss - recalibrated, rel=1e-9, abs=1e-12)
    assert d["discrimination"] == pytest.approx(uncertainty - recalibrated, rel=1e-9, abs=1e-12)
    assert d["uncertainty"] == pytest.approx(uncertainty, rel=1e-12)
    assert d["exact"] and d["bound"] == 0


def test_decomposition_from_logits_orders_by_logit():
    # Logits beyond 37 all round to p = 1.0; the recalibration must still tell them apart.
    rng = np.random.default_rng(5)
    z = rng.normal(0, 15, 5000)
    y = (rng.random(5000) < 1 / (1 + np.exp(-z / 3))).astype(int)
    d = diagnose(y, z, from_logits=True)
    iso = sklearn_isotonic.IsotonicRegression(y_min=0, y_max=1).fit(z, y)
    f = iso.predict(z)
    recalibrated = -np.mean(special.xlogy(y, f) + special.xlogy(1 - y, 1 - f))
    log_loss = np.mean(np.logaddexp(0, np.where(y == 1, -z, z)))
    assert d.log_loss == pytest.approx(log_loss, rel=1e-12)
    assert d.decomposition["recalibrated_log_loss"] == pytest.approx(recalibrated, rel=1e-9)


def test_pav_matches_isotonic_regression_on_a_long_violating_chain():
    # One large first block then a slowly rising run: the vectorized passes stall, the stack
    # pass finishes. Blocks of weight (neg, pos) in order.
    from logloss._diagnostics import pool_adjacent_violators

    n = 20_000
    pos = np.r_[1000.0, np.linspace(0, 1, n)]
    neg = np.r_[1.0, 1 - np.linspace(0, 1, n)]
    starts, pneg, ppos = pool_adjacent_violators(neg, pos)
    fitted = np.repeat(ppos / (ppos + pneg), np.diff(np.append(starts, n + 1)))
    ref = sklearn_isotonic.IsotonicRegression().fit(
        np.arange(n + 1), pos / (pos + neg), sample_weight=pos + neg).predict(np.arange(n + 1))
    np.testing.assert_allclose(fitted, ref, rtol=1e-9, atol=1e-12)


def test_ece_brier_d2_ne_and_calibration_ratio_match_direct_formulas():
    y, p, _ = _data(10_007, 2)
    bins = 7
    d = diagnose(y, p, bins=bins)
    n = len(y)
    order = np.argsort(p)  # no ties: beta draws
    ece = 0.0
    for b in range(bins):  # bin b is the stretch [b n / bins, (b + 1) n / bins) of sorted rows
        lo, hi = b * n / bins, (b + 1) * n / bins
        share = np.clip(np.minimum(np.arange(1, n + 1), hi) - np.maximum(np.arange(n), lo), 0, 1)
        mass = share.sum()  # each row counts for the part of [i, i + 1) inside the stretch
        mean_p = (share * p[order]).sum() / mass
        mean_y = (share * y[order]).sum() / mass
        ece += mass / n * abs(mean_p - mean_y)
    assert d.ece == pytest.approx(ece, rel=1e-12)
    assert d.ece_bins == bins
    assert d.brier == pytest.approx(np.mean((p - y) ** 2), rel=1e-12)
    ll, h = _log_loss(y, p), _entropy(y.mean())
    assert d.normalized_entropy == pytest.approx(ll / h, rel=1e-12)
    assert d.d2 == pytest.approx(1 - ll / h, rel=1e-12)
    assert d.calibration_ratio == pytest.approx(p.sum() / y.sum(), rel=1e-12)
    assert d.count == n and d.positives == y.sum()
    assert d.base_rate == pytest.approx(y.mean(), rel=1e-12)
    neg = y == 0
    assert d.by_class["negative"]["mean_loss"] == pytest.approx(_log_loss(y[neg], p[neg]), 1e-12)
    assert d.by_class["positive"]["count"] == y.sum()


def test_weighted_ece_and_an_integer_weight_equals_repeating_the_row():
    y, p, rng = _data(3000, 3)
    w = rng.integers(0, 4, len(y))
    weighted = diagnose(y, p, sample_weight=w, bins=5)
    repeated = diagnose(np.repeat(y, w), np.repeat(p, w), bins=5)
    for key in ("log_loss", "brier", "normalized_entropy", "calibration_ratio"):
        assert getattr(weighted, key) == pytest.approx(getattr(repeated, key), rel=1e-12)
    for key in ("miscalibration", "discrimination"):
        assert weighted.decomposition[key] == pytest.approx(repeated.decomposition[key],
                                                            rel=1e-9)
    assert weighted.ece == pytest.approx(repeated.ece, rel=1e-9)


def test_concentration_shares_match_sorted_losses():
    y, p, _ = _data(100_000, 4)
    losses = -(special.xlogy(y, p) + np.where(y == 0, np.log1p(-p), 0.0))
    worst_first = np.sort(losses)[::-1]
    c = diagnose(y, p).concentration
    for entry in c["worst"]:
        rows = entry["rows"] * len(y)
        whole = int(rows)
        expected = worst_first[:whole].sum() + (rows - whole) * worst_first[whole]
        assert entry["share_of_loss"] == pytest.approx(expected / losses.sum(), rel=1e-9)
    caps = {c_["framework"]: c_["rows_above"] for c_ in c["caps"]}
    assert caps["keras"] == np.count_nonzero(losses > -np.log(1e-7))


def test_streaming_state_is_within_its_stated_bound_of_the_in_memory_figures():
    # 10^6 rows (the issue asks for 10^7; a million keeps CI at seconds), in ten batches
    # split between two states that are merged, as workers would.
    y, p, rng = _data(1_000_000, 6)
    p = np.clip(p + rng.normal(0, 0.02, len(p)), 1e-6, 1 - 1e-6)
    exact = diagnose(y, p)
    left, right = DiagnosticsState(), DiagnosticsState()
    for i, start in enumerate(range(0, len(y), 100_000)):
        (left if i % 2 else right).update(y[start:start + 100_000], p[start:start + 100_000])
    merged = DiagnosticsState.from_dict(json.loads(json.dumps(left.to_dict()))).merge(right)
    streamed = logloss.Diagnosis.from_state(merged)
    assert streamed.log_loss == pytest.approx(exact.log_loss, rel=1e-12)
    assert streamed.brier == pytest.approx(exact.brier, rel=1e-12)
    s, e = streamed.decomposition, exact.decomposition
    assert not s["exact"] and 0 < s["bound"] < 0.01
    for key in ("miscalibration", "discrimination"):
        assert s[key] - 1e-12 <= e[key] <= s[key] + s["bound"] + 1e-12
    for es, ee in zip(streamed.concentration["worst"], exact.concentration["worst"]):
        assert es["share_of_loss"] - 1e-12 <= ee["share_of_loss"]
        assert ee["share_of_loss"] <= es["share_of_loss"] + es["bound"] + 1e-12
    # the same losses (ids differ: without `ids` a row's id is its index in its own state)
    assert [r["loss"] for r in streamed.worst] == [r["loss"] for r in exact.worst]
    assert abs(streamed.ece - exact.ece) < 0.01


def test_paired_interval_covers_the_true_difference_about_95_percent_of_the_time():
    # 1,000 datasets of 400 rows at once, one segment each. x takes five values with known
    # probabilities of a positive; model a predicts x, model b a distorted x, so the true
    # mean difference E[loss_b - loss_a] is a finite sum.
    rng = np.random.default_rng(7)
    datasets, rows = 1000, 400
    levels = np.array([0.1, 0.3, 0.5, 0.7, 0.9])
    distorted = np.array([0.2, 0.25, 0.6, 0.65, 0.8])
    true = np.mean(levels * (np.log(levels) - np.log(distorted))
                   + (1 - levels) * (np.log1p(-levels) - np.log1p(-distorted)))
    x = rng.integers(0, 5, datasets * rows)
    y = (rng.random(len(x)) < levels[x]).astype(int)
    segment = np.repeat(np.arange(datasets), rows)
    d = diagnose(y, {"a": levels[x], "b": distorted[x]}, by=segment, max_segments=datasets, k=0)
    pairs = d.comparison[0]["segments"]
    assert len(pairs) == datasets
    covered = sum(low <= true <= high for low, high in (s["interval_95"] for s in pairs))
    assert 930 <= covered <= 970
    # the standard error agrees with the spread of the per-dataset means
    means = np.array([s["mean_difference"] for s in pairs])
    ses = np.array([s["standard_error"] for s in pairs])
    assert np.std(means) == pytest.approx(np.sqrt(np.mean(ses ** 2)), rel=0.1)


def test_paired_comparison_reports_wins_and_the_overall_mean_difference():
    y, p, _ = _data(5000, 8)
    worse = np.clip(p + 0.1, 0, 1)
    d = diagnose(y, {"good": p, "bad": worse})
    c = d.comparison[0]
    la = -(special.xlogy(y, p) + np.where(y == 0, np.log1p(-p), 0.0))
    lb = -(special.xlogy(y, worse) + np.where(y == 0, np.log1p(-worse), 0.0))
    diff = lb - la
    assert (c["a"], c["b"]) == ("good", "bad")
    assert c["mean_difference"] == pytest.approx(diff.mean(), rel=1e-12)
    assert c["standard_error"] == pytest.approx(diff.std(ddof=1) / np.sqrt(len(y)), rel=1e-9)
    assert c["a_better"] == pytest.approx(np.mean(la < lb))
    assert c["b_better"] == pytest.approx(np.mean(lb < la))
    with pytest.raises(AttributeError, match="models"):
        _ = d.log_loss
    assert d.models["bad"]["log_loss"] == pytest.approx(lb.mean(), rel=1e-12)


def test_segments_sorted_by_share_and_the_rest_folded_into_other():
    y, p, rng = _data(20_000, 9)
    segment = rng.integers(0, 50, len(y))
    p_bad = np.where(segment == 17, np.clip(1 - p, 0.01, 0.99), p)
    d = diagnose(y, p_bad, by={"shop": segment}, max_segments=5)
    seg = d.segments
    assert seg["total"] == 50 and len(seg["rows"]) == 5 and seg["other"]["segments"] == 45
    assert seg["rows"][0]["segment"] == {"shop": 17}
    shares = [r["share_of_loss"] for r in seg["rows"]]
    assert shares == sorted(shares, reverse=True)
    assert sum(shares) + seg["other"]["share_of_loss"] == pytest.approx(1, rel=1e-12)
    mask = segment == 17
    assert seg["rows"][0]["log_loss"] == pytest.approx(_log_loss(y[mask], p_bad[mask]), 1e-12)


def test_infinite_losses_stay_infinite_counted_and_first_among_the_worst():
    y = np.array([1, 0, 1, 0, 1])
    p = np.array([0.0, 0.2, 0.9, 1.0, 0.5])
    d = diagnose(y, p, ids=np.array(["a", "b", "c", "d", "e"]), k=3)
    assert d.log_loss == math.inf and d.infinite == 2
    assert [row["id"] for row in d.worst[:2]] == ["a", "d"]
    assert all(row["loss"] == math.inf for row in d.worst[:2])
    assert d.by_class["positive"]["infinite"] == 1
    caps = {c["framework"]: c["rows_above"] for c in d.concentration["caps"]}
    assert caps == {"keras": 2, "xgboost_lightgbm": 2, "scikit_learn": 2, "pytorch": 2}
    assert d.concentration["infinite"] == 2
    assert math.isnan(d.concentration["worst"][0]["share_of_loss"])
    assert d.to_dict()["log_loss"] == "inf"
    json.dumps(d.to_dict(), allow_nan=False)
    both = diagnose(y, {"a": p, "b": np.full(5, 0.5)})
    assert both.comparison[0]["mean_difference"] == -math.inf
    assert both.comparison[0]["infinite_a"] == 2


@pytest.mark.parametrize("name, value", [
    ("k", -1), ("k", 10**6), ("bins", 0), ("bins", 5000), ("resolution", 8),
    ("resolution", 2**30), ("max_segments", 0), ("k", 2.5), ("bins", True),
])
def test_settings_out_of_range_get_a_clear_error(name, value):
    y, p, _ = _data(100, 10)
    with pytest.raises((ValueError, TypeError), match=rf"argument `{name}`.*Received: {name}="):
        diagnose(y, p, **{name: value})


def test_bad_input_names_the_argument_and_the_place():
    with pytest.raises(ValueError, match=r"`y_true` must contain hard labels.*0.5 at index 1"):
        diagnose([0, 0.5, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"`y_pred\['b'\]` must contain probabilities.*index 2"):
        diagnose([0, 1, 1], {"a": [0.1, 0.2, 0.3], "b": [0.1, 0.2, 1.3]})
    with pytest.raises(ValueError, match="same shape"):
        diagnose([0, 1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match=r"`by\['s'\]` must have one value per row"):
        diagnose([0, 1, 1], [0.1, 0.2, 0.3], by={"s": [1, 2]})
    with pytest.raises(ValueError, match="empty"):
        diagnose([], [])
    state = DiagnosticsState().update([0, 1], {"a": [0.1, 0.9]})
    with pytest.raises(ValueError, match=r"models \['a'\]"):
        state.update([0, 1], {"b": [0.1, 0.9]})
    with pytest.raises(ValueError, match="different settings"):
        state.merge(DiagnosticsState(bins=3))
    with pytest.raises(ValueError, match="no rows"):
        DiagnosticsState().result()


def test_state_round_trips_through_json_and_merges_like_one_pass():
    y, p, rng = _data(30_000, 11)
    segment = rng.choice(np.array(["north", "south", "<b>x</b>"]), len(y))
    one = DiagnosticsState(k=5).update(y, {"m": p, "n": p ** 1.1}, by={"region": segment})
    parts = [DiagnosticsState(k=5).update(y[i:i + 7000], {"m": p[i:i + 7000],
                                                          "n": p[i:i + 7000] ** 1.1},
                                          by={"region": segment[i:i + 7000]})
             for i in range(0, len(y), 7000)]
    merged = parts[0]
    for part in parts[1:]:
        merged.merge(DiagnosticsState.from_dict(json.loads(json.dumps(part.to_dict()))))
    a, b = one.result(), merged.result()
    for name in ("m", "n"):
        assert b["models"][name]["log_loss"] == pytest.approx(a["models"][name]["log_loss"],
                                                              rel=1e-13)
        for key in ("miscalibration", "discrimination", "bound"):
            assert b["models"][name]["decomposition"][key] == pytest.approx(
                a["models"][name]["decomposition"][key], rel=1e-9)
        rows_a = {tuple(r["segment"].values()): r["log_loss"]
                  for r in a["models"][name]["segments"]["rows"]}
        rows_b = {tuple(r["segment"].values()): r["log_loss"]
                  for r in b["models"][name]["segments"]["rows"]}
        assert rows_b == pytest.approx(rows_a, rel=1e-12)
    ca, cb = a["comparison"][0], b["comparison"][0]
    assert cb["mean_difference"] == pytest.approx(ca["mean_difference"], rel=1e-12)
    assert cb["standard_error"] == pytest.approx(ca["standard_error"], rel=1e-9)
    assert [r["loss"] for r in b["models"]["m"]["worst"]] == [
        r["loss"] for r in a["models"]["m"]["worst"]]


def test_to_dict_is_strict_json_with_the_documented_keys():
    y, p, rng = _data(2000, 12)
    d = diagnose(y, p, by=rng.integers(0, 3, len(y)))
    out = d.to_dict()
    json.dumps(out, allow_nan=False)
    for key in ("log_loss", "count", "positives", "base_rate", "normalized_entropy", "d2",
                "brier", "calibration_ratio", "ece", "by_class", "concentration", "worst",
                "reliability", "segments"):
        assert key in out
    assert set(out["decomposition"]) >= {"miscalibration", "discrimination", "uncertainty"}
    assert out["settings"]["bins"] == 10 and out["settings"]["exact"] is True


def test_import_logloss_does_not_load_the_report_libraries():
    import subprocess
    import sys

    code = ("import sys, logloss; logloss.diagnose; "
            "print([m for m in ('matplotlib', 'jinja2', 'pyarrow') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_tied_predictions_make_the_same_figures_in_any_row_order_and_on_both_paths():
    # Unweighted probabilities take the sort-of-int64-keys path, weights the argsort path.
    y, p, rng = _data(30_001, 13, decimals=2)
    a = diagnose(y, p, bins=7)
    order = rng.permutation(len(y))
    b = diagnose(y[order], p[order], bins=7)
    c = diagnose(y, p, bins=7, sample_weight=np.ones(len(y)))
    for other in (b, c):
        assert other.ece == pytest.approx(a.ece, rel=1e-12, abs=1e-15)
        for mine, theirs in zip(other.reliability["bins"], a.reliability["bins"], strict=True):
            assert mine == pytest.approx(theirs, rel=1e-12)
        assert other.decomposition["miscalibration"] == pytest.approx(
            a.decomposition["miscalibration"], rel=1e-12)
        assert other.reliability["pav"]["observed"] == pytest.approx(
            a.reliability["pav"]["observed"], rel=1e-12)


@pytest.mark.parametrize("engine", ["auto", "numpy"])
def test_merge_numbers_the_other_states_rows_after_this_ones(engine):
    """Without ids a worst row is named by its position; a merged state's rows come after the
    state it is merged into (a version-1 state named them by their place in their own state)."""
    rng = np.random.default_rng(21)
    y = np.ones(3000, dtype=np.int8)
    p = rng.uniform(0.3, 0.9, 3000)
    p[[2500, 1700, 40]] = [1e-9, 1e-7, 1e-5]  # the three worst: two in the second part
    with logloss.config_context(engine=engine):
        one = DiagnosticsState(k=3).update(y, p)
        first = DiagnosticsState(k=3).update(y[:1000], p[:1000])
        second = DiagnosticsState(k=3).update(y[1000:2000], p[1000:2000])
        third = DiagnosticsState(k=3).update(y[2000:], p[2000:])
        merged = first.merge(second).merge(
            DiagnosticsState.from_dict(json.loads(json.dumps(third.to_dict()))))
        named = DiagnosticsState(k=3).update(y[:1000], p[:1000], ids=np.arange(1000) + 7)
        named.merge(DiagnosticsState(k=3).update(y[1000:], p[1000:],
                                                 ids=[f"r{i}" for i in range(2000)]))
    expected = [2500, 1700, 40]
    assert [r["id"] for r in one.result()["models"]["model"]["worst"]] == expected
    assert [r["id"] for r in merged.result()["models"]["model"]["worst"]] == expected
    assert [r["id"] for r in named.result()["models"]["model"]["worst"]] == ["r1500", "r700", 47]


def test_a_version_1_state_still_loads_with_its_ids_as_written():
    y, p, _ = _data(500, 22)
    state = DiagnosticsState(k=4).update(y, p)
    saved = json.loads(json.dumps(state.to_dict()))
    assert saved["version"] == 5
    saved["version"] = 1
    for model in saved["models"]:
        del model["worst"]["row"], model["worst"]["named"]
        model["worst"]["id"] = [f"old{i}" for i in range(len(model["worst"]["loss"]))]
    old = DiagnosticsState.from_dict(saved)
    got = old.result()["models"]["model"]["worst"]
    assert [r["id"] for r in got] == ["old0", "old1", "old2", "old3"]
    assert [r["loss"] for r in got] == [r["loss"] for r in state.result()["models"]["model"]["worst"]]
    old.merge(DiagnosticsState(k=4).update(y[:10], p[:10]))  # merges with a state of the current version
    saved["version"] = 6
    with pytest.raises(ValueError, match="version 6"):
        DiagnosticsState.from_dict(saved)


@pytest.mark.parametrize("case", ["probabilities", "weighted", "logits", "ties", "coarse"])
def test_streamed_ece_is_within_its_bound_of_the_exact_ece(case):
    """The exact ECE is computed here from the sorted rows (equal-mass bins, a straddling
    prediction split in proportion), not by the library; labels drawn from a sharper model than
    the predictions, so the calibration error changes sign across the bins and the streamed bins'
    cuts matter."""
    rng = np.random.default_rng(hash(case) % 2**32)
    n = 200_000
    z = rng.normal(0, 1.5, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-2 * z))).astype(np.int8)
    p = 1 / (1 + np.exp(-z))
    w = rng.exponential(1.0, n) if case == "weighted" else None
    if case == "ties":
        p = np.round(p, 2)
    logits = case == "logits"
    resolution = 256 if case == "coarse" else 1 << 16
    bins = 15
    state = DiagnosticsState(from_logits=logits, bins=bins, resolution=resolution)
    for i in range(0, n, 60_000):
        state.update(y[i:i + 60_000], (z if logits else p)[i:i + 60_000],
                     sample_weight=None if w is None else w[i:i + 60_000])
    got = state.result()["models"]["model"]
    ww = np.ones(n) if w is None else w
    order = np.argsort(z if logits else p, kind="stable")
    key = (z if logits else p)[order]
    # group ties, then cut equal-mass bins splitting a straddling group in proportion
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    gw = np.add.reduceat(ww[order], starts)
    gp = np.add.reduceat((ww * p)[order], starts)
    gy = np.add.reduceat((ww * y)[order], starts)
    total = gw.sum()
    cum = np.r_[0.0, np.cumsum(gw)]
    ece = 0.0
    for b in range(bins):
        lo, hi = total * b / bins, total * (b + 1) / bins
        share = np.clip((np.minimum(cum[1:], hi) - np.maximum(cum[:-1], lo)) / gw, 0, 1)
        ece += abs(np.sum(share * gp) - np.sum(share * gy))
    ece /= total
    assert got["ece_exact"] is False and got["ece_bound"] > 0
    assert abs(got["ece"] - ece) <= got["ece_bound"] + 1e-12
    if case == "probabilities":
        assert got["ece_bound"] < 2e-3  # informative at the default resolution
        assert abs(got["ece"] - ece) > 0  # and the cut cells did move the figure
    assert diagnose(y, z if logits else p, sample_weight=w, from_logits=logits,
                    bins=bins).ece == pytest.approx(ece, rel=1e-9)


@pytest.mark.parametrize("engine", ["auto", "numpy"])
@pytest.mark.parametrize("weights", [np.array([3.0, 2.0, 1.0]), np.array([3.0, 2.0, 1.0], np.float32),
                                     np.array([1e300, 1.0, 1.0])])
def test_a_finite_loss_whose_weighted_product_overflows_is_not_counted_infinite(engine, weights):
    # The compiled kernel counted a row infinite when w * loss overflowed (loss 1e308, w 3),
    # though its loss is finite: 2 infinite rows on the compiled path, 0 on NumPy's.
    y = np.array([0, 0, 1])
    x = np.array([1e308, 1e308, 0.0]) if weights[0] < 1e10 else np.array([1e10, 1e10, 0.0])
    with logloss.config_context(engine=engine), np.errstate(over="ignore"):  # NumPy's w * loss
        state = DiagnosticsState(from_logits=True, k=2)
        state.update(y, x, weights, by=np.array([1, 1, 2]))
    state._drain()  # (result() refuses these sums: they leave float64)
    model = state.models[0]
    assert model.counts["infinite"] == model.counts["infinite_positive"] == 0
    assert model.segments[:, -1].tolist() == [0, 0]


@pytest.mark.parametrize("engine", ["auto", "numpy"])
@pytest.mark.parametrize("x, weights", [
    (np.array([1e308, 1e308, 0.0]), None),                     # the loss sum overflows
    (np.array([1e308, 1e308, 0.0]), np.array([3.0, 2.0, 1.0])),  # w * loss overflows
    (np.array([1.0, 2.0, 0.0]), np.array([1e308, 1e308, 1.0])),  # the weight sum overflows
])
def test_sums_beyond_float64_are_refused_not_reported_as_an_infinite_loss(engine, x, weights):
    # Every loss is finite and so is the exact mean (bce gives it), but the state's sums leave
    # float64: the result said log_loss inf with infinite 0. Accumulator refuses these too.
    y = np.array([0, 0, 1])
    with logloss.config_context(engine=engine), np.errstate(over="ignore", invalid="ignore"):
        state = DiagnosticsState(from_logits=True)
        state.update(y, x, weights)
        with pytest.raises(OverflowError, match="float64 range"):
            state.result()


@pytest.mark.parametrize("engine", ["auto", "numpy"])
@pytest.mark.parametrize("y, p, confident, keras", [
    # p = 0.01 given to the true class is not under 1%: no confident mistake (the compiled
    # kernel's log put -log(0.01) 1 ulp above the threshold and counted every such row)
    ([1, 1, 0, 0], [0.01, 0.01, 0.99, 0.99], 0, 0),
    ([1, 0, 1], [0.0, 1.0, 0.5], 2, 2),                        # the infinite ones only
    ([1, 1], [0.009, 1e-7], 2, 0),                             # 1e-7: at Keras's cap, not above
    ([1, 0], [np.nextafter(1e-7, 0), 1 - 1e-7], 2, 1),
])
def test_confident_mistakes_and_caps_count_the_same_rows_on_both_paths(engine, y, p, confident,
                                                                        keras):
    y, p = np.array(y), np.array(p)
    rng = np.random.default_rng(0)
    y, p = np.tile(y, 300), np.tile(p, 300)  # a batch the compiled kernel takes
    order = rng.permutation(len(y))
    with logloss.config_context(engine=engine), np.errstate(divide="ignore"):
        state = DiagnosticsState()
        state.update(y[order], p[order])
        state._drain()
    assert state.models[0].counts["confident"] == 300 * confident
    assert state.models[0].caps["keras"] == 300 * keras


def _fail_on_call(calls: int, error: BaseException):
    """A wrapper that lets the first ``calls - 1`` calls through and raises on the next."""
    seen = {"n": 0}

    def wrap(function):
        def failing(*args, **kwargs):
            seen["n"] += 1
            if seen["n"] == calls:
                raise error
            return function(*args, **kwargs)
        return failing
    return wrap


# (engine, what breaks part way, the function it replaces); each leaves part of a batch or of a
# merge in the state: a model's histograms without its totals, models without the rows count...
_INTERRUPTIONS = [
    ("auto", "second model's kernel out of memory", "chunked", "diagnostics_update",
     2, MemoryError()),
    ("auto", "Ctrl-C while naming the worst rows", "_diagnostics", "_keep_worst",
     1, KeyboardInterrupt()),
    ("numpy", "Ctrl-C between the models and the pair", "_diagnostics", "_add_pair",
     1, KeyboardInterrupt()),
    ("numpy", "out of memory in the second model", "_diagnostics", "_loss_bin",
     2, MemoryError()),
    ("auto", "out of memory keeping the second model's worst rows", "_diagnostics",
     "_keep_worst", 2, MemoryError()),
]


@pytest.mark.parametrize("engine, case, module, name, calls, error", _INTERRUPTIONS,
                         ids=[case[1] for case in _INTERRUPTIONS])
def test_a_batch_interrupted_part_way_leaves_a_state_that_refuses_to_report(
        engine, case, module, name, calls, error, monkeypatch):
    """An exception inside update, after the input checks, must not leave a state whose figures
    look complete: result, to_dict, merge and update refuse it, naming what happened."""
    from logloss import _diagnostics
    from logloss._numpy import chunked

    y, p, rng = _data(5000, 31)
    q = np.clip(p + rng.normal(0, 0.05, len(p)), 1e-6, 1 - 1e-6)
    by = rng.integers(0, 4, len(p))
    target = {"chunked": chunked, "_diagnostics": _diagnostics}[module]
    with logloss.config_context(engine=engine):
        state = DiagnosticsState(k=5).update(y[:2500], {"a": p[:2500], "b": q[:2500]},
                                             by=by[:2500])
        monkeypatch.setattr(target, name, _fail_on_call(calls, error)(getattr(target, name)))
        with pytest.raises(type(error)):
            state.update(y[2500:], {"a": p[2500:], "b": q[2500:]}, by=by[2500:])
        monkeypatch.undo()
        other = DiagnosticsState(k=5).update(y[:10], {"a": p[:10], "b": q[:10]}, by=by[:10])
        for use in (state.result, state.to_dict, lambda: other.merge(state),
                    lambda: state.merge(other),
                    lambda: state.update(y[:10], {"a": p[:10], "b": q[:10]}, by=by[:10])):
            with pytest.raises(RuntimeError, match="incomplete: adding a batch stopped part way "
                                                   rf"\({type(error).__name__}"):
                use()
        assert other.result()["models"]["a"]["count"] == 10  # the refused merge changed nothing


@pytest.mark.parametrize("engine", ["auto", "numpy"])
def test_a_merge_interrupted_part_way_leaves_a_state_that_refuses_to_report(engine, monkeypatch):
    from logloss import _diagnostics

    y, p, _ = _data(2000, 32)
    with logloss.config_context(engine=engine):
        first = DiagnosticsState().update(y[:1000], {"a": p[:1000], "b": p[:1000] ** 2})
        second = DiagnosticsState().update(y[1000:], {"a": p[1000:], "b": p[1000:] ** 2})
        monkeypatch.setattr(_diagnostics, "_merge_pair", _fail_on_call(1, MemoryError())(
            _diagnostics._merge_pair))
        with pytest.raises(MemoryError):
            first.merge(second)
    with pytest.raises(RuntimeError, match=r"incomplete: merging another state stopped part way"):
        first.result()
    assert second.result()["models"]["a"]["count"] == 1000  # the state merged in is intact


def test_a_fold_of_the_threads_sums_interrupted_part_way_is_refused_too(monkeypatch):
    """The compiled kernel's per-thread sums are folded in when the state is read: a failure
    between two models' folds leaves them apart."""
    from logloss._numpy import chunked

    y, p, _ = _data(3000, 34)
    with logloss.config_context(engine="auto"):
        state = DiagnosticsState().update(y, {"a": p, "b": p ** 2})
    monkeypatch.setattr(chunked.DiagnosticsScratch, "drain", _fail_on_call(2, MemoryError())(
        chunked.DiagnosticsScratch.drain))
    with pytest.raises(MemoryError):
        state.result()
    monkeypatch.undo()
    with pytest.raises(RuntimeError, match="incomplete: folding the kernel's partial sums in"):
        state.to_dict()


@pytest.mark.parametrize("engine", ["auto", "numpy"])
def test_a_refused_batch_leaves_the_state_as_it_was(engine):
    """Bad input is refused before anything is added: the state goes on, and it holds exactly
    what the same good batches give without the refused one (an error is not an interruption)."""
    y, p, rng = _data(3000, 33)
    by = rng.integers(0, 3, len(y))
    bad = p[1000:2000].copy()
    bad[17] = 1.5
    with logloss.config_context(engine=engine):
        state = DiagnosticsState().update(y[:1000], p[:1000], by=by[:1000])
        with pytest.raises(ValueError, match="1.5"):
            state.update(y[1000:2000], bad, by=by[1000:2000])
        with pytest.raises(ValueError, match="`by` must name the same columns"):
            state.update(y[1000:2000], p[1000:2000])
        state.update(y[2000:], p[2000:], by=by[2000:])
        good = DiagnosticsState().update(y[:1000], p[:1000], by=by[:1000])
        good.update(y[2000:], p[2000:], by=by[2000:])
    assert state.to_dict() == good.to_dict()


def _segment_reference(columns: dict, y, p):
    """Per key tuple (Python values, as written in the row): row count and the log loss from
    math.log / math.log1p, grouped with a dict; nothing from logloss."""
    rows: dict = {}
    for i in range(len(y)):
        # NumPy scalars as Python values; a list (unhashable) and bytes (not JSON) by their text
        values = [v.item() if isinstance(v, np.generic) else v
                  for v in (column[i] for column in columns.values())]
        key = tuple(str(v) if isinstance(v, (list, bytes)) else v for v in values)
        loss = -math.log(p[i]) if y[i] else -math.log1p(-p[i])
        rows.setdefault(key, []).append(loss)
    return {key: (len(losses), math.fsum(losses) / len(losses)) for key, losses in rows.items()}


def _objects(values: list, index: np.ndarray) -> np.ndarray:
    out = np.empty(len(index), dtype=object)
    out[:] = [values[i] for i in index.tolist()]
    return out


def _segment_columns(case: str, n: int, rng):
    big = np.int64(2 ** 63 - 1)
    return {
        "bool": lambda: {"s": rng.random(n) < 0.3},
        "all True": lambda: {"s": np.ones(n, dtype=bool)},
        "int8 full range": lambda: {"s": np.arange(n).astype(np.int8)},
        "uint8": lambda: {"s": rng.integers(250, 256, n).astype(np.uint8)},
        "int16 negative": lambda: {"s": rng.integers(-32768, -32700, n).astype(np.int16)},
        "int32": lambda: {"s": rng.integers(-3, 4, n).astype(np.int32)},
        "int64 at the top": lambda: {"s": big - rng.integers(0, 5, n)},
        "int64 at the bottom": lambda: {"s": -big - 1 + rng.integers(0, 5, n)},
        "uint64 at the top": lambda: {"s": np.uint64(2 ** 64 - 1) - rng.integers(0, 5, n).astype(
            np.uint64)},
        "int64 spread wide": lambda: {"s": rng.choice([-(2 ** 62), 0, 2 ** 62], n)},
        "text": lambda: {"s": rng.choice(["fr", "de", "<b>"], n)},
        # enough rows for the position tables: prefixes, padding, a NUL inside, non-ASCII
        "text, many rows": lambda: {"s": rng.choice(["country 07", "country 1", "country 10",
                                                     "", "a\0b", "a", "日本", "é"], n)},
        "bytes, many rows": lambda: {"s": rng.choice([b"x", b"xy", b"", b"\x00a", b"\xff"], n)},
        "text, one value": lambda: {"s": np.full(n, "same")},
        "text, many distinct": lambda: {"s": np.array([f"user{i}" for i in
                                                       rng.integers(0, 5000, n)])},
        "text as objects": lambda: {"s": rng.choice(["fr", "de", "<b>"], n).astype(object)},
        "objects with None": lambda: {"s": rng.choice(np.array(["fr", None, "de"], dtype=object),
                                                      n)},
        "integers as objects": lambda: {"s": rng.integers(-2, 3, n).astype(object)},
        "lists as objects": lambda: {"s": _objects([[1, 2], [3], []], rng.integers(0, 3, n))},
        "big-endian int32": lambda: {"s": rng.integers(-5, 5, n).astype(">i4")},
        # five columns of distinct values: their combined numbers, rows ** 5, pass 2**63
        "five distinct columns": lambda: {c: rng.permutation(n).astype(t)
                                          for c, t in zip("abcde", [np.int64, np.int32, np.uint32,
                                                                    np.int64, np.uint16])},
        "mixed columns": lambda: {"a": rng.integers(0, 3, n).astype(np.int8),
                                  "b": rng.random(n) < 0.5, "c": rng.choice(["x", "y"], n),
                                  "d": rng.integers(10 ** 12, 10 ** 12 + 4, n)},
    }[case]()


@pytest.mark.parametrize("engine", ["auto", "numpy"])
@pytest.mark.parametrize("case", ["bool", "all True", "int8 full range", "uint8", "int16 negative",
                                  "int32", "int64 at the top", "int64 at the bottom",
                                  "uint64 at the top", "int64 spread wide", "text",
                                  "text, many rows", "bytes, many rows", "text, one value",
                                  "text, many distinct",
                                  "text as objects", "objects with None", "integers as objects",
                                  "lists as objects", "big-endian int32",
                                  "five distinct columns", "mixed columns"])
def test_segments_of_every_value_type_count_and_score_their_own_rows(case, engine):
    """Segment values numbered through a table (small integer spans) or by sorting: every key is
    the row's values as written, and each segment's count and loss are those of its rows."""
    n = {"five distinct columns": 60000, "text, many rows": 9000, "bytes, many rows": 9000,
         "text, one value": 9000, "text, many distinct": 9000}.get(case, 3000)
    rng = np.random.default_rng(41)
    y = (rng.random(n) < 0.4).astype(np.int8)
    p = rng.uniform(0.02, 0.98, n)
    columns = _segment_columns(case, n, rng)
    with logloss.config_context(engine=engine):
        found = diagnose(y, p, by=columns, max_segments=100_000).to_dict()["segments"]
    expected = _segment_reference(columns, y, p)
    assert found["by"] == list(columns) and found["other"] is None
    got = {tuple(row["segment"][c] for c in columns): (row["count"], row["log_loss"])
           for row in found["rows"]}
    assert got.keys() == expected.keys()
    for key, (count, loss) in expected.items():
        assert got[key][0] == count
        assert got[key][1] == pytest.approx(loss, rel=1e-13)


@pytest.mark.parametrize("engine", ["auto", "numpy"])
def test_a_segment_whose_finite_losses_overflow_is_refused_beside_an_infinite_row(engine):
    """Segment a: one row of weight 1e308 and loss -log(0.01) (a finite mean of 4.6, a weighted
    sum past float64); segment b: a truly infinite loss, which lets the total pass as inf.
    Printing segment a's loss as inf would be a wrong number: refused, naming the segment."""
    y = np.array([1, 1, 1, 0])
    p = np.array([0.01, 0.0, 0.5, 0.5])
    w = np.array([1e308, 1.0, 1.0, 1.0])
    by = np.array(["a", "b", "b", "a"])
    with logloss.config_context(engine=engine):
        state = DiagnosticsState().update(y, p, sample_weight=w, by=by)
    with pytest.raises(OverflowError, match=r"segment \{'segment': 'a'\}"):
        state.result()
    # folded into "other", the same sum is refused there
    many = DiagnosticsState()
    with logloss.config_context(engine=engine):
        many.update(np.r_[y, 1], np.r_[p, 0.0], sample_weight=np.r_[w, 1.0],
                    by=np.array(["a", "b", "b", "a", "c"]))
    with pytest.raises(OverflowError):
        many.result(max_segments=1)


@pytest.mark.parametrize("case, values, tabled", [
    ("prefixes, padding, NUL inside, non-ASCII",
     ["country 07", "country 1", "country 10", "", "a\0b", "a", "日本", "é"], True),
    ("bytes", [b"x", b"xy", b"", b"\x00a", b"\xff"], True),
    ("one value", ["same"], True),
    ("few rows", ["b", "a"], False),
    ("many distinct", [f"user{i}" for i in range(5000)], False),
    ("big-endian", np.array(["b", "a", "c"], dtype=">U1"), False),
])
def test_text_segments_numbered_by_position_tables_equal_numpys_sort(case, values, tabled):
    """The position tables give np.unique's numbers and values (its order: code unit by code
    unit, padding lowest), where they are used at all; elsewhere the sort does."""
    from logloss._diagnostics import _text_codes

    rng = np.random.default_rng(51)
    pool = np.asarray(values)
    column = pool if case == "few rows" else pool[rng.integers(0, len(pool), 9000)]
    codes, distinct = _text_codes(column)
    assert (codes is not None) is tabled, case
    if tabled:
        unique, inverse = np.unique(column, return_inverse=True)
        assert np.array_equal(codes, inverse.reshape(-1))
        assert distinct.tolist() == unique.tolist()


@pytest.mark.parametrize("n", [1, 63, 64, 65, 9000, 9001])
def test_text_positions_that_vary_only_in_the_last_rows_are_found(n):
    """Text columns are reduced over blocks of 64 rows, the rest after: a position that varies
    only in the last row, or only in the first, is still a varying position."""
    from logloss._diagnostics import _column_range

    for row in (0, n - 1):
        units = np.full((n, 5), 7, dtype=np.uint32)
        units[row, 3] = 9
        low, high = _column_range(units)
        assert low.tolist() == units.min(axis=0).tolist()
        assert high.tolist() == units.max(axis=0).tolist()
