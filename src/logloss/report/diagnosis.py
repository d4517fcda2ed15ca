"""``logloss.diagnose``: the figures of :mod:`logloss._diagnostics` as an object a reader uses.

The numbers come from the public layer; this module only holds them and hands them to the text,
picture and HTML modules next to it (matplotlib and jinja2 are imported only when asked for).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from .._diagnostics import DEFAULTS, DiagnosticsState, diagnose_numbers


def jsonable(value):
    """Plain JSON: NaN (undefined) becomes None, an infinite value the string "inf" or "-inf"."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
    return value


class Diagnosis:
    """Where the loss of one or several models comes from.

    With one model, its figures are attributes (``d.log_loss``, ``d.decomposition``, ...);
    with several, ``d.models[name]`` holds each model's and ``d.comparison`` the paired
    comparisons. ``to_dict()`` is plain JSON, ``to_html()`` a self-contained report,
    ``plot()`` the matplotlib figures. ``state`` is the mergeable :class:`DiagnosticsState`
    the figures came from.
    """

    def __init__(self, figures: dict, *, state: DiagnosticsState | None = None,
                 title: str = "Where the loss comes from", sources: list[str] | None = None):
        self.figures = figures
        self.state = state
        self.title = title
        self.sources = list(sources or [])

    @classmethod
    def from_state(cls, state: DiagnosticsState, *, max_segments: int = DEFAULTS["max_segments"],
                   **kwargs) -> Diagnosis:
        """The diagnosis of a streamed (possibly merged) state: histogram-based, with bounds."""
        return cls(state.result(max_segments=max_segments), state=state, **kwargs)

    @property
    def models(self) -> dict:
        return self.figures["models"]

    @property
    def model_names(self) -> list[str]:
        return list(self.figures["models"])

    @property
    def comparison(self) -> list:
        return self.figures.get("comparison", [])

    @property
    def settings(self) -> dict:
        return self.figures["settings"]

    def __getattr__(self, name: str):
        if name.startswith("_") or name == "figures":
            raise AttributeError(name)
        models = self.figures["models"]
        first = next(iter(models.values()))
        if name in first:
            if len(models) > 1:
                raise AttributeError(f"This diagnosis holds {len(models)} models; read "
                                     f"`.models[name][{name!r}]` for one of {list(models)}.")
            return first[name]
        raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")

    def to_dict(self) -> dict:
        """JSON-safe figures: one model's figures at the top level, or ``models`` and
        ``comparison`` for several; ``settings`` says how they were computed."""
        models = self.figures["models"]
        if len(models) == 1:
            out = {**next(iter(models.values())), "settings": self.figures["settings"]}
        else:
            out = dict(self.figures)
        return jsonable(out)

    def conclusions(self) -> list[str]:
        """What a reader should conclude, in plain sentences."""
        from .sentences import conclusions

        return conclusions(self.figures)

    def plot(self) -> dict:
        """The pictures as matplotlib figures, by name (needs ``logloss[report]``)."""
        from .plots import plot_all

        return plot_all(self.figures)

    def to_html(self) -> str:
        """A self-contained HTML report (inline SVG, no network; needs ``logloss[report]``)."""
        from .html import render

        return render(self)

    def _repr_html_(self) -> str:
        # In a sandboxed iframe: the report's page styles stay off the notebook's page, and its
        # Content-Security-Policy applies (a <meta> policy in a notebook's body would not).
        import html

        return (f'<iframe srcdoc="{html.escape(self.to_html(), quote=True)}" sandbox '
                'style="width: 100%; height: 900px; border: 1px solid #ddd"></iframe>')

    def __repr__(self) -> str:
        parts = []
        for name, m in self.figures["models"].items():
            parts.append(f"{name}: log_loss={m['log_loss']:.6g} over {m['count']} rows")
        return f"<Diagnosis {'; '.join(parts)}>"


def diagnose(y_true, y_pred, *, sample_weight=None, from_logits: bool = False, by=None, ids=None,
             k: int = DEFAULTS["k"], bins: int = DEFAULTS["bins"],
             resolution: int = DEFAULTS["resolution"],
             max_segments: int = DEFAULTS["max_segments"]) -> Diagnosis:
    """Where the log loss comes from, for predictions in memory.

    ``y_pred`` is an array of probabilities (logits with ``from_logits=True``), or a mapping
    from model name to array for a paired comparison of several models on the same labels.
    ``by`` is an array of segment values, or a mapping from column name to array; ``ids`` names
    the rows listed in ``worst``. ``k`` worst rows are kept, ``bins`` equal-mass bins make the
    ECE and the binned reliability curve (a prediction whose weight straddles a boundary is
    split in proportion), ``resolution`` is the prediction histogram's bin
    count (what a streamed state works from), ``max_segments`` segments are shown by share of
    the loss, the rest folded into ``other``.

    Figures per model: ``log_loss`` (exact), ``count``, ``positives``, ``weight``,
    ``base_rate``, ``normalized_entropy`` (log loss / entropy of the base rate, in nats),
    ``d2`` (1 - that), ``brier``, ``calibration_ratio`` (sum w p / sum w y), ``ece``,
    ``decomposition`` (``miscalibration - discrimination + uncertainty = log_loss``, the
    recalibration by weighted PAV isotonic regression with ties pooled, exact in memory),
    ``by_class``, ``concentration``, ``worst``, ``reliability``, ``segments`` (with ``by``).
    Infinite losses stay infinite: counted, listed first among the worst rows.
    """
    state, figures = diagnose_numbers(y_true, y_pred, sample_weight=sample_weight,
                                      from_logits=from_logits, by=by, ids=ids, k=k, bins=bins,
                                      resolution=resolution, max_segments=max_segments)
    return Diagnosis(figures, state=state)
