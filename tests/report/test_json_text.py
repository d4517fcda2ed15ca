"""json_text: the standard library's indented JSON, the same text, faster."""

from __future__ import annotations

import json
import math

from logloss.report.text import json_text, jsonable


def test_json_text_is_the_standard_librarys_indented_text():
    cases = [{}, [], {"a": [], "b": {}}, [1, [2, {}], {"x": None}], "top", 3.0, None, [[[]]],
             {"a": 1.5, "b": math.nan, "c": math.inf, "d": -math.inf, "e": True, "f": False,
              "g": None, "h": "\u00e9\x1b\n\"\\", "i": 10**30, "j": -0.0, "k": 5e-324},
             {"k": {1: 2, None: 3}}, {"a": {"b": {1: [1, {2: 3}]}}}, {"t": (1, [2, {"u": 1}])},
             {"groups": [{"group": {"seg": 1, "s": "a"}, "log_loss": 0.1, "note": "x"}] * 3}]
    for case in cases:
        assert json_text(case) == json.dumps(jsonable(case), indent=2, allow_nan=False)


def test_json_text_renders_lists_of_dicts_column_by_column_as_the_standard_library():
    rows = [{"group": {"seg": i, "s%": "a%s", "a%s": "%"}, "log_loss": 0.1 * i, "n": i, "ok": i % 2 == 0,
             "note": None} for i in range(5)]
    mixed = rows + [{"group": {"seg": 1.5}, "log_loss": math.inf, "n": True, "ok": None, "note": "x"},
                    {"other": []}, {}, [], [1, "a"], {"k": {1: 2}}, {"group": {}}]
    for case in (rows, mixed, [rows, rows[:1]], {"groups": rows}, [{"a": math.nan}] * 3,
                 [{"a": [1, {"b": 2}]}] * 2):
        assert json_text(case) == json.dumps(jsonable(case), indent=2, allow_nan=False)
