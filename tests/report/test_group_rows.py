"""GroupRows: score --by's per-group entries held as columns and rendered a slice at a time.

Each case builds the same entries twice: as GroupRows and as the list of dicts they stand for
(written out here, row by row). The JSON must be the standard library's text of the dicts, and
CSV and the table the text the formatters give for the dicts, whatever the slice size, key
types, undefined rows and notes.
"""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest

from logloss._cli.runs import write_output
from logloss.report import text
from logloss.report.text import GroupRows, csv_pieces, format_table, json_pieces, jsonable

FIELDS = ("log_loss", "rows_scored", "positives", "total_weight", "base_rate",
          "normalized_entropy", "calibration", "infinite")


def _case(name: str, rng):
    n = {"one row": 1, "empty": 0}.get(name, 50)
    by = ["g"]
    keys = [(i,) for i in range(n)]
    if name == "text keys":
        keys = [(f"k{i} %s \"q\" \\ é\n",) for i in range(n)]
    if name == "two columns with None, bool, float and NaN keys":
        by = ["a %s", "b \"%%\""]
        pool = [None, True, 1.5, math.nan, "x", 7]
        keys = [(pool[i % 6], pool[(i // 6) % 6]) for i in range(n)]
    fields = {
        "log_loss": rng.random(n),
        "rows_scored": rng.integers(1, 9, n),
        "positives": rng.integers(0, 3, n),
        "total_weight": rng.random(n) * 3,
        "base_rate": rng.random(n),
        "normalized_entropy": [math.nan if i % 7 == 0 else 0.25 * i for i in range(n)],
        "calibration": np.where(np.arange(n) % 5 == 0, np.nan, rng.random(n)),
        "infinite": np.zeros(n, dtype=np.int64),
    }
    if name == "fractional positives":
        fields["positives"] = [i + 0.5 if i % 3 else i for i in range(n)]
    if name == "an infinite loss":
        fields["log_loss"][3] = math.inf
        fields["infinite"][3] = 1
    undefined, notes = None, {}
    if name in ("zero-weight groups with notes", "text keys"):
        undefined = np.zeros(n, dtype=bool)
        undefined[[0, 17, n - 1]] = True
        fields["total_weight"][undefined] = 0.0
        notes = {0: "zero weights", 17: "zero weights", n - 1: "zero weights"}
    rows = GroupRows(by, keys, fields, undefined, notes)
    dicts = []
    for i, key in enumerate(keys):
        entry = {"group": dict(zip(by, key))}
        for f in FIELDS:
            value = fields[f][i]
            value = value.item() if isinstance(value, np.generic) else value
            if undefined is not None and undefined[i] and f in GroupRows.UNDEFINED:
                value = None
            entry[f] = value
        if i in notes:
            entry["note"] = notes[i]
        dicts.append(entry)
    return by, rows, dicts


CASES = ["plain", "one row", "empty", "text keys", "two columns with None, bool, float and NaN keys",
         "fractional positives", "an infinite loss", "zero-weight groups with notes"]


def _report(by, groups):
    return {"log_loss": 0.5, "rows_read": 10, "rows_scored": 9, "positives": 3, "total_weight": 9.0,
            "base_rate": 1 / 3, "normalized_entropy": 0.7, "calibration": 1.1, "infinite": 0,
            "by": by, "groups": groups, "after": [1, 2]}


@pytest.mark.parametrize("slice_rows", [1, 7, 1 << 14])
@pytest.mark.parametrize("case", CASES)
def test_group_rows_render_as_the_dicts_they_stand_for(case, slice_rows, monkeypatch):
    monkeypatch.setattr(GroupRows, "SLICE", slice_rows)
    by, rows, dicts = _case(case, np.random.default_rng(len(case)))
    assert repr(list(rows)) == repr(dicts)  # (NaN is not equal to itself)
    expected = json.dumps(jsonable(_report(by, dicts)), indent=2, allow_nan=False)
    assert "".join(json_pieces(_report(by, rows))) == expected
    assert text.json_text(_report(by, rows)) == expected
    assert "".join(csv_pieces(_report(by, rows))) == "".join(csv_pieces(_report(by, dicts)))
    assert format_table(_report(by, rows)) == format_table(_report(by, dicts))
    assert text.group_notes(rows) == text.group_notes(dicts)


def test_json_arrives_in_pieces_of_a_slice_each(monkeypatch):
    monkeypatch.setattr(GroupRows, "SLICE", 8)
    by, rows, _ = _case("plain", np.random.default_rng(0))
    pieces = list(json_pieces(_report(by, rows)))
    assert len(pieces) >= 50 // 8 + 2  # the text around, and a piece per slice
    assert max(len(p) for p in pieces) < 8 * 400


@pytest.mark.parametrize("to_file", [True, False])
def test_write_output_takes_pieces(tmp_path, capsys, to_file):
    pieces = (str(i) + "\n" for i in range(1000))
    target = tmp_path / "out.txt"
    write_output(pieces, str(target) if to_file else None)
    written = target.read_text() if to_file else capsys.readouterr().out
    assert written == "".join(str(i) + "\n" for i in range(1000))
    if to_file:
        assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_a_failing_piece_leaves_no_file_behind(tmp_path):
    def pieces():
        yield "partial"
        raise OSError("disk full")

    target = tmp_path / "out.txt"
    with pytest.raises(OSError):
        write_output(pieces(), str(target))
    assert list(tmp_path.iterdir()) == []


def test_the_command_writes_many_groups_as_before(tmp_path):
    """score --by on 30,000 groups: JSON and CSV through GroupRows equal the text of the group
    entries read back and written by the standard library."""
    import csv

    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    from logloss._cli import main

    rng = np.random.default_rng(5)
    n = 200_000
    p = rng.uniform(0.01, 0.99, n)
    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({"label": (rng.random(n) < p).astype(np.int8), "pred": p,
                             "g": rng.integers(0, 30_000, n)}), path)
    out = tmp_path / "out.json"
    assert main(["score", str(path), "--by", "g", "-q", "--format", "json", "-o", str(out)]) == 0
    written = out.read_text()
    document = json.loads(written)
    assert len(document["groups"]) == len(set(document["groups"][i]["group"]["g"]
                                               for i in range(len(document["groups"]))))
    assert written == json.dumps(document, indent=2) + "\n"
    assert main(["score", str(path), "--by", "g", "-q", "--format", "csv", "-o", str(out)]) == 0
    table = list(csv.reader(io.StringIO(out.read_text())))
    assert len(table) == 1 + len(document["groups"]) + 1
    assert float(table[1][5]) == document["groups"][0]["log_loss"]
