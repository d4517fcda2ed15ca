"""`logloss score --by`, attacked: hostile group values and types, against per-group references
computed here (math.fsum over a plain dict), never taken from the code under test."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
import pyarrow.parquet as pq  # noqa: E402

from logloss._cli import main  # noqa: E402


def _score(capsys, *argv, fmt="json"):
    code = main(["score", *map(str, argv), "--format", fmt, "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out) if fmt == "json" else captured.out


def _printed(value):
    """A key as the report prints it: NaN and infinities as text, -0.0 as 0.0 (one group)."""
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value + 0.0
    return value


def _reference(y, p, w, keys) -> dict:
    """Per key: (weighted mean log loss or None, rows), by math.fsum of each group's rows."""
    sums: dict = {}
    for yi, pi, wi, key in zip(y, p, w, keys):
        loss = -math.log(pi) if yi else -math.log1p(-pi)
        entry = sums.setdefault(key, [[], [], 0])
        entry[0].append(wi * loss)
        entry[1].append(wi)
        entry[2] += 1
    return {key: (math.fsum(a) / math.fsum(b) if math.fsum(b) > 0 else None, n)
            for key, (a, b, n) in sums.items()}


def _columns(n, rng):
    """Group columns of every kind a Parquet file holds, hostile values included."""
    text = ["a", "", "a\x00b", "a\x00c", "é", "x" * 5000, None, "\r", "NaN"]
    return {
        "int8": pa.array(rng.integers(-128, 128, n).astype("int8")),
        "uint64_high": pa.array(rng.choice(np.array([0, 2**63, 2**64 - 1, 5], "uint64"), n)),
        "int64_ends": pa.array(rng.choice(np.array([-2**63, 2**63 - 1, 0, -1], "int64"), n)),
        "bool_null": pa.array([None if i % 7 == 0 else bool(i % 2) for i in range(n)]),
        "float_special": pa.array(rng.choice([0.0, -0.0, math.nan, math.inf, -math.inf, 1.5], n)),
        "text": pa.array(rng.choice(np.array(text, dtype=object), n).tolist(), pa.string()),
        "dictionary": pa.array(rng.choice(["b", "a", "c"], n).tolist()).dictionary_encode(),
    }


@pytest.mark.parametrize("kind", list(_columns(1, np.random.default_rng(0))))
@pytest.mark.parametrize("row_group", [None, 97])  # one batch, or groups first seen later
def test_each_group_matches_an_fsum_reference(tmp_path, capsys, kind, row_group):
    rng = np.random.default_rng(7)
    n = 1500
    y, p, w = rng.integers(0, 2, n), rng.random(n), rng.random(n)
    w[rng.random(n) < 0.1] = 0.0
    group = _columns(n, rng)[kind]
    path = tmp_path / "g.parquet"
    pq.write_table(pa.table({"label": y, "pred": p, "w": w, "g": group}), path,
                   row_group_size=row_group)
    result = _score(capsys, path, "--by", "g", "--weight", "w")
    expected = _reference(y.tolist(), p.tolist(), w.tolist(), map(_printed, group.to_pylist()))
    got = {_printed(g["group"]["g"]): (g["log_loss"], g["rows_scored"]) for g in result["groups"]}
    assert len(got) == len(result["groups"]) and set(got) == set(expected)
    for key, (mean, rows) in expected.items():
        assert got[key][1] == rows
        assert got[key][0] == pytest.approx(mean, rel=4e-16, abs=0), key


def test_csv_output_quotes_a_bare_carriage_return(tmp_path, capsys):
    # csv.writer with lineterminator "\n" quotes "\n" but not "\r", which CSV readers take as
    # a line end: a group value "\r" split its row in two (a forged row in the output).
    values = ["\r", "a\rb", "\r\n", "plain", "c\nd"]
    path = tmp_path / "g.parquet"
    pq.write_table(pa.table({"label": [1, 0] * len(values), "pred": [0.25] * (2 * len(values)),
                             "g\r": [v for v in values for _ in (0, 1)]}), path)
    rows = list(csv.reader(io.StringIO(_score(capsys, path, "--by", "g\r", fmt="csv"),
                                       newline="")))
    assert rows[0][:2] == ["level", "g\r"]
    assert [row[:3] for row in rows[1:]] == (
        [["group", v, "2"] for v in sorted(values)] + [["total", "", "10"]])


