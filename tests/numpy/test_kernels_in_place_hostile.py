"""Hostile tests of the product blocks that read float32 and int64 inputs in place, and of the
float32 results' short log (soft labels from probabilities): bad labels anywhere in full and
partial blocks name their index, float32 edge predictions give the mpmath value within 1 float32
ulp, adversarial blocks near the short log's threshold stay within the float32 tolerance, and
unaligned, read-only or memory-mapped arrays give the bits of aligned copies.

References are mpmath (``tests/reference.py``), never the code under test.
"""

from __future__ import annotations

import functools
import math

import mpmath
import numpy as np
import pytest

import logloss
from logloss._numpy import chunked
from logloss._numpy import kernels as paths

from .. import reference as ref

if not paths.supported_paths():
    pytest.skip("the compiled kernels were not built", allow_module_level=True)

B = 512
SOFT32 = 4  # K.block kind: soft labels from probabilities, float32 results (the short log)
F32, I64 = 10, 4  # dtype codes


@pytest.fixture(autouse=True)
def _kernels_on_small_inputs(monkeypatch):
    monkeypatch.setattr(chunked, "KERNEL_MIN_SIZE", 0)


@functools.lru_cache(maxsize=None)
def _loss(y: float, p: float, logits: bool = False) -> mpmath.mpf:
    return ref.bce_logit(y, p) if logits else ref.bce_probability(y, p)


def _exact_sum(y, p, logits: bool = False) -> mpmath.mpf:
    pairs, counts = np.unique(np.stack([np.asarray(y, np.float64), np.asarray(p, np.float64)]),
                              axis=1, return_counts=True)
    return mpmath.fsum(int(c) * _loss(float(a), float(b), logits)
                       for (a, b), c in zip(pairs.T, counts))


def _unaligned(a: np.ndarray, offset: int = 1) -> np.ndarray:
    raw = bytearray(a.nbytes + 8)
    out = np.frombuffer(memoryview(raw)[offset:offset + a.nbytes], dtype=a.dtype)
    out[:] = a
    return out


# ---------------------------------------------------------------- bad labels: a refusal, indexed

BAD_INT64 = [2, -1, 2**40, -2**40, -2**63, 2**63 - 1]
N_BAD = 2 * B + 7  # two full blocks (read in place) and a partial one (widened)


@pytest.mark.parametrize("logits", [False, True], ids=["probabilities", "logits"])
@pytest.mark.parametrize("prediction", [np.float32, np.float64])
@pytest.mark.parametrize("index", [0, 1, B - 1, B, 2 * B - 1, 2 * B, N_BAD - 1])
def test_int64_labels_out_of_range_are_refused_with_their_index(K, logits, prediction, index):
    rng = np.random.default_rng(index)
    for value in BAD_INT64:
        y = (rng.uniform(size=N_BAD) < 0.5).astype(np.int64)
        y[index] = value
        x = (rng.uniform(-4, 4, N_BAD) if logits else rng.uniform(0.01, 0.99, N_BAD))
        with pytest.raises(ValueError, match=f"at index {index}\\b"):
            logloss.bce(y, x.astype(prediction), from_logits=logits)
        with pytest.raises(ValueError, match=f"at index {index}\\b"):
            logloss.bce(y, x.astype(prediction), from_logits=logits, reduction="sum")


@pytest.mark.parametrize("index", [0, B - 1, B + 3])
def test_uint64_label_of_two_to_the_64_minus_1_is_refused_with_its_index(K, index):
    y = np.zeros(B + 9, dtype=np.uint64)
    y[index] = 2**64 - 1
    with pytest.raises(ValueError, match=f"at index {index}\\b"):
        logloss.bce(y, np.full(B + 9, 0.5, np.float32))


# ---------------------------------------------------------------- float32 edge predictions

TINY32 = float(np.float32(1e-45))
EDGES = [  # (label, float32 prediction) inserted into a block of ordinary samples
    (1.0, TINY32), (0.0, TINY32), (0.5, TINY32), (1.0, 2.0**-40), (0.0, 2.0**-40),
    (0.3, 2.0**-40), (0.25, 2.0**-31), (0.0, 0.0), (0.0, -0.0), (1.0, 1.0),
    (1.0, 1 - 2.0**-24), (0.0, 1 - 2.0**-24), (0.999, 1 - 2.0**-24), (2.0**-30, 2.0**-30),
]


