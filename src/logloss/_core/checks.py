"""Input checks shared by every public function.

Each check names the argument, what was expected, what was received and, for
array contents, the first offending index.  Checks run on whole arrays with
one reduction each (min, max, any); the index is located only on failure.
"""

from __future__ import annotations

import numbers
import sys

import numpy as np

REDUCTIONS = ("mean", "sum", "none")


class InfiniteLossWarning(RuntimeWarning):
    """Some samples are infinitely wrong: the exact loss is +inf."""


def infinite_loss_message(count: int, total: int, first: str | None = None) -> str:
    """The one explanation of an infinite loss, wherever it is found."""
    where = "" if first is None else f" (first at index {first})"
    return (
        f"{count} of {total} samples have infinite loss{where}: a prediction of exactly 0 for a "
        "positive label or exactly 1 for a negative one. This is the exact value, not an error. "
        "To bound each sample's loss at -log(c), pass clip=c (e.g. clip=1e-15, as XGBoost and "
        "LightGBM do implicitly)."
    )


def format_index(flat_index: int, shape: tuple[int, ...]) -> str:
    """Spell a flat index as the user indexes the array: ``3`` or ``(1, 2)``."""
    if len(shape) <= 1:
        return str(flat_index)
    return str(tuple(int(i) for i in np.unravel_index(flat_index, shape)))


def first_index(mask: np.ndarray) -> str:
    return format_index(int(np.argmax(mask.ravel())), mask.shape)


def check_reduction(reduction: object) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(
            f"Invalid value for argument `reduction`. Expected one of "
            f"{{'mean', 'sum', 'none'}}. Received: reduction={reduction!r}"
        )
    return reduction  # type: ignore[return-value]


def is_masked(value: object) -> bool:
    """Whether ``value`` is a NumPy masked array, whose mask ``np.asarray`` would drop."""
    # Only ever loaded if the caller uses masked arrays; the class is looked up where it is
    # defined, and may be missing there while another thread imports numpy.ma (matplotlib does,
    # in the report's prefetch): then no masked array exists yet.
    masked_array = getattr(sys.modules.get("numpy.ma.core"), "MaskedArray", None)
    return masked_array is not None and isinstance(value, masked_array)


def as_array(name: str, value: object) -> np.ndarray:
    """``np.asarray(value)``, refusing what it would silently misread or fail to explain."""
    if is_masked(value):
        raise TypeError(
            f"`{name}` is a masked array, whose mask logloss would ignore. Pass the unmasked values "
            "only (x.compressed(), and the same samples of the other arguments), or give masked "
            "samples zero weight (sample_weight=~x.mask)."
        )
    try:
        return np.asarray(value)
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"`{name}` must be a rectangular array of real numbers; it could not be converted "
            f"to one ({error})."
        ) from None


