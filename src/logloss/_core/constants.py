"""Floating-point constants shared by the engines' log and exp (fdlibm's split of ln 2)."""

from __future__ import annotations

LN2 = 0.6931471805599453
LN2_HI = 6.93147180369123816490e-01  # 32 significant bits: k * LN2_HI is exact for |k| < 2**20
LN2_LO = 1.90821492927058770002e-10  # LN2_HI + LN2_LO = ln 2 to about 2**-85
INV_LN2 = 1.44269504088896338700e00
UNIT_ROUNDOFF = 2.0**-53  # float64
# The largest rounding-error bound a product of many factors may have, relative to the loss it
# gives; a chunk or block whose bound is larger is recomputed sample by sample.
PRODUCT_TOLERANCE = 1e-14
