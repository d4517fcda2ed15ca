"""The NumPy engine: the reference path (extended precision, every error and warning), the
chunked fast path for full reductions, and the optional compiled kernels."""
