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

from .compensated import CompensatedSum, two_product

SUMS = ("loss", "weight", "label", "prediction")


def _sums() -> dict[str, CompensatedSum]:
    return {name: CompensatedSum() for name in SUMS}


MAX_SCALE = 1 << 12  # |scale| beyond this cannot come from float64 weights


@dataclass
class Statistics:
    count: int = 0  # samples
    positives: float = 0.0  # sum of labels (soft labels count fractionally), unweighted
    infinite: int = 0  # samples whose weighted loss is +inf
    sums: dict[str, CompensatedSum] = field(default_factory=_sums)
    # The four sums are in units of 2**scale: a weighted batch's scale follows the exponent of its
    # largest weight (less a headroom that keeps subnormal sums exact), so weights of 1e-320 or
    # 1e300 neither underflow nor overflow; the mean, a ratio of two sums, does not depend on it.
    scale: int = 0

    @classmethod
    def from_sums(cls, count: int, positives: float, infinite: int, sums: dict, scale: int = 0) -> Statistics:
        """A batch's state from its four sums (``name -> float`` or ``(hi, lo)``, in units of 2**scale)."""
        stats = cls(count, positives, infinite, scale=scale)
        for name, value in sums.items():
            hi, lo = value if isinstance(value, tuple) else (value, 0.0)
            stats.sums[name].add(float(hi))
            stats.sums[name].lo += lo
        return stats

    def _weighted(self) -> bool:
        return self.sums["weight"].hi > 0

    def merge(self, other: Statistics) -> Statistics:
        """Fold ``other`` into this state. Returns self; unchanged when a sum would leave the
        float64 range (OverflowError: the state holds float64 sums)."""
        # The larger scale wins; a state without weight has no say (its sums are all 0).
        candidates = [s.scale for s in (self, other) if s._weighted()]
        scale = max(candidates) if candidates else 0
        sums = {name: _rescaled(self.sums[name], self.scale - scale) for name in SUMS}
        for name in SUMS:
            sums[name].merge(_rescaled(other.sums[name], other.scale - scale))
        infinite = self.infinite + other.infinite
        for name in SUMS:
            if math.isinf(sums[name].hi) and not (name == "loss" and infinite):
                raise OverflowError(
                    f"The total {name}{' (weighted)' if name != 'weight' else ''} exceeds the float64 "
                    "range (~1.8e308) that the streaming state holds, even scaled by the largest "
                    "weight. Use reduction='mean' on fewer samples, or smaller losses."
                )
        self.count += other.count
        self.positives += other.positives
        self.infinite = infinite
        self.sums = sums
        self.scale = scale
        return self

    def value(self, name: str) -> float:
        """The sum, unscaled (inf beyond float64: use ``ratio`` for a mean)."""
        with_scale = self.sums[name].value
        if not (math.isfinite(with_scale) and with_scale):
            return with_scale
        try:
            return math.ldexp(with_scale, self.scale)
        except OverflowError:
            return math.inf

    def ratio(self, numerator: str, denominator: str) -> float:
        """One sum over another: the scale cancels, so it is exact even where ``value`` overflows;
        the two pairs are divided as double-doubles, so the quotient is rounded about once."""
        a, b = self.sums[numerator], self.sums[denominator]
        q = a.value / b.value
        if not (q and max(q, a.hi, b.hi) < 2.0**995):  # inf, 0, or near overflow inside the split
            return q
        # a - q b exactly enough: q b = p + e (TwoProduct), and a.hi - p cancels exactly.
        p, e = two_product(q, b.hi)
        remainder = ((a.hi - p) - e) + a.lo - q * b.lo
        return q + remainder / b.value

    def to_dict(self) -> dict:
        """Strict-JSON state: finite floats only, and the string "inf" for an infinite loss sum."""
        return {
            "count": self.count,
            "positives": self.positives,
            "infinite": self.infinite,
            "scale": self.scale,
            "sums": {name: [_encode(s.hi), s.lo if math.isfinite(s.hi) and math.isfinite(s.lo) else 0.0]
                     for name, s in self.sums.items()},
        }

    @classmethod
    def from_dict(cls, state: object, *, where: str = "state") -> Statistics:
        """The state of :meth:`to_dict`, every field checked (types, signs, finiteness, keys,
        consistency), each error naming the field and what it received."""
        if not isinstance(state, dict):
            raise TypeError(f"`{where}` must be a dict as written by to_dict(). Received {type(state).__name__}.")
        _check_keys(state, {"count", "positives", "infinite", "scale", "sums"}, where)
        count = _count(state["count"], f"{where}['count']")
        infinite = _count(state["infinite"], f"{where}['infinite']")
        positives = _number(state["positives"], f"{where}['positives']")
        scale = state["scale"]
        if isinstance(scale, bool) or not isinstance(scale, int) or abs(scale) > MAX_SCALE:
            raise ValueError(f"`{where}['scale']` must be an int in [-{MAX_SCALE}, {MAX_SCALE}]. Received {scale!r}.")
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
            field_name = f"{where}['sums'][{name!r}]"
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise ValueError(f"`{field_name}` must be a pair [hi, lo]. Received {pair!r}.")
            hi = _decode(pair[0], f"{field_name}[0]", allow_inf=name == "loss")
            lo = _number(pair[1], f"{field_name}[1]", signed=True)
            if math.isfinite(hi) and abs(lo) > hi:
                raise ValueError(
                    f"`{field_name}` is not a compensated pair: |lo| ({lo!r}) must not exceed hi ({hi!r})."
                )
            sums[name] = CompensatedSum(hi, lo)
        if bool(infinite) != math.isinf(sums["loss"].hi):
            raise ValueError(
                f"`{where}` is inconsistent: 'infinite' is {infinite} but the loss sum is "
                f"{_encode(sums['loss'].hi)!r} (it is \"inf\" exactly when some loss is infinite)."
            )
        if count == 0 and (positives or any(sums[name].hi for name in SUMS)):
            raise ValueError(f"`{where}` is inconsistent: 'count' is 0 but some sums are not.")
        weight = sums["weight"].value
        for name in ("label", "prediction"):
            # Labels and predictions are in [0, 1], so their weighted sums cannot exceed the weight's.
            if sums[name].value > weight * (1 + 1e-9):
                raise ValueError(
                    f"`{where}` is inconsistent: the {name} sum ({sums[name].value!r}) exceeds the "
                    f"weight sum ({weight!r}); each {name} is in [0, 1]."
                )
        return cls(count, positives, infinite, sums, scale)


def _rescaled(total: CompensatedSum, shift: int) -> CompensatedSum:
    """``total * 2**shift`` (shift <= 0): exact but for what falls below float64's range."""
    if not shift or not math.isfinite(total.hi):
        return CompensatedSum(total.hi, total.lo)
    return CompensatedSum(math.ldexp(total.hi, shift), math.ldexp(total.lo, shift))


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
    if allow_inf and value == "inf":
        return math.inf
    if allow_inf and isinstance(value, (int, float)) and not isinstance(value, bool) and math.isinf(value):
        raise ValueError(f"`{where}` must be a finite number or the string \"inf\" (strict JSON). Received {value!r}.")
    return _number(value, where)
