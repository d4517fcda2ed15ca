"""The sufficient statistics of log loss: the one streaming state, merged the same way everywhere
(``Accumulator``, the CLI's per-file and per-group sums, distributed workers' partitions).

Counts are exact integers; the four sums (weighted loss, weight, weighted label, weighted
prediction) are compensated float64 pairs, so merging millions of batches loses nothing. The
state serializes to strict JSON (no NaN or Infinity: an infinite loss sum is kept as the string
"inf") and is validated when read back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .compensated import CompensatedSum

SUMS = ("loss", "weight", "label", "prediction")


def _sums() -> dict[str, CompensatedSum]:
    return {name: CompensatedSum() for name in SUMS}


@dataclass
class Statistics:
    count: int = 0  # samples
    positives: float = 0.0  # sum of labels (soft labels count fractionally), unweighted
    infinite: int = 0  # samples whose weighted loss is +inf
    sums: dict[str, CompensatedSum] = field(default_factory=_sums)

    def merge(self, other: Statistics) -> Statistics:
        """Fold ``other`` into this state. Returns self."""
        self.count += other.count
        self.positives += other.positives
        self.infinite += other.infinite
        for name in SUMS:
            self.sums[name].merge(other.sums[name])
        return self

    def value(self, name: str) -> float:
        return self.sums[name].value

    def to_dict(self) -> dict:
        """Strict-JSON state: floats that are finite, and "inf" for an infinite loss sum."""
        return {
            "count": self.count,
            "positives": self.positives,
            "infinite": self.infinite,
            "sums": {name: [_encode(s.hi), _encode(s.lo)] for name, s in self.sums.items()},
        }

    @classmethod
    def from_dict(cls, state: object, *, where: str = "state") -> Statistics:
        """The state of :meth:`to_dict`, every field checked (types, signs, finiteness, keys)."""
        if not isinstance(state, dict):
            raise TypeError(f"`{where}` must be a dict as written by to_dict(). Received {type(state).__name__}.")
        expected = {"count", "positives", "infinite", "sums"}
        _check_keys(state, expected, where)
        count = _count(state["count"], f"{where}['count']")
        infinite = _count(state["infinite"], f"{where}['infinite']")
        positives = _number(state["positives"], f"{where}['positives']")
        if infinite > count or positives > count:
            raise ValueError(
                f"`{where}` is inconsistent: 'infinite' ({infinite}) and 'positives' ({positives}) "
                f"cannot exceed 'count' ({count})."
            )
        raw = state["sums"]
        if not isinstance(raw, dict):
            raise TypeError(f"`{where}['sums']` must be a dict. Received {type(raw).__name__}.")
        _check_keys(raw, set(SUMS), f"{where}['sums']")
        sums = {}
        for name in SUMS:
            pair = raw[name]
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise ValueError(f"`{where}['sums'][{name!r}]` must be a pair [hi, lo]. Received {pair!r}.")
            hi = _decode(pair[0], f"{where}['sums'][{name!r}][0]", allow_inf=name == "loss")
            lo = _number(pair[1], f"{where}['sums'][{name!r}][1]", signed=True)
            sums[name] = CompensatedSum(hi, lo)
        if infinite and not math.isinf(sums["loss"].hi):
            raise ValueError(
                f"`{where}` is inconsistent: {infinite} infinite losses but a finite loss sum."
            )
        return cls(count, positives, infinite, sums)


def _check_keys(state: dict, expected: set, where: str) -> None:
    missing, unknown = expected - set(state), set(state) - expected
    if missing or unknown:
        raise ValueError(
            f"`{where}` must have exactly the keys {sorted(expected)}. "
            f"Missing: {sorted(missing)}; unknown: {sorted(map(str, unknown))}."
        )


def _count(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"`{where}` must be a non-negative int. Received {value!r}.")
    return value


def _number(value: object, where: str, *, signed: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"`{where}` must be a finite number. Received {value!r}.")
    if not signed and value < 0:
        raise ValueError(f"`{where}` must be non-negative. Received {value!r}.")
    return float(value)


def _encode(value: float) -> float | str:
    return "inf" if value == math.inf else value


def _decode(value: object, where: str, *, allow_inf: bool) -> float:
    if allow_inf and (value == "inf" or value == math.inf):
        return math.inf
    return _number(value, where)
