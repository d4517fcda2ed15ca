"""Hostile tests of the diagnostics state's units for tiny weights (``scale``): every weight
container the checks accept, forged saved scales, and states built in any order. References
are computed here from the rows (math.fsum, Fraction), never by logloss."""

import itertools
import json
import math
from fractions import Fraction

import numpy as np
import pytest

import logloss
from logloss import DiagnosticsState, _diagnostics

from .test_diagnostics_hostile import _leaves

pandas = pytest.importorskip("pandas")


def _losses(y, p) -> list[float]:
    return [-math.log(q) if t else -math.log1p(-q) for t, q in zip(y.tolist(), p.tolist())]


def _rows(n=80, seed=5):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.45).astype(np.int8)
    pa = rng.uniform(0.03, 0.97, n)
    pb = np.clip(pa + rng.normal(0.0, 0.2, n), 0.01, 0.99)
    units = rng.integers(1, 9, n).astype(np.float64)
    return y, pa, pb, units


def _weighted_mean(units, values) -> float:
    """sum u v / sum u in exact rationals (the unit weights: a common factor cancels)."""
    u = [Fraction(v) for v in units]
    return float(sum(a * Fraction(b) for a, b in zip(u, values)) / sum(u))


# Weights the checks take besides a float64 array, each of them tiny: the scalar is every row's
# weight, so its figures are the unweighted ones.
_CONTAINERS = {
    "python float": lambda w: float(w[0]),
    "numpy float64 scalar": lambda w: np.float64(w[0]),
    "0-d array": lambda w: np.array(w[0]),
    "pandas Series": lambda w: pandas.Series(w),
    "list": lambda w: w.tolist(),
    "big-endian float64 array": lambda w: w.astype(">f8"),
    "long double array": lambda w: w.astype(np.longdouble),
}
_UNITS = {"5e-324": 5e-324, "1e-320": 1e-320, "1e-310": 1e-310, "2**-1000": 2.0**-1000}


@pytest.mark.parametrize("engine", ["auto", "numpy"])
@pytest.mark.parametrize("how", ["diagnose", "state"])
@pytest.mark.parametrize("unit", list(_UNITS))
@pytest.mark.parametrize("container", list(_CONTAINERS))
def test_tiny_weights_in_any_container_give_their_weighted_figures(engine, how, unit,
                                                                    container):
    """Only float64 arrays and lists were put in the state's units: a Python float of 5e-324
    for every row reported a log loss 17% above the unweighted one, a pandas Series of
    subnormal weights one 8e-4 below its weighted log loss (1e-310: 2.6e-15), and big-endian
    or long double arrays of weights k * 5e-324 one 21% below it, as right."""
    y, pa, pb, units = _rows()
    scalar = container in ("python float", "numpy float64 scalar", "0-d array")
    if scalar:
        units = np.ones_like(units)
    weights = _CONTAINERS[container](units * _UNITS[unit])
    with logloss.config_context(engine=engine):
        if how == "diagnose":
            figures = logloss.diagnose(y, {"a": pa, "b": pb}, sample_weight=weights).to_dict()
        else:
            figures = DiagnosticsState().update(y, {"a": pa, "b": pb}, weights).result()
    la, lb = _losses(y, pa), _losses(y, pb)
    model = figures["models"]["a"]
    assert model["log_loss"] == pytest.approx(_weighted_mean(units, la), rel=1e-13)
    assert figures["models"]["b"]["log_loss"] == pytest.approx(_weighted_mean(units, lb),
                                                               rel=1e-13)
    positives = units * (y == 1)
    assert model["base_rate"] == pytest.approx(float(Fraction(math.fsum(positives))
                                                     / Fraction(math.fsum(units))), rel=1e-15)
    mean = _weighted_mean(units, [Fraction(b) - Fraction(a) for a, b in zip(la, lb)])
    assert figures["comparison"][0]["mean_difference"] == pytest.approx(mean, rel=1e-12)
    total = sum(Fraction(_UNITS[unit]) * Fraction(u) for u in units.tolist())
    assert model["weight"] == float(total)


@pytest.mark.parametrize("scale", [1, 5, 1000, 2000, 1 << 11, -1075, -2000, -(1 << 11), True,
                                   1.0, -5.0, "0", None])
