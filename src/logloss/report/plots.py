"""Pictures of a diagnosis, drawn with matplotlib (the ``logloss[report]`` extra).

Each ``plot_...(figures, *, ax=None)`` draws on the axis given, or on a new
:class:`matplotlib.figure.Figure` (never pyplot's global state), and returns the axis. A picture
only draws numbers that the diagnosis also gives as a table.
"""

from __future__ import annotations

import math
import threading

from .. import _diagnostics

BLUE, ORANGE, GREY, RED, GREEN = "#1f5fa8", "#d9731a", "#8a8a8a", "#b8322a", "#2e7d32"
BARS = 25  # segments drawn at most; the tables list them all


def plain(text) -> str:
    """User text for matplotlib, shown as written: a `$` would otherwise start mathtext."""
    return str(text).replace("\\", "\\\\").replace("$", r"\$")


def _matplotlib():
    try:
        import matplotlib
    except ImportError:
        raise ImportError("The pictures need matplotlib: pip install 'logloss[report]'.") from None
    return matplotlib


# Margins in inches (left, right, bottom, top) of the figures whose text is fixed: constrained
# layout measured them (with room to spare) but drew every figure twice to do so, a third of the
# HTML report's drawing time.
MARGINS = (0.85, 0.2, 0.65, 0.3)


def new_figure(width: float = 6.4, height: float = 4.0, *, margins=None):
    """A figure outside pyplot: nothing global is touched, nothing shows on a screen. Laid out by
    matplotlib's constrained layout, or with fixed ``margins`` (inches) when given."""
    _matplotlib()
    from matplotlib.figure import Figure

    if margins is None:
        return Figure(figsize=(width, height), layout="constrained")
    figure = Figure(figsize=(width, height))
    left, right, bottom, top = margins
    figure.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height,
                           top=1 - top / height)
    return figure


_SUPERSCRIPT = str.maketrans("-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079")


def _power_of_ten(value, _position=None) -> str:
    """A log axis's tick label as 10 with a Unicode superscript: matplotlib's default writes
    mathtext, whose parsing and layout took half the HTML report's drawing time."""
    exponent = round(math.log10(value)) if value > 0 else None
    if exponent is None or not math.isclose(value, 10.0 ** exponent):
        return ""  # a minor tick: unlabelled, as by default on these wide ranges
    return "1" if exponent == 0 else "10" + str(exponent).translate(_SUPERSCRIPT)


def _log_x(ax) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(_power_of_ten))
    # minor ticks at 2 and 5 of each decade, not at all eight: each tick is a few artists
    ax.xaxis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _axis(ax, width=6.4, height=4.0, margins=None):
    return ax if ax is not None else new_figure(width, height, margins=margins).add_subplot()


def _title(ax, text, *, own: bool, **kwargs) -> None:
    """The title; on a figure of our own (``own``) at y = 1, just above the axes. That is where
    matplotlib's automatic placement puts it when nothing (tick labels, an offset text) is drawn
    above the axes under the title, as on these figures; placing it automatically measures every
    y tick label once more at each drawing. On an axis the caller gave, it is placed
    automatically."""
    ax.set_title(text, y=1.0 if own else None, **kwargs)


def _model(figures, model=None) -> dict:
    """One model's figures from a Diagnosis, its ``figures`` or one model's mapping."""
    figures = getattr(figures, "figures", figures)
    if "models" not in figures:
        return figures
    models = figures["models"]
    if model is None:
        if len(models) > 1:
            raise ValueError(f"Name the model to draw: one of {list(models)}.")
        return next(iter(models.values()))
    return models[model]


