"""A diagnosis as one self-contained HTML file: jinja2 with autoescaping, figures as SVG data URIs.

Nothing is fetched: no script, no font, no stylesheet from elsewhere. Every string that comes
from the user (file, column and model names, segment values, row ids) reaches the page through
jinja2's autoescaping; the figures are SVG documents inside ``<img>`` data URIs, where no script
can run whatever their text says.
"""

from __future__ import annotations

import base64
import functools
import math
from pathlib import Path

from .. import __version__
from . import sentences

MAX_BYTES = 2_000_000


@functools.lru_cache(maxsize=1)
def template():
    """The report's compiled template (compiling it takes ~0.03 s: once a process, and by
    ``logloss report`` while the files are read)."""
    return _environment().get_template("report.html.j2")


def _environment():
    try:
        import jinja2
    except ImportError:
        raise ImportError("The HTML report needs jinja2: pip install 'logloss[report]'.") from None
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["num"] = sentences.number
    environment.filters["pct"] = sentences.percent
    environment.filters["segment"] = lambda s: ", ".join(f"{k} = {v}" for k, v in s.items())
    return environment


def _data_uri(figure) -> str:
    from .plots import to_svg

    # no figure.clear() after: it clears each axes first, building their ticks anew, only for
    # the figure to be dropped
    svg = to_svg(figure)
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def _pictures(figures: dict) -> list[dict]:
    from . import plots

    out = []
    captions = {
        "reliability": "Reliability: the observed rate of positives against the prediction. "
                       "The blue steps are the isotonic (PAV) recalibration, the dots the "
                       "equal-mass bins; on the dashed diagonal a model is calibrated. Below, "
                       "how the predictions are spread.",
        "loss by bin": "Mean loss in each equal-mass bin of predicted probability; the labels "
                       "give each bin's share of the total loss.",
        "concentration": "Concentration: the share of the total loss carried by the worst rows. "
                         "The dashed line is what it would be if every row had the same loss.",
        "losses by class": "How the losses of the positives and of the negatives are spread, on "
                           "a log axis; dotted lines mark where Keras, XGBoost/LightGBM, "
                           "scikit-learn and PyTorch cap the loss.",
        "segments": "Each segment's share of the total loss (red) beside its share of the rows "
                    "(grey).",
    }
    for name, figure in plots.plot_all(figures).items():
        kind = name.split(": ", 1)[-1]
        caption = captions.get(kind, "The paired comparison: the mean per-row loss difference "
                                     "with its 95% interval, over all rows and per segment.")
        out.append({"title": name[0].upper() + name[1:], "src": _data_uri(figure),
                    "caption": caption})
    return out


def render(diagnosis) -> str:
    """The report of a :class:`~logloss.report.diagnosis.Diagnosis` as one HTML document."""
    figures = diagnosis.figures
    html = template().render(
        title=diagnosis.title,
        sources=diagnosis.sources,
        figures=figures,
        models=figures["models"],
        comparison=figures.get("comparison", []),
        settings=figures["settings"],
        conclusions=sentences.conclusions(figures),
        pictures=_pictures(figures),
        version=__version__,
        isfinite=lambda v: v is not None and math.isfinite(v),
    )
    size = len(html.encode("utf-8"))
    if size > MAX_BYTES:
        raise ValueError(f"The report would be {size:,} bytes, over its {MAX_BYTES:,}-byte "
                         "limit; lower max_segments (--max-segments) or the number of models.")
    return html