@pytest.mark.parametrize("first, second", [
    (["1", "1"], ["1", "abc"]),          # numbers in one file, text in the other
    (["abc", "1"], ["1", "1"]),          # the same, text first
    (["true", "false"], ["1", "0"]),     # booleans and numbers: True == 1 in a dict
    (["2024-01-01", "2024-01-01"], ["2024-01-01", "n/a"]),  # timestamps and text
])
def test_a_csv_value_is_one_group_whatever_each_file_infers(tmp_path, capsys, first, second):
    # Each CSV file's types are inferred from its own first block: the same text "1" was the
    # number 1 in one file and the text "1" in the other, two groups printed alike (g=1 twice),
    # and "true" merged with "1" (True == 1). A CSV value is text: one group per distinct text.
    rows = [(1, 0.5, first[0]), (0, 0.25, first[1]), (1, 0.75, second[0]), (0, 0.125, second[1])]
    paths = [tmp_path / "a.csv", tmp_path / "b.csv"]
    for path, part in zip(paths, (rows[:2], rows[2:])):
        path.write_text("label,pred,g\n" + "".join(f"{y},{p},{g}\n" for y, p, g in part))
    result = _score(capsys, *paths, "--by", "g")
    expected = _reference(*zip(*[(y, p, 1.0, g) for y, p, g in rows]))
    got = {str(g["group"]["g"]): (g["log_loss"], g["rows_scored"]) for g in result["groups"]}
    assert len(got) == len(result["groups"]) == len(expected)
    for key, (mean, count) in expected.items():
        assert got[key][1] == count, key
        assert got[key][0] == pytest.approx(mean, rel=4e-16, abs=0), key


def test_reading_csv_groups_as_text_keeps_a_file_that_is_not_utf8(tmp_path, capsys):
    # Read as text for the other files' sake, a file whose group column is not UTF-8 failed
    # ("invalid UTF8"); alone, it is read as binary values (hexadecimal keys), and still is.
    (tmp_path / "a.csv").write_bytes(b"label,pred,g\n1,0.5,1\n")
    (tmp_path / "b.csv").write_bytes(b"label,pred,g\n1,0.25,1\n0,0.5,abc\n")
    (tmp_path / "c.csv").write_bytes(b"label,pred,g\n0,0.75,\xff\n")
    result = _score(capsys, *(tmp_path / n for n in ("a.csv", "b.csv", "c.csv")), "--by", "g")
    got = {g["group"]["g"]: g["rows_scored"] for g in result["groups"]}
    assert got == {"1": 2, "abc": 1, "ff": 1}


@pytest.mark.parametrize("order", [[-0.0, 0.0], [0.0, -0.0]])
def test_the_zero_group_prints_the_same_whichever_zero_comes_first(tmp_path, capsys, order):
    # 0.0 and -0.0 are one group; its key was whichever came first, so a file whose first
    # row held -0.0 reported the zeros' group as -0.0 (and a reordered file as 0.0).
    for clip in ([], ["--clip", "1e-9"]):  # the kernels' path and the accumulators'
        path = tmp_path / "z.parquet"
        pq.write_table(pa.table({"label": [1, 0], "pred": [0.5, 0.5],
                                 "g": pa.array(order, pa.float64())}), path)
        result = _score(capsys, path, "--by", "g", *clip)
        [group] = result["groups"]
        assert group["rows_scored"] == 2 and math.copysign(1, group["group"]["g"]) == 1
        table = _score(capsys, path, "--by", "g", *clip, fmt="table")
        assert "g=0.0 " in table and "-0.0" not in table

