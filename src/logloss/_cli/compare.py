"""``logloss compare FILE...`` and the ``--clip`` / ``--convention`` options of ``logloss score``.

Both reuse ``logloss score``'s reading, checks and grouping (``_score``): they only hand it
another per-group state through ``Options.make_accumulator``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .. import conventions
from .._accumulator import Accumulator
from .._binary import binary_cross_entropy
from .._core.checks import check_clip
from .._core.derivatives import sigmoid
from .._core.statistics import Statistics
from ..report.compare import Comparison, from_state


@dataclass
class RowLossAccumulator(Accumulator):
    """An ``Accumulator`` whose per-row loss is another function (a bound, a convention).

    Rows arrive already checked by ``logloss score``. ``per_element`` divides the weighted sum
    by the row count (Keras, PyTorch) instead of the total weight.
    """

    loss_function: Callable | None = None
    per_element: bool = False

    def update(self, y_true, y_pred, sample_weight=None) -> RowLossAccumulator:
        y = np.asarray(y_true)
        x = np.asarray(y_pred)
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        with np.errstate(all="ignore"):
            losses = np.asarray(self.loss_function(y, x), dtype=np.float64)
            predictions = sigmoid(np, x.astype(np.float64)) if self.from_logits else x
        weighted = losses if w is None else losses * w
        labels = y.astype(np.float64)
        stats = Statistics(count=int(y.size), positives=float(np.sum(labels)),
                           infinite=int(np.count_nonzero(np.isinf(weighted))))
        stats.sums["loss"].add(float(np.sum(weighted)))
        stats.sums["weight"].add(float(y.size if w is None else np.sum(w)))
        stats.sums["label"].add(float(np.sum(labels if w is None else labels * w)))
        stats.sums["prediction"].add(float(np.sum(predictions if w is None else predictions * w,
                                                  dtype=np.float64)))
        self.statistics.merge(stats)
        return self

    def result(self) -> float:
        mean = super().result()
        return mean * self.total_weight / self.count if self.per_element else mean


@dataclass
class CompareAccumulator(Accumulator):
    """The exact ``Accumulator`` (for the usual report) plus a comparison of every convention."""

    state: object = None

    def update(self, y_true, y_pred, sample_weight=None) -> CompareAccumulator:
        super().update(y_true, y_pred, sample_weight)
        self.state.update(y_true, y_pred, sample_weight)
        return self

    def merge(self, other: CompareAccumulator) -> CompareAccumulator:
        super().merge(other)
        self.state.merge(other.state)
        return self


def add_score_options(parser) -> None:
    parser.add_argument("--clip", metavar="EPS", type=float,
                        help="bound each prediction to [EPS, 1 - EPS] (each loss at -log(EPS)); "
                        "off by default: the exact loss")
    parser.add_argument("--convention", metavar="NAME",
                        help="compute the loss as a framework does: "
                        + ", ".join(conventions.names()) + " (see `logloss compare`)")


def accumulator_factory(args, usage_error) -> Callable | None:
    """The per-group state for ``--clip`` / ``--convention``, or None for the exact loss."""
    clip = getattr(args, "clip", None)
    name = getattr(args, "convention", None)
    if clip is not None and name is not None:
        raise usage_error("--clip and --convention are two different bounds; pass one of them.")
    if clip is not None:
        try:
            bound = check_clip(clip)
        except (TypeError, ValueError) as error:
            raise usage_error(str(error).replace("`clip`", "--clip")) from None

        def clipped(y, x):
            return binary_cross_entropy(y, x, from_logits=args.logits, clip=bound,
                                        reduction="none")

        return lambda: RowLossAccumulator(from_logits=args.logits, loss_function=clipped)
    if name is not None:
        if name not in conventions.CONVENTIONS:
            raise usage_error(f"unknown --convention {name!r}. The conventions are: "
                              + ", ".join(conventions.names()) + ".")
        info = conventions.CONVENTIONS[name]
        if args.logits and not info.logits:
            raise usage_error(f"--convention {name} ({info.framework}) has no logits form; "
                              "it takes probabilities.")
        if not args.logits and not info.probabilities:
            raise usage_error(f"--convention {name} ({info.framework}) takes logits: pass "
                              "--logits.")

        def convention(y, x):
            return conventions.elementwise(name, y, x, from_logits=args.logits)

        return lambda: RowLossAccumulator(from_logits=args.logits, loss_function=convention,
                                          per_element=info.normalization == "count")
    return None


def compare_factory(args) -> Callable:
    return lambda: CompareAccumulator(
        from_logits=args.logits, state=conventions.compare_state(from_logits=args.logits))


def describe(args) -> dict:
    """What ``--clip`` / ``--convention`` add to the JSON report."""
    extra = {}
    if getattr(args, "clip", None) is not None:
        extra["clip"] = args.clip
    if getattr(args, "convention", None) is not None:
        extra["convention"] = args.convention
        extra["framework"] = conventions.CONVENTIONS[args.convention].framework
    return extra


def render_compare(result, summary: dict, args) -> str:
    """The text, JSON or CSV of ``logloss compare``: the table overall and per --by group."""
    from ..report.text import jsonable
    from .score import sort_key

    tables = [("(all)", _table(result.overall.state))]
    if result.groups:
        for key, accumulator in sorted(result.groups.items(), key=lambda kv: sort_key(kv[0])):
            name = ", ".join(f"{k}={v}" for k, v in zip(result.by, key))
            tables.insert(len(tables) - 1, (name, _table(accumulator.state)))
    if args.format == "json":
        document = {k: summary[k] for k in ("rows_read", "rows_scored", "rows_rejected",
                                            "rejected_by_reason", "files", "columns",
                                            "from_logits")}
        document["conventions"] = tables[-1][1].to_dict()["conventions"]
        if result.groups:
            document["groups"] = [{"group": dict(zip(result.by, key)),
                                   "conventions": _table(acc.state).to_dict()["conventions"]}
                                  for key, acc in sorted(result.groups.items(),
                                                         key=lambda kv: sort_key(kv[0]))]
        return json.dumps(jsonable(document), indent=2, allow_nan=False) + "\n"
    if args.format == "csv":
        import csv
        import io

        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        fields = ["convention", "value", "exact", "difference", "relative_difference",
                  "rows_changed", "total_change", "normalization", "units", "note"]
        writer.writerow((["group"] if result.groups else []) + fields)
        for name, table in tables:
            for row in table.rows:
                writer.writerow(([name] if result.groups else [])
                                + [_csv(row[f]) for f in fields])
        return buffer.getvalue()
    parts = []
    for name, table in tables:
        if result.groups:
            parts.append(f"{name}:\n")
        parts.append(str(table))
    parts.append(f"rows read {summary['rows_read']}, scored {summary['rows_scored']}, "
                 f"rejected {summary['rows_rejected']}\n")
    return "\n".join(parts) if result.groups else "".join(parts)


_ZERO_WEIGHT = "every weight in this group is zero: the weighted mean is undefined"


def _table(state) -> Comparison:
    """The state's table; a group whose weights are all zero has no mean (as in `score`, whose
    note its rows carry) rather than stopping the run (the whole file's is refused earlier)."""
    if not (state.count and state.total_weight_sum.value == 0):
        return from_state(state)
    names = [("exact", "weight", "nats")] + [
        (c.name, c.normalization, "bits" if c.scale != 1.0 else "nats") for c in state.columns]
    rows = tuple({"convention": name, "value": None, "exact": None, "difference": None,
                  "relative_difference": None, "rows_changed": None, "total_change": None,
                  "normalization": normalization, "units": units, "note": _ZERO_WEIGHT}
                 for name, normalization, units in names)
    return Comparison(rows, state.count, 0.0, state.from_logits)


def _csv(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "inf" if value == math.inf else "-inf" if value == -math.inf else repr(value)
    return str(value)
