"""logloss: exact, fast and explained binary cross-entropy (log loss)."""

from ._accumulator import Accumulator
from ._binary import binary_cross_entropy
from ._binary import binary_cross_entropy_gradient
from ._binary import binary_cross_entropy_hessian
from ._categorical import categorical_cross_entropy
from ._information import binary_entropy
from ._information import binary_kl_divergence
from ._validation import InfiniteLossWarning

bce = binary_cross_entropy


def __getattr__(name: str):
    # The diagnostics load on first use: `import logloss` stays as light as before.
    if name == "diagnose":
        from .report.diagnosis import diagnose

        return diagnose
    if name == "Diagnosis":
        from .report.diagnosis import Diagnosis

        return Diagnosis
    if name == "DiagnosticsState":
        from ._diagnostics import DiagnosticsState

        return DiagnosticsState
    raise AttributeError(f"module 'logloss' has no attribute {name!r}")


__version__ = "0.1.0"

__all__ = [
    "Accumulator",
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
    "diagnose",
]