def plot_reliability(figures, *, model=None, ax=None, hist_ax=None):
    """The reliability diagram: the PAV recalibration curve and the equal-mass bins over the
    diagonal, and (on ``hist_ax``, or below when a new figure is made) the weight of the
    predictions."""
    m = _model(figures, model)
    own = ax is None
    if own:
        figure = new_figure(6.4, 5.2, margins=MARGINS)
        grid = figure.add_gridspec(2, 1, height_ratios=[3, 1], hspace=0.3)
        ax = figure.add_subplot(grid[0])
        hist_ax = figure.add_subplot(grid[1], sharex=ax)
    pav = m["reliability"]["pav"]
    xs, ys = [], []
    for low, high, value in zip(pav["prediction_low"], pav["prediction_high"], pav["observed"]):
        # a step closer than 1/2000 of the axis to the last one drawn adds nothing visible
        if xs and high - xs[-1] < 5e-4 and abs(value - ys[-1]) < 5e-4:
            xs[-1] = high
            continue
        xs += [low, high]
        ys += [value, value]
    ax.plot([0, 1], [0, 1], color=GREY, linestyle="--", linewidth=1, label="perfect calibration")
    ax.plot(xs, ys, color=BLUE, linewidth=1.8, label="PAV recalibration")
    bins = m["reliability"]["bins"]
    ax.plot([b["prediction"] for b in bins], [b["observed"] for b in bins], "o", color=ORANGE,
            markersize=5, label=f"{len(bins)} equal-mass bins")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("observed rate of positives")
    _title(ax, "Reliability", own=own)
    ax.legend(loc="upper left", frameon=False, fontsize="small")
    if hist_ax is not None:
        histogram = m["reliability"]["histogram"]
        edges = histogram["edges"]
        hist_ax.stairs(histogram["weight"], edges, fill=True, color=BLUE, alpha=0.7)
        hist_ax.set_xlabel("predicted probability")
        hist_ax.set_ylabel("share of rows")
    else:
        ax.set_xlabel("predicted probability")
    return ax


