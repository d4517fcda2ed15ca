"""One column batch -> checked NumPy arrays: every bad row is marked with its reason, so that it
is either named (file, row, column, value) or skipped and counted."""

from __future__ import annotations

import numpy as np

from .sources import DataError, UsageError

# The text a number may be written as: what pyarrow's CSV reader and cast accept, ASCII only.
# Python's float() also takes "0.9_9", " 0.5" and digits of other scripts ("٠.٥", "０.５"),
# which are not numbers in a data file.
NUMBER_PATTERN = (r"^[+-]?(?:[0-9]+\.?[0-9]*(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?"
                  r"|(?i:inf|infinity|nan))$")

# A row with several problems is counted once, under its first reason in this order: the label,
# then the prediction, then the weight; for a column, the order below.
ROLES = ("label", "pred", "weight")
REASON_TEXT = {
    "missing": "is missing",
    "non_numeric": "is not a number",
    "nan": "is NaN",
    "out_of_range": "is not a probability in [0, 1] (pass --logits for logits)",
    "not_binary": "is neither 0 nor 1 (pass --positive VALUE for other labels)",
    "not_positive_or_negative": "is neither the --positive value nor the negative label",
    "bad_weight": "is not a finite, non-negative weight",
}




_FLOATS = {"halffloat": np.float16, "float": np.float32, "double": np.float64}


def numpy_view(array) -> np.ndarray:
    """An Arrow array's values as NumPy (its null slots hold arbitrary values).

    Not ``Array.to_numpy``: pyarrow imports pandas on its first conversion, which costs more
    than a small file's whole run (see benchmarks/bench_startup.py). Fixed-width numbers are
    viewed in place; booleans are unpacked from their bits.
    """
    import pyarrow as pa

    kind, n, offset = array.type, len(array), array.offset
    data = array.buffers()[1]
    if data is None:  # the null type, or no values at all
        return array.to_numpy(zero_copy_only=False)
    if pa.types.is_boolean(kind):
        bits = np.frombuffer(data, dtype=np.uint8)
        return np.unpackbits(bits, bitorder="little", count=offset + n)[offset:].astype(bool)
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        dtype = np.dtype(_FLOATS.get(str(kind), str(kind)))
        return np.frombuffer(data, dtype=dtype, count=offset + n)[offset:]
    return array.to_numpy(zero_copy_only=False)


def is_arrow(array) -> bool:
    return not isinstance(array, np.ndarray)


def numeric_values(array, reasons: dict, role: str):
    """float/int NumPy values of a column; marks missing and non-numeric rows in ``reasons``."""
    if not is_arrow(array):
        if array.dtype.kind == "b":
            _refuse_boolean(role)
        if array.dtype.kind not in "biuf":
            return numeric_values(__import__("pyarrow").array(array.astype(str)), reasons, role)
        return array
    import pyarrow as pa

    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    array = as_text_if_binary(array)
    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        import pyarrow.compute as pc  # only here: its import is a large part of a small run

        try:
            array = pc.cast(array, pa.float64())
        except pa.ArrowInvalid:
            array = pc.utf8_trim(array, " \t")  # " 0.5" (CSV written with ", ") is 0.5
            number = pc.fill_null(pc.match_substring_regex(array, NUMBER_PATTERN), True)
            number = numpy_view(number)
            mark(reasons, role, "non_numeric", ~number, len(array))
            array = pc.cast(pc.if_else(pa.array(number), array, "0"), pa.float64())
    elif pa.types.is_decimal(array.type):
        import pyarrow.compute as pc

        array = pc.cast(array, pa.float64())  # to the nearest float64, as a CSV number is read
    elif not (pa.types.is_integer(array.type) or pa.types.is_floating(array.type)
              or pa.types.is_boolean(array.type) or pa.types.is_null(array.type)):
        raise DataError(f"the {role} column has type {array.type}, which is not numeric")
    if pa.types.is_boolean(array.type):
        _refuse_boolean(role)
    if array.null_count:
        mark(reasons, role, "missing", numpy_view(array.is_null()), len(array))
    if pa.types.is_null(array.type):  # a column with no value at all (no 0 to fill it with)
        return np.zeros(len(array), dtype=np.float64)
    # a missing true/false label is filled with false (pyarrow will not fill booleans with 0)
    fill = False if pa.types.is_boolean(array.type) else 0
    return numpy_view(array.fill_null(fill) if array.null_count else array)


