"""Builds the compiled kernels (src/logloss/_numpy/kernels/kernels.c, once per CPU path) and the
CSV quoting check (src/logloss/_cli/quotes.c).

Everything else about the package is in pyproject.toml. The extensions are optional: without a
C compiler the install still succeeds and logloss computes on NumPy (``logloss.show_config()``
says which engine is active).
"""

import platform

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

SOURCE = "src/logloss/_numpy/kernels/kernels.c"
INCLUDED = [  # #included by kernels.c
    "src/logloss/_numpy/kernels/diagnostics.c",
    "src/logloss/_numpy/kernels/ordering.c",
    "src/logloss/_numpy/kernels/products.c",
]
# No -ffast-math: results depend on every rounding. -fno-trapping-math only lets GCC if-convert
# the branch-free loops (it assumes nobody reads the FP exception flags; no value changes), and
# -ffp-contract=fast allows a * b + c to become an FMA, which the error bounds assume.
# -fno-wrapv undoes Python's -fwrapv (the kernels never overflow a signed int), which costs 0.2 ns
# per sample here.
GCC_FLAGS = ["-O3", "-fno-trapping-math", "-ffp-contract=fast", "-fno-math-errno", "-fno-wrapv"]
X86_PATHS = {
    # x86-64-v2 (SSE4.2, POPCNT: every x86-64 CPU since 2009-2011): with SSE2 only, GCC vectorizes
    # none of the loss loops (no 64-bit compares, no blends) and the kernels would be slower than
    # NumPy. A CPU without it gets the NumPy engine.
    "baseline": ["-msse4.2", "-mpopcnt"],
    "avx2": ["-mavx2", "-mfma"],
    "avx512": ["-mavx512f", "-mavx512dq", "-mavx512vl", "-mavx2", "-mfma"],
}

machine = platform.machine().lower()
if machine in ("x86_64", "amd64"):
    paths = X86_PATHS
elif machine in ("aarch64", "arm64"):
    paths = {"neon": []}  # NEON and FMA are in the aarch64 baseline
else:
    paths = {"generic": []}


class BuildKernels(build_ext):
    """GCC/Clang flags per path. MSVC: no kernels yet (cpu.c uses GCC's __builtin_cpu_supports),
    so Windows source builds compute on NumPy."""

    def build_extensions(self):
        if self.compiler.compiler_type == "msvc":
            self.extensions = [e for e in self.extensions if not e.name.startswith("logloss._numpy")]
        super().build_extensions()


extensions = [
    Extension(
        f"logloss._numpy.kernels._kernels_{name}",
        [SOURCE],
        depends=INCLUDED,
        define_macros=[("PATH_NAME", name)],
        extra_compile_args=GCC_FLAGS + flags,
        optional=True,  # no compiler: the NumPy engine computes everything
    )
    for name, flags in paths.items()
]
if paths is X86_PATHS:  # which paths the CPU runs, asked before any path module is imported
    extensions.append(Extension("logloss._numpy.kernels._cpu", ["src/logloss/_numpy/kernels/cpu.c"],
                                optional=True))

# The check of CSV quoting (sources.py reads every CSV file through it): plain C, any compiler.
extensions.append(Extension("logloss._cli._quotes", ["src/logloss/_cli/quotes.c"], optional=True))

setup(ext_modules=extensions, cmdclass={"build_ext": BuildKernels})