@pytest.mark.parametrize("label_dtype", [np.float32, np.float64])
@pytest.mark.parametrize("where", [0, B - 1, B, 2 * B + 2])
@pytest.mark.parametrize(("label", "p"), EDGES)
def test_float32_edge_predictions_within_one_float32_ulp(K, label_dtype, where, label, p):
    rng = np.random.default_rng(17)
    n = 2 * B + 3
    soft = label not in (0.0, 1.0)
    y = rng.uniform(0, 1, n) if soft else (rng.uniform(size=n) < 0.5).astype(np.float64)
    x = rng.choice(np.array([0.1, 0.25, 0.5, 0.75, 0.9]), n)
    y, x = y.astype(label_dtype), x.astype(np.float32)
    y[where], x[where] = label, p
    exact = _exact_sum(y, x)
    for reduction, scale in (("sum", 1), ("mean", n)):
        got = logloss.bce(y, x, reduction=reduction)
        assert got.dtype == np.float32
        assert ref.ulp_error(got, exact / scale, np.float32) <= 1.0, (reduction, got)


# ---------------------------------------------------------------- the short log's threshold

# Constant blocks (every sample's short-log error of one sign) found by a random search for the
# largest error / loss the float32 soft block accepts, and blocks whose bound sits at the
# threshold: p near 1 with y near 1, p tiny with y tiny.
CONSTANT_BLOCKS = [
    (1.957048e-13, 3.9560544e-07), (8.734843e-09, 2.5774557e-07), (1.1527712e-17, 3.6199512e-07),
    (1 - 2.0**-20, 1 - 2.0**-12), (1 - 2.0**-14, 1 - 2.0**-10), (1 - 2.0**-11, 1 - 2.0**-8),
    (0.999, 1 - 2.0**-20), (2.0**-40, 2.0**-100), (0.5, 0.5000001),
]


@pytest.mark.parametrize(("label", "p"), CONSTANT_BLOCKS)
def test_float32_soft_block_within_the_float32_tolerance_where_it_accepts(K, label, p):
    y, x = np.full(B, label, np.float32), np.full(B, p, np.float32)
    invalid, _, got = K.block(SOFT32, y, x, -1.0, F32, F32)
    assert invalid == 0
    exact = B * _loss(float(y[0]), float(x[0]))
    if got >= 0:
        assert abs(mpmath.mpf(got) - exact) <= 2.0**-30 * exact
    n = 3 * B
    yy, xx = np.full(n, label, np.float32), np.full(n, p, np.float32)
    mean = logloss.bce(yy, xx)
    assert ref.ulp_error(mean, exact / B, np.float32) <= 1.0


@pytest.mark.parametrize("k", [4, 8, 12, 16, 20, 23])
def test_float32_soft_blocks_at_the_threshold_within_one_ulp(K, k):
    """For p = 1 - 2**-k, every float32 label near 1: the blocks on both sides of the bound's
    threshold, mixed with a random block so that the sum is not one constant."""
    rng = np.random.default_rng(k)
    p = 1 - 2.0**-k
    for j in range(1, 25):
        label = float(np.float32(1 - 2.0**-j))
        y = np.concatenate([np.full(B, label), rng.uniform(0.9, 1, B)]).astype(np.float32)
        near = 1 - rng.uniform(2.0**-(k + 1), 2.0**-k, B)  # below 1 once rounded to float32
        x = np.concatenate([np.full(B, p), near]).astype(np.float32)
        invalid, _, got = K.block(SOFT32, y[:B], x[:B], -1.0, F32, F32)
        exact_block = B * _loss(label, float(np.float32(p)))
        if got >= 0:
            assert abs(mpmath.mpf(got) - exact_block) <= 2.0**-30 * exact_block, j
        mean = logloss.bce(y, x)
        assert ref.ulp_error(mean, _exact_sum(y, x) / (2 * B), np.float32) <= 1.0, j


# ---------------------------------------------------------------- memory layouts and lengths

LAYOUT_LENGTHS = [1, B - 1, B, B + 1, 3 * B - 1, 3 * B, 3 * B + 1]


@pytest.mark.parametrize("n", LAYOUT_LENGTHS)
@pytest.mark.parametrize(("label_dtype", "soft"),
                         [(np.int64, False), (np.float32, False), (np.float32, True)])
def test_unaligned_read_only_and_mapped_arrays_give_the_exact_value(K, tmp_path, n, label_dtype,
                                                                    soft):
    rng = np.random.default_rng(n)
    y = rng.uniform(0, 1, n) if soft else (rng.uniform(size=n) < 0.5).astype(np.float64)
    y, x = y.astype(label_dtype), rng.uniform(0.01, 0.99, n).astype(np.float32)
    exact = _exact_sum(y, x) / n
    want = logloss.bce(y, x)
    assert ref.ulp_error(want, exact, np.float32) <= 1.0
    frozen_y, frozen_x = y.copy(), x.copy()
    frozen_y.flags.writeable = frozen_x.flags.writeable = False
    path_y, path_x = tmp_path / "y.npy", tmp_path / "x.npy"
    np.save(path_y, y)
    np.save(path_x, x)
    layouts = {"read-only": (frozen_y, frozen_x),
               "memory-mapped": (np.load(path_y, mmap_mode="r"), np.load(path_x, mmap_mode="r"))}
    for offset in (1, 2, 3, 4, 5):
        layouts[f"offset {offset}"] = (_unaligned(y, offset), _unaligned(x, offset))
    for name, (yy, xx) in layouts.items():
        got = logloss.bce(yy, xx)
        assert got.tobytes() == want.tobytes(), name
        del yy, xx


