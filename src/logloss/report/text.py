"""The score report as text: an aligned table, CSV, and JSON-safe values."""

from __future__ import annotations

import math
import re


def finite_or_none(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def jsonable(value):
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return finite_or_none(value)


def json_text(value) -> str:
    """``json.dumps(jsonable(value), indent=2, allow_nan=False)``, the same text, without the
    standard library's pure-Python walk that indentation costs (a report of 20 000 groups spent
    longer in it than in scoring): a list's items are rendered column by column (each field of
    dicts that share their keys at once, through one template). Anything but dicts with text
    keys, lists, text, ints, floats, booleans and None is left to the standard library."""
    import json

    string = json.encoder.encode_basestring_ascii

    def fallback(value, pad: str) -> str:
        return json.dumps(jsonable(value), indent=2, allow_nan=False).replace("\n", "\n" + pad)

    def number(v: float) -> str:
        return float.__repr__(v) if math.isfinite(v) else "null"

    text_of = {float: number, int: int.__repr__, str: string, bool: lambda v: "true" if v else "false",
               type(None): lambda v: "null"}

    def scalars(values: list) -> list | None:
        """Each value's text where all are plain scalars (bool is not int here), else None."""
        kinds = set(map(type, values))
        if not kinds <= text_of.keys():
            return None
        if kinds == {float} and all(map(math.isfinite, values)):
            return list(map(float.__repr__, values))
        if len(kinds) == 1 and kinds <= {int, str}:
            return list(map(text_of[kinds.pop()], values))
        return [text_of[type(v)](v) for v in values]

    def column(values: list, pad: str) -> list:
        """render(v, pad) of every value."""
        texts = scalars(values)
        if texts is not None:
            return texts
        if values and all(type(v) is dict for v in values):
            keys = tuple(values[0])
            if keys and all(type(k) is str for k in keys) and all(tuple(v) == keys for v in values):
                inner = pad + "  "
                template = ("{\n" + ",\n".join(inner + string(k).replace("%", "%%") + ": %s" for k in keys)
                            + "\n" + pad.replace("%", "%%") + "}")
                fields = [column([v[k] for v in values], inner) for k in keys]
                return [template % row for row in zip(*fields)]
        return [render(v, pad) for v in values]

    def render(value, pad: str) -> str:
        kind = type(value)
        if kind is list:
            if not value:
                return "[]"
            inner = pad + "  "
            return "[\n" + ",\n".join(inner + text for text in column(value, inner)) + "\n" + pad + "]"
        if kind is dict and all(type(k) is str for k in value):
            if not value:
                return "{}"
            inner = pad + "  "
            return "{\n" + ",\n".join(f"{inner}{string(k)}: {column([v], inner)[0]}"
                                       for k, v in value.items()) + "\n" + pad + "}"
        texts = scalars([value])
        return texts[0] if texts is not None else fallback(value, pad)

    return render(value, "")


_TABLE_FIELDS = ("rows_scored", "positives", "log_loss", "normalized_entropy", "calibration")


def format_value(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        # Fixed decimals line the columns up; a tiny loss (a near-perfect model) keeps its digits.
        # JSON and CSV output carry the full float64 value.
        return f"{value:.6f}" if value == 0 or abs(value) >= 1e-4 else f"{value:.4e}"
    return str(value)


_PLAIN = re.compile(r"[\w.:+\-/@ ]+")


def format_key(value) -> str:
    """A group value for the table: text as is when it is plain, else quoted with every control
    character, escape sequence and line break escaped (repr), so that what a file holds cannot
    move the cursor, colour the terminal or forge a row."""
    if value is None:
        return "null"
    if isinstance(value, str):
        plain = (_PLAIN.fullmatch(value) and value == value.strip() and value != "null"
                 and value.isprintable())
        return value if plain else repr(value)
    return repr(value) if isinstance(value, float) else str(value)


TOTAL_LABEL = "TOTAL"  # a group cell always holds "name=value", so this cannot be a group's


def format_table(report_: dict) -> str:
    head = ["group"] if "groups" in report_ else []
    header = head + ["rows", "positives", "log_loss", "normalized_entropy", "calibration"]
    rows = []
    if "groups" in report_:
        for group in report_["groups"]:
            name = ", ".join(f"{format_key(k)}={format_key(v)}" for k, v in group["group"].items())
            rows.append([name] + [format_value(group[f]) for f in _TABLE_FIELDS])
        rows.append([TOTAL_LABEL] + [format_value(report_[f]) for f in _TABLE_FIELDS])
    else:
        rows.append([format_value(report_[f]) for f in _TABLE_FIELDS])
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i == 0 and head else c.rjust(w)
                       for i, (c, w) in enumerate(zip(r, widths))) for r in [header] + rows]
    rule = "  ".join("-" * w for w in widths)
    lines.insert(1, rule)
    if head:
        lines.insert(len(lines) - 1, rule)  # the total stands apart from the groups
    return "\n".join(lines) + "\n"


def format_csv(report_: dict) -> str:
    import csv
    import io

    by = report_.get("by", [])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    fields = ["rows_scored", "positives", "total_weight", "log_loss", "normalized_entropy",
              "calibration", "base_rate", "infinite"]
    # "level" tells a group's row from the total's, whatever the group values are; the
    # total's group columns are empty.
    writer.writerow((["level"] if by else []) + by + fields)
    for group in report_.get("groups", []):
        writer.writerow(["group"] + [_csv(group["group"][b]) for b in by]
                        + [_csv(group[f]) for f in fields])
    writer.writerow((["total"] if by else []) + [""] * len(by) + [_csv(report_[f]) for f in fields])
    return buffer.getvalue()


def _csv(value) -> str:
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else str(value)
