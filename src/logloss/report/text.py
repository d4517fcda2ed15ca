"""The score report as text: an aligned table, CSV, and JSON-safe values."""

from __future__ import annotations

import math


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


def format_table(report_: dict) -> str:
    head = ["group"] if "groups" in report_ else []
    header = head + ["rows", "positives", "log_loss", "normalized_entropy", "calibration"]
    rows = []
    if "groups" in report_:
        for group in report_["groups"]:
            name = ", ".join(f"{k}={format_value(v) if v is not None else 'null'}"
                             for k, v in group["group"].items())
            rows.append([name] + [format_value(group[f]) for f in _TABLE_FIELDS])
        rows.append(["(all)"] + [format_value(report_[f]) for f in _TABLE_FIELDS])
    else:
        rows.append([format_value(report_[f]) for f in _TABLE_FIELDS])
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i == 0 and head else c.rjust(w)
                       for i, (c, w) in enumerate(zip(r, widths))) for r in [header] + rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n"


def format_csv(report_: dict) -> str:
    import csv
    import io

    by = report_.get("by", [])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    fields = ["rows_scored", "positives", "total_weight", "log_loss", "normalized_entropy",
              "calibration", "base_rate", "infinite"]
    writer.writerow(by + fields)
    for group in report_.get("groups", []):
        writer.writerow([group["group"][b] for b in by] + [_csv(group[f]) for f in fields])
    writer.writerow(["(all)"] * len(by) + [_csv(report_[f]) for f in fields])
    return buffer.getvalue()


def _csv(value) -> str:
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else str(value)