@pytest.mark.parametrize("logits", [False, True], ids=["probabilities", "logits"])
def test_threads_and_repeats_give_the_same_bits(K, logits):
    rng = np.random.default_rng(5)
    n = 4 * K.CHUNK + 3 * B + 5
    y = (rng.uniform(size=n) < 0.5).astype(np.float32)
    y[n // 3:] = rng.uniform(0, 1, n - n // 3)  # soft labels after hard ones
    x = (rng.uniform(-4, 4, n) if logits else rng.uniform(0.001, 0.999, n)).astype(np.float32)
    results = set()
    for threads in (1, 2, 3, 1):
        with logloss.config_context(threads=threads):
            results.add(logloss.bce(y, x, from_logits=logits).tobytes())
            results.add(logloss.bce(y, x, from_logits=logits, reduction="sum").tobytes())
    assert len(results) == 2


@pytest.mark.parametrize("logits", [False, True], ids=["probabilities", "logits"])
@pytest.mark.parametrize(("label_dtype", "labels"), [
    (np.int64, "hard"), (np.float32, "hard"), (np.float32, "soft later"),
    (np.float64, "soft later")])
def test_statistics_after_the_product_blocks_are_the_exact_sums(K, logits, label_dtype, labels):
    """The label and prediction sums the statistics pass loads after an accepted product block:
    fsum of the values, and the loss within 1e-13 of mpmath."""
    rng = np.random.default_rng(11)
    n = 3 * B + 100
    y = (rng.uniform(size=n) < 0.5).astype(np.float64)
    if labels == "soft later":  # the guess from the first label picks the hard path, then changes
        y[B + 7:] = rng.uniform(0, 1, n - B - 7)
    y = y.astype(label_dtype)
    x = rng.choice(np.array([-3.0, -0.5, 0.25, 2.0] if logits else [0.1, 0.3, 0.6, 0.95]), n)
    x = x.astype(np.float32)
    stats = logloss._accumulator.fast_batch_statistics(y, x, from_logits=logits)
    assert stats is not None
    sums = {name: stats.sums[name].value for name in ("loss", "label", "prediction")}
    assert sums["label"] == math.fsum(y.astype(np.float64).tolist())
    if logits:
        exact_p = mpmath.fsum(1 / (1 + mpmath.exp(-mpmath.mpf(float(v)))) for v in x)
    else:
        exact_p = mpmath.fsum(mpmath.mpf(float(v)) for v in x)
    assert abs(sums["prediction"] - exact_p) <= 1e-15 * abs(exact_p)
    exact = _exact_sum(y, x, logits)
    assert abs(sums["loss"] - exact) <= 1e-13 * exact


TINY_P = [2.0**-24, 2.0**-30, 2.0**-31, 2.0**-40, 2.0**-53, 2.0**-54, 2.0**-60, 2.0**-100, TINY32]


@pytest.mark.parametrize("prediction", [np.float32, np.float64])
@pytest.mark.parametrize("label", [0.0, 2.0**-20, 0.5, 1.0])
@pytest.mark.parametrize("p", TINY_P)
def test_constant_blocks_of_tiny_predictions(K, prediction, label, p):
    """1 - p is not exact in float64 below 2**-53 (its rounding, c, carries the loss of y = 0):
    whole blocks of one tiny p, where a product block would see only 1 - p rounded."""
    n = 2 * B + 1
    y = np.full(n, label, np.float32)
    x = np.full(n, p, prediction)
    exact = n * _loss(label, float(x[0]))
    for reduction, scale in (("sum", 1), ("mean", n)):
        got = logloss.bce(y, x, reduction=reduction)
        if prediction is np.float32:
            assert ref.ulp_error(got, exact / scale, np.float32) <= 1.0, reduction
        else:
            assert abs(mpmath.mpf(float(got)) - exact / scale) <= 1e-13 * exact / scale, reduction
        if label in (0.0, 1.0):  # int64 labels, read in place
            assert logloss.bce(y.astype(np.int64), x, reduction=reduction) == got
