"""`logloss report`, `logloss demo`, `logloss explain --plot`, the pictures and the HTML report,
without a browser (tests/test_report_browser.py renders the report in Chromium)."""

from __future__ import annotations

import base64
import json
import math
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pytest.importorskip("matplotlib")
pytest.importorskip("jinja2")

import logloss  # noqa: E402
from logloss._cli import main  # noqa: E402
from logloss.report.sentences import pair_conclusion  # noqa: E402

XSS = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>']


def _losses(y, p):
    """Per-row log loss written out: -log p for a positive, -log(1 - p) for a negative."""
    return np.where(y == 1, -np.log(p), -np.log1p(-p))


def _wide_file(tmp_path, n=30_000, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.beta(2, 5, n)
    y = (rng.random(n) < np.clip(1.3 * p, 0, 1)).astype(np.int8)
    other = np.clip(p + rng.normal(0, 0.1, n), 0.001, 0.999)
    shop = rng.choice(np.array(["north", *XSS]), n)
    table = pa.table({"label": y, "pred": p, XSS[0]: other, "shop": shop,
                      "row_id": [f"id-{i}" for i in range(n)]})
    path = tmp_path / "wide.parquet"
    pq.write_table(table, path, row_group_size=7_000)
    return path, y, p, other, shop


def test_report_json_streams_the_same_figures_as_diagnose(tmp_path, capsys):
    path, y, p, other, shop = _wide_file(tmp_path)
    code = main(["report", str(path), "--pred", "pred", "--pred", XSS[0], "--by", "shop",
                 "--id", "row_id", "--format", "json", "--quiet"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rows_scored"] == len(y) and out["rows_rejected"] == 0
    good = out["models"]["pred"]
    assert good["log_loss"] == pytest.approx(np.mean(_losses(y, p)), rel=1e-12)
    assert out["models"][XSS[0]]["log_loss"] == pytest.approx(np.mean(_losses(y, other)),
                                                            rel=1e-12)
    exact = logloss.diagnose(y, {"pred": p, XSS[0]: other}, by={"shop": shop})
    d, e = good["decomposition"], exact.models["pred"]["decomposition"]
    assert not d["exact"]
    assert d["miscalibration"] - 1e-12 <= e["miscalibration"] <= d["miscalibration"] + d["bound"]
    diff = _losses(y, other) - _losses(y, p)
    assert out["comparison"][0]["mean_difference"] == pytest.approx(diff.mean(), rel=1e-12)
    worst = np.argsort(-_losses(y, p), kind="stable")[:10]
    assert [r["id"] for r in good["worst"]] == [f"id-{i}" for i in worst]
    segments = {r["segment"]["shop"] for r in good["segments"]["rows"]}
    assert segments == {"north", *XSS}


def test_report_html_is_self_contained_escaped_and_small(tmp_path):
    path, *_ = _wide_file(tmp_path)
    out = tmp_path / "report.html"
    assert main(["report", str(path), "--pred", "pred", "--pred", XSS[0], "--by", "shop",
                 "-o", str(out), "--quiet"]) == 0
    html = out.read_text(encoding="utf-8")
    assert len(html.encode()) <= 2_000_000
    assert "<script" not in html.lower()  # the page has no script at all; user text is escaped
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html and "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html)
    assert "default-src 'none'" in html
    images = re.findall(r'<img src="data:image/svg\+xml;base64,([^"]+)"', html)
    assert len(images) >= 9
    for data in images:
        svg = base64.b64decode(data).decode()
        assert "<script" not in svg and "<svg" in svg
    assert "beats" in html and "Recalibrating" in html
    # the streamed ECE with the bound its histogram resolution allows
    assert len(re.findall(r"<td>\d\.\d+ ± \d\.\d+(?:e-\d+)?</td>", html)) == 2


def test_report_refuses_what_score_refuses_with_the_same_message(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("label,pred\n1,0.5\n0,1.5\n")
    assert main(["score", str(bad)]) == 1
    score_error = capsys.readouterr().err.split("invalid data: ", 1)[1]
    assert main(["report", str(bad)]) == 1
    report_error = capsys.readouterr().err.split("invalid data: ", 1)[1]
    assert report_error == score_error
    assert main(["report", str(bad), "--on-invalid", "skip", "--format", "json", "-q"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rows_rejected"] == 1 and out["rejected_by_reason"] == {"pred_out_of_range": 1}
    assert main(["report", str(tmp_path / "missing.parquet")]) == 2
    assert main(["report", str(bad), "--pred", "nope"]) == 2
    assert "no column 'nope'" in capsys.readouterr().err
    for option, value in (("--bins", "0"), ("--worst", "-1"), ("--resolution", "4"),
                          ("--max-segments", "0")):
        assert main(["report", str(bad), option, value]) == 2
        assert f"Invalid value for {option}" in capsys.readouterr().err


def test_report_folds_many_segments_into_other(tmp_path, capsys):
    n = 200_000
    rng = np.random.default_rng(1)
    p = rng.uniform(0.05, 0.95, n)
    y = (rng.random(n) < p).astype(np.int8)
    path = tmp_path / "many.parquet"
    pq.write_table(pa.table({"y": y, "p": p, "user": rng.integers(0, 100_000, n)}), path)
    assert main(["report", str(path), "--by", "user", "--format", "json", "-q"]) == 0
    seg = json.loads(capsys.readouterr().out)["segments"]
    assert len(seg["rows"]) == 20
    assert seg["total"] == len(set(pq.read_table(path)["user"].to_pylist()))
    assert seg["other"]["segments"] == seg["total"] - 20


def test_report_keeps_infinite_losses_infinite(tmp_path, capsys):
    path = tmp_path / "inf.csv"
    path.write_text("label,pred\n1,0.0\n0,0.3\n1,0.8\n")
    assert main(["report", str(path), "--format", "json"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["log_loss"] == "inf" and out["infinite"] == 1
    assert out["worst"][0]["loss"] == "inf" and out["worst"][0]["id"] == 1
    assert "infinite loss" in captured.err


@pytest.mark.parametrize("command", ["report", "score"])
@pytest.mark.parametrize("extra, rows", [
    ([], "0,1e308,a\n0,1e308,a\n1,0,b\n"),                  # two finite losses of 1e308
    (["--by", "g"], "0,1e308,a\n0,1e308,a\n1,0,b\n"),
    (["--weight", "w"], "0,1e308,a,3\n1,0,b,1\n"),          # 3 * 1e308: the weighted sum
])
def test_finite_losses_whose_sum_overflows_are_refused_not_reported_inf(tmp_path, capsys, command,
                                                                         extra, rows):
    # The exact mean is finite (about 6.7e307), but the sum of the losses leaves float64: report
    # printed "log_loss": "inf" with "infinite": 0, and score crashed with a traceback.
    path = tmp_path / "big.csv"
    path.write_text(("y,x,g,w\n" if "--weight" in extra else "y,x,g\n") + rows)
    with np.errstate(over="ignore"):
        code = main([command, str(path), "--label", "y", "--pred", "x", "--logits", "-q",
                     "--format", "json", *extra])
    captured = capsys.readouterr()
    if command == "score" and "--weight" in extra:  # score scales by the largest weight: exact
        assert code == 0 and json.loads(captured.out)["log_loss"] == 7.5e307
        return
    assert code == 1 and captured.out == ""
    assert "invalid data" in captured.err and "float64 range" in captured.err


def test_demo_prints_commands_that_run(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    command = re.search(r"^  (logloss score .+)$", out, re.MULTILINE).group(1)
    argv = shlex.split(command)[1:]
    assert Path(argv[1]).is_file()
    assert main(argv + ["--quiet"]) == 0
    capsys.readouterr()
    assert main(["demo", "--copy", "demo.csv", "--report", "demo.html"]) == 0
    out = capsys.readouterr().out
    assert "logloss score demo.csv --by model" in out
    assert (tmp_path / "demo.csv").is_file()
    html = (tmp_path / "demo.html").read_text()
    assert "good beats bad" in html


def test_explain_plot_writes_a_picture(tmp_path, capsys):
    target = tmp_path / "curves.png"
    assert main(["explain", "--plot", str(target)]) == 0
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["explain", "--plot", str(tmp_path / "x.unknown")]) == 2


def test_plots_draw_on_the_axis_given_and_never_touch_pyplot():
    from matplotlib.figure import Figure

    from logloss.report import plots

    rng = np.random.default_rng(2)
    p = rng.uniform(0.01, 0.99, 3000)
    y = (rng.random(3000) < p).astype(int)
    d = logloss.diagnose(y, {"a": p, "b": p ** 1.2}, by=rng.integers(0, 4, 3000))
    figure = Figure()
    axes = figure.subplots(2, 4).ravel()
    drawn = [plots.plot_reliability(d, model="a", ax=axes[0]),
             plots.plot_loss_by_bin(d, model="a", ax=axes[1]),
             plots.plot_concentration(d, model="a", ax=axes[2]),
             plots.plot_class_losses(d, model="a", ax=axes[3]),
             plots.plot_segments(d, model="b", ax=axes[4]),
             plots.plot_comparison(d, ax=axes[5]),
             plots.plot_explain(ax=axes[6])]
    assert drawn == list(axes[:7])
    assert all(ax.lines or ax.patches for ax in drawn)
    assert len(d.plot()) == 11
    code = ("import sys, numpy as np, logloss; d = logloss.diagnose([0, 1, 1], [.2, .7, .4]); "
            "d.plot(); d.to_html(); print('matplotlib.pyplot' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_user_text_with_dollars_is_drawn_as_written():
    from logloss.report import plots

    d = logloss.diagnose([0, 1, 1, 0], {"$x$": [.2, .7, .4, .1], "b\\$": [.3, .6, .5, .5]},
                         by={"s": ["$a$", "$a$", "b", "b"]})
    figures = d.plot()
    svg = plots.to_svg(figures["$x$ against b\\$"])
    assert "$x$" in svg and "$a$" in svg
    assert not math.isnan(d.comparison[0]["mean_difference"])


def test_log_axes_are_labelled_in_plain_text_and_every_text_fits_its_figure():
    """The log axes' labels are Unicode powers of ten (no mathtext, which was half the drawing
    time), and the figures laid out with fixed margins still hold every text they draw."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from logloss.report import plots

    rng = np.random.default_rng(3)
    p = rng.uniform(1e-5, 1 - 1e-5, 5000)
    y = (rng.random(5000) < p).astype(int)
    figures = logloss.diagnose(y, p).plot()
    for name, figure in figures.items():
        svg = plots.to_svg(figure)
        canvas = FigureCanvasAgg(figure)
        canvas.draw()
        drawn = figure.get_tightbbox(canvas.get_renderer())  # every text drawn, in inches
        width, height = figure.get_size_inches()
        assert drawn.x0 >= -0.01 and drawn.y0 >= -0.01, (name, drawn)
        assert drawn.x1 <= width + 0.01 and drawn.y1 <= height + 0.01, (name, drawn)
        if name in ("concentration", "losses by class"):
            assert "\u2212" not in svg and "$" not in svg  # no mathtext minus, no TeX
            labels = [t.get_text() for t in figure.axes[0].get_xticklabels() if t.get_text()]
            assert "10\u207b\u00b2" in labels and "10\u207b\u00b9" in labels and "1" in labels, labels


def test_titles_of_our_figures_stand_where_matplotlib_would_place_them():
    """The figures made by the plot functions fix their title just above the axes (placing it
    automatically measured the axes at each drawing): it must be where matplotlib's automatic
    placement puts it on the same axes, here also with a y offset text (losses of 1e-9)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from logloss.report import plots

    rng = np.random.default_rng(4)
    y = (rng.random(4000) < 0.5).astype(int)
    tiny = np.where(y == 1, 1 - 1e-9, 1e-9) + rng.uniform(-1e-10, 1e-10, 4000)
    p = rng.uniform(0.01, 0.99, 4000)
    diagnoses = [logloss.diagnose(y, tiny),
                 logloss.diagnose(y, {"a": p, "b": p ** 1.2}, by=rng.integers(0, 4, 4000))]
    offsets = set()
    for d in diagnoses:
        pictures = [(lambda ax, hist_ax=None, f=f, m=m: f(d, model=m, ax=ax), f.__name__)
                    for f in (plots.plot_loss_by_bin, plots.plot_concentration,
                              plots.plot_class_losses, plots.plot_segments)
                    for m in d.model_names
                    if f is not plots.plot_segments or d.models[m].get("segments")]
        pictures += [(lambda ax, hist_ax=None, m=m: plots.plot_reliability(
            d, model=m, ax=ax, hist_ax=hist_ax), "reliability") for m in d.model_names]
        if d.comparison:
            pictures.append((lambda ax, hist_ax=None: plots.plot_comparison(d, ax=ax),
                             "comparison"))
        pictures.append((lambda ax, hist_ax=None: plots.plot_explain(ax=ax), "explain"))
        for draw, name in pictures:
            ours = draw(None).figure
            if ours.get_layout_engine() is None:  # fixed margins
                given = Figure(figsize=ours.get_size_inches())
                axes = [given.add_axes(ax.get_position()) for ax in ours.axes]
            else:
                given = Figure(figsize=ours.get_size_inches(), layout="constrained")
                axes = [given.add_subplot()]
            draw(*axes)
            titles = []
            for figure in (ours, given):
                canvas = FigureCanvasAgg(figure)
                canvas.draw()
                titles.append(figure.axes[0].title.get_window_extent(canvas.get_renderer()))
                offsets.add(figure.axes[0].yaxis.get_offset_text().get_text())
            assert np.allclose(titles[0].get_points(), titles[1].get_points(), atol=0.01), name
    assert offsets - {""}  # the case where automatic placement looks at an offset text is covered


def test_notebook_view_is_the_report_in_a_sandboxed_iframe():
    d = logloss.diagnose([0, 1, 1, 0], [0.2, 0.7, 0.4, 0.1], by=["<b>", "<b>", "x", "x"])
    shown = d._repr_html_()
    assert shown.startswith("<iframe srcdoc=") and " sandbox " in shown
    assert "<b>" not in shown and "&lt;" in shown


def test_report_over_two_megabytes_is_refused_with_advice(tmp_path, capsys):
    n = 16_000
    rng = np.random.default_rng(4)
    p = rng.uniform(0.05, 0.95, n)
    y = (rng.random(n) < p).astype(np.int8)
    path = tmp_path / "users.parquet"
    pq.write_table(pa.table({"y": y, "p": p, "q": p ** 1.1, "user": np.arange(n) // 4}), path)
    out = tmp_path / "r.html"
    assert main(["report", str(path), "--pred", "p", "--pred", "q", "--by", "user",
                 "--max-segments", "4000", "-o", str(out), "-q"]) == 2
    assert "--max-segments" in capsys.readouterr().err and not out.exists()
    assert main(["report", str(path), "--pred", "p", "--pred", "q", "--by", "user",
                 "-o", str(out), "-q"]) == 0
    assert out.stat().st_size <= 2_000_000


def test_report_progress_bar_names_its_phase_on_a_terminal(tmp_path, capsys, monkeypatch):
    pytest.importorskip("tqdm")
    path, *_ = _wide_file(tmp_path, n=5000)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert main(["report", str(path), "--format", "json", "-o", str(tmp_path / "r.json")]) == 0
    err = capsys.readouterr().err
    assert "diagnosing" in err and "5.00k/5.00k" in err and "scoring" not in err
    assert main(["score", str(path), "--format", "json"]) == 0
    assert "scoring" in capsys.readouterr().err


@pytest.mark.parametrize("dtype", ["int8", "uint16", "int32", "int64"])
def test_by_an_integer_column_numbered_by_value_matches_its_text(tmp_path, capsys, dtype):
    """Integer --by values are numbered by value (no hash table) over the span seen so far, the
    span growing across row groups; the figures are those of the same values as text. A span
    beyond BY_VALUE_SPAN and a column with missing values take pyarrow's hash table instead."""
    from logloss._cli import report as report_cli

    rng = np.random.default_rng(5)
    n = 40_000
    p = rng.uniform(0.05, 0.95, n)
    y = (rng.random(n) < p).astype(np.int8)
    low = 0 if dtype.startswith("u") else -100
    values = np.sort(rng.integers(low, low + 200, n)).astype(dtype)  # span grows batch by batch
    table = pa.table({"y": y, "p": p, "g": values, "text": values.astype(str)})
    path = tmp_path / "ints.parquet"
    pq.write_table(table, path, row_group_size=6_000)

    def segments(column):
        assert main(["report", str(path), "--by", column, "--format", "json", "-q",
                     "--max-segments", "500"]) == 0
        seg = json.loads(capsys.readouterr().out)["segments"]
        return {str(r["segment"][column]): (r["count"], r["log_loss"]) for r in seg["rows"]}

    by_value, by_text = segments("g"), segments("text")
    assert by_value.keys() == by_text.keys() == {str(v) for v in np.unique(values)}
    for key, (count, loss) in by_text.items():
        assert by_value[key][0] == count
        assert by_value[key][1] == pytest.approx(loss, rel=1e-13)
    column = pa.array(values)
    codes, keys = report_cli._codes_by_value(column, None, {})
    assert [keys[c][0] for c in codes[:5].tolist()] == values[:5].tolist()
    numbering: dict = {}
    report_cli._codes_by_value(pa.array(np.array([0, 3], dtype="uint16")), None, numbering)
    codes, keys = report_cli._codes_by_value(pa.array(np.array([7], dtype="uint16")), None,
                                             numbering, trust=True)
    assert codes.tolist() == [7] and len(keys) == 4  # trusted: the kernel's check refuses it
    assert len(report_cli._codes_by_value(pa.array(np.array([7], dtype="uint16")), None,
                                          numbering)[1]) == 8  # untrusted: the keys grow
    wide = pa.array(np.array([0, report_cli.BY_VALUE_SPAN], dtype="int64"))
    assert report_cli._codes_by_value(wide, None, {}) is None
    assert report_cli._codes_by_value(pa.array([1, None], type=pa.int32()), None, {}) is None


def test_report_compares_two_models_with_weights_of_1e200(tmp_path, capsys):
    """Squared weights of 1e200 overflowed in the paired comparison: a NumPy RuntimeWarning on
    stderr and a null standard error in the JSON, which the sentence called "± undefined (...;
    it includes zero: no clear winner)"."""
    y = np.array([1, 0, 1, 1, 0, 0, 1, 0])
    a = np.array([0.9, 0.2, 0.6, 0.7, 0.4, 0.1, 0.8, 0.3])
    b = np.array([0.6, 0.3, 0.7, 0.5, 0.5, 0.2, 0.6, 0.4])
    path = tmp_path / "heavy.csv"
    path.write_text("y,a,b,w\n" + "".join(f"{t},{p},{q},1e200\n" for t, p, q in zip(y, a, b)))
    code = main(["report", str(path), "--label", "y", "--pred", "a", "--pred", "b", "--weight",
                 "w", "--format", "json", "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Warning" not in captured.err
    pair = json.loads(captured.out)["comparison"][0]
    def loss(t, p):
        return -math.log(p) if t else -math.log1p(-p)

    d = [loss(t, q) - loss(t, p) for t, p, q in zip(y.tolist(), a.tolist(), b.tolist())]
    mean = math.fsum(d) / len(d)
    se = math.sqrt(math.fsum((x - mean) ** 2 for x in d) / (len(d) * (len(d) - 1)))
    assert pair["mean_difference"] == pytest.approx(mean, rel=1e-12)
    assert pair["standard_error"] == pytest.approx(se, rel=1e-12)
    state = logloss.DiagnosticsState().update(y, {"a": a, "b": b}, np.full(8, 1e200))
    sentence = pair_conclusion(state.result()["comparison"][0])
    diagnosis = logloss.diagnose(y, {"a": a, "b": b}, sample_weight=np.full(8, 1e200))
    assert diagnosis.conclusions()[0] == sentence  # the exact figures: the same sentence
    assert "undefined" not in sentence and "\u00b1" in sentence


def test_a_comparison_without_an_interval_does_not_claim_one():
    """One row with a finite difference has no standard error; the sentence said "± undefined
    (± half the 95% interval; it includes zero: no clear winner)", an interval it does not have."""
    y = np.array([1, 1])
    figures = logloss.diagnose(y, {"a": np.array([0.0, 0.9]), "b": np.array([0.0, 0.6])})
    pair = figures.to_dict()["comparison"][0]
    assert pair["count"] == 1 and pair["standard_error"] is None
    sentence = figures.conclusions()[0]
    assert "cannot be estimated" in sentence
    assert "includes zero" not in sentence and "undefined" not in sentence


@pytest.mark.parametrize("scale", [5e-324, 2.0**-1060, 1e-300, 2.0**600],
                         ids=["5e-324", "2**-1060", "1e-300", "2**600"])
def test_sentences_do_not_change_when_every_weight_is_scaled(scale):
    """The sentences read ratios only, so weights k * scale (k = 1..4) must give the sentences
    of the weights k. Subnormal weights gave another log loss, calibration and winner share."""
    rng = np.random.default_rng(17)
    n = 300
    p = rng.uniform(0.02, 0.98, n)
    y = (rng.random(n) < p ** 1.5).astype(np.int8)
    other = np.clip(p + rng.normal(0.0, 0.1, n), 0.01, 0.99)
    units = rng.integers(1, 5, n).astype(np.float64)
    shop = np.array(["north", "south", "east"])[np.arange(n) % 3]
    models = {"model": p, "other": other}

    def sentences(weights):
        return logloss.diagnose(y, models, sample_weight=weights, by={"shop": shop}).conclusions()

    assert sentences(units * scale) == sentences(units)


@pytest.mark.parametrize("unit", ["5e-324", "1e-320"])
def test_report_with_subnormal_weights_gives_their_weighted_log_loss(tmp_path, capsys, unit):
    """The report command adds its batches through the compiled kernel directly: subnormal
    weights times a loss kept no digits there (0.333 for a log loss of 0.302)."""
    y = [1, 0, 1, 1, 0, 0]
    a = [0.9, 0.2, 0.6, 0.7, 0.4, 0.1]
    k = [1, 2, 3, 1, 2, 3]
    path = tmp_path / "tiny.csv"
    path.write_text("y,a,w\n" + "".join(f"{t},{p},{m * float(unit)!r}\n"
                                          for t, p, m in zip(y, a, k)))
    code = main(["report", str(path), "--label", "y", "--pred", "a", "--weight", "w",
                 "--format", "json", "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    out = json.loads(captured.out)
    losses = [-math.log(p) if t else -math.log1p(-p) for t, p in zip(y, a)]
    expected = math.fsum(m * loss for m, loss in zip(k, losses)) / sum(k)
    assert out["log_loss"] == pytest.approx(expected, rel=1e-13)
    assert out["weight"] == sum(m * float(unit) for m in k)


_SUBNORMAL_UNITS = {"5e-324": 5e-324, "2**-1070": 2.0**-1070, "1e-320": 2.0**-1063}


@pytest.mark.parametrize("unit", list(_SUBNORMAL_UNITS))
@pytest.mark.parametrize("seed", range(6))
def test_the_positives_share_of_the_loss_with_few_subnormal_weights(unit, seed):
    """The sentence multiplied each class's mean loss by its weight as reported (subnormal):
    0.3332 x 5 x 5e-324 kept no digits, and six rows of weight 5e-324 'carry 22% of the loss'
    where they carry 18%. The share is taken from the classes' shares of the weight now."""
    rng = np.random.default_rng(seed)
    y = np.array([1, 0] * 4)
    p = rng.uniform(0.05, 0.95, len(y))
    units = rng.integers(1, 3, len(y)).astype(np.float64)
    weights = units * _SUBNORMAL_UNITS[unit]
    sentences = logloss.diagnose(y, p, sample_weight=weights).conclusions()
    losses = [-math.log(q) if t else -math.log1p(-q) for t, q in zip(y.tolist(), p.tolist())]
    positive = math.fsum(u * loss for u, t, loss in zip(units.tolist(), y.tolist(), losses) if t)
    share = positive / math.fsum(u * loss for u, loss in zip(units.tolist(), losses))
    expected = f"{share:.1%}" if share < 0.1 else f"{share:.0%}"
    sentence = next(s for s in sentences if s.startswith("Positives carry"))
    assert f" of the weight and {expected} of the loss" in sentence
    assert sentences == logloss.diagnose(y, p, sample_weight=units).conclusions()


_MID_STREAM_UNITS = {
    "subnormal first": (5e-324, 2.0**-1060, 2.0**-1045),
    "largest first": (2.0**-1045, 2.0**-1060, 5e-324),
    "tiny then 2**-600": (5e-324, 2.0**-1000, 2.0**-600),
}


@pytest.mark.parametrize("layout", list(_MID_STREAM_UNITS))
def test_report_when_the_weights_units_change_between_batches(tmp_path, capsys, monkeypatch,
                                                               layout):
    """Blocks of 200 bytes: the first batches hold weights k * 5e-324, later ones weights
    1e16 or more times larger (or the reverse), so the state moves to a larger scale mid-stream
    (draining the kernel's partial sums); rows of weight 0 between. Each segment's weight and
    log loss, the 'other' fold and the pair's mean difference against fsum references."""
    from logloss._cli import sources

    monkeypatch.setattr(sources, "CSV_BLOCK_BYTES", 200)
    rng = np.random.default_rng(23)
    n = 240
    y = rng.integers(0, 2, n).tolist()
    a, b = rng.uniform(0.01, 0.99, n).tolist(), rng.uniform(0.01, 0.99, n).tolist()
    m = rng.integers(1, 41, n)
    unit = np.repeat(_MID_STREAM_UNITS[layout], n // 3)
    w = np.where(np.arange(n) % 13 == 0, 0.0, m * unit).tolist()
    shop = rng.choice(list("uvxyz"), n).tolist()
    path = tmp_path / "mid.csv"
    path.write_text("y,a,b,w,s\n" + "".join(f"{t},{p!r},{q!r},{v!r},{s}\n"
                                            for t, p, q, v, s in zip(y, a, b, w, shop)))
    code = main(["report", str(path), "--label", "y", "--pred", "a", "--pred", "b", "--weight",
                 "w", "--by", "s", "--max-segments", "3", "--format", "json", "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err

    def loss(t, p):
        return -math.log(p) if t else -math.log1p(-p)

    def reference(keys):
        rows = [i for i in range(n) if shop[i] in keys]
        units = [math.ldexp(w[i], 1074) for i in rows]  # exact: integers of 2**-1074
        total = math.fsum(units)
        mean_a = math.fsum(u * loss(y[i], a[i]) for u, i in zip(units, rows)) / total
        diff = math.fsum(u * (loss(y[i], b[i]) - loss(y[i], a[i]))
                         for u, i in zip(units, rows)) / total
        return math.fsum(w[i] for i in rows), mean_a, diff

    out = json.loads(captured.out)
    weight, log_loss, diff = reference(set(shop))
    assert out["models"]["a"]["weight"] == weight
    assert out["models"]["a"]["log_loss"] == pytest.approx(log_loss, rel=1e-13)
    assert out["comparison"][0]["mean_difference"] == pytest.approx(diff, rel=1e-12)
    segments = out["models"]["a"]["segments"]
    shown = set()
    for row in segments["rows"]:
        key = row["segment"]["s"]
        shown.add(key)
        weight, log_loss, _ = reference({key})
        assert row["weight"] == weight, key
        assert row["log_loss"] == pytest.approx(log_loss, rel=1e-13), key
    weight, log_loss, _ = reference(set(shop) - shown)
    assert segments["other"]["segments"] == 2
    assert segments["other"]["weight"] == weight
    assert segments["other"]["log_loss"] == pytest.approx(log_loss, rel=1e-13)
