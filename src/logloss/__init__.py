"""logloss: exact, fast and explained binary cross-entropy (log loss)."""

from ._about import show_config
from ._accumulator import Accumulator
from ._binary import binary_cross_entropy
from ._binary import binary_cross_entropy_gradient
from ._binary import binary_cross_entropy_hessian
from ._categorical import categorical_cross_entropy
from ._information import binary_entropy
from ._information import binary_kl_divergence
from ._core.checks import InfiniteLossWarning
from ._core.config import config_context, get_config, set_config

bce = binary_cross_entropy

__version__ = "0.1.0"

__all__ = [
    "Accumulator",
    "Comparison",
    "InfiniteLossWarning",
    "bce",
    "binary_cross_entropy",
    "binary_cross_entropy_gradient",
    "binary_cross_entropy_hessian",
    "binary_entropy",
    "binary_kl_divergence",
    "categorical_cross_entropy",
    "compare",
    "Comparison",
    "config_context",
    "get_config",
    "set_config",
    "show_config",
]


_LAZY = {"compare": "report.compare", "Comparison": "report.compare"}


def __getattr__(name: str):
    # The comparison table pulls in every convention: loaded on first use, not by `import logloss`.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'logloss' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