def check_flag(name: str, value: object) -> bool:
    """A bool option: the string "false" or None must not pass as a truth value."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"Invalid value for argument `{name}`. Expected True or False. Received: {name}={value!r}")
    return bool(value)


def check_real_array(name: str, values: np.ndarray) -> None:
    """Refuse arrays that are not real numbers (complex, object, strings, dates)."""
    kind = values.dtype.kind
    if kind not in "biuf":
        hint = {
            "c": " Take the real part or the magnitude first.",
            "O": " (None, pandas.NA, strings and ints beyond 64 bits are not numbers: convert with "
                 ".astype(float) after handling missing values.)",
            "U": " Parse the text to numbers first.",
            "S": " Parse the text to numbers first.",
        }.get(kind, "")
        raise TypeError(
            f"`{name}` must be an array of real numbers (bool, int or float). "
            f"Received dtype {values.dtype}.{hint}"
        )


def check_no_nan(name: str, values: np.ndarray) -> None:
    if values.dtype.kind == "f" and values.size and np.isnan(values.min()):
        idx = first_index(np.isnan(values))
        raise ValueError(f"`{name}` must not contain NaN. Received NaN at index {idx}.")


def check_unit_interval(name: str, values: np.ndarray, what: str) -> None:
    """Values must lie in [0, 1]; NaN is reported first, as its own problem."""
    if not values.size:
        return
    check_no_nan(name, values)
    low, high = values.min(), values.max()
    if low < 0 or high > 1:
        bad = (values < 0) | (values > 1)
        idx = first_index(bad)
        value = values.ravel()[int(np.argmax(bad.ravel()))].item()
        raise ValueError(
            f"`{name}` must contain {what} in [0, 1]. "
            f"Received {value!r} at index {idx}."
        )


def check_same_shape(
    true_name: str, true: np.ndarray, pred_name: str, pred: np.ndarray
) -> None:
    if true.shape != pred.shape:
        if pred.ndim == true.ndim + 1 and pred.shape[:-1] == true.shape and pred.shape[-1] >= 2:
            # predict_proba's (n, 2) output against (n,) labels
            raise ValueError(
                f"`{pred_name}` has one more axis than `{true_name}`: "
                f"{true_name}.shape={true.shape}, {pred_name}.shape={pred.shape}. For class "
                f"probabilities such as predict_proba's output, pass {pred_name}[..., 1] (the "
                "positive class) for binary labels, or use categorical_cross_entropy "
                "(or logloss.sklearn.log_loss) for one column per class."
            )
        raise ValueError(
            f"`{true_name}` and `{pred_name}` must have the same shape. "
            f"Received {true_name}.shape={true.shape} and {pred_name}.shape={pred.shape}."
            " Reshape one of them explicitly (broadcasting (n,) against (n, 1) would "
            "silently compare every sample with every other)."
        )


def raise_swapped_arguments() -> None:
    """Soft labels against predictions that are all 0 or 1: the arguments are most likely swapped
    (every such sample would have an infinite loss)."""
    raise ValueError(
        "`y_true` holds soft labels (values strictly between 0 and 1) while every `y_pred` is "
        "0 or 1, which would make each such sample's loss infinite. Were the arguments "
        "swapped? The order is binary_cross_entropy(y_true, y_pred)."
    )


def check_nonempty(name: str, values: np.ndarray, reduction: str) -> None:
    if values.size == 0 and reduction == "mean":
        raise ValueError(
            f"`{name}` is empty, so its mean is undefined. "
            "Pass reduction='sum' (which gives 0) or 'none' for empty input."
        )


def check_sample_weight(
    sample_weight: object, target_shape: tuple[int, ...]
) -> np.ndarray | None:
    """Return the weights broadcast to ``target_shape`` as float64, or None."""
    if sample_weight is None:
        return None
    weight = as_array("sample_weight", sample_weight)
    check_real_array("sample_weight", weight)
    try:
        weight = np.broadcast_to(weight, target_shape)
    except ValueError:
        raise ValueError(
            f"`sample_weight` must be broadcastable to the loss shape {target_shape}. "
            f"Received sample_weight.shape={weight.shape}."
        ) from None
    weight = weight.astype(np.float64, copy=False)
    if weight.size:
        check_no_nan("sample_weight", weight)
        low, high = weight.min(), weight.max()
        if low < 0 or not np.isfinite(high):
            bad = (weight < 0) | ~np.isfinite(weight)
            idx = first_index(bad)
            value = weight.ravel()[int(np.argmax(bad.ravel()))].item()
            raise ValueError(
                "`sample_weight` must be finite and non-negative. "
                f"Received {value!r} at index {idx}."
            )
    return weight


def check_pos_weight(pos_weight: object, target_shape: tuple[int, ...]) -> np.ndarray | None:
    if pos_weight is None:
        return None
    weight = as_array("pos_weight", pos_weight)
    check_real_array("pos_weight", weight)
    if weight.dtype == np.bool_:
        raise TypeError(f"`pos_weight` must be a number > 0 or an array of them, not bool. Received {pos_weight!r}.")
    weight = weight.astype(np.float64, copy=False)
    bad = ~(weight > 0) | ~np.isfinite(weight)
    if bad.any():
        value = weight.ravel()[int(np.argmax(bad.ravel()))].item()
        where = "" if weight.ndim == 0 else f" at index {first_index(bad)}"
        raise ValueError(
            "`pos_weight` must be finite and > 0 (it multiplies the positive term, "
            f"as in torch.nn.BCEWithLogitsLoss). Received {value!r}{where}."
        )
    # Broadcast TO the labels, not with them: a (2, 1) pos_weight against (4,) labels would
    # otherwise turn 4 losses into 8 and take the mean over the copies.
    try:
        fits = np.broadcast_shapes(weight.shape, target_shape) == tuple(target_shape)
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(
            f"`pos_weight` must be broadcastable to the label shape {target_shape} without "
            "enlarging it (a scalar, or one value per label column). "
            f"Received pos_weight.shape={weight.shape}."
        )
    return weight


def check_probability_scalar(name: str, value: object, *, open_upper: bool = False) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a real number. Received {value!r}.")
    number = float(value)
    upper_ok = number < 1 if open_upper else number <= 1
    if not (0 <= number and upper_ok):
        interval = "[0, 1)" if open_upper else "[0, 1]"
        raise ValueError(f"`{name}` must be in {interval}. Received {name}={value!r}.")
    return number


def check_clip(clip: object) -> float | None:
    if clip is None:
        return None
    number = check_probability_scalar("clip", clip)
    if not 0 < number < 0.5:
        raise ValueError(
            "`clip` bounds predictions to [clip, 1 - clip] and must be in (0, 0.5). "
            f"Received clip={clip!r}."
        )
    return number


def check_total_weight(total: np.ndarray, axis_given: bool) -> None:
    bad = ~(np.asarray(total) > 0)
    if bad.any():
        where = f" at output index {first_index(bad)}" if axis_given and bad.ndim else ""
        raise ValueError(
            "The total `sample_weight` is zero"
            f"{where}, so the weighted mean is undefined. Give some samples a positive "
            "weight, or use reduction='sum'."
        )
