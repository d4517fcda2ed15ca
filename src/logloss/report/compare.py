"""``logloss.compare``: every framework's log loss next to the exact one, and why they differ."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass

from .. import conventions

_HEADER = ("convention", "framework", "value", "vs exact", "relative", "rows changed",
           "total change", "what it does")


@dataclass(frozen=True)
class Comparison:
    """The table: one row per convention, the exact value first.

    Each row: ``value`` (the convention's mean, in its units and with its normalization),
    ``exact`` (the exact value with the same normalization and units), ``difference`` and
    ``relative_difference`` from it, ``rows_changed`` (rows whose loss moved by more than 1e-6
    of max(1, exact loss): the rows the convention bounded or binarised) and ``total_change``
    (the sum of w * (its loss - exact loss) over them). ``value`` is None with a ``note`` for
    a convention that does not apply (no logits form; class labels only).
    """

    rows: tuple[dict, ...]
    count: int
    total_weight: float
    from_logits: bool

    def to_dict(self) -> dict:
        return {"count": self.count, "total_weight": self.total_weight,
                "from_logits": self.from_logits, "conventions": [dict(r) for r in self.rows]}

    def _cells(self) -> list[list[str]]:
        cells = []
        for row in self.rows:
            name = row["convention"]
            info = conventions.CONVENTIONS.get(name)
            framework = info.framework if info else "logloss (exact)"
            what = row["note"] or (info.bound if info else "nothing: exact")
            if row["value"] is None:
                cells.append([name, framework, "-", "-", "-", "-", "-", what])
                continue
            unit = " bits" if row["units"] == "bits" else ""
            per = ", per element" if row["normalization"] == "count" else ""
            cells.append([
                name, framework, _number(row["value"]) + unit + per,
                _signed(row["difference"]), _percent(row["relative_difference"]),
                str(row["rows_changed"]), _signed(row["total_change"]), what,
            ])
        return cells

    def __str__(self) -> str:
        cells = self._cells()
        widths = [max(len(r[i]) for r in [list(_HEADER)] + cells) for i in range(len(_HEADER))]
        numeric = {2, 3, 4, 5, 6}

        def line(row):
            return "  ".join(c.rjust(w) if i in numeric else c.ljust(w)
                             for i, (c, w) in enumerate(zip(row, widths))).rstrip()

        lines = [line(_HEADER), "  ".join("-" * w for w in widths)]
        lines += [line(r) for r in cells]
        lines.append(f"{self.count} rows, total weight {_number(self.total_weight)}; "
                     "'per element': the mean divides by the element count, not the weight.")
        return "\n".join(lines) + "\n"

    def to_html(self) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in _HEADER)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
            for row in self._cells())
        return (f'<table class="logloss-compare"><thead><tr>{head}</tr></thead>'
                f"<tbody>{body}</tbody></table>")

    def _repr_html_(self) -> str:
        return self.to_html()


def _number(value: float) -> str:
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.6g}" if abs(value) < 1e-4 and value else f"{value:.6f}"


def _signed(value: float) -> str:
    if value == 0:
        return "0"
    return ("+" if value > 0 else "") + _number(value)


def _percent(value: float) -> str:
    if value == 0:
        return "0"
    if math.isinf(value):
        return "inf"
    return f"{value:+.2%}" if abs(value) >= 1e-4 else f"{value:+.2e}"


def from_state(state) -> Comparison:
    """The table of a filled ``logloss.conventions.compare_state()``."""
    rows = tuple(state.rows())
    return Comparison(rows, state.count, state.total_weight, state.from_logits)


def compare(y_true, y_pred, *, sample_weight=None, from_logits: bool = False) -> Comparison:
    """Every framework's log loss of these predictions, next to the exact value.

    One pass over the data (see ``logloss.conventions.compare_state`` for the streaming form):
    each convention of :mod:`logloss.conventions` is computed on the rows where it acts
    (predictions within 1e-6 of 0 or 1e-3 of 1, logits beyond ±13.8, or ±6.9 in float32, soft
    labels) and the exact loss is used elsewhere, where every convention agrees with it to its
    own rounding. The values agree with the frameworks to ~1e-7 relative; the functions of
    ``logloss.conventions`` give their exact bits. Arguments and errors as in :func:`logloss.binary_cross_entropy`.
    """
    state = conventions.compare_state(from_logits=from_logits)
    state.update(y_true, y_pred, sample_weight)
    return from_state(state)
