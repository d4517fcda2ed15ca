"""A diagnosis in plain sentences: what a reader should conclude from the numbers."""

from __future__ import annotations

import math


def number(value, digits: int = 4) -> str:
    """A figure for a sentence or a table: 'inf', 'undefined', or a few significant digits."""
    if value is None:
        return "undefined"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if math.isnan(value):
        return "undefined"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == 0:
        return "0"
    if abs(value) >= 1e5 or abs(value) < 1e-4:
        return f"{value:.{digits - 1}e}"
    return f"{value:.{digits}g}" if abs(value) < 1 else f"{value:,.{digits}g}"


def percent(share) -> str:
    if share is None or not math.isfinite(share):
        return "an undefined share"
    if share == 0:
        return "0%"
    if share < 0.001:
        return "under 0.1%"
    # a part is never said to be the whole: 99.96% of the loss was "100%"
    if 0.999 < share < 1:
        return "over 99.9%"
    return f"{share:.1%}" if share < 0.1 or 0.995 <= share < 1 else f"{share:.0%}"


def _share(entry: dict) -> str:
    """A concentration share; from a streamed state the loss histogram knows it only up to
    `bound` above (a bin's worst rows were read at its mean: "5.3%" for an exact 5.5%)."""
    low, bound = entry["share_of_loss"], entry.get("bound")
    if bound and math.isfinite(bound) and percent(low + bound) != percent(low):
        return f"between {percent(low)} and {percent(min(low + bound, 1.0))}"
    return percent(low)


def _segment(segment: dict) -> str:
    return ", ".join(f"{k} = {v}" for k, v in segment.items())


def _rows(count) -> str:
    return f"{number(count)} row{'' if count == 1 else 's'}"


def model_conclusions(m: dict, name: str | None = None) -> list[str]:
    who = f"{name}: " if name else ""
    # Shares of rows are shares of the weight: with weights a sentence says "of the weight",
    # which is what its number is (the state keeps sums, not whether weights were given; weights
    # of 1 give the rows' sums)
    positives = m["by_class"]["positive"]
    weighted = m["weight"] != m["count"] or positives["weight"] != positives["count"]
    out = []
    if m["infinite"]:
        caps = {c["framework"]: c["cap"] for c in m["concentration"]["caps"]}
        out.append(
            f"{who}{number(m['infinite'])} of {number(m['count'])} rows have infinite loss (a "
            "prediction of exactly 0 for a positive or exactly 1 for a negative), so the log loss "
            f"is infinite. Keras would count each as {caps['keras']:.2f}, XGBoost and LightGBM "
            f"as {caps['xgboost_lightgbm']:.2f}, scikit-learn as {caps['scikit_learn']:.2f}, "
            "PyTorch as 100: each framework reports a different finite number.")
    else:
        ne = m["normalized_entropy"]
        verdict = ""
        if ne is not None and math.isfinite(ne):
            if ne < 1:
                verdict = (f", {percent(1 - ne)} below the loss of always predicting the base rate "
                           f"(normalized entropy {number(ne, 3)})")
            else:
                verdict = (f", no better than always predicting the base rate (normalized "
                           f"entropy {number(ne, 3)})")
        base = (f"{percent(m['base_rate'])} of the weight on positives" if weighted
                else f"{percent(m['base_rate'])} positives")
        out.append(f"{who}The log loss is {number(m['log_loss'])} over {_rows(m['count'])} "
                   f"with {base}{verdict}.")
    confident = m["concentration"].get("confident_mistakes")
    if confident and confident["rows"] and confident["share_of_loss"] is not None \
            and math.isfinite(confident["share_of_loss"]) and confident["share_of_loss"] >= 0.1:
        part = percent(confident["weight"] / m["weight"])
        source = (f"rows with {part} of the weight ({_rows(confident['rows'])})" if weighted
                  else f"{part} of the rows ({number(confident['rows'])})")
        out.append(f"{who}{percent(confident['share_of_loss'])} of the loss comes from {source}, "
                   "all confident mistakes: the true class was given under 1%.")
    else:
        worst = {e["rows"]: e for e in m["concentration"]["worst"]}
        shares = {q: e["share_of_loss"] for q, e in worst.items()}
        if shares.get(0.01) is not None and math.isfinite(shares[0.01]):
            one, ten = _share(worst[0.01]), _share(worst[0.1])
            if weighted:
                out.append(f"{who}The worst rows with 1% of the weight carry {one} of the "
                           f"loss, those with 10% of it {ten}.")
            else:
                out.append(f"{who}The worst 1% of rows carry {one} of the loss, the worst 10% "
                           f"carry {ten}.")
    d = m["decomposition"]
    if m["log_loss"] is not None and math.isfinite(m["log_loss"]) and m["log_loss"] > 0:
        share = d["miscalibration"] / m["log_loss"]
        if d["exact"] or not d["bound"]:
            removed = percent(share)
        else:
            removed = (f"between {percent(share)} and "
                       f"{percent((d['miscalibration'] + d['bound']) / m['log_loss'])}")
        out.append(f"{who}Recalibrating (an isotonic map of the predictions, fitted on these "
                   f"rows) would remove {removed} of the loss (miscalibration "
                   f"{number(d['miscalibration'])}).")
        ratio = m["calibration_ratio"]
        if ratio is not None and math.isfinite(ratio) and abs(ratio - 1) >= 0.02:
            direction = "too high" if ratio > 1 else "too low"
            out.append(f"{who}On average the predictions are {percent(abs(ratio - 1))} {direction} "
                       f"(sum of predictions / sum of labels = {number(ratio, 3)}).")
        if d["uncertainty"] > 0:
            known = percent(d["discrimination"] / d["uncertainty"])
            figure = number(d["discrimination"])
            if not d["exact"] and d["bound"]:
                # a streamed state knows the discrimination only up to `bound` above its value
                # (one 2.5-logit cell said "0%" of a discrimination that was all of it), and
                # never above the uncertainty (a recalibrated loss is not negative)
                high = min(d["discrimination"] + d["bound"], d["uncertainty"])
                known = f"between {known} and {percent(high / d['uncertainty'])}"
                figure = f"{figure} to {number(high)}"
            out.append(f"{who}What the predictions know beyond the base rate (discrimination "
                       f"{figure}) is {known} of the uncertainty "
                       f"({number(d['uncertainty'])}) there was to remove.")
    pos, neg = m["by_class"]["positive"], m["by_class"]["negative"]
    if pos["count"] and neg["count"] and m["weight"] > 0:
        pos_share = pos["weight"] / m["weight"]
        # shares of the weight first: mean loss x a subnormal weight (as reported) keeps no
        # digits (0.3332 x 5 x 5e-324: 22% of the loss said for 18%)
        pos_part = pos["mean_loss"] * pos_share
        total = pos_part + neg["mean_loss"] * (neg["weight"] / m["weight"])
        if math.isfinite(total) and total > 0:
            loss_share = pos_part / total
            lead = (f"Positives carry {percent(pos_share)} of the weight and" if weighted
                    else f"Positives are {percent(pos_share)} of the rows and carry")
            out.append(f"{who}{lead} {percent(loss_share)} of the loss (mean loss "
                       f"{number(pos['mean_loss'])} against {number(neg['mean_loss'])} for the "
                       "negatives).")
    seg = m.get("segments")
    if seg and seg["rows"]:
        top = seg["rows"][0]
        rows_share = top["weight"] / m["weight"] if m["weight"] else math.nan
        text = (f"{who}The rows with {_segment(top['segment'])} carry "
                f"{percent(top['share_of_loss'])} of the loss, "
                + (f"with {percent(rows_share)} of the weight" if weighted
                   else f"being {percent(rows_share)} of the rows")
                + f" (log loss {number(top['log_loss'])}).")
        if seg["other"]:
            folded = number(seg["other"]["segments"])
            text += (f" {number(seg['total'])} segments in all; the {folded} smallest by loss "
                     "are folded into \u201cother\u201d.")
        out.append(text)
    return out


