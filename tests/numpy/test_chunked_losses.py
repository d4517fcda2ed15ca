"""reduction="none" on the chunked path (``_fast.per_element_losses``) against mpmath, per element.

Chunks are made tiny (and uneven) so that the regimes of ``test_accuracy`` cross many chunk and
thread boundaries; every reference is a 256-bit mpmath value (``tests/reference.py``).
"""

from __future__ import annotations

import numpy as np
import pytest

import logloss
from logloss._numpy import chunked as _fast
from logloss._core.inputs import prepare_binary
from logloss._core.precision import round_once as _round_once
from logloss._numpy.reference import binary_losses as _per_element

from .. import reference as ref
from ..public.test_accuracy import _logit_regimes, _probability_regimes

rng = np.random.default_rng(271828)


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"], autouse=True)
def small_chunks(monkeypatch, request):
    monkeypatch.setattr(_fast, "LOSS_CHUNK", 37)
    monkeypatch.setattr(_fast, "MIN_SIZE", 0)
    logloss.set_config(engine="numpy")
    monkeypatch.setattr(_fast, "_pool", None)
    logloss.set_config(threads=request.param)


def _fast_losses(y, x, from_logits):
    losses = _fast.per_element_losses(y, x, from_logits=from_logits)
    assert losses is not None, "the chunked path declined"
    np.testing.assert_array_equal(losses, logloss.bce(y, x, from_logits=from_logits, reduction="none"))
    inputs = prepare_binary(y, x, from_logits=from_logits, hard_probabilities_exact=True)
    reference = _round_once(_per_element(inputs), inputs.output_dtype)  # the reference path
    with np.errstate(over="ignore"):  # spacing(max float) is inf: the ratio is then 0
        assert np.max(np.abs(losses - reference) / np.spacing(reference)) <= 1.0
    return losses


@pytest.mark.parametrize("regime", list(_logit_regimes()))
def test_logits_within_one_ulp(regime):
    z = _logit_regimes()[regime]
    for y in (np.zeros(z.shape), np.ones(z.shape), rng.uniform(0, 1, z.shape), z > 0):
        losses = _fast_losses(y, z, True)
        assert losses.dtype == np.float64
        exact = [ref.bce_logit(yi, zi) for yi, zi in zip(y, z)]
        assert ref.max_ulp_error(losses, exact) <= 1.0


@pytest.mark.parametrize("regime", list(_probability_regimes()))
def test_soft_labels_from_probabilities_within_one_ulp(regime):
    p = _probability_regimes()[regime]
    p = p[p < 1]  # p = 1 with a soft label is an infinite loss: the reference path reports it
    y = rng.uniform(0, 1, p.shape)
    y[::5] = 0.0  # hard labels mixed in
    y[1::5] = 1.0
    losses = _fast_losses(y, p, False)
    exact = [ref.bce_probability(yi, pi) for yi, pi in zip(y, p)]
    assert ref.max_ulp_error(losses, exact) <= 1.0


@pytest.mark.parametrize("regime", list(_probability_regimes()))
def test_hard_float_labels_from_probabilities_match_the_reference(regime):
    """Chunks whose float labels are all 0 or 1 stay in float64: one libm call, as the reference."""
    p = _probability_regimes()[regime]
    p = p[p < 1]
    y = (rng.uniform(0, 1, p.shape) < 0.5).astype(np.float64)
    losses = _fast_losses(y, p, False)
    inputs = prepare_binary(y, p, from_logits=False, hard_probabilities_exact=True)
    np.testing.assert_array_equal(losses, _per_element(inputs))
    exact = [ref.bce_probability(yi, pi) for yi, pi in zip(y, p)]
    assert ref.max_ulp_error(losses, exact) <= 1.0


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_narrow_dtypes_within_one_ulp(dtype):
    n = 600
    z = (rng.uniform(-1, 1, n) * 10.0 ** rng.uniform(-6, 4, n)).astype(dtype)
    z = z[np.isfinite(z)]
    for y in (rng.uniform(0, 1, z.shape), (rng.uniform(0, 1, z.shape) < 0.5).astype(dtype)):
        losses = _fast_losses(y.astype(dtype), z, True)
        assert losses.dtype == dtype
        exact = [ref.bce_logit(yi, zi) for yi, zi in zip(y.astype(dtype), z)]
        assert ref.max_ulp_error(losses, exact, dtype) <= 1.0
    p = rng.uniform(0, 1, n).astype(dtype)
    p = p[(p > 0) & (p < 1)]
    y = rng.uniform(0, 1, p.shape).astype(dtype)
    losses = _fast_losses(y, p, False)
    assert losses.dtype == dtype
    exact = [ref.bce_probability(yi, pi) for yi, pi in zip(y, p)]
    assert ref.max_ulp_error(losses, exact, dtype) <= 1.0


def test_chunk_boundaries_of_a_large_input(monkeypatch):
    """Default chunk size and threshold: spot-check the samples around every chunk boundary."""
    monkeypatch.setattr(_fast, "LOSS_CHUNK", 1 << 13)
    monkeypatch.setattr(_fast, "MIN_SIZE", 1 << 14)
    n = 5 * (1 << 13) + 11
    z = rng.normal(0, 20, n)
    y = rng.uniform(0, 1, n)
    losses = _fast_losses(y, z, True)
    edges = np.arange(0, n, 1 << 13)
    picks = np.unique(np.clip(np.concatenate([edges - 2, edges - 1, edges, edges + 1, [n - 1]]), 0, n - 1))
    exact = [ref.bce_logit(y[i], z[i]) for i in picks]
    assert ref.max_ulp_error(losses[picks], exact) <= 1.0


@pytest.mark.parametrize(
    "y, x, from_logits",
    [
        ([0.5, 1.0], [np.inf, 1.0], True),  # an infinite logit: 0 * inf is the reference's call
        ([0.5, 1.0], [np.nan, 1.0], True),
        ([0.5, 1.5], [0.0, 1.0], True),  # a label out of range: the reference raises
        ([0.5, 0.0], [0.5, 0.0], False),  # 0 log 0
        ([0.5, 1.0], [0.5, 0.0], False),  # an infinite loss: the reference warns
        ([0, 1], [0.5, 0.25], False),  # hard labels from probabilities: one libm call there
    ],
)
def test_declines_what_the_reference_must_decide(y, x, from_logits):
    assert _fast.per_element_losses(np.array(y), np.array(x), from_logits=from_logits) is None