def _refuse_boolean(role: str) -> None:
    """true/false predictions are predicted classes (`predict` where `predict_proba` was meant):
    read as probabilities 1 and 0 they would give a loss of 0 or infinity, not the model's."""
    if _base_role(role) == "pred":
        raise DataError(
            f"the {role} column holds true/false values, which are predicted classes, not "
            "probabilities. Score the predicted probabilities (or logits, with --logits); a "
            "prediction of exactly 0 or 1 can be written as the number."
        )


def _base_role(role: str) -> str:
    return "pred" if role.startswith("pred") else role  # pred, pred1, ...: several models


def first_reasons(reasons: dict, n: int) -> tuple[dict, np.ndarray]:
    """Each bad row under one reason only (its first, in the order of ROLES, then of the model
    columns, then of REASON_TEXT), and the mask of bad rows."""
    reason_order = list(REASON_TEXT)

    def order(key):
        role, reason = key
        return ROLES.index(_base_role(role)), len(role), role, reason_order.index(reason)

    bad = np.zeros(n, dtype=bool)
    counted = {}
    for key in sorted(reasons, key=order):
        mask = reasons[key] & ~bad
        if mask.any():
            counted[key] = mask
            bad |= mask
    return counted, bad


def reject_bad_rows(reasons: dict, n: int, raw: dict, names: dict, path: str, offset: int,
                    on_invalid: str, rejected: dict) -> np.ndarray:
    """The rows to keep. With ``on_invalid="error"`` the first bad row is a DataError naming the
    file, row, column and value; with "skip" each bad row is counted once in ``rejected``."""
    counted, bad = first_reasons(reasons, n)
    if on_invalid == "error" and bad.any():
        row = int(np.argmax(bad))
        role, reason = next(k for k, m in counted.items() if m[row])
        value = raw[role][row]
        value = value.as_py() if hasattr(value, "as_py") else value.item()
        raise DataError(f"{path}: row {offset + row + 1}, column {names[role]!r}: "
                        f"value {value!r} {REASON_TEXT[reason]}.")
    for (role, reason), mask in counted.items():
        key = f"{_base_role(role)}_{reason}"
        rejected[key] = rejected.get(key, 0) + int(np.count_nonzero(mask))
    return ~bad


def as_text_if_binary(array):
    """pyarrow reads a CSV column holding bytes that are not UTF-8 as binary: read it as text,
    those bytes shown escaped (b"\\xff" becomes "\\xff"), so they are named, never numbers."""
    import pyarrow as pa

    if not (pa.types.is_binary(array.type) or pa.types.is_large_binary(array.type)):
        return array
    return pa.array([None if v is None else v.decode("utf-8", "backslashreplace")
                     for v in array.to_pylist()], pa.string())


def mark(reasons: dict, role: str, reason: str, index, n: int) -> None:
    """Record ``reason`` for the rows ``index`` (an int or a boolean mask) of a batch."""
    key = (role, reason)
    mask = reasons.get(key)
    if mask is None:
        mask = reasons[key] = np.zeros(n, dtype=bool)
    mask[index] = True


def check_predictions(p: np.ndarray, reasons: dict, logits: bool) -> None:
    if p.dtype.kind == "f":
        if logits:
            if np.isnan(np.sum(p)):  # fast path: a sum is NaN if any element is (or inf - inf)
                nan = np.isnan(p)
                if nan.any():
                    mark(reasons, "pred", "nan", nan, len(p))
            return
        if len(p) and p.min() >= 0 and p.max() <= 1:  # NaN fails both comparisons
            return
        nan = np.isnan(p)
        if nan.any():
            mark(reasons, "pred", "nan", nan, len(p))
        outside = ~nan & ~((p >= 0) & (p <= 1))
        if outside.any():
            mark(reasons, "pred", "out_of_range", outside, len(p))
    elif not logits and len(p) and not (p.min() >= 0 and p.max() <= 1):
        mark(reasons, "pred", "out_of_range", (p < 0) | (p > 1), len(p))