def pair_conclusion(c: dict, both_infinite: int = 0) -> str:
    """``both_infinite``: the rows where both models' losses are infinite (tied, and left out
    of the mean difference, which is then not a difference of the two log losses)."""
    mean, (low, high) = c["mean_difference"], c["interval_95"]
    # both log losses are infinite: the finite rows' mean is not "its mean loss"
    over = (f" on the rows where both losses are finite (both are infinite on "
            f"{_rows(both_infinite)})" if both_infinite else "")
    if mean is None or not math.isfinite(mean):
        if c["infinite_a"] or c["infinite_b"]:
            # only the models that have such rows ("on 0 rows where ..." said nothing)
            parts = [f"{model} has infinite loss on {_rows(count)} where {other} does not"
                     for model, other, count in ((c["a"], c["b"], c["infinite_a"]),
                                                 (c["b"], c["a"], c["infinite_b"])) if count]
            return (f"{', and '.join(parts)}: the mean difference is {number(mean)}. {c['a']} is "
                    f"better on {percent(c['a_better'])} of rows, {c['b']} on "
                    f"{percent(c['b_better'])}.")
        return f"{c['a']} and {c['b']}: the mean difference is undefined."
    if mean == 0:
        # neither is better: two identical models were "a beats b on 0% of rows ... lower by 0"
        return (f"{c['a']} and {c['b']} have the same mean loss{over}. {c['a']} is better on "
                f"{percent(c['a_better'])} of rows, {c['b']} on {percent(c['b_better'])}.")
    better, worse = (c["b"], c["a"]) if mean < 0 else (c["a"], c["b"])
    wins = c["b_better"] if mean < 0 else c["a_better"]
    lead = (f"{better} beats {worse} on {percent(wins)} of rows; its mean loss{over} is lower "
            f"by {number(abs(mean), 3)}")
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        # no standard error (a single row with a finite difference): there is no interval to
        # say "no clear winner" of, and none to say a winner by
        return (f"{lead}; the 95% interval cannot be estimated from {_rows(c['count'])} with "
                "a finite difference, so whether it is a clear winner is not known.")
    half = (high - low) / 2
    verdict = ("it excludes zero" if high < 0 or low > 0
               else "it includes zero: no clear winner")
    return f"{lead} \u00b1 {number(half, 2)} (± half the 95% interval; {verdict})."


def conclusions(figures: dict) -> list[str]:
    models = figures["models"]
    out = []
    for c in figures.get("comparison", []):
        # a's infinite rows less those where b is finite: the rows where both are infinite
        out.append(pair_conclusion(c, models[c["a"]]["infinite"] - c["infinite_a"]))
    for name, m in models.items():
        out += model_conclusions(m, name if len(models) > 1 else None)
    return out
