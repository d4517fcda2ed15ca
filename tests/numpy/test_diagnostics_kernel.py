"""The compiled diagnostics kernel (``kernels/diagnostics.c``) against the NumPy path of
``DiagnosticsState`` (``engine="numpy"``), on every CPU path this machine runs.

Both paths fill the same state: compensated totals, counts, the prediction and loss histograms,
per-segment sums, the worst rows and the pairs of models. The data is adversarial: predictions of
exactly 0 and 1 (infinite and zero losses), subnormal ones, 1 - 2**-53, ties, logits of +-inf and
beyond the exp range, zero weights on infinite losses, float32 inputs, every integer code dtype,
batch sizes that are not multiples of the 512-sample block, one to three threads.

Per-row losses of the two paths may differ by an ulp (each within 1 ulp of the exact value), so a
row within 1e-10 of a bin of a histogram edge may fall on either side: the histograms are compared allowing
exactly those rows to move to the neighbouring bin, and nothing else.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import logloss
from logloss import DiagnosticsState
from logloss._diagnostics import LOGIT_RANGE, LOSS_BINS, LOSS_LOW, LOSS_PER_DECADE
from logloss._numpy import chunked
from logloss._numpy import kernels as paths

from ..public.test_diagnostics_saved_hostile import _infinite_as_floats

if not paths.supported_paths():
    pytest.skip("the compiled kernels were not built (no C compiler at install)",
                allow_module_level=True)


def _probabilities(n, rng, dtype=np.float64):
    p = rng.beta(0.7, 1.5, n)
    special = np.array([0.0, 1.0, 5e-324, 1e-310, 2.2250738585072014e-308, 1e-300, 0.5,
                        1 - 2.0**-53, 2.0**-53, 3e-9, 1 - 3e-9, 1.3e-16, 0.999999])
    at = rng.choice(n, size=n // 5, replace=False)
    p[at] = rng.choice(special, size=len(at))
    p[rng.choice(n, size=n // 10, replace=False)] = 0.25  # ties
    return p.astype(dtype)


def _logits(n, rng, dtype=np.float64):
    z = rng.normal(0, 4, n)
    special = np.array([np.inf, -np.inf, 0.0, 700.0, -700.0, 709.5, -745.0, 1e300, -1e300,
                        34.0, -34.0, 36.0, 40.0, -690.5, 1e-20])
    at = rng.choice(n, size=n // 5, replace=False)
    z[at] = rng.choice(special, size=len(at))
    return z.astype(dtype)


def _near_edges(loss, key, resolution, logits):
    """Rows whose loss or logit is within 1e-10 of a bin of a histogram edge (either side may
    be right), but for z = 0 (p = 1/2), which both paths compute exactly."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        z = key if logits else np.log(key) - np.log1p(-key)
        cell = (z + LOGIT_RANGE) * (resolution / (2 * LOGIT_RANGE))
        position = (np.log10(loss) - LOSS_LOW) * LOSS_PER_DECADE
        near_cell = (np.abs(cell - np.round(cell)) < 1e-10) & (z != 0) & (np.abs(z) <= LOGIT_RANGE)
        near_bin = ((np.abs(position - np.round(position)) < 1e-10) & (position >= -1)
                    & (position <= LOSS_BINS))
        return near_cell | near_bin


