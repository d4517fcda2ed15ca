"""Hostile checks of `logloss compare` on files: references computed here in plain Python."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import pytest

pytest.importorskip("pyarrow")

from logloss._cli import main

LN2 = math.log(2)


def weighted_mean(weights, losses):
    num = sum(Fraction(w) * Fraction(loss) for w, loss in zip(weights, losses))
    return float(num / sum(Fraction(w) for w in weights))


def compare_json(capsys, tmp_path, text, *argv):
    path = tmp_path / "preds.csv"
    path.write_text(text)
    assert main(["compare", str(path), *argv, "--format", "json", "--quiet"]) == 0
    document = json.loads(capsys.readouterr().out)  # strict JSON: no NaN or Infinity
    return {r["convention"]: r for r in document["conventions"]}


# name -> (file text, options, {convention: reference value})
n = 2_000
CASES = {
    # a logit of -1e20 for a positive (loss 1e20) next to 2000 logits of 0 (ln 2 each):
    # BCELoss caps the first at 100 and must keep the others
    "huge logit": ("label,z\n1,-1e20\n" + "0,0\n" * n, ["--pred", "z", "--logits"],
                   {"torch": math.fsum([100.0] + [LN2] * n) / (n + 1)}),
    # subnormal weights: the means are those of the weights 1 and 2
    "subnormal weights": ("label,pred,w\n1,1e-20,5e-324\n1,0.5,1e-323\n",
                          ["--weight", "w"],
                          {"exact": weighted_mean([1, 2], [-math.log(1e-20), LN2]),
                           "spark": weighted_mean([1, 2], [-math.log(1e-15), LN2])}),
    # a zero weight on an infinite row leaves it out (0, not NaN)
    "zero weight at p = 0": ("label,pred,w\n1,0,0\n0,0.3,1\n1,0.6,2\n", ["--weight", "w"],
                             {"exact": (-math.log1p(-0.3) - 2 * math.log(0.6)) / 3,
                              "keras": (-math.log1p(-0.3) - 2 * math.log(0.6)) / 3}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_compare_values_on_hostile_files(capsys, tmp_path, case):
    text, argv, expected = CASES[case]
    rows = compare_json(capsys, tmp_path, text, *argv)
    for name, value in expected.items():
        assert rows[name]["value"] == pytest.approx(value, rel=1e-12), name


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_a_group_whose_weights_are_all_zero_is_reported_not_a_traceback(capsys, tmp_path, fmt):
    # `logloss score --by` writes such a group with no mean and a note; compare stopped with a
    # Python traceback (rows() raising ValueError) and exit code 1.
    path = tmp_path / "preds.csv"
    path.write_text("label,pred,g,w\n1,0.2,a,0\n0,0.3,b,2\n1,0.9,b,1\n")
    argv = ["compare", str(path), "--weight", "w", "--by", "g", "--format", fmt, "--quiet"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    b_exact = (-2 * math.log1p(-0.3) - math.log(0.9)) / 3
    if fmt == "json":
        document = json.loads(out)
        a, b = document["groups"]
        assert a["group"] == {"g": "a"} and b["group"] == {"g": "b"}
        assert all(r["value"] is None and "zero" in r["note"] for r in a["conventions"])
        assert b["conventions"][0]["value"] == pytest.approx(b_exact, rel=1e-14)
        assert document["conventions"][0]["value"] == pytest.approx(b_exact, rel=1e-14)
    else:
        assert "zero" in out and "g=a" in out and "g=b" in out
