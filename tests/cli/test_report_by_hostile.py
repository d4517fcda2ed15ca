"""`logloss report --by` over CSV and JSON Lines files whose type inference disagrees: one
segment per value, as `score --by` gives, against per-segment references computed here
(math.fsum over a plain dict), never taken from the code under test."""

from __future__ import annotations

import json
import math

import pytest

pytest.importorskip("pyarrow")

from logloss._cli import main  # noqa: E402


def _report(capsys, *argv):
    code = main(["report", *map(str, argv), "--format", "json", "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def _segments(rows) -> dict:
    """Per segment text: (mean log loss of each model, rows), by math.fsum."""
    out: dict = {}
    for y, preds, key in rows:
        entry = out.setdefault(key, [[] for _ in preds])
        for losses, p in zip(entry, preds):
            losses.append(-math.log(p) if y else -math.log1p(-p))
    return {key: ([math.fsum(v) / len(v) for v in entry], len(entry[0]))
            for key, entry in out.items()}


def _write(path, rows, kind):
    if kind == "csv":
        path.write_text("label,a,b,row,g\n" + "".join(
            f"{y},{pa},{pb},{i},{g}\n" for i, (y, (pa, pb), g) in enumerate(rows)))
    else:  # JSON Lines: the group as the CSV text reads, a number where it looks like one
        def value(g):
            try:
                return int(g)
            except ValueError:
                return g
        path.write_text("".join(json.dumps({"label": y, "a": pa, "b": pb, "row": i, "g": value(g)})
                                + "\n" for i, (y, (pa, pb), g) in enumerate(rows)))


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
@pytest.mark.parametrize("first, second", [
    (["1", "1"], ["1", "abc"]),          # numbers in one file, text in the other
    (["abc", "1"], ["1", "1"]),          # the same, text first
    (["true", "false"], ["1", "0"]),     # booleans and numbers: True == 1 in a dict
])
def test_a_value_is_one_segment_whatever_each_file_infers(tmp_path, capsys, kind, first, second):
    # Each file's types are inferred from its own first block: the text "1" was the number 1 in
    # one file and the text "1" in the other, two segments named alike (g=1 twice).
    rows = [(1, (0.5, 0.25), first[0]), (0, (0.25, 0.5), first[1]),
            (1, (0.75, 0.5), second[0]), (0, (0.125, 0.375), second[1])]
    paths = [tmp_path / f"a.{kind}", tmp_path / f"b.{kind}"]
    for path, part in zip(paths, (rows[:2], rows[2:])):
        _write(path, part, kind)
    expected = _segments(rows)
    result = _report(capsys, *paths, "--label", "label", "--pred", "a", "--pred", "b",
                     "--id", "row", "--by", "g")
    for model, index in (("a", 0), ("b", 1)):
        segments = result["models"][model]["segments"]["rows"] if "models" in result else None
        assert segments is not None, list(result)
        got = {str(s["segment"]["g"]).lower(): (s["log_loss"], s["count"]) for s in segments}
        assert len(got) == len(segments) == len(expected), (got, expected)
        for key, (means, count) in expected.items():
            assert got[key.lower()][1] == count, key
            assert got[key.lower()][0] == pytest.approx(means[index], rel=1e-15, abs=0), key
    # the second model and the ids ride in the reader's list of extra columns: still numbers
    worst = result["models"]["b"]["worst"]
    assert all(isinstance(row["id"], int) for row in worst), worst