def plot_loss_by_bin(figures, *, model=None, ax=None):
    """Mean loss in each equal-mass bin of predicted probability, with its share of the loss."""
    m = _model(figures, model)
    own = ax is None
    ax = _axis(ax, margins=MARGINS[:2] + (0.85, MARGINS[3]))  # room for the slanted labels
    bins = m["reliability"]["bins"]
    labels = [f"{b['prediction']:.2g}" for b in bins]
    heights = [b["mean_loss"] if math.isfinite(b["mean_loss"]) else 0.0 for b in bins]
    bars = ax.bar(range(len(bins)), heights, color=BLUE)
    for bar, b in zip(bars, bins):
        share = b["share_of_loss"]
        text = "inf" if not math.isfinite(b["mean_loss"]) else (
            f"{share:.0%}" if math.isfinite(share) else "")
        ax.annotate(text, (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize="x-small")
    ax.set_xticks(range(len(bins)), labels, rotation=45, fontsize="small")
    ax.set_xlabel("mean predicted probability of the bin (labels: share of the total loss)")
    ax.set_ylabel("mean log loss")
    _title(ax, "Loss by predicted-probability bin", own=own)
    return ax


def plot_concentration(figures, *, model=None, ax=None):
    """The concentration curve: share of the loss against share of the rows, worst rows first."""
    m = _model(figures, model)
    own = ax is None
    ax = _axis(ax, margins=MARGINS)
    curve = m["concentration"]["curve"]
    if curve:
        ax.plot([c[0] for c in curve], [c[1] for c in curve], color=RED, linewidth=1.8,
                label="this model")
    grid = [10 ** (-4 + i / 25) for i in range(101)]
    ax.plot(grid, grid, color=GREY, linestyle="--", linewidth=1, label="every row alike")
    for entry in m["concentration"]["worst"]:
        share = entry["share_of_loss"]
        if share is not None and math.isfinite(share):
            ax.plot([entry["rows"]], [share], "o", color=RED)
            ax.annotate(f"worst {entry['rows']:.1%}: {share:.0%}", (entry["rows"], share),
                        textcoords="offset points", xytext=(6, -10), fontsize="small")
    _log_x(ax)
    ax.set_xlim(1e-4, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("share of rows, worst first (log scale)")
    ax.set_ylabel("share of the total loss")
    _title(ax, "Concentration of the loss", own=own)
    ax.legend(loc="upper left", frameon=False, fontsize="small")
    if not curve:
        ax.text(0.5, 0.5, f"{m['infinite']} rows have infinite loss:\nthe total is infinite",
                transform=ax.transAxes, ha="center", va="center", color=RED)
    return ax


def plot_class_losses(figures, *, model=None, ax=None):
    """How the losses of the positives and of the negatives are distributed (log axis)."""
    m = _model(figures, model)
    own = ax is None
    ax = _axis(ax, margins=MARGINS)
    hist = m["loss_histogram"]
    edges = _diagnostics.loss_bin_edges()
    finite_edges = edges[1:-1]
    for name, color in (("positive", ORANGE), ("negative", BLUE)):
        counts = hist[name][1:-1]
        total = sum(hist[name])
        if not total:
            continue
        xs, ys = [], []
        for lo, hi, c in zip(finite_edges[:-1], finite_edges[1:], counts[:-1]):
            xs += [lo, hi]
            ys += [c / total, c / total]
        label = f"{name}s ({m['by_class'][name]['count']} rows, mean "
        mean = m["by_class"][name]["mean_loss"]
        label += f"{mean:.3g})" if mean is not None and math.isfinite(mean) else "inf)"
        ax.plot(xs, ys, color=color, linewidth=1.5, label=label)
    for cap in m["concentration"]["caps"]:
        ax.axvline(cap["cap"], color=GREY, linewidth=0.8, linestyle=":")
    _log_x(ax)
    ax.set_xlim(1e-6, 200)
    ax.set_xlabel("loss of a row (log scale; dotted: the frameworks' caps 16.1, 34.5, 36.0, 100)")
    ax.set_ylabel("share of the class's rows")
    _title(ax, "Losses of the positives and of the negatives", own=own)
    ax.legend(frameon=False, fontsize="small")
    return ax


def _segment_label(segment: dict) -> str:
    return plain(", ".join(f"{k}={v}" for k, v in segment.items()))


def plot_segments(figures, *, model=None, ax=None):
    """Each segment's share of the total loss (the largest first) beside its share of rows."""
    m = _model(figures, model)
    seg = m.get("segments")
    own = ax is None
    ax = _axis(ax, 6.4, max(2.5, 0.32 * (min(len(seg["rows"]), BARS) + 2) if seg else 2.5))
    if not seg:
        return ax
    rows = list(seg["rows"][:BARS])
    labels = [_segment_label(r["segment"]) for r in rows]
    if seg["other"]:
        rows.append(seg["other"])
        labels.append(f"other ({seg['other']['segments']} segments)")
    if len(seg["rows"]) > BARS:
        labels[-1 if not seg["other"] else -2] += f"  (top {BARS} of {seg['total']} shown)"
    total_weight = m["weight"]
    shares = [r["share_of_loss"] if math.isfinite(r["share_of_loss"]) else 0.0 for r in rows]
    weights = [r["weight"] / total_weight for r in rows]
    positions = list(range(len(rows)))[::-1]
    ax.barh([p + 0.2 for p in positions], shares, height=0.4, color=RED, label="share of loss")
    ax.barh([p - 0.2 for p in positions], weights, height=0.4, color=GREY, label="share of rows")
    ax.set_yticks(positions, [t if len(t) < 40 else t[:37] + "..." for t in labels],
                  fontsize="small")
    ax.set_xlabel("share")
    _title(ax, "Segments by share of the loss", own=own)
    ax.legend(fontsize="small", loc="best", framealpha=0.9)
    return ax


def plot_comparison(figures, *, pair: int = 0, ax=None):
    """The paired comparison: the mean loss difference (b - a) with its 95% interval, overall
    and per segment."""
    figures = getattr(figures, "figures", figures)
    c = figures["comparison"][pair]
    rows = [("all rows", c)] + [(_segment_label(s["segment"]), s)
                                for s in c.get("segments", [])[:BARS]]
    own = ax is None
    ax = _axis(ax, 6.4, max(2.5, 0.35 * (len(rows) + 2)))
    positions = list(range(len(rows)))[::-1]
    for position, (_, r) in zip(positions, rows):
        mean = r["mean_difference"]
        low, high = r["interval_95"]
        if mean is None or not math.isfinite(mean):
            continue
        color = GREEN if (high is not None and high < 0) else RED if (low is not None and low > 0)\
            else GREY
        if low is not None and math.isfinite(low):
            ax.plot([low, high], [position, position], color=color, linewidth=2)
        ax.plot([mean], [position], "o", color=color)
    ax.axvline(0, color=GREY, linewidth=1, linestyle="--")
    ax.set_yticks(positions, [t if len(t) < 40 else t[:37] + "..." for t, _ in rows],
                  fontsize="small")
    a, b = plain(c["a"]), plain(c["b"])
    ax.set_xlabel(f"mean loss of {b} minus {a} per row, with 95% interval\n"
                  f"(left of 0: {b} better; right: {a} better)")
    _title(ax, f"{a} against {b}: {a} better on {c['a_better']:.0%} of rows, "
           f"{b} on {c['b_better']:.0%}", own=own, fontsize="medium")
    return ax


def plot_explain(*, ax=None):
    """The introductory articles' two curves: -log p (a bird, y = 1) and -log(1 - p) (no bird),
    with the bird predicted at 99% and at 5%."""
    import numpy as np

    from .._binary import binary_cross_entropy

    own = ax is None
    ax = _axis(ax)
    p = np.linspace(0.001, 0.999, 999)
    ax.plot(p, binary_cross_entropy(np.ones_like(p), p, reduction="none"), color=BLUE,
            label="y = 1 (a bird): -log p")
    ax.plot(p, binary_cross_entropy(np.zeros_like(p), p, reduction="none"), color=ORANGE,
            label="y = 0 (no bird): -log(1 - p)")
    for prob, label, color in ((0.99, 1, BLUE), (0.05, 1, BLUE), (0.99, 0, ORANGE),
                               (0.05, 0, ORANGE)):
        loss = float(binary_cross_entropy([label], [prob]))
        ax.plot([prob], [loss], "o", color=color)
        what = "bird" if label else "no bird"
        ax.annotate(f"{what}, p = {prob:.0%}: loss {loss:.3f}", (prob, loss),
                    textcoords="offset points",
                    xytext=(-150 if prob > 0.5 else 8, 16 if loss < 1 else 6),
                    fontsize="small")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 7)
    ax.set_xlabel("predicted probability p of a bird")
    ax.set_ylabel("loss")
    _title(ax, "Binary cross-entropy of one prediction", own=own)
    ax.legend(frameon=False, loc="upper center")
    return ax


def plot_all(figures) -> dict:
    """Every picture of a diagnosis, by name, each on its own figure."""
    figures = getattr(figures, "figures", figures)
    out = {}
    for name in figures["models"]:
        prefix = "" if len(figures["models"]) == 1 else f"{name}: "
        m = figures["models"][name]
        out[f"{prefix}reliability"] = plot_reliability(m).figure
        out[f"{prefix}loss by bin"] = plot_loss_by_bin(m).figure
        out[f"{prefix}concentration"] = plot_concentration(m).figure
        out[f"{prefix}losses by class"] = plot_class_losses(m).figure
        if m.get("segments"):
            out[f"{prefix}segments"] = plot_segments(m).figure
    for index, c in enumerate(figures.get("comparison", [])):
        out[f"{c['a']} against {c['b']}"] = plot_comparison(figures, pair=index).figure
    return out


_SVG_LOCK = threading.Lock()


def to_svg(figure) -> str:
    """The figure as an SVG document (text kept as text, so it can be searched and printed)."""
    import io

    _matplotlib()
    import matplotlib

    buffer = io.StringIO()
    # rc_context sets the process-wide rcParams and puts back what it found: two threads inside
    # at once (reports drawn in parallel) put the report's settings back for good, or drew with
    # the other's restored ones. The lock makes the drawings take turns.
    with _SVG_LOCK, matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "logloss"}):
        figure.savefig(buffer, format="svg")
    text = buffer.getvalue()
    return text[text.index("<svg"):]