def test_a_forged_saved_scale_is_a_clear_value_error(scale):
    """to_dict writes 0 or the exponent of a weight below 2**-500 (at least -1073): a forged
    scale of 1000 reported a total weight of 5e304 for one of 16, and 2000 raised a bare
    OverflowError ('math range error') out of result()."""
    y, pa, _, units = _rows(n=20)
    saved = json.loads(json.dumps(DiagnosticsState().update(y, pa, units).to_dict()))
    saved["scale"] = scale
    with pytest.raises(ValueError, match="scale"):
        DiagnosticsState.from_dict(saved).result()


@pytest.mark.parametrize("scale", [0, -1, -600, -1073, -1074])
def test_a_saved_scale_within_range_loads(scale):
    y, pa, _, units = _rows(n=20)
    saved = json.loads(json.dumps(DiagnosticsState().update(y, pa, units).to_dict()))
    saved["scale"] = scale
    model = DiagnosticsState.from_dict(saved).result()["models"]["model"]
    assert model["weight"] == math.ldexp(math.fsum(units.tolist()), scale)
    assert model["log_loss"] == pytest.approx(_weighted_mean(units, _losses(y, pa)), rel=1e-13)


# -- masked arrays -----------------------------------------------------------------------------

_ENTRIES = {
    "binary_cross_entropy": lambda y, p, w: logloss.binary_cross_entropy(y, p, sample_weight=w),
    "diagnose": lambda y, p, w: logloss.diagnose(y, p, sample_weight=w),
    "DiagnosticsState.update": lambda y, p, w: DiagnosticsState().update(y, p, w),
    "Accumulator.update": lambda y, p, w: logloss.Accumulator().update(y, p, sample_weight=w),
}


@pytest.mark.parametrize("engine", ["auto", "numpy"])
@pytest.mark.parametrize("rows", [10, 40_000])
@pytest.mark.parametrize("masked", ["y_true", "y_pred", "sample_weight",
                                    "sample_weight all masked", "tiny sample_weight"])
