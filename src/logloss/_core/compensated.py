"""Compensated arithmetic: sums and products whose rounding error is kept, not lost.

Written with operators only, so one copy serves Python floats, NumPy arrays and every array
library's tensors. Compilers that apply algebra to floating point (XLA under ``jax.jit``,
Grappler under ``tf.function``) rewrite ``(a + b) - a`` to ``b`` and so zero every error term;
callers on those libraries pass a ``barrier`` that the compiler does not look through.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SPLIT_FLOAT64 = 134217729.0  # 2^27 + 1: Veltkamp's splitter for a 53-bit significand
SPLIT_FLOAT32 = 4097.0  # 2^12 + 1, for a 24-bit significand


def _same(x):
    return x


def two_sum(a, b, barrier=_same):
    """a + b = s + e exactly (Knuth's TwoSum), for any a and b."""
    s = barrier(a + b)
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def fast_two_sum(a, b, barrier=_same):
    """a + b = s + e exactly (Dekker's Fast2Sum), when |a| >= |b| or a = 0."""
    s = barrier(a + b)
    return s, b - (s - a)


def split(v, factor=SPLIT_FLOAT64, barrier=_same):
    """v = high + low with high holding the upper half of the significand (Veltkamp)."""
    c = barrier(factor * v)
    high = c - (c - v)
    return high, v - high


def two_product(a, b, factor=SPLIT_FLOAT64, barrier=_same):
    """a * b = p + e exactly (Dekker's TwoProduct; no FMA needed), away from overflow."""
    p = a * b
    ah, al = split(a, factor, barrier)
    bh, bl = split(b, factor, barrier)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


@dataclass
class CompensatedSum:
    """A float64 sum carried as hi + lo, so adding millions of batch sums loses nothing."""

    hi: float = 0.0
    lo: float = 0.0

    def add(self, value: float) -> None:
        if not math.isfinite(value) or not math.isfinite(self.hi):
            self.hi += value  # inf stays inf; the compensation is meaningless there
            return
        self.hi, error = two_sum(self.hi, value)
        self.lo += error

    def merge(self, other: CompensatedSum) -> None:
        self.add(other.hi)
        self.lo += other.lo

    @property
    def value(self) -> float:
        return self.hi + self.lo if math.isfinite(self.hi) else self.hi


def pairwise_two_sum(values, barrier=_same):
    """(hi, lo) with hi + lo the sum of a 1-d array (NumPy or any tensor with slicing and
    ``.sum()``): a pairwise sum whose every rounding error is kept with TwoSum, so only the
    sum of those errors (relative 2^-53 of themselves) rounds. A non-finite sum gives a NaN lo."""
    error = values[:0].sum()
    while values.shape[0] > 1:
        half = values.shape[0] // 2
        total, rounding = two_sum(values[:half], values[half:2 * half], barrier)
        error = error + rounding.sum()
        if values.shape[0] % 2:
            last, rounding = two_sum(total[-1:], values[-1:], barrier)
            error = error + rounding.sum()
            total[-1:] = last  # (total is a fresh array)
        values = total
    return values.sum(), error
