"""logloss: exact, fast and explained binary cross-entropy (log loss)."""

from . import _command  # noqa: F401 - before NumPy: the command's process settings
from ._about import show_config
from ._accumulator import Accumulator
from ._binary import binary_cross_entropy
from ._binary import binary_cross_entropy_gradient
from ._binary import binary_cross_entropy_hessian
from ._categorical import categorical_cross_entropy
from ._core.checks import InfiniteLossWarning
from ._core.config import config_context
from ._core.config import get_config
from ._core.config import set_config
from ._information import binary_entropy
from ._information import binary_kl_divergence

bce = binary_cross_entropy

__version__ = "0.1.0"

# Loaded on first use, so `import logloss` stays as light as NumPy: the comparison pulls in every
# convention, the diagnosis its report (matplotlib and jinja2 only when drawing or rendering).
_LAZY = {
    "compare": "report.compare",
    "Comparison": "report.compare",
    "diagnose": "report.diagnosis",
    "Diagnosis": "report.diagnosis",
    "DiagnosticsState": "_diagnostics",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'logloss' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "Accumulator",
    "Comparison",
    "Diagnosis",
    "DiagnosticsState",
    "InfiniteLossWarning",
    "bce",
    "binary_cross_entropy",
    "binary_cross_entropy_gradient",
    "binary_cross_entropy_hessian",
    "binary_entropy",
    "binary_kl_divergence",
    "categorical_cross_entropy",
    "compare",
    "config_context",
    "diagnose",
    "get_config",
    "set_config",
    "show_config",
]