def check_labels(y: np.ndarray, reasons: dict) -> None:
    if not len(y) or y.dtype.kind == "b":
        return
    if y.dtype.kind in "iu":
        if y.min() >= 0 and y.max() <= 1:
            return
        mark(reasons, "label", "not_binary", (y < 0) | (y > 1), len(y))
        return
    binary = (y == 0) | (y == 1)
    if binary.all():
        return
    nan = np.isnan(y)
    if nan.any():
        mark(reasons, "label", "nan", nan, len(y))
    if (~binary & ~nan).any():
        mark(reasons, "label", "not_binary", ~binary & ~nan, len(y))


def check_weights(w: np.ndarray, reasons: dict) -> None:
    if len(w) and w.dtype.kind == "f" and not (w.min() >= 0 and np.isfinite(w.max())):
        mark(reasons, "weight", "bad_weight", ~(np.isfinite(w) & (w >= 0)), len(w))
    elif len(w) and w.dtype.kind in "iu" and w.min() < 0:
        mark(reasons, "weight", "bad_weight", w < 0, len(w))


class LabelMapper:
    """``--positive VALUE``: that value is 1, one other value (``--negative`` or the first seen) is 0."""

    def __init__(self, positive: str, negative: str | None):
        self.positive, self.negative = positive, negative

    def __call__(self, array, reasons: dict) -> np.ndarray:
        import pyarrow as pa
        import pyarrow.compute as pc

        if not is_arrow(array):
            array = pa.array(array)
        if pa.types.is_dictionary(array.type):
            array = array.dictionary_decode()
        if pa.types.is_integer(array.type) or pa.types.is_floating(array.type):
            return self._numeric(array, reasons)
        text = pc.cast(as_text_if_binary(array), pa.string())
        if self.negative is None:
            others = [v for v in pc.unique(text).to_pylist() if v is not None and v != self.positive]
            if others:
                self.negative = others[0]
        is_positive = numpy_view(pc.fill_null(pc.equal(text, self.positive), False))
        is_negative = (numpy_view(pc.fill_null(pc.equal(text, self.negative), False))
                       if self.negative is not None else np.zeros(len(text), dtype=bool))
        if text.null_count:
            missing = numpy_view(text.is_null())
            mark(reasons, "label", "missing", missing, len(text))
            is_negative |= missing
        neither = ~(is_positive | is_negative)
        if neither.any():
            mark(reasons, "label", "not_positive_or_negative", neither, len(text))
        return is_positive.view(np.int8)

    def _numeric(self, array, reasons: dict) -> np.ndarray:
        """Numbers compared as numbers: ``--positive 1.0`` or ``1`` means the value 1 (text
        would compare "1.0" with pyarrow's "1")."""
        import pyarrow.compute as pc

        positive = _number(self.positive, "--positive", array.type)
        values = numpy_view(array.fill_null(0)).astype(np.float64)
        missing = numpy_view(array.is_null())
        if self.negative is None:
            others = [v for v in pc.unique(array).to_pylist()
                      if v is not None and not float(v) == positive]
            if others:
                self.negative = others[0]
        negative = (_number(self.negative, "--negative", array.type)
                    if self.negative is not None else None)
        is_positive = (values == positive) & ~missing
        is_negative = ((values == negative) & ~missing if negative is not None
                       else np.zeros(len(values), dtype=bool))
        if missing.any():
            mark(reasons, "label", "missing", missing, len(values))
            is_negative |= missing
        neither = ~(is_positive | is_negative)
        if neither.any():
            mark(reasons, "label", "not_positive_or_negative", neither, len(values))
        return is_positive.view(np.int8)


def _number(value, option: str, kind) -> float:
    import re

    if isinstance(value, (int, float)):
        return float(value)
    if not re.fullmatch(NUMBER_PATTERN[1:-1], value):
        raise UsageError(f"Invalid value for argument `{option}`. The label column holds numbers "
                         f"({kind}), so a number is expected. Received: {option}={value!r}.")
    return float(value)
