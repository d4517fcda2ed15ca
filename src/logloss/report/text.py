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


class GroupRows:
    """Per-group entries of a report, ``{"group": {by[0]: key[0], ...}, field: value, ...}`` for
    row i, held as columns: ``score --by`` makes one for the groups the kernels summed, which may
    be millions (a dict per group cost about a kilobyte, and the formatters' work per value
    grew faster than the rows). The formatters here render it a slice of rows at a time, column
    by column. ``fields`` maps each field to a list or a 1-d array; rows where ``undefined`` (a
    boolean array) is true have None in the fields named by UNDEFINED (groups whose weights
    are all zero); ``notes`` maps a row number to the note its entry ends with."""

    UNDEFINED = ("log_loss", "base_rate", "normalized_entropy", "calibration")
    SLICE = 1 << 14

    def __init__(self, by, keys: list, fields: dict, undefined=None, notes=None):
        self.by, self.keys, self.fields = list(by), keys, fields
        self.undefined, self.notes = undefined, dict(notes or {})

    def __len__(self) -> int:
        return len(self.keys)

    def slices(self):
        """(first row, keys, {field: list of values}) of consecutive rows, SLICE at a time."""
        for start in range(0, len(self.keys), self.SLICE):
            stop = start + self.SLICE
            values = {name: column[start:stop].tolist() if hasattr(column, "tolist")
                      else list(column[start:stop]) for name, column in self.fields.items()}
            if self.undefined is not None:
                for row in [int(r) for r in self.undefined[start:stop].nonzero()[0]]:
                    for name in self.UNDEFINED:
                        values[name][row] = None
            yield start, self.keys[start:stop], values

    def row(self, key: tuple, values: dict, i: int, number: int) -> dict:
        entry = {"group": dict(zip(self.by, key)), **{n: column[i] for n, column in values.items()}}
        if number in self.notes:
            entry["note"] = self.notes[number]
        return entry

    def __iter__(self):
        for start, keys, values in self.slices():
            for i, key in enumerate(keys):
                yield self.row(key, values, i, start + i)


def group_notes(groups) -> list:
    """(group, note) of the entries that carry a note."""
    if isinstance(groups, GroupRows):
        return [(dict(zip(groups.by, groups.keys[row])), note) for row, note in sorted(groups.notes.items())]
    return [(group["group"], group["note"]) for group in groups if "note" in group]


def json_text(value) -> str:
    """``json.dumps(jsonable(value), indent=2, allow_nan=False)``, the same text, without the
    standard library's pure-Python walk that indentation costs (a report of 20 000 groups spent
    longer in it than in scoring): a list's items are rendered column by column (each field of
    dicts that share their keys at once, through one template). Anything but dicts with text
    keys, lists, text, ints, floats, booleans, None and GroupRows is left to the standard
    library."""
    return "".join(json_pieces(value))


# Stands for a GroupRows while the text around it is rendered: raw NUL is never in JSON text.
_ROWS_HERE = "\x00rows\x00"


def json_pieces(value):
    """json_text's text in pieces: a GroupRows directly in ``value`` (a dict) a slice of rows
    per piece, so that a report of millions of groups is written without being held whole."""
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

    def group_rows(rows: GroupRows, pad: str):
        """render() of the entries as a list of dicts, in pieces of a slice of rows."""
        if not len(rows):
            yield "[]"
            return
        inner, deeper, deepest = pad + "  ", pad + "    ", pad + "      "
        yield "[\n"
        for start, keys, values in rows.slices():
            names = list(values)
            group = ("{\n" + ",\n".join(deepest + string(b).replace("%", "%%") + ": %s" for b in rows.by)
                     + "\n" + deeper.replace("%", "%%") + "}")
            groups = [group % row for row in zip(*(column([k[j] for k in keys], deepest)
                                                   for j in range(len(rows.by))))]
            template = ("{\n" + ",\n".join(deeper + string(k).replace("%", "%%") + ": %s"
                                            for k in ["group", *names])
                        + "\n" + inner.replace("%", "%%") + "}")
            texts = [template % row for row in zip(groups, *(column(values[n], deeper) for n in names))]
            for number in [n for n in rows.notes if start <= n < start + len(keys)]:
                i = number - start
                texts[i] = render(rows.row(keys[i], values, i, number), inner)
            yield ("" if start == 0 else ",\n") + ",\n".join(inner + text for text in texts)
        yield "\n" + pad + "]"

    found = []  # (rows, pad) of the GroupRows met, rendered after the text around them

    def render(value, pad: str) -> str:
        kind = type(value)
        if kind is GroupRows:
            found.append((value, pad))
            return _ROWS_HERE
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

    text = render(value, "")
    if not found:
        yield text
        return
    parts = text.split(_ROWS_HERE)
    for part, (rows, pad) in zip(parts, found):
        yield part
        yield from group_rows(rows, pad)
    yield parts[-1]


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
        groups = report_["groups"]
        if isinstance(groups, GroupRows):
            for _, keys, values in groups.slices():
                names = [", ".join(f"{format_key(b)}={format_key(v)}" for b, v in zip(groups.by, key))
                         for key in keys]
                columns = [list(map(format_value, values[f])) for f in _TABLE_FIELDS]
                rows.extend([name, *cells] for name, *cells in zip(names, *columns))
        else:
            for group in groups:
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


def csv_pieces(report_: dict):
    """The report as CSV, in pieces (a slice of a GroupRows' rows per piece)."""
    import csv
    import io

    by = report_.get("by", [])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    # csv quotes a field holding the line terminator ("\n") but not a bare "\r", which CSV
    # readers take as a line end too: a row with a "\r" in it is written with every field quoted,
    # so that a group value cannot split its row or forge another.
    quoted = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_ALL)

    def write(rows, cells) -> None:
        """Write the rows; ``cells``: their text cells, searched for a carriage return."""
        if "\r" not in "".join(cells):
            writer.writerows(rows)
            return
        for row in rows:
            (quoted if any("\r" in value for value in row) else writer).writerow(row)

    def taken() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    fields = ["rows_scored", "positives", "total_weight", "log_loss", "normalized_entropy",
              "calibration", "base_rate", "infinite"]
    # "level" tells a group's row from the total's, whatever the group values are; the
    # total's group columns are empty.
    write([(["level"] if by else []) + by + fields], by)
    groups = report_.get("groups", [])
    if isinstance(groups, GroupRows):
        for _, keys, values in groups.slices():
            columns = [_csv_column([key[j] for key in keys]) for j in range(len(by))]
            columns += [_csv_column(values[f]) for f in fields]
            write(zip(["group"] * len(keys), *columns),
                  [cell for column in columns[:len(by)] for cell in column])
            yield taken()
    else:
        for group in groups:
            keys = [_csv(group["group"][b]) for b in by]
            write([["group"] + keys + [_csv(group[f]) for f in fields]], keys)
    writer.writerow((["total"] if by else []) + [""] * len(by) + [_csv(report_[f]) for f in fields])
    yield taken()


def _csv(value) -> str:
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else str(value)


def _csv_column(values: list) -> list:
    """_csv of every value: at C speed where the column holds one plain type."""
    kinds = set(map(type, values))
    if kinds == {float}:
        return list(map(float.__repr__, values))
    if kinds == {int} or kinds == {str}:
        return list(map(str, values))
    return list(map(_csv, values))