def _compare_histogram(a, b, moved: int, moved_mass: float, rtol=1e-12):
    """Equal but for ``moved`` rows (of total mass ``moved_mass`` in a sum field) that may sit in
    the neighbouring bin: a move changes the running sum by at most that row's share."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape
    scale = np.abs(b).max(initial=0.0)
    with np.errstate(invalid="ignore"):
        if np.isinf(scale):
            assert np.array_equal(np.isinf(a), np.isinf(b))
            a, b = np.where(np.isinf(a), 0, a), np.where(np.isinf(b), 0, b)
            scale = np.abs(b).max(initial=0.0)
    drift = np.abs(np.cumsum(a - b)).max(initial=0.0)
    assert drift <= moved_mass + rtol * max(scale, 1.0) * len(a), (drift, moved, moved_mass)


def _states(y, preds, *, logits=False, **kwargs):
    settings = kwargs.pop("settings", {})
    a = DiagnosticsState(from_logits=logits, **settings).update(y, preds, **kwargs)
    with logloss.config_context(engine="numpy"):
        b = DiagnosticsState(from_logits=logits, **settings).update(y, preds, **kwargs)
    return a, b


def _assert_same(a: DiagnosticsState, b: DiagnosticsState, y, preds, *, logits, weight=None):
    da = _infinite_as_floats(json.loads(json.dumps(a.to_dict(), allow_nan=False)))
    db = _infinite_as_floats(json.loads(json.dumps(b.to_dict(), allow_nan=False)))
    assert da["rows"] == db["rows"] and da["names"] == db["names"]
    assert da["segment_keys"] == db["segment_keys"]
    preds = preds if isinstance(preds, dict) else {"model": preds}
    for ma, mb, x in zip(da["models"], db["models"], preds.values(), strict=True):
        assert ma["counts"] == mb["counts"]
        assert ma["caps"] == mb["caps"]
        for name, (hi, lo) in mb["totals"].items():
            got, want = sum(ma["totals"][name]), hi + lo
            if math.isinf(want) or math.isinf(got):
                assert got == want, name
            else:
                assert got == pytest.approx(want, rel=1e-13, abs=1e-300), name
        x64 = np.asarray(x, dtype=np.float64).ravel()
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if logits:
                loss = np.where(np.asarray(y).ravel() != 0, np.logaddexp(0, -x64),
                                np.logaddexp(0, x64))
            else:
                loss = -np.where(np.asarray(y).ravel() != 0, np.log(x64), np.log1p(-x64))
        near = _near_edges(loss, x64, a.resolution, logits)
        w = np.ones(len(loss)) if weight is None else np.asarray(weight, dtype=np.float64).ravel()
        with np.errstate(invalid="ignore"):
            wl = np.where(w > 0, w * loss, 0.0)
        moved = int(np.count_nonzero(near))
        ha, hb = np.array(ma["hist"]), np.array(mb["hist"])
        for field, mass in ((0, w), (1, w), (2, w), (3, wl), (4, np.ones(len(w)))):
            m = float(np.sum(mass[near])) if moved else 0.0
            _compare_histogram(ha[field], hb[field], moved, m)
        la, lb = np.array(ma["loss_hist"]), np.array(mb["loss_hist"])
        for c in range(2):
            for field, mass in ((0, w), (1, wl), (2, np.ones(len(w)))):
                m = float(np.sum(mass[near])) if moved else 0.0
                _compare_histogram(la[c, field], lb[c, field], moved, m)
        sa, sb = np.array(ma["segments"]), np.array(mb["segments"])
        assert sa.shape == sb.shape
        finite = np.isfinite(sb)
        assert np.array_equal(np.isfinite(sa), finite)
        assert np.allclose(sa[finite], sb[finite], rtol=1e-12, atol=1e-300)
        wa, wb = ma["worst"], mb["worst"]
        assert wa["loss"] == pytest.approx(wb["loss"], rel=1e-14)
        with np.errstate(invalid="ignore"):  # inf - inf
            gaps = np.diff(np.array(wb["loss"], dtype=np.float64))
            close = np.any((gaps != 0) & (np.abs(gaps) < 1e-13 * np.abs(wb["loss"][1:])))
        if not close:  # ranks can only swap between losses within an ulp of each other
            assert wa["id"] == wb["id"]
            assert wa["label"] == wb["label"]
    for pa, pb in zip(da["pairs"], db["pairs"], strict=True):
        assert np.allclose(pa["overall"], pb["overall"], rtol=1e-11, equal_nan=True)
        assert np.allclose(pa["segments"], pb["segments"], rtol=1e-11, equal_nan=True)


@pytest.mark.parametrize("n", [1, 511, 513, 5000, 70_001])
@pytest.mark.parametrize("logits", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_kernel_matches_numpy_on_adversarial_rows(K, n, logits, weighted):
    rng = np.random.default_rng(n + 10 * logits + 100 * weighted)
    y = (rng.random(n) < 0.4).astype(np.int8)
    x = _logits(n, rng) if logits else _probabilities(n, rng)
    w = None
    if weighted:
        w = rng.exponential(1.0, n)
        w[rng.random(n) < 0.2] = 0.0  # zero weights, some on infinite losses
    a, b = _states(y, x, logits=logits, sample_weight=w, settings={"k": 15})
    _assert_same(a, b, y, x, logits=logits, weight=w)
    ra, rb = a.result(), b.result()
    ma, mb = ra["models"]["model"], rb["models"]["model"]
    for key in ("log_loss", "brier", "calibration_ratio", "ece", "base_rate"):
        assert ma[key] == pytest.approx(mb[key], rel=1e-11, nan_ok=True), key
    assert ma["infinite"] == mb["infinite"]


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("code_dtype", [np.int8, np.uint16, np.int32, np.int64, np.uint64])
def test_segments_and_pairs_on_every_code_dtype_and_thread_count(K, threads, code_dtype):
    rng = np.random.default_rng(7)
    n = 50_777  # three kernel chunks and a part: up to three threads
    y = (rng.random(n) < 0.3).astype(np.float32)
    p = _probabilities(n, rng, np.float32)
    q = np.clip(p * 0.9 + 0.05, 0, 1).astype(np.float64)
    w = rng.random(n).astype(np.float32)
    segments = rng.integers(0, 40, n).astype(code_dtype)
    keys = [(f"s{i}",) for i in range(40)]
    from logloss._diagnostics import SegmentCodes

    with logloss.config_context(threads=threads):
        for weight in (None, w):
            models = {"a": p, "b": q}
            by = SegmentCodes(["segment"], segments, keys)
            a, b = _states(y, models, sample_weight=weight, by=by)
            _assert_same(a, b, y, models, logits=False, weight=weight)


def test_batches_threads_and_the_scratch_limit_give_one_state(K, monkeypatch):
    """Many batches on one thread, on two, with per-thread scratch down to one slot, merged
    and through JSON: the same histograms (plain sums: equal to rounding)."""
    rng = np.random.default_rng(3)
    n = 200_000
    y = (rng.random(n) < 0.35).astype(np.int8)
    p = rng.beta(2, 5, n)
    segment = rng.integers(0, 1000, n)

    def run(threads, limit=None, batch=40_000):
        if limit is not None:
            monkeypatch.setattr(chunked, "DIAGNOSTICS_SCRATCH_LIMIT", limit)
        state = DiagnosticsState(k=7)
        with logloss.config_context(threads=threads):
            for i in range(0, n, batch):
                state.update(y[i:i + batch], p[i:i + batch], by=segment[i:i + batch])
        monkeypatch.setattr(chunked, "DIAGNOSTICS_SCRATCH_LIMIT", 32 << 20)
        return state

    one, two, tight = run(1), run(2), run(2, limit=1)
    halves = run(2, batch=100_000)
    other = DiagnosticsState(k=7)
    other.update(y[100_000:], p[100_000:], by=segment[100_000:])
    merged = DiagnosticsState(k=7).update(y[:100_000], p[:100_000], by=segment[:100_000])
    merged.merge(DiagnosticsState.from_dict(json.loads(json.dumps(other.to_dict()))))
    reference = one.to_dict()["models"][0]
    # chunk i of a batch goes to slot i whichever thread takes it: bit for bit the same sums
    assert two.to_dict() == one.to_dict() == run(3).to_dict()
    for state in (two, tight, halves, merged):
        model = state.to_dict()["models"][0]
        assert model["counts"] == reference["counts"]
        assert np.array_equal(np.array(model["hist"])[[0, 1, 4]],
                              np.array(reference["hist"])[[0, 1, 4]])
        assert np.allclose(model["hist"], reference["hist"], rtol=1e-12)
        assert np.allclose(model["loss_hist"], reference["loss_hist"], rtol=1e-12)
        assert np.allclose(model["segments"], reference["segments"], rtol=1e-12)
        assert model["worst"]["loss"] == reference["worst"]["loss"]


def test_kernel_keeps_infinite_losses_infinite_and_first(K):
    y = np.array([1, 0, 1, 0, 1] * 1000, dtype=np.int8)
    p = np.full(len(y), 0.3)
    p[[10, 3000]] = 0.0  # positives predicted 0: infinite
    p[[11, 4000]] = 1.0  # a negative predicted 1 (11), a positive predicted 1 (4000: loss 0)
    w = np.ones(len(y))
    w[3000] = 0.0  # dropped: its infinite loss does not count
    state = DiagnosticsState(k=4).update(y, p, sample_weight=w)
    assert state.models[0].scratch is not None  # the kernel took it
    result = state.result()["models"]["model"]
    assert result["infinite"] == 2
    assert math.isinf(result["log_loss"])
    assert [r["id"] for r in result["worst"][:2]] == [10, 11]
    assert all(math.isinf(r["loss"]) for r in result["worst"][:2])
    assert result["by_class"]["positive"]["infinite"] == 1


def test_kernel_declines_what_the_numpy_path_must_name(K):
    """Invalid values reach the NumPy checks and their messages; nothing is added first."""
    state = DiagnosticsState()
    y = np.zeros(10_000, dtype=np.int8)
    p = np.full(10_000, 0.2)
    p[7777] = 1.5
    with pytest.raises(ValueError, match="7777"):
        state.update(y, p)
    y[9999] = 2
    p[7777] = 0.5
    with pytest.raises(ValueError, match="9999"):
        state.update(y, p)
    y[9999] = 1
    w = np.ones(10_000)
    w[5] = -1.0
    with pytest.raises(ValueError, match="sample_weight"):
        state.update(y, p, sample_weight=w)
    assert state.names is None or state.models[0].counts["count"] == 0
    state.update(y, p)
    assert state.result()["models"]["model"]["count"] == 10_000


def test_the_kernel_refuses_codes_it_was_not_given_room_for(K):
    """The bounds of codes and segment rows are checked in C (a caller error never writes out
    of bounds)."""
    y = np.zeros(1000, dtype=np.int8)
    p = np.full(1000, 0.5)
    codes = np.zeros(1000, dtype=np.int32)
    codes[999] = 5
    types = (chunked._code(y), chunked._code(p), chunked._F64, chunked._code(codes))
    scratch = chunked.DiagnosticsScratch(K, 16)
    remap = np.arange(3, dtype=np.int64)
    assert not chunked.diagnostics_check(K, types, y, p, None, codes, 3, from_logits=False)
    with pytest.raises(ValueError, match="not checked"):
        chunked.diagnostics_update(K, types, y, p, None, codes, remap, 3, scratch, 1,
                                   from_logits=False, k=3, threshold=-1.0)
    with pytest.raises(ValueError, match="remap outside"):
        chunked.diagnostics_update(K, types, y, p, None, np.zeros(1000, np.int32),
                                   np.array([7], dtype=np.int64), 3, scratch, 1,
                                   from_logits=False, k=3, threshold=-1.0)


def test_per_thread_scratch_stays_within_its_cap_as_segments_grow(K, monkeypatch):
    """Slots are sized for the segments seen so far; when more segments make fewer slots fit,
    the state folds its slots first, so the scratch never exceeds the cap by the old slots."""
    rng = np.random.default_rng(9)
    n = 120_000
    y = (rng.random(n) < 0.4).astype(np.int8)
    p = rng.random(n)
    state = DiagnosticsState(resolution=64)
    scratch_limit = 3 * chunked.DiagnosticsScratch(K, 64).slot_bytes(2_000)
    monkeypatch.setattr(chunked, "DIAGNOSTICS_SCRATCH_LIMIT", scratch_limit)
    with logloss.config_context(threads=3):
        state.update(y[:60_000], p[:60_000], by=rng.integers(0, 10, 60_000))
        # the batch's chunks, not the threads: 60,000 rows cut at multiples of CHUNK (16,384)
        assert len(state.models[0].scratch.slots) == -(-60_000 // K.CHUNK) == 4
        state.update(y[60_000:], p[60_000:], by=rng.integers(0, 50_000, 60_000))
    slots = state.models[0].scratch.slots
    used = sum(a.nbytes for slot in slots for arrays in slot.values() for a in arrays
               if a is not None)
    assert len(slots) == 1 and used <= scratch_limit + 8 * 7 * 50_000 * 2
    assert state.result()["models"]["model"]["count"] == n


def _exact_loss_bin(loss: float) -> tuple[int, bool]:
    """floor((log10 loss + 16) 50) + 1 clipped to [0, LOSS_BINS - 1] from a 200-bit log10, and
    whether the position is within 1e-9 of an integer (where a formula in float64 may floor to
    either side)."""
    import mpmath

    if not loss >= 1e-300:  # 0, NaN, subnormals: the bin below 1e-16
        return 0, False
    if loss == math.inf:
        return LOSS_BINS - 1, False
    with mpmath.workprec(200):
        position = (mpmath.log10(mpmath.mpf(loss)) - LOSS_LOW) * LOSS_PER_DECADE
        floor = int(mpmath.floor(position))
        near = abs(position - mpmath.nint(position)) < mpmath.mpf("1e-9")
    return min(max(floor, -1), LOSS_BINS - 2) + 1, bool(near)


def test_loss_bins_without_the_log_are_the_formulas_bins(K):
    """The kernel's loss bins come from a short polynomial, with the formula's own log taken for
    a row whose position is within 2**-20 of an integer: they must be the formula's bins for
    every loss, at, just below and just above every bin edge and around the margin of that
    fallback, and (away from an edge) the bins of the exact log10."""
    import mpmath

    rng = np.random.default_rng(7)
    with mpmath.workprec(200):
        edges = np.array([float(mpmath.power(10, mpmath.mpf(k) / LOSS_PER_DECADE + LOSS_LOW))
                          for k in range(LOSS_BINS - 1)])
    values = [edges]
    for steps in (1, 2, 3, 8):  # ulps below and above each edge
        below, above = edges.copy(), edges.copy()
        for _ in range(steps):
            below, above = np.nextafter(below, 0.0), np.nextafter(above, np.inf)
        values += [below, above]
    # positions 0.5 to 4 fallback margins (2**-20) away from an edge, both sides
    for factor in (0.5, 0.9, 0.99, 1.01, 1.1, 2.0, 4.0):
        relative = factor * 2.0**-20 * math.log(10) / LOSS_PER_DECADE
        values += [edges * (1 + relative), edges * (1 - relative)]
    values.append(10.0 ** rng.uniform(-320, 308, 20000))
    values.append(np.array([0.0, -0.0, 5e-324, 1e-310, 2.2250738585072014e-308, 1e-300,
                            np.nextafter(1e-300, 0), np.nextafter(1e-300, 1), 1e-16, 1.0, 1e4,
                            np.nextafter(1e4, 0), 1e300, 1.7976931348623157e308, math.inf,
                            math.nan, -math.log(0.01), 34.538776394910684, 100.0]))
    loss = np.ascontiguousarray(np.concatenate(values), dtype=np.float64)
    fast, formula = np.empty(loss.size, np.int32), np.empty(loss.size, np.int32)
    K.diagnose_loss_bins(loss, fast, 0)
    K.diagnose_loss_bins(loss, formula, 1)
    wrong = np.flatnonzero(fast != formula)
    assert not wrong.size, (loss[wrong[:5]], fast[wrong[:5]], formula[wrong[:5]])
    for value, got in zip(loss.tolist(), formula.tolist()):
        exact, near = _exact_loss_bin(value)
        assert got == exact or (near and abs(got - exact) == 1), (value, got, exact)
    # the same bins reach the loss histogram through the kernel's update (positives: -log p)
    with np.errstate(over="ignore"):
        p = np.exp(-loss[(loss >= 0) & (loss < 745)])
    n, resolution = p.size, 64
    y = np.ones(n, dtype=np.int8)
    hist = np.zeros((resolution + 2) * K.DIAG_HIST_U)
    loss_hist = np.zeros(K.DIAG_LOSS_BINS * K.DIAG_LOSS_U)
    losses = np.empty(n)
    status, _ = K.diagnose(y, 1, p, 11, None, 0, None, 0, None, hist, loss_hist, None, losses,
                           np.empty(1, np.int64), np.empty(1), np.empty(2 * K.DIAG_TOTALS),
                           np.empty(K.DIAG_COUNTS, np.int64), 0, -1.0, resolution, 0, n, False)
    assert status == K.OK
    bins = np.empty(n, np.int32)
    K.diagnose_loss_bins(losses, bins, 1)
    counts = loss_hist.reshape(K.DIAG_LOSS_BINS, K.DIAG_LOSS_U)[:, 3]
    assert np.array_equal(counts, np.bincount(bins, minlength=K.DIAG_LOSS_BINS))


def test_the_short_loss_bin_position_is_within_its_bound(K):
    """diagnostics.c's bound: the polynomial position is within 4e-8 of the exact one (the
    fallback margin, 2**-20, is over 20 times that), checked on every octave and both ends of
    the mantissa range, against a 200-bit log10."""
    import mpmath

    rng = np.random.default_rng(11)
    exponents = np.arange(-996, 1024)
    mantissas = np.concatenate([[1.0, np.nextafter(2.0, 0), math.sqrt(0.5) * 2, math.sqrt(2.0),
                                 np.nextafter(math.sqrt(2.0), 0)], rng.uniform(1, 2, 40)])
    loss = np.ascontiguousarray(np.ldexp(mantissas[None, :],
                                         exponents[::7, None]).ravel())
    loss = np.concatenate([loss, np.ldexp(rng.uniform(1, 2, 20000), rng.integers(-60, 20, 20000))])
    loss = loss[(loss >= 1e-300) & np.isfinite(loss)]
    short = np.empty(loss.size)
    K.diagnose_loss_bins(loss, short, 2)
    worst = 0.0
    with mpmath.workprec(200):
        for value, got in zip(loss.tolist(), short.tolist()):
            exact = (mpmath.log10(mpmath.mpf(value)) - LOSS_LOW) * LOSS_PER_DECADE
            worst = max(worst, abs(float(mpmath.mpf(got) - exact)))
    assert worst < 4e-8, worst