@pytest.mark.parametrize("entry", list(_ENTRIES))
def test_a_masked_array_is_refused_whatever_the_path(engine, rows, masked, entry):
    """A masked array is refused (its mask would be ignored), but the compiled kernels took
    masked arrays of 4096 rows or more as plain ones (binary_cross_entropy, diagnose and
    Accumulator reported figures that counted the masked rows, as right), diagnose's NumPy path
    read masked labels and predictions through np.asarray at any size, and fully masked weights
    raised NumPy's 'converting a masked element to nan' warning out of the tiny-weight scale
    instead of the refusal."""
    y = np.tile(np.array([1, 0], dtype=np.int8), rows // 2)
    p = np.tile([0.9, 0.2], rows // 2)
    w = np.tile([1.0, 3.0], rows // 2) * (2.0**-1070 if masked == "tiny sample_weight" else 1)
    mask = np.arange(rows) == 0 if masked != "sample_weight all masked" else np.ones(rows, bool)
    args = {"y_true": y, "y_pred": p, "sample_weight": w}
    name = masked if masked in args else "sample_weight"
    args[name] = np.ma.array(args[name], mask=mask)
    with logloss.config_context(engine=engine), pytest.raises(TypeError, match="masked array"):
        _ENTRIES[entry](args["y_true"], args["y_pred"], args["sample_weight"])


# -- states in any order -----------------------------------------------------------------------


def _same(got: dict, want: dict, tag) -> None:
    got, want = dict(_leaves(got)), dict(_leaves(want))
    assert got.keys() == want.keys(), tag
    for path, value in want.items():
        if ".worst[" in path and path.endswith(".id"):
            continue  # a row's position depends on the order the states reached each other
        other = got[path]
        if isinstance(value, float) and math.isnan(value):
            assert isinstance(other, float) and math.isnan(other), (tag, path)
        elif isinstance(value, float):  # not pytest.approx: thousands of histogram leaves
            close = other == value or abs(other - value) <= 1e-12 * abs(value) + 1e-300
            assert close, (tag, path, other, value)
        else:
            assert other == value, (tag, path)


_THREE_PARTS = {
    "subnormal, 1e-310, 2**-600": (5e-324, 1e-310, 2.0**-600),
    "subnormal, 1, 1e-320": (5e-324, 1.0, 1e-320),
    "half zero, zero, 2**-1050": (5e-324, 0.0, 2.0**-1050),
}


@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("engine", ["auto", "numpy"])
@pytest.mark.parametrize("parts", list(_THREE_PARTS))
def test_three_states_of_different_units_agree_in_every_order(parts, engine, threads):
    """Three states (tiny, ordinary or zero weights, with segments) merged in all six orders,
    both groupings, and streamed batch by batch through to_dict / JSON / from_dict after each
    batch: every figure agrees to 1e-12, and the total weight is that of the rows."""
    rng = np.random.default_rng(11)
    n = 3 * 40
    y = rng.integers(0, 2, n)
    models = {"a": rng.uniform(0.02, 0.98, n), "b": rng.uniform(0.02, 0.98, n)}
    units = rng.integers(1, 50, n).astype(np.float64)
    weights = units * np.repeat(_THREE_PARTS[parts], 40)
    if parts.startswith("half zero"):
        weights[:40:2] = 0.0
    shop = rng.integers(0, 7, n)
    pieces = [slice(0, 40), slice(40, 80), slice(80, 120)]

    def add(state, i):
        state = state if state is not None else DiagnosticsState(k=4, resolution=256)
        rows = pieces[i]
        return state.update(y[rows], {k: v[rows] for k, v in models.items()}, weights[rows],
                            by=shop[rows])

    def saved(state):
        return DiagnosticsState.from_dict(json.loads(json.dumps(state.to_dict())))

    figures = {}
    with logloss.config_context(engine=engine, threads=threads):
        for order in [(0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)]:
            i, j, k = order
            left = add(None, i).merge(add(None, j))
            figures["(%d%d)%d" % order] = left.merge(add(None, k))
            right = add(None, j).merge(add(None, k))
            figures["%d(%d%d)" % order] = add(None, i).merge(saved(right))
            streamed = None
            for piece in order:
                streamed = saved(add(streamed, piece))
            figures["streamed %d%d%d" % order] = streamed
        results = {tag: state.result(max_segments=3) for tag, state in figures.items()}
    want = results["(01)2"]
    for tag, got in results.items():
        _same(got, want, tag)
    total = math.fsum(weights.tolist())
    assert want["models"]["a"]["weight"] == pytest.approx(total, rel=1e-15)


# -- losses near the float64 floor ---------------------------------------------------------------

_SMALL_WEIGHTS = {"0.25": 0.25, "1e-10": 1e-10, "1e-100": 1e-100, "2**-499": 2.0**-499,
                  "1e-200": 1e-200}


@pytest.mark.parametrize("engine", ["auto", "numpy"])
@pytest.mark.parametrize("how", ["diagnose", "state"])
@pytest.mark.parametrize("unit", list(_SMALL_WEIGHTS))
def test_losses_near_1e_300_with_weights_below_one(engine, how, unit):
    """Logits of 690 to 710 give losses of 1e-300 to 1e-308; weights of 1e-100 (above the
    2**-500 where the state started to scale them) times such a loss underflowed to 0, and
    diagnose reported a log loss of 0.0 for 5.4e-301 (Accumulator: 5.4e-301). Any weights
    below 1 are now added in units of their largest power of two."""
    y = np.array([1, 1, 0, 1, 0, 1], dtype=np.int8)
    za = np.array([700.0, 690.0, -705.0, 706.0, -695.0, 703.0])
    zb = za + np.array([1.0, -1.0, -2.0, 2.0, 0.5, -0.5])
    units = np.array([1.0, 2.0, 3.0, 1.0, 2.0, 3.0])

    def loss(t, z):  # softplus(-z) for a positive, softplus(z) for a negative: exp(-|z|) here
        return math.log1p(math.exp(-z if t else z))

    la = [loss(t, z) for t, z in zip(y.tolist(), za.tolist())]
    lb = [loss(t, z) for t, z in zip(y.tolist(), zb.tolist())]
    weights = units * _SMALL_WEIGHTS[unit]
    with logloss.config_context(engine=engine):
        if how == "diagnose":
            figures = logloss.diagnose(y, {"a": za, "b": zb}, sample_weight=weights,
                                       from_logits=True).to_dict()
        else:
            figures = DiagnosticsState(from_logits=True).update(
                y, {"a": za, "b": zb}, weights).result()
    for name, losses in (("a", la), ("b", lb)):
        assert figures["models"][name]["log_loss"] == pytest.approx(
            _weighted_mean(units, losses), rel=1e-13, abs=0), name
    mean = _weighted_mean(units, [Fraction(b) - Fraction(a) for a, b in zip(la, lb)])
    assert figures["comparison"][0]["mean_difference"] == pytest.approx(mean, rel=1e-12, abs=0)


def test_the_paired_standard_error_of_differences_near_1e_300():
    """Both models nearly certain (logits of 690 to 710): the differences d are near 1e-300, so
    each s^2 (d - mean)^2 underflows and the standard error is 0.0, and the sentence says the
    interval 'excludes zero' (a clear winner) on a spread the state could not hold."""
    y = np.array([1, 1, 0, 1, 0, 1], dtype=np.int8)
    za = np.array([700.0, 690.0, -705.0, 706.0, -695.0, 703.0])
    zb = za + np.array([1.0, -1.0, -2.0, 2.0, 0.5, -0.5])
    d = [Fraction(math.log1p(math.exp(-b if t else b))) - Fraction(math.log1p(math.exp(-a if t
                                                                                     else a)))
         for t, a, b in zip(y.tolist(), za.tolist(), zb.tolist())]
    mean = sum(d) / len(d)
    spread = sum((x - mean) ** 2 for x in d) / len(d) ** 2
    se = math.sqrt(float(Fraction(len(d), len(d) - 1) * spread * Fraction(2) ** 2000)) * 2.0**-1000
    pair = logloss.diagnose(y, {"a": za, "b": zb}, from_logits=True).to_dict()["comparison"][0]
    assert pair["standard_error"] == pytest.approx(se, rel=1e-12, abs=0)


# -- the pair's differences in units of a power of two ---------------------------------------


def _softplus(x: float) -> float:
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def _logit_losses(y, z) -> list[float]:
    return [_softplus(-x if t else x) for t, x in zip(y.tolist(), z.tolist())]


def _sqrt(x: Fraction) -> float:
    """sqrt(x) for a rational far outside float64 (1e-600, 1e400): even powers of two out."""
    if not x:
        return 0.0
    shift = x.numerator.bit_length() - x.denominator.bit_length()
    shift -= shift % 2
    return math.ldexp(math.sqrt(float(x / Fraction(2) ** shift)), shift // 2)


def _paired(units, la, lb):
    """(mean, standard error) of d = lb - la with weights u, in exact rationals."""
    u = [Fraction(v) for v in units]
    d = [Fraction(b) - Fraction(a) for a, b in zip(la, lb)]
    total = sum(u)
    mean = sum(ui * di for ui, di in zip(u, d)) / total
    spread = sum(ui * ui * (di - mean) ** 2 for ui, di in zip(u, d)) / total**2
    return float(mean), _sqrt(Fraction(len(d), len(d) - 1) * spread)


def _tiny_parts():
    """Three batches: differences near 1e-302 and near 1e-296 (both in segment 'tiny': logits
    of 690 to 710 and of 676 to 684), and ordinary ones (segment 'ordinary')."""
    rng = np.random.default_rng(11)
    parts = []
    for low, high, key, n in ((690, 710, "tiny", 9), (676, 684, "tiny", 7),
                              (-3, 3, "ordinary", 12)):
        y = (rng.random(n) < 0.5).astype(np.int8)
        sign = np.where(y == 1, 1.0, -1.0)  # the true class near certain in the tiny parts
        za = sign * rng.uniform(low, high, n) if low > 0 else rng.uniform(low, high, n)
        zb = za + rng.uniform(-2.0, 2.0, n)
        units = rng.integers(1, 9, n).astype(np.float64)
        parts.append((y, za, zb, units, np.array([key] * n)))
    return parts


def _state_of(part, saved):
    y, za, zb, units, key = part
    state = DiagnosticsState(from_logits=True, resolution=16)
    state.update(y, {"a": za, "b": zb}, units, by=key)
    return saved(state)


@pytest.mark.parametrize("engine", ["auto", "numpy"])
def test_differences_near_1e_300_merged_in_any_order_agree_with_the_rows(engine):
    """A segment whose differences are near 1e-300 had a standard error of 0.0 however it was
    built; merged with states of other units (1e-296, ordinary) in any order, through JSON or
    not, each segment and the whole keep the spread the rows have."""
    parts = _tiny_parts()
    rows = {"tiny": parts[:2], "ordinary": [parts[2]], "all": parts}
    want = {}
    for name, chosen in rows.items():
        units = [u for p in chosen for u in p[3].tolist()]
        la = [v for p in chosen for v in _logit_losses(p[0], p[1])]
        lb = [v for p in chosen for v in _logit_losses(p[0], p[2])]
        want[name] = _paired(units, la, lb)
    assert 1e-310 < want["tiny"][1] < 1e-290  # a spread far below float64's squares
    plain = lambda state: state  # noqa: E731
    saved = lambda state: DiagnosticsState.from_dict(  # noqa: E731
        json.loads(json.dumps(state.to_dict())))
    with logloss.config_context(engine=engine):
        built = {}
        for order in itertools.permutations(range(3)):
            for tag, how in (("", plain), ("json ", saved)):
                state = _state_of(parts[order[0]], how)
                for i in order[1:]:
                    state = how(state.merge(_state_of(parts[i], how)))
                built[f"{tag}merged {order}"] = state
            streamed = DiagnosticsState(from_logits=True, resolution=16)
            for i in order:
                y, za, zb, units, key = parts[i]
                streamed = saved(streamed.update(y, {"a": za, "b": zb}, units, by=key))
            built[f"streamed {order}"] = streamed
        for tag, state in built.items():
            pair = state.result()["comparison"][0]
            got = {"all": pair, **{[*s["segment"].values()][0]: s for s in pair["segments"]}}
            for name, (mean, se) in want.items():
                assert got[name]["mean_difference"] == pytest.approx(mean, rel=1e-12, abs=0), (
                    tag, name)
                assert got[name]["standard_error"] == pytest.approx(se, rel=1e-12, abs=0), (
                    tag, name)


def _saved_tiny_state() -> dict:
    state = _state_of(_tiny_parts()[0], lambda s: s)
    return json.loads(json.dumps(state.merge(_state_of(_tiny_parts()[2], lambda s: s))
                                 .to_dict()))


def _as_version_3(saved: dict) -> dict:
    """The same state as version 3 wrote it: differences as they were, no pair scales."""
    old = json.loads(json.dumps(saved))
    old["version"] = 3
    for pair in old["pairs"]:
        scales = [pair.pop("scale")] + pair.pop("segment_scales")
        for sums, scale in zip([pair["overall"], *pair["segments"]], scales, strict=True):
            sums[2], sums[4] = math.ldexp(sums[2], scale), math.ldexp(sums[4], scale)
            sums[5] = math.ldexp(sums[5], 2 * scale)
    return old


def test_a_version_3_state_still_loads_with_the_same_figures():
    """Version 3 kept the differences unscaled (no pair scales): an ordinary state written by
    it loads to the figures it had, and merges with a current state of tiny differences."""
    part = _tiny_parts()[2]  # ordinary differences: version 3 held them exactly
    state = _state_of(part, lambda s: s)
    saved = json.loads(json.dumps(state.to_dict()))
    assert saved["version"] == 5
    assert saved["pairs"][0]["scale"] != 0  # units of a power of two, not 2**0
    old = DiagnosticsState.from_dict(_as_version_3(saved))
    assert old.result() == state.result()
    assert old.to_dict()["version"] == 5
    tiny = _tiny_parts()[0]
    merged = old.merge(_state_of(tiny, lambda s: s)).result()["comparison"][0]
    segments = {[*s["segment"].values()][0]: s for s in merged["segments"]}
    mean, se = _paired(tiny[3].tolist(), _logit_losses(tiny[0], tiny[1]),
                       _logit_losses(tiny[0], tiny[2]))
    assert segments["tiny"]["mean_difference"] == pytest.approx(mean, rel=1e-12, abs=0)
    assert segments["tiny"]["standard_error"] == pytest.approx(se, rel=1e-12, abs=0)


_FORGED = [1025, 2000, -1074, -1075, -5000, True, 1.0, -5.0, "0", None, [0]]


@pytest.mark.parametrize("field", ["scale", "segment_scales[1]"])
@pytest.mark.parametrize("value", _FORGED, ids=[repr(v) for v in _FORGED])
def test_a_forged_pair_scale_is_a_clear_value_error(field, value):
    """to_dict writes a pair scale in [-1073, 1024] (frexp's exponents of finite differences):
    any other multiplied the mean difference and its standard error by a power of two (or
    overflowed them), so it is refused, naming the field, the range and the value."""
    saved = _saved_tiny_state()
    pair = saved["pairs"][0]
    if field == "scale":
        pair["scale"] = value
    else:
        pair["segment_scales"][1] = value
    with pytest.raises(ValueError) as caught:
        DiagnosticsState.from_dict(saved)
    message = str(caught.value)
    assert f"`{field}`" in message and "[-1073, 1024]" in message
    assert f"Received {value!r}" in message


@pytest.mark.parametrize("how", ["missing", "too few", "not a list"])
def test_missing_segment_pair_scales_are_a_clear_value_error(how):
    saved = _saved_tiny_state()
    pair = saved["pairs"][0]
    if how == "missing":
        del pair["segment_scales"]
    elif how == "too few":
        pair["segment_scales"].pop()
    else:
        pair["segment_scales"] = 0
    with pytest.raises(ValueError, match="`segment_scales` must be a list of 2 integers"):
        DiagnosticsState.from_dict(saved)


@pytest.mark.parametrize("shift", [-7, 3, 1024])
def test_a_saved_pair_scale_within_range_loads(shift):
    """Any scale to_dict could write loads: the figures move by its power of two, exactly,
    and past float64 they are inf (no OverflowError out of result())."""
    saved = _saved_tiny_state()
    want = DiagnosticsState.from_dict(saved).result()["comparison"][0]
    pair = saved["pairs"][0]
    scale = pair["scale"] + shift if shift != 1024 else 1024
    shift = scale - pair["scale"]
    pair["scale"] = scale
    got = DiagnosticsState.from_dict(saved).result()["comparison"][0]
    for name in ("mean_difference", "standard_error"):
        assert got[name] == want[name] * 2.0**shift, name  # Python's product: inf past float64
    if shift > 1000:  # a spread of 2 * 2**1024 is past float64: inf, not an OverflowError
        pair["overall"][5] = 4.0
        got = DiagnosticsState.from_dict(saved).result()["comparison"][0]
        assert got["standard_error"] == math.inf


def _helper_figures(d: np.ndarray, w: np.ndarray, codes: np.ndarray, n: int) -> list[dict]:
    """The pair's figures per group from the pure helpers: two halves summed, then merged."""
    half = len(d) // 2
    sums = []
    for part in (slice(0, half), slice(half, None)):
        dp, wp, cp = d[part], w[part], codes[part]
        finite = np.ones(len(dp), dtype=bool)
        flags = [finite, np.where(dp > 0, wp, 0.0), np.where(dp < 0, wp, 0.0),
                 np.where(dp == 0, wp, 0.0), ~finite, ~finite]
        sums.append(_diagnostics._pair_sums(cp, n, wp, dp, flags))
    merged = _diagnostics._merge_pair(sums[0], sums[1])
    return [_diagnostics._pair_figures(row) for row in merged]


@pytest.mark.parametrize("shift", [-600, 600, -1000, 900])
def test_scaling_every_difference_by_a_power_of_two_scales_the_standard_error_exactly(shift):
    """d * 2**shift: the pair's sums hold d in units of its largest power of two, so the mean
    and standard error move by 2**shift bit for bit (unscaled, squares of d * 2**-600 were
    below float64 and of d * 2**600 past it); two groups, one of them with |d| spread wide."""
    rng = np.random.default_rng(3)
    d = rng.normal(0.1, 1.0, 40)
    d[::7] *= 1e-30  # far below the rest: negligible, with no warning
    w = rng.integers(1, 9, 40).astype(np.float64)
    codes = np.arange(40) % 2
    base = _helper_figures(d, w, codes, 2)
    moved = _helper_figures(np.ldexp(d, shift), w, codes, 2)
    for want, got in zip(base, moved, strict=True):
        assert got["mean_difference"] == math.ldexp(want["mean_difference"], shift)
        assert got["standard_error"] == math.ldexp(want["standard_error"], shift)
        assert got["standard_error"] > 0
    for group in (0, 1):
        mean, se = _paired(w[group::2].tolist(), [0.0] * 20, d[group::2].tolist())
        assert base[group]["mean_difference"] == pytest.approx(mean, rel=1e-12, abs=0)
        assert base[group]["standard_error"] == pytest.approx(se, rel=1e-12, abs=0)


@pytest.mark.parametrize("engine", ["auto", "numpy"])
def test_differences_near_1e200_from_huge_logits_keep_their_standard_error(engine):
    """Logits of -1e200 for the true class give losses of 1e200: squares of their differences
    were past float64 and the standard error came out inf."""
    y = np.array([1, 0, 1, 0, 1], dtype=np.int8)
    za = np.array([-1e200, 2e200, -3e200, 1.5e200, -2.5e200])
    zb = np.array([-2e200, 1e200, -1e200, 3e200, -2e200])
    mean, se = _paired([1.0] * 5, _logit_losses(y, za), _logit_losses(y, zb))
    with logloss.config_context(engine=engine):
        pair = DiagnosticsState(from_logits=True, resolution=16).update(
            y, {"a": za, "b": zb}).result()["comparison"][0]
    assert pair["mean_difference"] == pytest.approx(mean, rel=1e-12, abs=0)
    assert pair["standard_error"] == pytest.approx(se, rel=1e-12, abs=0)
