"""Which columns hold the labels, predictions, weights and groups: given, or detected by name."""

from __future__ import annotations

from dataclasses import dataclass, field

from .sources import DataError, UsageError

LABEL_NAMES = ("label", "labels", "y", "y_true", "target", "click", "clicked", "clicks",
               "is_click", "outcome", "truth", "actual", "class")
PRED_NAMES = ("pred", "prediction", "predictions", "prob", "probability", "proba", "p",
              "score", "y_pred", "y_prob", "y_score", "yhat", "y_hat", "pctr", "ctr")
LOGIT_NAMES = ("logit", "logits", "margin", "raw_score", "z")


@dataclass
class Options:
    label: str | None = None
    pred: str | None = None
    weight: str | None = None
    by: list[str] = field(default_factory=list)
    logits: bool = False
    positive: str | None = None
    negative: str | None = None
    on_invalid: str = "error"
    # Makes the per-group state (default: an exact Accumulator); `--clip`, `--convention` and
    # `logloss compare` hand in their own (see compare.py).
    make_accumulator: object = None



def pick_columns(names: list[str], options: Options, source: str) -> dict[str, str | None]:
    """The label/pred/weight/by columns to read, detected from common names when not given."""
    if not names:
        raise DataError(f"{source}: the file has no columns (it is empty).")
    lowered = {n.lower(): n for n in names}
    listing = ", ".join(repr(n) for n in names)

    def chosen(role: str, given: str | None, candidates) -> str:
        if given is not None:
            if given not in names:
                raise UsageError(f"{source}: no column {given!r} (for {role}). "
                                 f"The columns are: {listing}.")
            return given
        for candidate in candidates:
            if candidate in lowered:
                return lowered[candidate]
        flag = "--label" if role == "labels" else "--pred"
        raise UsageError(f"{source}: cannot tell which column holds the {role}; pass {flag} COL. "
                         f"The columns are: {listing}.")

    label = chosen("labels", options.label, LABEL_NAMES)
    pred_candidates = LOGIT_NAMES + PRED_NAMES if options.logits else PRED_NAMES
    pred = chosen("predictions", options.pred, [c for c in pred_candidates if c != label.lower()])
    weight = chosen("weights", options.weight, ()) if options.weight else None
    for column in options.by:
        chosen("--by", column, ())
    for column in dict.fromkeys([label, pred, weight, *options.by]):
        places = [i + 1 for i, name in enumerate(names) if name == column]
        if len(places) > 1:
            raise DataError(f"{source}: the column name {column!r} appears {len(places)} times "
                            f"(columns {', '.join(map(str, places))}), so it is not clear which "
                            "one to read; rename the others.")
    return {"label": label, "pred": pred, "weight": weight}
